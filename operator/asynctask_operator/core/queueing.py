"""Admission through TaskQueues: who runs next, and when (docs/concepts.md#queues). Pure: it decides, it writes nothing.

:class:`AdmissionLedger` is the operator's ledger of every queue: its line of waiting tasks (in the
order of core/fairness.py: priority, then round-robin across groups when the queue is fair, then
age), the tasks that run, the tasks holding a *reservation* (a slot taken for a task whose Job is
being created), its rate limit, and every concurrency key (core/keys.py). It takes the time as an
argument. Kueue's rule holds: the ledger reserves a slot and the key first ("assume"), the reconciler
then writes, and releases them if the write fails — so two tasks never both take the last slot or a
mutex, whatever the order events arrive in.

The ledger is rebuilt from the objects after a restart: every copy of a task the operator takes in is
told to :meth:`AdmissionLedger.observe`, which reads from it alone whether the task holds a slot (phase
``Running``, or a Job of it still running), its key (the same, or ``Retrying``), its membership of a
key (unfinished) and its fairness turn. Only the reservations live in memory, for one reconcile.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable, Mapping
from typing import Generic, TypeVar

from asynctask_operator.core.concurrency import CANCEL_NEWEST, KeyClaim
from asynctask_operator.core.fairness import Group, Line, Order, admission_order
from asynctask_operator.core.keys import KeyLedger, KeyRef, Newness
from asynctask_operator.core.models import IDLE_PHASES, TERMINAL_PHASES, TaskQueueSpec
from asynctask_operator.core.positions import WaitingTask, queue_positions
from asynctask_operator.core.ratelimit import TokenBucket
from asynctask_operator.core.turns import Turns
from asynctask_operator.core.waiting import (
    KEY_BUSY,
    QUEUE_NOT_FOUND,
    QUEUE_PAUSED,
    QUEUED,
    WAITING_FOR_KEY,
    QueueCounts,
    Waiting,
    group_of,
    key_busy,
    queue_waiting,
    waiting_for_key,
)

__all__ = [
    "KEY_BUSY",
    "QUEUED",
    "QUEUE_NOT_FOUND",
    "QUEUE_PAUSED",
    "UNLIMITED",
    "WAITING_FOR_KEY",
    "AdmissionLedger",
    "QueueCounts",
    "QueueKey",
    "Seen",
    "TokenBucket",
    "Waiting",
    "WaitingTask",
    "admission_order",
    "queue_positions",
]

K = TypeVar("K", bound=Hashable)
QueueKey = tuple[str, str]  # (namespace, queue name)
UNLIMITED = -1  # the concurrency of the implicit default queue when the operator sets none


@dataclasses.dataclass(frozen=True)
class Seen:
    """What one copy of a task says, as the ledger reads it."""

    queue: QueueKey
    phase: str = "Pending"
    live_job: bool = False  # a Job of it has not finished and is not being deleted
    claim: KeyClaim | None = None
    newness: Newness = ("", "")
    turn: tuple[str, int] | None = None  # status.fairness, once admitted in a fair queue


@dataclasses.dataclass
class _Wait:
    order: Order
    claim: KeyClaim | None
    labels: Mapping[str, str]
    since: float  # when it first asked (the backlog's age)


@dataclasses.dataclass
class _Queue(Generic[K]):
    spec: TaskQueueSpec | None  # None: the queue does not exist
    line: Line[K] = dataclasses.field(default_factory=Line)
    pending: dict[K, _Wait] = dataclasses.field(default_factory=dict)  # in the line, or parked for a key
    running: set[K] = dataclasses.field(default_factory=set)
    reserved: set[K] = dataclasses.field(default_factory=set)
    bucket: TokenBucket | None = None
    refused: set[K] = dataclasses.field(default_factory=set)  # CancelNewest, its key found full


class AdmissionLedger(Generic[K]):
    """Every queue's waiting, running and reserved tasks, and every key's holders.

    ``default_concurrency`` applies to the implicit ``default`` queue of every namespace
    (``None``: unlimited) unless a TaskQueue named ``default`` exists there.
    """

    def __init__(self, default_concurrency: int | None = None, default_name: str = "default") -> None:
        self.default_concurrency = default_concurrency
        self.default_name = default_name
        self.keys: KeyLedger[K] = KeyLedger()
        self._queues: dict[QueueKey, _Queue[K]] = {}
        self._where: dict[K, QueueKey] = {}  # a task's queue, while it waits, holds a slot or runs
        self.turns: Turns[K, QueueKey] = Turns(lambda q: self._queue(q).line)
        self.changed: set[QueueKey] = set()
        """Queues whose figures moved since the caller last took them: to admit from, and to report."""

    # ------------------------------------------------------------------ queues

    def _queue(self, key: QueueKey) -> _Queue[K]:
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = _Queue(spec=self._implicit(key))
        return queue

    def _implicit(self, key: QueueKey) -> TaskQueueSpec | None:
        if key[1] != self.default_name:
            return None
        if self.default_concurrency is None:
            return TaskQueueSpec.model_construct(concurrency=UNLIMITED)
        return TaskQueueSpec(concurrency=self.default_concurrency)

    def set_queue(self, key: QueueKey, spec: TaskQueueSpec | None) -> None:
        """A TaskQueue appeared, changed or (``None``) went away."""
        queue = self._queue(key)
        before = queue.spec.fairness if queue.spec else None
        queue.spec = spec if spec is not None else self._implicit(key)
        per_minute = queue.spec.max_starts_per_minute if queue.spec else None
        if per_minute is None:
            queue.bucket = None
        elif queue.bucket is None or queue.bucket.per_minute != per_minute:
            queue.bucket = TokenBucket(per_minute, queue.bucket.last_start if queue.bucket else None)
        if (queue.spec.fairness if queue.spec else None) != before:
            self._regroup(key, queue)
        self.changed.add(key)

    def _regroup(self, key: QueueKey, queue: _Queue[K]) -> None:
        """The groups are another rule's now: the line is built again (the turns kept), parked tasks included."""
        fairness = queue.spec.fairness if queue.spec else None
        line: Line[K] = Line(fair=fairness is not None)
        line.turns = queue.line.turns
        queue.line = line
        for task, wait in queue.pending.items():
            self.keys.unpark(task)
            line.add(task, wait.order, group_of(fairness, wait.claim, wait.labels))

    def queues(self) -> list[QueueKey]:
        return list(self._queues)

    def spec_of(self, key: QueueKey) -> TaskQueueSpec | None:
        return self._queue(key).spec

    # ------------------------------------------------------------------ what the objects say

    def observe(self, task: K, seen: Seen) -> None:
        """One copy of a task, level-based: its slot, its key, its membership and its turn, from it alone."""
        phase = seen.phase
        ref: KeyRef | None = (seen.queue[0], seen.claim.key) if seen.claim else None
        holds_slot = phase == "Running" or seen.live_job
        if holds_slot:
            self.running(task, seen.queue)
        elif phase in IDLE_PHASES:
            self._leave(task)
        else:
            self.not_running(task)
        if ref is not None and (holds_slot or phase == "Retrying"):
            if self.keys.holds(task) not in (None, ref):
                self._free_key(self.keys.unhold(task))
            self.keys.hold(task, ref)
        else:
            self._free_key(self.keys.unhold(task, "any" if phase in IDLE_PHASES else "held"))
        if ref is not None and seen.claim is not None and (phase not in TERMINAL_PHASES or seen.live_job):
            self.keys.claim(task, ref, seen.claim, seen.newness)
        else:
            self.keys.unclaim(task)
        self.turns.seen(task, seen.queue, seen.turn)

    def gone(self, task: K) -> None:
        """The task is deleted: it waits, holds and records nothing any more."""
        self._leave(task)
        self._free_key(self.keys.unhold(task))
        self.keys.unclaim(task)
        self.turns.gone(task)

    def hold_key(self, holder: K, ref: KeyRef, held: bool) -> None:
        """A holder that is no task any more: the running Job of a task deleted under it."""
        if held:
            self.keys.hold(holder, ref)
        else:
            self._free_key(self.keys.unhold(holder))

    # ------------------------------------------------------------------ slots

    def request(
        self,
        task: K,
        queue_key: QueueKey,
        order: Order,
        now: float,
        claim: KeyClaim | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> None:
        """The task wants to start an attempt: wait in its queue's line (re-placed if already waiting).

        A ``CancelNewest`` task whose key is full is not put in line: :meth:`why` says it ends."""
        where = self._where.get(task)
        before = self._queues[where].pending.get(task) if where is not None else None
        queue = self._queue(queue_key)
        ref = (queue_key[0], claim.key) if claim else None
        if where != queue_key or before is None or (before.order, before.claim) != (order, claim):
            self._leave(task)
            wait = _Wait(order, claim, labels or {}, before.since if before is not None else now)
            self._where[task] = queue_key
            queue.pending[task] = wait
            self.changed.add(queue_key)
            fairness = queue.spec.fairness if queue.spec else None
            queue.line.add(task, order, group_of(fairness, claim, wait.labels))
        if (
            ref is not None
            and claim is not None
            and claim.policy == CANCEL_NEWEST
            and task not in queue.refused
            and not self.keys.room(task, ref, claim.limit)
        ):
            queue.refused.add(task)  # it ends at once: its reconcile reads why()
            queue.line.remove(task)
            self.keys.unpark(task)

    def running(self, task: K, queue_key: QueueKey) -> bool:
        """The task is observed holding a slot (Running, or its Job runs). False: it held it already."""
        if self._where.get(task) == queue_key and task in self._queues[queue_key].running:
            return False
        if self._where.get(task) != queue_key:
            self._leave(task)
        queue = self._queue(queue_key)
        self._where[task] = queue_key
        self._unwait(queue, task)
        queue.reserved.discard(task)
        queue.running.add(task)
        self.changed.add(queue_key)
        return True

    def not_running(self, task: K) -> QueueKey | None:
        """The task is observed not running (``Pending`` again after a manual retry): free its slot."""
        where = self._where.get(task)
        if where is None or task not in self._queues[where].running:
            return None
        self._leave(task)
        return where

    def forget(self, task: K) -> QueueKey | None:
        """The task no longer waits, holds a slot or runs (finished, retrying, refused)."""
        where = self._where.get(task)
        self._leave(task)
        return where

    def release(self, task: K) -> QueueKey | None:
        """A reservation whose write failed (or that was not taken): the slot, the key and the turn go back."""
        where = self._where.get(task)
        self.turns.given_back(task)
        self._free_key(self.keys.unhold(task, "reserved"))
        self._leave(task)
        return where

    def _unwait(self, queue: _Queue[K], task: K) -> None:
        queue.pending.pop(task, None)
        queue.line.remove(task)
        queue.refused.discard(task)
        self.keys.unpark(task)

    def _leave(self, task: K) -> None:
        where = self._where.pop(task, None)
        if where is None:
            return
        queue = self._queues[where]
        self._unwait(queue, task)
        queue.running.discard(task)
        queue.reserved.discard(task)
        self.changed.add(where)

    def _free_key(self, ref: KeyRef | None) -> None:
        """A key has room again: its best waiters go back into their lines (core/keys.py)."""
        if ref is None:
            return
        for task, group, order in self.keys.release(ref):
            where = self._where.get(task)
            if where is not None and task in self._queues[where].pending:
                self._queues[where].line.add(task, order, group)
                self.changed.add(where)

    def waiting_tasks(self, queue_key: QueueKey) -> list[K]:
        queue = self._queues.get(queue_key)
        return list(queue.pending) if queue else []

    def is_reserved(self, task: K) -> bool:
        where = self._where.get(task)
        return where is not None and task in self._queues[where].reserved

    def level_state(self) -> dict[str, object]:
        """What the ledger read from the objects alone (slots held, keys held, key members, turns), for
        each queue and key: the same whether the objects came one change at a time or in one listing."""
        return {
            "running": {q: frozenset(queue.running) for q, queue in self._queues.items() if queue.running},
            "keys": self.keys.level_state(),
            "turns": {q: turns for q, queue in self._queues.items() if (turns := queue.line.turns.recorded())},
        }

    def turn_of(self, task: K) -> tuple[Group, int] | None:
        return self.turns.of(task)

    # ------------------------------------------------------------------ admitting

    def waiting(self, queue_key: QueueKey) -> Waiting:
        """Why a task in this queue is not admitted yet, as far as the queue goes."""
        return queue_waiting(queue_key, self._queue(queue_key).spec)

    def why(self, task: K, queue_key: QueueKey) -> Waiting:
        """Why this task is not admitted yet: its queue, else its key (naming the holders), else a slot."""
        queue = self._queue(queue_key)
        said = self.waiting(queue_key)
        wait = queue.pending.get(task)
        if said.reason != QUEUED or wait is None or wait.claim is None:
            return said
        ref = (queue_key[0], wait.claim.key)
        if task in queue.refused:
            return key_busy(ref, wait.claim, self.keys.holders(ref))
        if not self.keys.room(task, ref, wait.claim.limit):
            return waiting_for_key(ref, wait.claim, self.keys.holders(ref))
        return said

    def superseded_by(self, task: K) -> K | None:
        return self.keys.superseded_by(task)

    def admit(self, queue_key: QueueKey, now: float) -> tuple[list[K], float | None]:
        """Reserve slots (and keys) for the next waiting tasks in line order; return them, and when to
        admit again (rate limit). A task whose key is full is passed over: it waits for the key."""
        queue = self._queue(queue_key)
        spec = queue.spec
        if spec is None or spec.paused:
            return [], None
        admitted: list[K] = []
        while queue.line:
            limit = spec.concurrency
            if limit != UNLIMITED and len(queue.running) + len(queue.reserved) >= limit:
                break
            taken = queue.line.pop()
            if taken is None:
                break
            task, order, group = taken
            claim = queue.pending[task].claim
            ref = (queue_key[0], claim.key) if claim else None
            if ref is not None and claim is not None and not self.keys.room(task, ref, claim.limit):
                if claim.policy == CANCEL_NEWEST:
                    queue.refused.add(task)
                    self.keys.woken.append(task)  # it ends now: its reconcile must look
                else:
                    self.keys.park(task, ref, claim.limit, group, order)
                continue
            if queue.bucket is not None and not queue.bucket.take(now):
                queue.line.add(task, order, group)
                if admitted:
                    self.changed.add(queue_key)
                return admitted, queue.bucket.ready_at(now)
            del queue.pending[task]
            queue.reserved.add(task)
            if ref is not None:
                self.keys.reserve(task, ref)
            if queue.line.took(task, group) is not None:
                self.turns.given(task, queue_key)
            admitted.append(task)
        if admitted:
            self.changed.add(queue_key)
        return admitted, None

    def counts(self, queue_key: QueueKey, now: float) -> QueueCounts:
        queue = self._queue(queue_key)
        oldest = min((w.since for w in queue.pending.values()), default=now)
        blocked = sum(
            1
            for task, w in queue.pending.items()
            if w.claim is not None and not self.keys.room(task, (queue_key[0], w.claim.key), w.claim.limit)
        )
        return QueueCounts(
            pending=len(queue.pending),
            running=len(queue.running) + len(queue.reserved),
            oldest_pending_seconds=int(max(now - oldest, 0)),
            exists=queue.spec is not None,
            waiting_for_key=blocked,
            keys_held=len({ref for t in queue.running | queue.reserved if (ref := self.keys.holds(t)) is not None}),
        )

    def busiest(self, queue_key: QueueKey, top: int) -> list[tuple[str, int, int]]:
        """The keys of this queue's tasks with the most of them waiting: ``(key, holding, waiting)``."""
        queue = self._queue(queue_key)
        waiting: dict[str, int] = {}
        holding: dict[str, int] = {}
        for w in queue.pending.values():
            if w.claim is not None:
                waiting[w.claim.key] = waiting.get(w.claim.key, 0) + 1
        for task in queue.running | queue.reserved:
            ref = self.keys.holds(task)
            if ref is not None:
                holding[ref[1]] = holding.get(ref[1], 0) + 1
        ranked = sorted(set(waiting) | set(holding), key=lambda k: (-waiting.get(k, 0), -holding.get(k, 0), k))
        return [(k, holding.get(k, 0), waiting.get(k, 0)) for k in ranked[:top]]
