"""The one admission loop: TaskQueue state in, reserved slots out.

Everything here runs on the operator's single event loop, so a reservation made in
:meth:`Admissions.admit` is visible to the next reconcile before any other task can
take the same slot. The ledger itself (:class:`~asynctask_operator.core.queueing.AdmissionLedger`)
is pure; this module feeds it from the cache and turns its answers into work:
reserved tasks are queued for reconcile (which creates their Jobs), a queue limited
by rate is admitted from again when its next token is due, and every change of a queue's
figures is told to ``changed`` (the TaskQueue reconcile, controllers/taskqueues.py, writes
its status from them).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from asynctask_operator.controllers.cache import Cache, Key
from asynctask_operator.core.models import IDLE_PHASES, TaskQueue
from asynctask_operator.core.queueing import AdmissionLedger, QueueKey, Waiting, admission_order

logger = logging.getLogger(__name__)


class Admissions:
    def __init__(
        self,
        default_concurrency: int | None,
        wake_task: Callable[[Key], None],
        wake_queue_at: Callable[[QueueKey, float], None],
        now: Callable[[], float] = time.time,
        cache: Cache | None = None,
        changed: Callable[[QueueKey], None] = lambda key: None,
    ) -> None:
        """``changed(queue)``: the queue's figures (waiting, holding) or its spec moved."""
        self.ledger: AdmissionLedger[Key] = AdmissionLedger(default_concurrency)
        self.objects: dict[QueueKey, TaskQueue] = {}
        self._wake_task = wake_task
        self._wake_queue_at = wake_queue_at
        self._now = now
        self._changed = changed
        self.cache = cache or Cache()
        """Where the manager stamps each TaskQueue watch event's arrival (:meth:`Cache.event_arrived`):
        what a status write's answer is held against."""

    # -- fed by the cache
    def on_queue(self, event_type: str | None, obj: dict[str, Any], answer_sent_at: float | None = None) -> list[Key]:
        """A TaskQueue changed: update the ledger; return the tasks whose waiting reason may change.

        ``answer_sent_at``: ``obj`` answers a status write sent then; taken only if no watch event came
        since. An answer read after the event of a later change (the user pausing the queue) would
        take the ledger back to the spec before it, and no event would come to set it right."""
        meta = obj.get("metadata") or {}
        key: QueueKey = (str(meta.get("namespace") or ""), str(meta.get("name") or ""))
        if answer_sent_at is not None and self.cache.newer_event("taskqueue", key, answer_sent_at):
            return []
        queue: TaskQueue | None = None
        if event_type != "DELETED":
            try:
                queue = TaskQueue.model_validate(obj)
            except ValidationError as exc:
                logger.error("TaskQueue %s/%s does not parse, treated as absent: %s", *key, exc)
        old = self.objects.pop(key, None)
        if queue is not None:
            self.objects[key] = queue
        if old is not None and queue is not None and old.spec == queue.spec:
            return []  # only its status changed (likely our own write)
        self.ledger.set_queue(key, queue.spec if queue else None)
        waiting = self.ledger.waiting_tasks(key)
        self.admit(key)
        self._changed(key)  # its condition follows the spec
        return waiting

    def observe_task(self, task: Key, obj: dict[str, Any], queue: Callable[[], str]) -> None:
        """Keep the ledger in step with what a task is (called on every cache update of a task).
        ``queue`` resolves the task's queue (:func:`~asynctask_operator.core.effective.resolve_queue`)
        when it is running."""
        phase = (obj.get("status") or {}).get("phase") or "Pending"
        if phase in IDLE_PHASES:
            self.task_idle(task)
        elif phase == "Running":
            held = (task[0], queue())
            if self.ledger.running(task, held):
                self._changed(held)
        else:
            where = self.ledger.not_running(task)
            if where is not None:
                self.admit(where)
                self._changed(where)

    def task_idle(self, task: Key) -> None:
        """The task neither waits nor runs now (finished, retrying, deleted): its slot, if any, frees."""
        where = self.ledger.forget(task)
        if where is not None:
            self.admit(where)
            self._changed(where)

    # -- used by the reconciler
    def is_reserved(self, task: Key) -> bool:
        return self.ledger.is_reserved(task)

    def waiting(self, queue: QueueKey) -> Waiting:
        return self.ledger.waiting(queue)

    def request(self, task: Key, queue: QueueKey, priority: int, created: str) -> bool:
        """Put the task in line and admit from its queue; ``True`` if it got a slot right away."""
        self.ledger.request(task, queue, admission_order(priority, created, task[1]), self._now())
        self._changed(queue)
        return task in self.admit(queue, wake_self=task)

    def release(self, task: Key) -> None:
        """A reservation not used (its write failed, or the task changed its mind)."""
        self.task_idle(task)

    def admit(self, queue: QueueKey, wake_self: Key | None = None) -> list[Key]:
        admitted, retry_at = self.ledger.admit(queue, self._now())
        for task in admitted:
            if task != wake_self:
                self._wake_task(task)
        if retry_at is not None:
            self._wake_queue_at(queue, retry_at)
        if admitted:
            logger.debug("queue %s/%s admitted %d task(s)", *queue, len(admitted))
            self._changed(queue)
        return admitted
