"""Queue positions as a reader of the objects computes them (the gateway, the console, the plugin). Pure.

:func:`queue_positions` replays the operator's own admission (core/fairness.py's line, core/keys.py's
keys) over what the tasks of one namespace record: the waiting tasks in line, the running ones
holding their slots and keys, the turns past admissions recorded. Position 1 is the task the queue
admits next. Beyond what can start now, the future is estimated: **running tasks are taken to end
in the order they started, and every task to take as long** — so a task behind a busy key comes after
the tasks that can start before that key frees, as the operator will admit them if that holds.
Without the queues' concurrency, slots are taken to be free (only keys and order count).

Cost: O(n log n) in the tasks of the namespace, one pass.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
from collections.abc import Iterable, Mapping

from asynctask_operator.core.concurrency import KeyClaim
from asynctask_operator.core.fairness import Line, admission_order
from asynctask_operator.core.keys import KeyLedger


@dataclasses.dataclass(frozen=True, slots=True)
class WaitingTask:
    """A task as its queue's admission order sees it (read from its wire form by ``core.wire.waiting_in``):
    waiting (phase ``Pending``, the only ones given a position), holding a slot and its key
    (``Running``), holding its key between attempts (``Retrying``), or a past admission that records a
    fairness turn (any other phase)."""

    name: str
    queue: str
    priority: int
    creation_timestamp: str
    phase: str = "Pending"
    key: str | None = None  # its concurrency key, scoped to the namespace
    limit: int = 1
    group: str | None = None  # status.fairness.group: its group in a fair queue (written while it waits)
    turn: int | None = None  # status.fairness.turn: recorded at admission in a fair queue
    started: str = ""  # when its current attempt started (of a holder)

    @property
    def waits(self) -> bool:
        return self.phase == "Pending"


def queue_positions(
    tasks: Iterable[WaitingTask], concurrency: Mapping[str, int] | None = None
) -> dict[tuple[str, str], int]:
    """Each waiting task's place in its queue's admission order, from 1: ``{(queue, name): position}``.

    ``tasks``: those of one namespace (keys are the namespace's); ``concurrency``: each queue's
    ``spec.concurrency`` where known. See the module docstring for what is estimated.

    >>> queue_positions([WaitingTask("a", "q", 0, "2026-01-02T00:00:00Z"), WaitingTask("b", "q", 5, "2026-01-03T00:00:00Z")])
    {('q', 'b'): 1, ('q', 'a'): 2}
    """
    listed = list(tasks)
    if all(t.key is None and t.group is None for t in listed):
        return _sorted(listed)  # no key, no fairness: the line is the admission order itself
    return _Replay(listed, concurrency or {}).run()


def _sorted(tasks: list[WaitingTask]) -> dict[tuple[str, str], int]:
    by_queue: dict[str, list[WaitingTask]] = {}
    for task in tasks:
        if task.waits:
            by_queue.setdefault(task.queue, []).append(task)
    positions: dict[tuple[str, str], int] = {}
    for queue, waiting in by_queue.items():
        waiting.sort(key=lambda t: admission_order(t.priority, t.creation_timestamp, t.name))
        for place, task in enumerate(waiting, 1):
            positions[queue, task.name] = place
    return positions


class _Replay:
    def __init__(self, tasks: list[WaitingTask], concurrency: Mapping[str, int]) -> None:
        fair = {t.queue for t in tasks if t.group is not None}
        self.lines: dict[str, Line[str]] = {}
        self.keys: KeyLedger[str] = KeyLedger()
        self.claims: dict[str, KeyClaim] = {}
        self.queue_of: dict[str, str] = {}
        self.used: dict[str, int] = {}
        self.in_slot: set[str] = set()
        self.limits = {q: c for q, c in concurrency.items() if c >= 0}
        self.ends: list[tuple[tuple[int, str, str], str]] = []  # when each holder is taken to end
        self.later = itertools.count()
        for task in tasks:
            line = self.lines.get(task.queue)
            if line is None:
                line = self.lines[task.queue] = Line(fair=task.queue in fair)
            if task.group is not None and task.turn is not None:
                line.record(task.name, (task.group, task.turn))
            if task.key is not None:
                self.claims[task.name] = KeyClaim(task.key, task.limit)
            self.queue_of[task.name] = task.queue
            if task.waits:
                group = (task.group or "") if line.fair else None
                line.add(task.name, admission_order(task.priority, task.creation_timestamp, task.name), group)
            elif task.phase in ("Running", "Retrying"):
                self._hold(task)

    def _hold(self, task: WaitingTask) -> None:
        if task.phase == "Running":
            self.used[task.queue] = self.used.get(task.queue, 0) + 1
            self.in_slot.add(task.name)
        elif task.key is None:
            return
        if task.key is not None:
            self.keys.hold(task.name, ("", task.key))
        heapq.heappush(self.ends, ((0, task.started, task.name), task.name))

    def run(self) -> dict[tuple[str, str], int]:
        positions: dict[tuple[str, str], int] = {}
        counters = dict.fromkeys(self.lines, 0)
        unlimited = False
        touched = set(self.lines)  # the queues an end may let admit again: its own, its key's waiters'
        while True:
            for queue in sorted(touched):
                for name in self._admit(queue, unlimited):
                    counters[queue] += 1
                    positions[queue, name] = counters[queue]
            if not any(self.lines.values()) and not self.keys.parked_count():
                return positions
            if self.ends:
                touched = self._end(heapq.heappop(self.ends)[1])
            elif unlimited:
                return positions  # nothing can end and nothing can start (it cannot happen: a key waited on is held)
            else:
                unlimited = True  # concurrency 0 (or lowered below the running ones): order without slots
                touched = set(self.lines)

    def _admit(self, queue: str, unlimited: bool) -> list[str]:
        line, admitted = self.lines[queue], []
        limit = None if unlimited else self.limits.get(queue)
        while line and (limit is None or self.used.get(queue, 0) < limit):
            taken = line.pop()
            if taken is None:
                break
            name, order, group = taken
            claim = self.claims.get(name)
            if claim is not None and not self.keys.room(name, ("", claim.key), claim.limit):
                self.keys.park(name, ("", claim.key), claim.limit, group, order)
                continue
            if claim is not None:
                self.keys.reserve(name, ("", claim.key))
            line.took(name, group)
            self.used[queue] = self.used.get(queue, 0) + 1
            self.in_slot.add(name)
            heapq.heappush(self.ends, ((1, "", f"{next(self.later):012d}"), name))
            admitted.append(name)
        return admitted

    def _end(self, name: str) -> set[str]:
        touched = {self.queue_of[name]}
        if name in self.in_slot:
            self.in_slot.discard(name)
            self.used[self.queue_of[name]] -= 1
        ref = self.keys.unhold(name)
        if ref is not None:
            for waiter, group, order in self.keys.release(ref):
                self.lines[self.queue_of[waiter]].add(waiter, order, group)
                touched.add(self.queue_of[waiter])
        return touched
