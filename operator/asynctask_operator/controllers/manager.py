"""The operator's parts, wired: the cache, the informer feeding it, the reconcilers, one work queue.

Every event the informer brings (and every object a listing has) goes to one handler per
kind below, the one place that says what follows from it: which cache it fills, which
ledger learns of it, which keys are queued. Workers take keys off the queue and reconcile
them; a reconcile's answer (or failure) decides when the key is looked at again.
"""

from __future__ import annotations

import asyncio
import logging
import time

from asynctask_operator.adapters.api import Kube
from asynctask_operator.adapters.kube import ApiError
from asynctask_operator.adapters.metrics import Metrics, QueueSample
from asynctask_operator.adapters.tracing import SpanSink
from asynctask_operator.adapters.webhooks import HttpxSender, Sender
from asynctask_operator.controllers.admission import Admissions
from asynctask_operator.controllers.cache import Cache
from asynctask_operator.controllers.callbacks import CallbackDispatcher, SecretReader
from asynctask_operator.controllers.informer import Feed, Informer, Versions
from asynctask_operator.controllers.intake import TaskIntake
from asynctask_operator.controllers.reports import ReportStore
from asynctask_operator.controllers.schedules import ScheduleReconciler
from asynctask_operator.controllers.taskqueues import TaskQueueReconciler
from asynctask_operator.controllers.tasks import TaskReconciler
from asynctask_operator.controllers.tasktypes import TaskTypeReconciler
from asynctask_operator.controllers.workqueue import Clock, RequeueSoon, WorkQueue
from asynctask_operator.core.clocks import Clocks
from asynctask_operator.core.observed import job_view, pod_view
from asynctask_operator.core.outcomes import pod_signal
from asynctask_operator.core.retry import backoff
from asynctask_operator.core.wire import Key, Obj, key_of
from asynctask_operator.settings import OperatorSettings

logger = logging.getLogger(__name__)

WorkKey = tuple[str, str, str]  # (kind, namespace, name), kind "task", "tasktype", "taskqueue" or "scheduledtask"
MAX_ERROR_BACKOFF = 60.0


def _stub(key: Key) -> Obj:
    return {"metadata": {"namespace": key[0], "name": key[1]}}


