"""Prometheus metrics (docs/design.md §4.1), served at ``/metrics`` on the operator's HTTP port.

Labels carry namespace, type, queue, phase, reason or outcome — never a task's name,
so the number of series stays bounded by what the cluster's users configure.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from asynctask_operator.core.effects import MetricDelta

DURATION_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400)
RECONCILE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)

QueueSample = tuple[str, str, int, int, int, int, int]
"""(namespace, queue, pending, running, oldest pending seconds, waiting for a key, keys held)"""


class _QueueCollector(Collector):
    def __init__(self, sample: Callable[[], Iterable[QueueSample]]) -> None:
        self._sample = sample

    def collect(self) -> Iterable[GaugeMetricFamily]:
        pending = GaugeMetricFamily(
            "asynctask_queue_pending", "Tasks waiting for a slot", labels=["namespace", "queue"]
        )
        running = GaugeMetricFamily("asynctask_queue_running", "Tasks holding a slot", labels=["namespace", "queue"])
        oldest = GaugeMetricFamily(
            "asynctask_queue_oldest_pending_seconds",
            "Age of the queue's longest-waiting task (0: none waits)",
            labels=["namespace", "queue"],
        )
        # Keys are counted, never labelled: a label per key would be a series per video, account, tenant.
        for_key = GaugeMetricFamily(
            "asynctask_queue_waiting_for_key",
            "Tasks waiting because their concurrency key is held (the busiest keys: the TaskQueue's status)",
            labels=["namespace", "queue"],
        )
        keys = GaugeMetricFamily(
            "asynctask_queue_keys_held",
            "Distinct concurrency keys the queue's running tasks hold",
            labels=["namespace", "queue"],
        )
        for namespace, queue, waiting, holding, age, blocked, held in self._sample():
            pending.add_metric([namespace, queue], waiting)
            running.add_metric([namespace, queue], holding)
            oldest.add_metric([namespace, queue], age if waiting else 0)
            for_key.add_metric([namespace, queue], blocked)
            keys.add_metric([namespace, queue], held)
        yield pending
        yield running
        yield oldest
        yield for_key
        yield keys


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.tasks_created = Counter(
            "asynctask_tasks_created_total", "Tasks first seen by the operator", ["namespace", "type"], registry=r
        )
        self.tasks_finished = Counter(
            "asynctask_tasks_finished_total",
            "Tasks that reached a terminal phase",
            ["namespace", "type", "queue", "phase", "reason"],
            registry=r,
        )
        self.task_duration = Histogram(
            "asynctask_task_duration_seconds",
            "From the first attempt's start to completion",
            ["namespace", "type", "phase"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.queue_wait = Histogram(
            "asynctask_queue_wait_seconds",
            "From entering the queue to the Job's creation, per attempt",
            ["namespace", "queue"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.attempts = Counter(
            "asynctask_attempts_total", "Attempts that ended, by outcome", ["namespace", "type", "outcome"], registry=r
        )
        self.callbacks = Counter(
            "asynctask_callback_deliveries_total",
            "Webhook delivery attempts by result",
            ["namespace", "result"],
            registry=r,
        )
        self.scheduled_runs = Counter(
            "asynctask_scheduled_runs_total", "ScheduledTask fires by outcome", ["namespace", "outcome"], registry=r
        )
        self.api_requests = Counter(
            "asynctask_api_requests_total", "Kubernetes API requests", ["verb", "resource", "code"], registry=r
        )
        self.leader = Gauge(
            "asynctask_leader", "1 on the replica that acts (holds the Lease, or runs without election)", registry=r
        )
        self.reconcile_seconds = Histogram(
            "asynctask_reconcile_seconds", "Time of one reconcile", ["kind"], buckets=RECONCILE_BUCKETS, registry=r
        )

    def watch_queues(self, sample: Callable[[], Iterable[QueueSample]]) -> None:
        self.registry.register(_QueueCollector(sample))

    def record(self, delta: MetricDelta) -> None:
        """One step a decision counts: a counter goes up, a histogram observes."""
        metric: Counter | Histogram = getattr(self, delta.metric)
        child = metric.labels(*delta.labels)
        if isinstance(child, Histogram):
            child.observe(delta.value)
        else:
            child.inc(delta.value)

    def api_request(self, verb: str, resource: str, code: int) -> None:
        self.api_requests.labels(verb, resource, str(code)).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
