"""One queue's line: the order its waiting tasks are admitted in. Pure.

The order, exactly:

1. **Priority first**: a task of a higher ``priority`` is always taken before any of a lower one.
2. **Within one priority**, in a queue without ``spec.fairness``: the oldest ``creationTimestamp``
   first, then the name (:func:`admission_order`).
3. **Within one priority**, in a queue with ``spec.fairness``: round-robin across the *groups*
   (by concurrency key, or by a label's value). Every admission in a fair queue gets the queue's
   next *turn* (one more than the highest turn its tasks record in ``status.fairness.turn``); the
   group whose last turn is the lowest goes next (a group that never had one goes first), ties
   by the group's oldest waiting task. Within a group: oldest first, then the name.
4. A task whose concurrency key is full is passed over (it waits for the key, core/keys.py) and
   the line goes on with the next; the passed-over task keeps its group's turn.

The turns are written in the tasks' own ``Running`` status (no write of their own) and read back
from them, so the rotation survives a restart and a reader of the objects (the gateway) computes
the same order as the operator. Tenant ``a`` was admitted last, so ``b`` goes first, then they alternate:

    >>> line: Line[str] = Line(fair=True)
    >>> line.turns.set("a0", "a", 7)  # a task of tenant a took turn 7 earlier
    >>> for name in ["a1", "a2", "a3", "b1", "b2"]:
    ...     line.add(name, admission_order(0, "2026-01-01T00:00:00Z", name), name[0])
    >>> [line.admit_next() for _ in range(5)]
    ['b1', 'a1', 'b2', 'a2', 'a3']
"""

from __future__ import annotations

import collections
import dataclasses
import heapq
import itertools
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
Order = tuple[int, str, str]  # (-priority, creationTimestamp, name)
Group = Hashable  # a concurrency key, a label's value, or None (a queue without fairness)
NO_TURN = -1


def admission_order(priority: int, creation_timestamp: str, name: str) -> Order:
    """Sort key: highest priority first, then the oldest, then by name (a total order).

    RFC 3339 timestamps in UTC (``...Z``) sort as strings in time order.

    >>> sorted([admission_order(0, "2026-01-01T00:00:00Z", "b"), admission_order(5, "2026-01-02T00:00:00Z", "a")])[0]
    (-5, '2026-01-02T00:00:00Z', 'a')
    """
    return (-priority, creation_timestamp, name)


class TurnBook(Generic[K]):
    """The turns a fair queue's tasks record, by group: each group's last, and the queue's next."""

    def __init__(self) -> None:
        self._of: dict[K, tuple[Group, int]] = {}
        self._in_group: collections.Counter[tuple[Group, int]] = collections.Counter()
        self._in_queue: collections.Counter[int] = collections.Counter()
        self._by_group: dict[Group, list[int]] = {}  # max-heaps (negated); entries no task records are skipped
        self._all: list[int] = []

    def set(self, task: K, group: Group, turn: int) -> Group | None:
        """The task records this turn (as its status says, or as the ledger just gave it); the group
        whose last turn went down meanwhile (the task moved from it), if one did."""
        if self._of.get(task) == (group, turn):
            return None
        lowered = self.drop(task)
        self._of[task] = (group, turn)
        self._in_group[group, turn] += 1
        self._in_queue[turn] += 1
        heapq.heappush(self._by_group.setdefault(group, []), -turn)
        heapq.heappush(self._all, -turn)
        return lowered if lowered != group else None

    def drop(self, task: K) -> Group | None:
        """The task records no turn any more (gone, or its reservation given back); the group whose
        last turn went down, if one did."""
        held = self._of.pop(task, None)
        if held is None:
            return None
        group, turn = held
        last = self.last(group)
        self._in_group[held] -= 1
        if not self._in_group[held]:
            del self._in_group[held]
        self._in_queue[turn] -= 1
        if not self._in_queue[turn]:
            del self._in_queue[turn]
        return group if self.last(group) < last else None

    def last(self, group: Group) -> int:
        """The highest turn a task of the group records; NO_TURN (below every turn) when none does."""
        heap = self._by_group.get(group)
        if heap is None:
            return NO_TURN
        while heap and (group, -heap[0]) not in self._in_group:
            heapq.heappop(heap)
        if not heap:
            del self._by_group[group]
            return NO_TURN
        return -heap[0]

    def next_turn(self) -> int:
        """One more than the highest turn any task records (0 in a queue whose tasks record none)."""
        while self._all and -self._all[0] not in self._in_queue:
            heapq.heappop(self._all)
        return (-self._all[0] if self._all else NO_TURN) + 1

    def of(self, task: K) -> tuple[Group, int] | None:
        return self._of.get(task)

    def recorded(self) -> dict[K, tuple[Group, int]]:
        return dict(self._of)


