"""The archiver's Prometheus metrics, served at ``/metrics`` on its HTTP port.

- ``asynctask_archive_rows_written_total{table}``: rows sent to the database (``tasks``, ``attempt_logs``);
- ``asynctask_archive_batch_seconds``: one batch, from reading its logs to its marks;
- ``asynctask_archive_db_errors_total``: writes the database refused or did not answer (retried);
- ``asynctask_archive_marks_total{result}``: ``asynctask.dev/archived`` patches (ok, gone, error);
- ``asynctask_archive_logs_total{result}``: attempt logs captured, or recorded as missing;
- ``asynctask_archive_refused_total``: tasks stored as a minimal record (or not at all), with a logged reason;
- ``asynctask_archive_retention_deleted_total``: rows deleted past their retention;
- ``asynctask_archive_waiting_tasks``: tasks seen and not yet archived (the TTL of each waits, when required);
- ``asynctask_archive_lag_seconds``: how long the longest-waiting of them has waited (0: none waits);
- ``asynctask_archive_lost_total``: tasks deleted while the backlog was full (never archived);
- ``asynctask_archive_leader``: 1 on the replica that records.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

BATCH_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class _Waiting(Collector):
    def __init__(self, count: Callable[[], int], lag: Callable[[], float], lost: Callable[[], int]) -> None:
        self.count = count
        self.lag = lag
        self.lost = lost

    def collect(self) -> Iterable[GaugeMetricFamily | CounterMetricFamily]:
        yield GaugeMetricFamily(
            "asynctask_archive_waiting_tasks", "Tasks seen and not yet archived", value=self.count()
        )
        yield GaugeMetricFamily(
            "asynctask_archive_lag_seconds", "Wait of the longest-waiting task not yet archived", value=self.lag()
        )
        yield CounterMetricFamily(
            "asynctask_archive_lost", "Tasks deleted while the backlog was full: never archived", value=self.lost()
        )


class ArchiveMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.rows_written = Counter(
            "asynctask_archive_rows_written_total", "Rows written to the archive", ["table"], registry=r
        )
        self.batch_seconds = Histogram(
            "asynctask_archive_batch_seconds", "One batch: logs, upsert, marks", buckets=BATCH_BUCKETS, registry=r
        )
        self.db_errors = Counter(
            "asynctask_archive_db_errors_total", "Database writes refused or unanswered (retried)", registry=r
        )
        self.marks = Counter("asynctask_archive_marks_total", "Archive marks written", ["result"], registry=r)
        self.logs = Counter("asynctask_archive_logs_total", "Attempt logs", ["result"], registry=r)
        self.refused = Counter(
            "asynctask_archive_refused_total", "Tasks stored as a minimal record, or not at all", registry=r
        )
        self.retention_deleted = Counter(
            "asynctask_archive_retention_deleted_total", "Rows deleted past their retention", registry=r
        )
        self.leader = Gauge("asynctask_archive_leader", "1 on the replica that records", registry=r)
        for table in ("tasks", "attempt_logs"):
            self.rows_written.labels(table)
        for result in ("ok", "gone", "error"):
            self.marks.labels(result)
        for result in ("captured", "missing"):
            self.logs.labels(result)

    def watch_backlog(self, count: Callable[[], int], lag: Callable[[], float], lost: Callable[[], int]) -> None:
        self.registry.register(_Waiting(count, lag, lost))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
