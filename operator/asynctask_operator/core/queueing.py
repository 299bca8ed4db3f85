"""Admission through TaskQueues: who runs next, and when (SPEC 2.2).

:class:`AdmissionLedger` is the operator's in-memory ledger of every queue: which tasks
wait (a heap in :func:`admission_order`), which run, which hold a *reservation* (a
slot taken for a task whose Job is being created), and each queue's rate limit.
It does no I/O and takes the time as an argument, so it is tested like the rest of
the core. Kueue's rule holds: the ledger reserves a slot first ("assume"), the
reconciler then writes, and releases the slot if the write fails — so two tasks
never both take the last slot, whatever the order events arrive in.

The ledger is rebuilt from the objects after a restart: Running tasks hold their
slots as soon as the cache is synced, and nothing is reserved twice.
"""

from __future__ import annotations

import dataclasses
import heapq
import math
from collections.abc import Hashable, Iterable
from typing import Generic, TypeVar

from asynctask_operator.core.models import TaskQueueSpec

K = TypeVar("K", bound=Hashable)
QueueKey = tuple[str, str]  # (namespace, queue name)

UNLIMITED = -1  # the concurrency of the implicit default queue when the operator sets none

QUEUED = "Queued"
QUEUE_NOT_FOUND = "QueueNotFound"
QUEUE_PAUSED = "QueuePaused"


def admission_order(priority: int, creation_timestamp: str, name: str) -> tuple[int, str, str]:
    """Sort key: highest priority first, then the oldest, then by name (a total order).

    RFC 3339 timestamps in UTC (``...Z``) sort as strings in time order.

    >>> sorted([admission_order(0, "2026-01-01T00:00:00Z", "b"), admission_order(5, "2026-01-02T00:00:00Z", "a")])[0]
    (-5, '2026-01-02T00:00:00Z', 'a')
    """
    return (-priority, creation_timestamp, name)


@dataclasses.dataclass
class TokenBucket:
    """Evenly spaced admissions: one every ``60 / per_minute`` seconds, no bursts.

    A burst of 1,000 tasks against 60/min starts one per second.
    """

    per_minute: int
    last_start: float | None = None  # when the last token was taken

    @property
    def interval(self) -> float:
        return 60.0 / self.per_minute

    @property
    def next_time(self) -> float:
        """One interval (at the current rate) after the last start, so a new rate applies at once."""
        return -math.inf if self.last_start is None else self.last_start + self.interval

    def ready_at(self, now: float) -> float:
        return max(now, self.next_time)

    def take(self, now: float) -> bool:
        if now < self.next_time:
            return False
        self.last_start = now
        return True


@dataclasses.dataclass
class _Queue(Generic[K]):
    spec: TaskQueueSpec | None  # None: the queue does not exist
    heap: list[tuple[tuple[int, str, str], int, K]] = dataclasses.field(default_factory=list)
    pending: dict[K, tuple[int, str, str]] = dataclasses.field(default_factory=dict)
    running: set[K] = dataclasses.field(default_factory=set)
    reserved: set[K] = dataclasses.field(default_factory=set)
    bucket: TokenBucket | None = None
    pending_since: dict[K, float] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Waiting:
    reason: str  # Queued | QueueNotFound | QueuePaused
    message: str


@dataclasses.dataclass(frozen=True)
class QueueCounts:
    pending: int
    running: int
    oldest_pending_seconds: int
    exists: bool