@dataclasses.dataclass
class _Level(Generic[K]):
    groups: dict[Group, list[tuple[Order, int, K]]] = dataclasses.field(default_factory=dict)
    ring: list[tuple[int, Order, int, Group]] = dataclasses.field(default_factory=list)  # (last turn, head, seq, g)


class Line(Generic[K]):
    """The waiting tasks of one queue in admission order (the module docstring); lazy heaps throughout."""

    def __init__(self, fair: bool = False) -> None:
        self.fair = fair
        self.turns: TurnBook[K] = TurnBook()
        self._entries: dict[K, tuple[Order, Group]] = {}
        self._levels: dict[int, _Level[K]] = {}
        self._priorities: list[int] = []  # -priority
        self._flat: list[tuple[Order, int, K]] = []  # without fairness: one heap, the order is the order
        self._seq = itertools.count()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, task: object) -> bool:
        return task in self._entries

    def entry(self, task: K) -> tuple[Order, Group] | None:
        return self._entries.get(task)

    def add(self, task: K, order: Order, group: Group) -> None:
        if self._entries.get(task) == (order, group):
            return
        self._entries[task] = (order, group)
        if not self.fair:
            heapq.heappush(self._flat, (order, next(self._seq), task))
            return
        priority = order[0]
        level = self._levels.get(priority)
        if level is None:
            level = self._levels[priority] = _Level()
            heapq.heappush(self._priorities, priority)
        heap = level.groups.setdefault(group, [])
        improves = not heap or order < heap[0][0]
        heapq.heappush(heap, (order, next(self._seq), task))
        if improves:
            heapq.heappush(level.ring, (self._last(group), order, next(self._seq), group))

    def remove(self, task: K) -> bool:
        return self._entries.pop(task, None) is not None  # its heap entries are skipped lazily

    def _last(self, group: Group) -> int:
        return self.turns.last(group) if self.fair else NO_TURN

    def record(self, task: K, turn: tuple[Group, int] | None) -> None:
        """What the task's status records of its turn (None: nothing), or the turn the ledger gave it."""
        lowered = self.turns.set(task, *turn) if turn is not None else self.turns.drop(task)
        if lowered is not None:
            self._regrouped(lowered)

    def _regrouped(self, group: Group) -> None:
        """``group``'s last turn went down (a task recording it went): it moves up in every level."""
        for level in self._levels.values():
            heap = level.groups.get(group)
            if heap:
                heapq.heappush(level.ring, (self._last(group), heap[0][0], next(self._seq), group))

    def _head(self, level: _Level[K], group: Group) -> tuple[Order, K] | None:
        heap = level.groups.get(group)
        while heap:
            order, _, task = heap[0]
            if self._entries.get(task) == (order, group):
                return order, task
            heapq.heappop(heap)
        level.groups.pop(group, None)
        return None

    def pop(self) -> tuple[K, Order, Group] | None:
        """Take the next task out of the line (the caller admits it or parks it)."""
        while self._flat:
            order, _, task = heapq.heappop(self._flat)
            entry = self._entries.get(task)
            if entry is not None and entry[0] == order:
                del self._entries[task]
                return task, order, entry[1]
        while self._priorities:
            priority = self._priorities[0]
            level = self._levels[priority]
            while level.ring:
                last, head, _, group = level.ring[0]
                found = self._head(level, group)
                if found is None:
                    heapq.heappop(level.ring)
                    continue
                actual = (self._last(group), found[0])
                if (last, head) != actual:  # stale: the group's head or last turn moved since
                    heapq.heapreplace(level.ring, (actual[0], actual[1], next(self._seq), group))
                    continue
                order, task = found
                del self._entries[task]
                return task, order, group
            del self._levels[priority]
            heapq.heappop(self._priorities)
        return None

    def tasks(self) -> list[K]:
        return list(self._entries)

    def heap_size(self) -> int:
        """Entries the task heaps hold, stale ones included: what a pile-up (a leak) would show."""
        return len(self._flat) + sum(len(heap) for level in self._levels.values() for heap in level.groups.values())

    def took(self, task: K, group: Group) -> int | None:
        """The task taken by :meth:`pop` is admitted: in a fair queue it gets the next turn (returned)."""
        if not self.fair:
            return None
        turn = self.turns.next_turn()
        self.record(task, (group, turn))
        return turn

    def admit_next(self) -> K | None:
        """:meth:`pop` and :meth:`took` at once (no key to check): the order of the line, one by one."""
        taken = self.pop()
        if taken is None:
            return None
        self.took(taken[0], taken[2])
        return taken[0]
