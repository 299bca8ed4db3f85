"""Reconcile one AsyncTask: read the cache, ask the core, apply the difference.

The only writes are the ones :func:`~asynctask_operator.core.lifecycle.decide` asks
for — once per reconcile — and :meth:`TaskReconciler.apply` makes them in a crash-safe
order: create the attempt's Job, then write the status (and post the Events, count
the metrics and export the trace spans the write means), then delete a Job or the task. A crash between
two of them leaves a state the next reconcile recognises (a Job without a status that
names it is adopted, never doubled).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import random

from pydantic import ValidationError

from asynctask_operator.adapters.api import Kube
from asynctask_operator.adapters.kube import (
    ASYNCTASKS,
    EVENTS,
    JOBS,
    PODS,
    ApiError,
    Conflict,
    Invalid,
    NotFound,
)
from asynctask_operator.adapters.metrics import Metrics
from asynctask_operator.adapters.tracing import SpanSink
from asynctask_operator.controllers.admission import Admissions
from asynctask_operator.controllers.cache import Cache
from asynctask_operator.controllers.callbacks import CallbackDispatcher
from asynctask_operator.controllers.intake import TaskIntake
from asynctask_operator.controllers.reports import ReportStore
from asynctask_operator.controllers.workqueue import RequeueSoon
from asynctask_operator.core.concurrency import KeyClaim, claim_of
from asynctask_operator.core.effective import effective_priority, effective_queue
from asynctask_operator.core.effects import event_body
from asynctask_operator.core.lifecycle import Admission, Decision, Observed, decide, refuse
from asynctask_operator.core.models import TERMINAL_PHASES, AsyncTask, EffectiveSpec, FairTurn, KeyWait, TaskType
from asynctask_operator.core.models.concurrency import HOLDERS_SHOWN
from asynctask_operator.core.naming import job_name
from asynctask_operator.core.observed import PodView
from asynctask_operator.core.patches import status_write
from asynctask_operator.core.tracing import ended_spans
from asynctask_operator.core.waiting import group_of
from asynctask_operator.core.wire import Key, Obj
from asynctask_operator.settings import OperatorSettings

logger = logging.getLogger(__name__)


class TaskReconciler:
    def __init__(
        self,
        cache: Cache,
        api: Kube,
        settings: OperatorSettings,
        intake: TaskIntake,
        admissions: Admissions,
        reports: ReportStore,
        metrics: Metrics | None = None,
        callbacks: CallbackDispatcher | None = None,
        spans: SpanSink | None = None,
    ) -> None:
        self.cache = cache
        self.api = api
        self.settings = settings
        self.intake = intake
        self.admissions = admissions
        self.reports = reports
        self.metrics = metrics
        self.callbacks = callbacks
        self.spans = spans  # None (no OTLP endpoint): no span is even worked out

    async def reconcile(self, key: Key, now: dt.datetime) -> float | None:
        """Bring one task a step closer to done; return seconds until it wants another look."""
        raw = self.cache.tasks.get(key)
        if raw is None:
            return None
        try:
            task = AsyncTask.model_validate(raw)
        except ValidationError as exc:  # only with a CRD older than this operator: nothing to do safely
            logger.error("AsyncTask %s/%s does not parse, skipped: %s", key[0], key[1], exc)
            return None
        await self._confirm_missing_job(task)
        await self._fetch_lagging_pods(task)
        observed = self._observe(task, now)
        decision = decide(observed, self.settings.core)
        try:
            decision = await self.apply(task, observed, decision)
        except BaseException:  # a slot reserved for a Job that was not created goes back to the queue
            next_attempt = (task.status.attempt or 0) + 1
            if self.admissions.is_reserved(key) and next_attempt not in self.cache.jobs_of(task.metadata.uid):
                self.admissions.release(key)
            raise
        if self.admissions.is_reserved(key) and not _started(decision):
            self.admissions.release(key)  # reserved, and then not taken (refused, cancelled, past its deadline)
        return decision.requeue_after

    def _admission(self, task: AsyncTask, tasktype: TaskType | None) -> Admission:
        """The queue's answer as it stands, and how to ask it for a slot when the task is ready to start."""
        key = (task.metadata.namespace, task.metadata.name)
        if self.admissions.is_reserved(key):
            return self._granted(key)
        queue = (key[0], effective_queue(task, tasktype, self.settings.core))
        labels = task.metadata.labels

        def answer(claim: KeyClaim | None) -> Admission:
            waiting = self.admissions.why(key, queue)
            wait = None
            if waiting.key is not None and waiting.limit is not None and not waiting.refused:
                wait = KeyWait(key=waiting.key, limit=waiting.limit, holders=list(waiting.holders[:HOLDERS_SHOWN]))
            spec = self.admissions.ledger.spec_of(queue)
            group = group_of(spec.fairness if spec else None, claim, labels)
            given = self.admissions.turn_of(key)  # admitted, its Job seen before its Running write landed
            fairness = FairTurn(group=str(given[0]), turn=given[1]) if given else None
            return Admission(
                granted=False,
                reason=waiting.reason,
                message=waiting.message,
                key_wait=wait,
                refused=waiting.refused,
                fairness=fairness or (FairTurn(group=group) if group is not None else None),
            )

        def request(effective: EffectiveSpec) -> Admission:
            priority = effective_priority(task, tasktype)
            claim = claim_of(effective.concurrency)
            created = task.metadata.creation_timestamp or ""
            if self.admissions.request(key, queue, priority, created, claim, labels):
                return self._granted(key)
            return answer(claim)

        return dataclasses.replace(answer(None), request=request)

    def _granted(self, key: Key) -> Admission:
        turn = self.admissions.turn_of(key)
        return Admission(granted=True, fairness=FairTurn(group=str(turn[0]), turn=turn[1]) if turn else None)

    def _observe(self, task: AsyncTask, now: dt.datetime) -> Observed:
        ns = task.metadata.namespace
        tasktype = self.cache.tasktypes.get((ns, task.spec.type))
        jobs = self.cache.jobs_of(task.metadata.uid)
        pods: dict[str, list[PodView]] = {j.name: self.cache.pods_of(ns, j.name) for j in jobs.values()}
        return Observed(
            task=task,
            tasktype=tasktype,
            types_synced="tasktypes" in self.cache.synced,
            jobs=jobs,
            pods=pods,
            now=now,
            jitter_sample=random.random(),
            admission=self._admission(task, tasktype),
            reported=self.reports.get((ns, task.metadata.name)),
            superseded_by=self.admissions.superseded_by((ns, task.metadata.name)),
            callback_outcome=self.callbacks.outcome(
                (ns, task.metadata.name), task.status.callback.id if task.status.callback else None
            )
            if self.callbacks
            else None,
        )

    async def _confirm_missing_job(self, task: AsyncTask) -> None:
        """A running attempt whose Job is not in the cache: ask the API server before calling it deleted."""
        if task.phase != "Running" or not task.status.attempt:
            return
        if task.status.attempt in self.cache.jobs_of(task.metadata.uid):
            return
        name = job_name(task.metadata.name, task.status.attempt)
        try:
            self.cache.put_job(await self.api.get(JOBS, task.metadata.namespace, name))
        except NotFound:
            pass

    async def _fetch_lagging_pods(self, task: AsyncTask) -> None:
        """A failed Job whose pod the pod watch has not delivered yet: read the pods once.

        Jobs and pods arrive on separate watches. Deciding from the Job alone would lose
        the exit code, or mistake an OOM kill for a plain failure."""
        if task.phase != "Running" or not task.status.attempt:
            return
        job = self.cache.jobs_of(task.metadata.uid).get(task.status.attempt)
        if job is None or not job.failed or job.failed_reason == "DeadlineExceeded":
            return
        pods = self.cache.pods_of(job.namespace, job.name)
        if any(c.state == "terminated" for p in pods for c in p.containers) or any(p.reason for p in pods):
            return
        selector = f"batch.kubernetes.io/job-name={job.name}"
        for pod in await self.api.list_objects(PODS, job.namespace, selector):
            self.cache.put_pod(pod)

    async def apply(self, task: AsyncTask, observed: Observed, decision: Decision) -> Decision:
        """Make the decision's writes, in the crash-safe order; the decision as carried out.

        1. the attempt's Job (a 409 adopts the existing one when it is this task's; a 422 ends
           the task with InvalidJobTemplate instead);
        2. the status, with the task's resourceVersion as a precondition (a 409 decides again on
           fresh data); once it is accepted: the decision's Events, metrics, the spans it ends, and
           report bookkeeping;
        3. deleting a Job left running, then the task itself at its TTL;
        4. handing the callback to the dispatcher (the status records the event by now).
        A crash between two of them leaves a state the next decision recognises."""
        ns, name = task.metadata.namespace, task.metadata.name
        if decision.create_job is not None:
            decision = await self._create_job(task, observed, decision)
        if decision.status is not None:
            patch = status_write(task.status.dump(), decision.status.dump(), task.metadata.resource_version)
            sent = self.cache.monotonic()
            try:
                updated = await self.api.patch(ASYNCTASKS, ns, name, patch, subresource="status")
            except Conflict as exc:  # someone changed the task since we read it: decide again on fresh data
                raise RequeueSoon(0.2, f"status write conflicted: {exc.message}") from exc
            except NotFound:
                self.intake.gone((ns, name))
                return Decision()
            if updated.get("metadata"):
                self.intake.take(updated, answer_sent_at=sent, own=True)
            _log_transition(task, decision)
            self._note_reports(task, decision, observed.now)
            if self.metrics is not None:
                for delta in decision.metrics:
                    self.metrics.record(delta)
            for note in decision.events:
                await self._post(task, event_body(task, note, observed.now))
            self._export_spans(task, decision)
        if decision.delete_job is not None:
            await self._delete_running_job(ns, decision.delete_job)
            self.intake.reobserve((ns, name))  # its Job stops: the key it held may go to the next
        if decision.delete_task:
            logger.info("AsyncTask %s/%s: TTL after finishing passed, deleting it", ns, name)
            await self.api.delete(ASYNCTASKS, ns, name, uid=task.metadata.uid)
            self.intake.gone((ns, name))  # gone: a reconcile before its DELETED event must not delete it again
        if decision.send_callback is not None and self.callbacks is not None:
            self.callbacks.submit((ns, name), decision.send_callback)  # the status records the event by now
        return decision

    async def _delete_running_job(self, ns: str, name: str) -> None:
        """Delete a Job the decision saw running, once the API server confirms it still is.

        The cache can hold an older copy of a Job than the server has (an event not yet arrived, a
        listing older than the Job's last change): a finished Job read back as running must not be
        deleted, its pods and logs with it."""
        sent = self.cache.monotonic()
        try:
            job = self.cache.put_job(await self.api.get(JOBS, ns, name), answer_to_request_at=sent)
        except NotFound:
            return
        if not job.finished and not job.deleting:
            await self.api.delete(JOBS, ns, name)
            self.cache.job_deleting((ns, name))  # until the watch says so: no second DELETE meanwhile

    async def _create_job(self, task: AsyncTask, observed: Observed, decision: Decision) -> Decision:
        assert decision.create_job is not None
        ns = task.metadata.namespace
        manifest = decision.create_job
        try:
            sent = self.cache.monotonic()
            self.cache.put_job(await self.api.create(JOBS, ns, manifest), answer_to_request_at=sent)
            return decision
        except Conflict:
            pass  # the name is the lock: it exists already; adopt it if it is ours
        except Invalid as exc:
            logger.warning("AsyncTask %s/%s: Job refused by the API server: %s", ns, task.metadata.name, exc.message)
            return refuse(
                observed,
                self.settings.core,
                "InvalidJobTemplate",
                f"the API server refused the Job built from TaskType {task.spec.type}: {exc.message}",
            )
        existing = await self.api.get(JOBS, ns, manifest["metadata"]["name"])
        view = self.cache.put_job(existing)
        if view.owner_uid != task.metadata.uid:
            raise RequeueSoon(
                2.0,
                f"Job {view.name} belongs to an earlier object of the same name; waiting for it to be deleted",
            )
        return decision

    async def _post(self, task: AsyncTask, event: Obj) -> None:
        reason = event["reason"]
        try:
            await self.api.create(EVENTS, task.metadata.namespace, event)
        except ApiError as exc:
            logger.warning(
                "Event %s on AsyncTask %s/%s not posted: %s", reason, task.metadata.namespace, task.metadata.name, exc
            )

    def _export_spans(self, task: AsyncTask, decision: Decision) -> None:
        """Hand over the spans the accepted status write ends (ADR 0020): each once, by the write that ends
        it. A trace is never worth a failed reconcile: an error here is logged and the spans dropped."""
        if self.spans is None or decision.status is None:
            return
        try:
            self.spans.export(ended_spans(task, decision.status))
        except Exception:
            logger.exception("spans of AsyncTask %s/%s not exported", task.metadata.namespace, task.metadata.name)

    def _note_reports(self, task: AsyncTask, decision: Decision, now: dt.datetime) -> None:
        assert decision.status is not None
        key = (task.metadata.namespace, task.metadata.name)
        if decision.status.phase in TERMINAL_PHASES:
            self.reports.forget(key)
            return
        progress_written = decision.status.progress != task.status.progress
        self.reports.written(key, decision.status.attempt or 0, progress_written, now)


def _started(decision: Decision) -> bool:
    running = decision.status is not None and decision.status.phase == "Running"
    return decision.create_job is not None or running or decision.held


def _log_transition(task: AsyncTask, decision: Decision) -> None:
    new = decision.status
    if new is None or new.phase == task.status.phase:
        return
    logger.info(
        "AsyncTask %s/%s: %s -> %s (%s) %s",
        task.metadata.namespace,
        task.metadata.name,
        task.phase,
        new.phase,
        new.reason,
        new.message or "",
        extra={
            "task": {
                "namespace": task.metadata.namespace,
                "name": task.metadata.name,
                "uid": task.metadata.uid,
                "type": task.spec.type,
                "attempt": new.attempt,
                "phase": new.phase,
            }
        },
    )