class AdmissionLedger(Generic[K]):
    """Every queue's waiting, running and reserved tasks.

    ``default_concurrency`` applies to the implicit ``default`` queue of every namespace
    (``None``: unlimited) unless a TaskQueue named ``default`` exists there.
    """

    def __init__(self, default_concurrency: int | None = None, default_name: str = "default") -> None:
        self.default_concurrency = default_concurrency
        self.default_name = default_name
        self._queues: dict[QueueKey, _Queue[K]] = {}
        self._where: dict[K, QueueKey] = {}  # a task's queue, while it waits, holds or runs
        self._seq = 0

    # ------------------------------------------------------------------ queues

    def _queue(self, key: QueueKey) -> _Queue[K]:
        queue = self._queues.get(key)
        if queue is None:
            queue = _Queue(spec=self._implicit(key))
            self._queues[key] = queue
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
        queue.spec = spec if spec is not None else self._implicit(key)
        per_minute = queue.spec.max_starts_per_minute if queue.spec else None
        if per_minute is None:
            queue.bucket = None
        elif queue.bucket is None or queue.bucket.per_minute != per_minute:
            queue.bucket = TokenBucket(per_minute, queue.bucket.last_start if queue.bucket else None)

    def queues(self) -> list[QueueKey]:
        return list(self._queues)

    # ------------------------------------------------------------------ tasks

    def request(self, task: K, queue_key: QueueKey, order: tuple[int, str, str], now: float) -> None:
        """The task wants to start an attempt: wait in its queue (re-ordering if already waiting)."""
        where = self._where.get(task)
        before = self._queues[where] if where is not None else None
        if where == queue_key and before is not None and before.pending.get(task) == order:
            return  # already waiting there in that place: a heap entry per call would pile up
        since = before.pending_since.get(task) if before is not None else None
        self._leave(task)
        queue = self._queue(queue_key)
        self._where[task] = queue_key
        queue.pending[task] = order
        queue.pending_since[task] = now if since is None else since  # waiting since it first asked
        self._seq += 1
        heapq.heappush(queue.heap, (order, self._seq, task))

    def running(self, task: K, queue_key: QueueKey) -> bool:
        """The task is observed Running: it holds a slot until it stops running. False: it held it already."""
        if self._where.get(task) == queue_key and task in self._queues[queue_key].running:
            return False
        if self._where.get(task) != queue_key:
            self._leave(task)
        queue = self._queue(queue_key)
        self._where[task] = queue_key
        queue.pending.pop(task, None)
        queue.pending_since.pop(task, None)
        queue.reserved.discard(task)
        queue.running.add(task)
        return True

    def not_running(self, task: K) -> QueueKey | None:
        """The task is observed not Running (say, Pending again after a manual retry): free its slot."""
        where = self._where.get(task)
        if where is None or task not in self._queues[where].running:
            return None
        self._leave(task)
        return where

    def forget(self, task: K) -> QueueKey | None:
        """The task no longer waits, holds or runs (finished, retrying, deleted, refused)."""
        where = self._where.get(task)
        self._leave(task)
        return where

    release = forget  # a reservation whose write failed gives its slot back the same way

    def _leave(self, task: K) -> None:
        where = self._where.pop(task, None)
        if where is None:
            return
        queue = self._queues[where]
        queue.pending.pop(task, None)  # its heap entry is skipped lazily
        queue.pending_since.pop(task, None)
        queue.running.discard(task)
        queue.reserved.discard(task)

    def waiting_tasks(self, queue_key: QueueKey) -> list[K]:
        queue = self._queues.get(queue_key)
        return list(queue.pending) if queue else []

    def is_reserved(self, task: K) -> bool:
        where = self._where.get(task)
        return where is not None and task in self._queues[where].reserved

    # ------------------------------------------------------------------ admitting

    def waiting(self, queue_key: QueueKey) -> Waiting:
        """Why a task in this queue is not admitted yet."""
        queue = self._queue(queue_key)
        ns, name = queue_key
        if queue.spec is None:
            return Waiting(
                QUEUE_NOT_FOUND,
                f"TaskQueue {name!r} does not exist in namespace {ns}; the task is admitted as soon as it is created",
            )
        if queue.spec.paused:
            return Waiting(QUEUE_PAUSED, f"TaskQueue {name!r} is paused")
        # Stable text, no live counts: the status is written when the reason changes, and a
        # count frozen at that moment would mislead (`kubectl get tq` shows the live ones).
        limit = queue.spec.concurrency
        shown = "unlimited" if limit == UNLIMITED else str(limit)
        return Waiting(QUEUED, f"waiting for a free slot in TaskQueue {name!r} (concurrency {shown})")

    def admit(self, queue_key: QueueKey, now: float) -> tuple[list[K], float | None]:
        """Reserve slots for the best waiting tasks; return them and when to admit again (rate limit)."""
        queue = self._queue(queue_key)
        spec = queue.spec
        if spec is None or spec.paused:
            return [], None
        admitted: list[K] = []
        while queue.pending:
            limit = spec.concurrency
            if limit != UNLIMITED and len(queue.running) + len(queue.reserved) >= limit:
                break
            if queue.bucket is not None and not queue.bucket.take(now):
                return admitted, queue.bucket.ready_at(now)
            task = self._pop(queue)
            if task is None:
                break
            queue.reserved.add(task)
            queue.pending_since.pop(task, None)
            admitted.append(task)
        return admitted, None

    def _pop(self, queue: _Queue[K]) -> K | None:
        while queue.heap:
            order, _, task = heapq.heappop(queue.heap)
            if queue.pending.get(task) == order:
                del queue.pending[task]
                return task
        return None

    def counts(self, queue_key: QueueKey, now: float) -> QueueCounts:
        queue = self._queue(queue_key)
        oldest = min(queue.pending_since.values(), default=now)
        return QueueCounts(
            pending=len(queue.pending),
            running=len(queue.running) + len(queue.reserved),
            oldest_pending_seconds=int(max(now - oldest, 0)),
            exists=queue.spec is not None,
        )


@dataclasses.dataclass(frozen=True)
class WaitingTask:
    """A task waiting for a slot, as a reader of the objects sees it (the gateway, the CLI)."""

    name: str
    queue: str
    priority: int
    creation_timestamp: str


def queue_positions(waiting: Iterable[WaitingTask]) -> dict[tuple[str, str], int]:
    """Each waiting task's place in its queue's admission order, from 1: ``{(queue, name): position}``.

    The order is the ledger's (:func:`admission_order`): the first is admitted next.

    >>> queue_positions([WaitingTask("a", "q", 0, "2026-01-02T00:00:00Z"), WaitingTask("b", "q", 5, "2026-01-03T00:00:00Z")])
    {('q', 'b'): 1, ('q', 'a'): 2}
    """
    by_queue: dict[str, list[WaitingTask]] = {}
    for task in waiting:
        by_queue.setdefault(task.queue, []).append(task)
    positions: dict[tuple[str, str], int] = {}
    for queue, tasks in by_queue.items():
        tasks.sort(key=lambda t: admission_order(t.priority, t.creation_timestamp, t.name))
        for place, task in enumerate(tasks, 1):
            positions[queue, task.name] = place
    return positions