class Manager:
    """The operator's parts wired together: what :func:`~asynctask_operator.controllers.process.run` runs."""

    def __init__(
        self,
        api: Kube,
        settings: OperatorSettings,
        sender: Sender | None = None,
        clocks: Clocks | None = None,
        spans: SpanSink | None = None,
    ) -> None:
        self.api = api
        self.settings = settings
        self.clocks = clocks = clocks or Clocks()
        self.cache = Cache(monotonic=clocks.monotonic)
        self.queue: WorkQueue[WorkKey] = WorkQueue()
        self.clock: Clock[WorkKey] = Clock(self.queue, now=clocks.wall)
        self.admissions = Admissions(
            settings.default_concurrency,
            wake_task=self._wake_task,
            wake_queue_at=lambda key, at: self.clock.schedule(("taskqueue", *key), at),
            now=clocks.wall,
            cache=self.cache,
            changed=lambda key: self.taskqueues.changed(key, clocks.wall()),
        )
        self.taskqueues = TaskQueueReconciler(
            self.cache,
            api,
            self.admissions,
            took=lambda obj, sent: self.on_taskqueue("MODIFIED", obj, answer_sent_at=sent),
            schedule=lambda key, at: self.clock.schedule(("taskqueue", *key), at),
            interval=settings.queue_status_seconds,
        )
        self.intake = TaskIntake(
            self.cache,
            self.admissions,
            wake_task=self._wake_task,
            wake_schedule=self._wake_schedule,
            default_queue=lambda: self.settings.core.default_queue,
        )
        self.reports = ReportStore(self.cache, lambda: self.settings.core, wake=self._wake_task, now=clocks.utcnow)
        self.metrics = Metrics()
        self.metrics.watch_queues(self._queue_samples)
        api.counter.listeners.append(self.metrics.api_request)
        self.callbacks = CallbackDispatcher(
            sender
            or HttpxSender(
                settings.callback_policy,
                max_connections=max(settings.callback_max_in_flight, 1),
                now=clocks.utcnow,
            ),
            SecretReader(api, monotonic=clocks.monotonic),
            wake=self._wake_task,
            max_in_flight=max(settings.callback_max_in_flight, 1),
            metrics=self.metrics,
            now=clocks.utcnow,
        )
        self.tasks = TaskReconciler(
            self.cache,
            api,
            settings,
            self.intake,
            self.admissions,
            self.reports,
            self.metrics,
            self.callbacks,
            spans,
        )
        self.tasktypes = TaskTypeReconciler(
            self.cache, api, took=lambda obj, sent: self.on_tasktype("MODIFIED", obj, answer_sent_at=sent)
        )
        self.schedules = ScheduleReconciler(
            self.cache,
            api,
            self.intake,
            wake=self._wake_schedule,
            metrics=self.metrics,
            archive_required=settings.core.archive_required,
        )
        self._failures: dict[WorkKey, int] = {}
        self.informer = Informer(
            api,
            self.cache,
            {
                "task": Feed(self.on_task, self.intake.take, lambda key: self.on_task("DELETED", _stub(key))),
                "job": Feed(self.on_job, self.cache.put_job, self.cache.drop_job),
                "pod": Feed(self.on_pod, self.cache.put_pod, self.cache.drop_pod),
                "tasktype": Feed(
                    self.on_tasktype,
                    lambda obj: self.on_tasktype(None, obj),
                    lambda key: self.on_tasktype("DELETED", _stub(key)),
                ),
                "taskqueue": Feed(
                    self.on_taskqueue,
                    lambda obj: self.on_taskqueue(None, obj),
                    lambda key: self.on_taskqueue("DELETED", _stub(key)),
                ),
                "scheduledtask": Feed(
                    self.on_scheduledtask,
                    lambda obj: self.on_scheduledtask(None, obj),
                    lambda key: self.on_scheduledtask("DELETED", _stub(key)),
                ),
            },
            settings.namespaces,
            synced=self._synced,
            relisted=lambda kind, namespace: self._wake_tasks_in(namespace),
            resync_seconds=settings.resync_seconds,
        )

    # ------------------------------------------------------------------ what each event sets off

    def on_task(self, event_type: str | None, obj: Obj) -> None:
        key = key_of(obj)
        if event_type == "DELETED":
            self.intake.gone(key)
            self.clock.cancel(("task", *key))
            self.reports.forget(key)
            self.callbacks.forget(key)
            return
        # The echo of what is held already (the answer to a write, a listing): whatever stored
        # that copy queued the task then (TaskIntake), so there is nothing new to do.
        blob = self.cache.task_blob(obj)
        if self.cache.tasks.has_blob(key, blob):
            return
        if self.cache.stale_task(obj):  # an older version than the cache holds (our own write overtook it)
            return
        self.cache.event_arrived("task", key)
        self.intake.take(obj, blob=blob)

    def on_tasktype(self, event_type: str | None, obj: Obj, answer_sent_at: float | None = None) -> None:
        """A TaskType appeared, changed or went: its status is reconciled, and its unfinished tasks
        when what they read of it (its spec) changed — not for the echo of its own status write.

        ``answer_sent_at``: the object is the answer to a status write sent then; it is taken only
        if no watch event came since (that event is as new, and the answer may be older: a spec
        changed after the write would be forgotten until the next event)."""
        key = key_of(obj)
        if answer_sent_at is not None:
            if self.cache.newer_event("tasktype", key, answer_sent_at):
                return
        elif event_type != "DELETED":
            self.cache.event_arrived("tasktype", key)
        before = self.cache.tasktypes.get(key)
        if event_type == "DELETED":
            self.cache.drop_tasktype(key)
        else:
            self.cache.put_tasktype(obj)
            self.queue.add(("tasktype", *key))
        after = self.cache.tasktypes.get(key)
        if before is None or after is None or before.spec != after.spec:
            self._wake_tasks_of_type(key)

    def on_taskqueue(self, event_type: str | None, obj: Obj, answer_sent_at: float | None = None) -> None:
        """A TaskQueue appeared, changed or went: the ledger takes its spec, and the tasks whose
        waiting reason may change are woken (its status is looked at through ``Admissions.changed``).

        ``answer_sent_at``: the object is the answer to a status write sent then (see
        :meth:`Admissions.on_queue`: dropped when a watch event came since)."""
        key = key_of(obj)
        if answer_sent_at is not None and self.cache.newer_event("taskqueue", key, answer_sent_at):
            return
        if event_type == "DELETED":
            self.cache.mark_gone("taskqueue", key)
            self.clock.cancel(("taskqueue", *key))
            self.taskqueues.forget(key)
        else:
            if answer_sent_at is None:
                self.cache.event_arrived("taskqueue", key)
            self.cache.mark_seen("taskqueue", key)
        for task in self.admissions.on_queue(event_type, obj, answer_sent_at=answer_sent_at):
            self._wake_task(task)

    def on_scheduledtask(self, event_type: str | None, obj: Obj) -> None:
        key = key_of(obj)
        if event_type == "DELETED":
            self.cache.drop_scheduledtask(key)
            self.clock.cancel(("scheduledtask", *key))
            return
        self.cache.event_arrived("scheduledtask", key)
        self.cache.put_scheduledtask(obj)
        self._wake_schedule(key)

    def on_job(self, event_type: str | None, obj: Obj) -> None:
        ns, name = key_of(obj)
        before = self.cache.jobs.get((ns, name))
        if event_type == "DELETED":
            view = self.cache.drop_job((ns, name))
        elif (seen := job_view(obj)) == before:  # the cache holds it as it is: nothing to do
            return
        else:
            self.cache.event_arrived("job", (ns, name))
            view = self.cache.put_job(seen)
        if view is None:
            return
        owner = self.cache.task_of_uid(view.owner_uid) or ((ns, view.owner_name) if view.owner_name else None)
        running = view.live and event_type != "DELETED"
        if (before is not None and before.live) != running:  # what its task holds may change with it
            if owner is not None and owner in self.cache.tasks:
                self.intake.reobserve(owner)
            elif "asynctasks" in self.cache.synced:
                self.intake.orphan(view, dropped=event_type == "DELETED")
        if owner is not None:
            self._wake_task(owner)

    def on_pod(self, event_type: str | None, obj: Obj) -> None:
        key = key_of(obj)
        before = self.cache.pods.get(key)
        if event_type == "DELETED":
            view = self.cache.drop_pod(key)
        elif (seen := pod_view(obj)) == before:  # the cache holds it as it is: nothing to do
            return
        else:
            view = self.cache.put_pod(seen)
        if view is None:
            return
        if event_type != "DELETED" and pod_signal(before) == pod_signal(view):
            return  # nothing an attempt's result reads changed (most of a pod's life: core/outcomes.py)
        owner = self.cache.owner_of_job(view.namespace, view.job_name)
        if owner is not None:
            self._wake_task(owner)

    def _wake_task(self, key: Key) -> None:
        self.queue.add(("task", *key))

    def _wake_schedule(self, key: Key) -> None:
        self.queue.add(("scheduledtask", *key))

    def _wake_tasks_of_type(self, key: Key) -> None:
        for task in self.cache.unfinished_tasks_of_type(*key):
            self._wake_task(task)

    def _wake_tasks_in(self, namespace: str | None) -> None:
        for task in list(self.cache.tasks):
            if namespace is None or task[0] == namespace:
                self._wake_task(task)

    def _synced(self) -> None:
        """After a full listing, everything is looked at again (a level-based repair)."""
        for ns, name in list(self.cache.tasktypes):
            self.queue.add(("tasktype", ns, name))
        self._wake_tasks_in(None)
        for key in list(self.cache.scheduledtasks):
            self._wake_schedule(key)
        for key in list(self.admissions.objects):
            self.queue.add(("taskqueue", *key))
        for job in list(self.cache.jobs.values()):  # Jobs of tasks deleted under them hold their keys
            if job.concurrency_key and job.live and self.cache.task_of_uid(job.owner_uid) is None:
                self.intake.orphan(job)

    # ------------------------------------------------------------------ running

    async def sync(self) -> Versions:
        """List everything into the cache and queue every key (:meth:`Informer.sync`)."""
        return await self.informer.sync()

    def background(self, versions: Versions) -> list[asyncio.Task[None]]:
        """Everything that runs once :meth:`sync` filled the cache: the workers, the watches from the
        listing's resourceVersions, the clock, the periodic resync."""
        tasks = [asyncio.create_task(self.worker(), name=f"worker-{i}") for i in range(self.settings.workers)]
        tasks.extend(self.informer.watches(versions))
        tasks.append(asyncio.create_task(self.clock.run(), name="clock"))
        tasks.append(asyncio.create_task(self.informer.resync_forever(), name="resync"))
        return tasks

    async def worker(self) -> None:
        while True:
            key = await self.queue.get()
            began = time.perf_counter()
            try:
                due = await self._reconcile(key)
                self._failures.pop(key, None)
                if due is not None:
                    self.clock.schedule(key, self.clocks.wall() + due)
            except RequeueSoon as soon:
                logger.debug("%s %s/%s: %s", *key, soon)
                self.clock.schedule(key, self.clocks.wall() + soon.delay)
            except Exception as exc:
                failures = self._failures.get(key, 0) + 1
                self._failures[key] = failures
                delay = backoff(failures, 0.5, MAX_ERROR_BACKOFF)
                if isinstance(exc, ApiError):
                    logger.warning("%s %s/%s: %s; again in %.1fs", *key, exc, delay)
                else:
                    logger.exception("%s %s/%s: reconcile failed; again in %.1fs", *key, delay)
                self.clock.schedule(key, self.clocks.wall() + delay)
            finally:
                self.metrics.reconcile_seconds.labels(key[0]).observe(time.perf_counter() - began)
                self.queue.done(key)

    async def _reconcile(self, key: WorkKey) -> float | None:
        kind, ns, name = key
        if kind == "task":
            return await self.tasks.reconcile((ns, name), self.clocks.utcnow())
        if kind == "scheduledtask":
            return await self.schedules.reconcile((ns, name), self.clocks.utcnow())
        if kind == "taskqueue":
            return await self.taskqueues.reconcile((ns, name), self.clocks.utcnow())
        await self.tasktypes.reconcile((ns, name), self.clocks.utcnow())
        return None

    def _queue_samples(self) -> list[QueueSample]:
        now = self.clocks.wall()
        samples = []
        for ns, name in self.admissions.ledger.queues():
            c = self.admissions.ledger.counts((ns, name), now)
            samples.append((ns, name, c.pending, c.running, c.oldest_pending_seconds, c.waiting_for_key, c.keys_held))
        return samples
