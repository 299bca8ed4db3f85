"""The one admission loop: TaskQueue state in, reserved slots and keys out.

Everything here runs on the operator's single event loop, so a reservation made in
:meth:`Admissions.admit` is visible to the next reconcile before any other task can
take the same slot or key. The ledger itself (:class:`~asynctask_operator.core.queueing.AdmissionLedger`)
is pure; this module feeds it from the cache and turns its answers into work, after every
change (:meth:`Admissions._settle`): every queue whose figures moved is admitted from (reserved
tasks are queued for reconcile, which creates their Jobs) and told to ``changed`` (the TaskQueue
reconcile, controllers/taskqueues.py, writes its status from them); a queue limited by rate is
admitted from again when its next token is due; a task whose answer changed (superseded by a newer
task of its key, or its key found busy under ``CancelNewest``) is queued for reconcile.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping

from pydantic import ValidationError

from asynctask_operator.controllers.cache import Cache
from asynctask_operator.core.concurrency import KeyClaim
from asynctask_operator.core.fairness import Group
from asynctask_operator.core.keys import KeyRef
from asynctask_operator.core.models import TaskQueue
from asynctask_operator.core.queueing import AdmissionLedger, QueueKey, Seen, Waiting, admission_order
from asynctask_operator.core.wire import Key, Obj

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
    def on_queue(self, event_type: str | None, obj: Obj, answer_sent_at: float | None = None) -> list[Key]:
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
        self._settle()
        return waiting

    def observe_task(self, task: Key, seen: Seen) -> None:
        """Keep the ledger in step with what a copy of a task says (every copy the cache takes in)."""
        self.ledger.observe(task, seen)
        self._settle()

    def task_gone(self, task: Key) -> None:
        """The task is deleted: its slot, its key and its turn go."""
        self.ledger.gone(task)
        self._settle()

    def hold_key(self, holder: Key, ref: KeyRef, held: bool) -> None:
        """A Job whose task is deleted holds (or, ended, no longer holds) its key."""
        self.ledger.hold_key(holder, ref, held)
        self._settle()

    # -- used by the reconciler
    def is_reserved(self, task: Key) -> bool:
        return self.ledger.is_reserved(task)

    def waiting(self, queue: QueueKey) -> Waiting:
        return self.ledger.waiting(queue)

    def why(self, task: Key, queue: QueueKey) -> Waiting:
        return self.ledger.why(task, queue)

    def turn_of(self, task: Key) -> tuple[Group, int] | None:
        return self.ledger.turn_of(task)

    def superseded_by(self, task: Key) -> str | None:
        newer = self.ledger.superseded_by(task)
        return newer[1] if newer is not None else None

    def request(
        self,
        task: Key,
        queue: QueueKey,
        priority: int,
        created: str,
        claim: KeyClaim | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> bool:
        """Put the task in line and admit from its queue; ``True`` if it got a slot right away."""
        order = admission_order(priority, created, task[1])
        self.ledger.request(task, queue, order, self._now(), claim, labels)
        return task in self._settle(wake_self=task)

    def release(self, task: Key) -> None:
        """A reservation not used (its write failed, or the task changed its mind)."""
        self.ledger.release(task)
        self._settle()

    def admit(self, queue: QueueKey, wake_self: Key | None = None) -> list[Key]:
        admitted, retry_at = self.ledger.admit(queue, self._now())
        for task in admitted:
            if task != wake_self:
                self._wake_task(task)
        if retry_at is not None:
            self._wake_queue_at(queue, retry_at)
        if admitted:
            logger.debug("queue %s/%s admitted %d task(s)", *queue, len(admitted))
        return admitted

    def _settle(self, wake_self: Key | None = None) -> set[Key]:
        """Admit from every queue whose figures moved (slots or keys freed, tasks in line), tell each to
        ``changed``, and queue the tasks whose answer changed; the tasks admitted."""
        admitted: set[Key] = set()
        told: set[QueueKey] = set()
        while self.ledger.changed:
            queue = self.ledger.changed.pop()
            admitted.update(self.admit(queue, wake_self))
            if queue not in told:
                told.add(queue)
                self._changed(queue)
        woken, self.ledger.keys.woken = self.ledger.keys.woken, []
        for task in woken:
            if task != wake_self:
                self._wake_task(task)
        return admitted
