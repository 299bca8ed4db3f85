"""Reconcile one ScheduledTask: read the cache, ask the core, apply the difference.

The decision is :func:`~asynctask_operator.core.schedule.decide_schedule`'s; this module
only writes it, in a crash-safe order: cancel (concurrencyPolicy Replace), create the
runs, write the status, delete runs beyond the history limits. A crash between two of
them leaves a state the next reconcile recognises: a run whose AsyncTask exists is
adopted, never created twice (its name is the lock, a 409 means it exists).

Fire times come from the operator's one clock: the reconcile returns the seconds until
the next fire time and the worker schedules the key then — no timer or daemon per object.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import logging
from collections.abc import Callable

from pydantic import ValidationError

from asynctask_operator.adapters.api import Kube
from asynctask_operator.adapters.kube import ASYNCTASKS, SCHEDULEDTASKS, Conflict, Invalid, NotFound
from asynctask_operator.adapters.metrics import Metrics
from asynctask_operator.controllers.cache import Cache, scheduled_owner
from asynctask_operator.controllers.intake import TaskIntake
from asynctask_operator.controllers.workqueue import RequeueSoon
from asynctask_operator.core import acts
from asynctask_operator.core.models import AsyncTask, ScheduledTask
from asynctask_operator.core.patches import status_write
from asynctask_operator.core.schedule import ScheduleDecision, ScheduleObserved, decide_schedule
from asynctask_operator.core.wire import Key

logger = logging.getLogger(__name__)


class ScheduleReconciler:
    def __init__(
        self,
        cache: Cache,
        api: Kube,
        intake: TaskIntake,
        wake: Callable[[Key], None],
        metrics: Metrics | None = None,
        archive_required: bool = False,
    ) -> None:
        self.cache = cache
        self.archive_required = archive_required  # runs beyond the history limits wait for the archive
        self.api = api
        self.intake = intake  # where the runs it creates or cancels go: that queues them for reconciling
        self.wake = wake  # queue a ScheduledTask for reconciling
        self.metrics = metrics

    # ------------------------------------------------------------------ reconciling

    async def reconcile(self, key: Key, now: dt.datetime) -> float | None:
        """Start what is due; return seconds until the next fire time."""
        raw = self.cache.scheduledtasks.get(key)
        if raw is None:
            return None
        try:
            scheduled = ScheduledTask.model_validate(raw)
        except ValidationError as exc:  # only with a CRD older than this operator
            logger.error("ScheduledTask %s/%s does not parse, skipped: %s", key[0], key[1], exc)
            return None
        observed = ScheduleObserved(
            scheduled=scheduled, children=self._runs_of(scheduled), now=now, archive_required=self.archive_required
        )
        decision = decide_schedule(observed)
        for note in decision.notes:
            logger.info("ScheduledTask %s/%s: %s", key[0], key[1], note)
        await self._cancel(scheduled, decision)
        refused = await self._create(scheduled, decision)
        if refused is not None:
            decision = decide_schedule(dataclasses.replace(observed, template_refused=refused))
        if not await self._write_status(scheduled, decision):
            return None
        await self._prune(scheduled, decision)
        if decision.wake_at is None:
            return None
        return max((decision.wake_at - now).total_seconds(), 0.05)

    def _runs_of(self, scheduled: ScheduledTask) -> list[AsyncTask]:
        runs: list[AsyncTask] = []
        for raw in self.cache.runs_of(scheduled.metadata.uid):
            try:
                runs.append(AsyncTask.model_validate(raw))
            except ValidationError:
                continue
        return runs

    async def _cancel(self, scheduled: ScheduledTask, decision: ScheduleDecision) -> None:
        ns = scheduled.metadata.namespace
        for name in decision.cancel:
            sent = self.cache.monotonic()
            try:
                answer = await self.api.patch(ASYNCTASKS, ns, name, acts.cancel_task())
            except NotFound:
                continue
            self.intake.take(answer, answer_sent_at=sent)
            logger.info(
                "ScheduledTask %s/%s: cancelled run %s (concurrencyPolicy Replace)", ns, scheduled.metadata.name, name
            )

    async def _create(self, scheduled: ScheduledTask, decision: ScheduleDecision) -> str | None:
        """Create the runs; the API server's message when it refuses one (the template is broken)."""
        ns = scheduled.metadata.namespace
        for manifest in decision.create:
            name = manifest["metadata"]["name"]
            sent = self.cache.monotonic()
            try:
                self.intake.take(await self.api.create(ASYNCTASKS, ns, manifest), answer_sent_at=sent)
                logger.info("ScheduledTask %s/%s: started run %s", ns, scheduled.metadata.name, name)
                self._count(ns, "started")
                continue
            except Conflict:
                pass  # the name is the lock: another operator, or an earlier try, created it
            except Invalid as exc:
                logger.warning(
                    "ScheduledTask %s/%s: run %s refused: %s", ns, scheduled.metadata.name, name, exc.message
                )
                self._count(ns, "refused")
                return exc.message
            sent = self.cache.monotonic()
            try:
                existing = await self.api.get(ASYNCTASKS, ns, name)
            except NotFound:
                continue  # created and deleted meanwhile: the status no longer lists it next time
            self.intake.take(existing, answer_sent_at=sent)
            owner = scheduled_owner(existing)
            if owner is None or owner[0] != scheduled.metadata.uid:
                logger.warning(
                    "ScheduledTask %s/%s: AsyncTask %s exists and is not this schedule's run; not replacing it",
                    ns,
                    scheduled.metadata.name,
                    name,
                )
        return None

    async def _write_status(self, scheduled: ScheduledTask, decision: ScheduleDecision) -> bool:
        """Write the new status (if it changed); False when the ScheduledTask is gone."""
        if decision.status is None:
            return True
        ns, name = scheduled.metadata.namespace, scheduled.metadata.name
        patch = status_write(scheduled.status.dump(), decision.status.dump(), scheduled.metadata.resource_version)
        sent = self.cache.monotonic()
        try:
            updated = await self.api.patch(SCHEDULEDTASKS, ns, name, patch, subresource="status")
        except Conflict as exc:  # changed since we read it (another operator?): decide again on fresh data
            with contextlib.suppress(NotFound):
                sent = self.cache.monotonic()
                self.cache.put_scheduledtask(await self.api.get(SCHEDULEDTASKS, ns, name), answer_to_request_at=sent)
            raise RequeueSoon(0.2, f"status write conflicted: {exc.message}") from exc
        except NotFound:
            self.cache.drop_scheduledtask((ns, name))
            return False
        if updated.get("metadata"):
            self.cache.put_scheduledtask(updated, answer_to_request_at=sent)
        before, after = scheduled.status.counts, decision.status.counts
        if after is not None:  # runs that ended, and fires not run (Forbid, missed), since the last write
            for outcome in ("succeeded", "failed", "skipped"):
                grown = getattr(after, outcome) - (getattr(before, outcome) if before is not None else 0)
                self._count(ns, outcome, grown)
        return True

    def _count(self, namespace: str, outcome: str, n: int = 1) -> None:
        if self.metrics is not None and n > 0:
            self.metrics.scheduled_runs.labels(namespace, outcome).inc(n)

    async def _prune(self, scheduled: ScheduledTask, decision: ScheduleDecision) -> None:
        ns = scheduled.metadata.namespace
        for name, uid in decision.delete:
            try:
                if not await self.api.delete(ASYNCTASKS, ns, name, uid=uid or None):
                    continue  # gone already
            except Conflict:
                continue  # a newer object of that name: not ours to delete
            logger.info("ScheduledTask %s/%s: deleted run %s (history limit)", ns, scheduled.metadata.name, name)
