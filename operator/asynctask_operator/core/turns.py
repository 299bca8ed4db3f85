"""Which queue's line records each task's fairness turn, and the turns the ledger gave but no copy
of the task records yet. Pure.

A turn comes from two places: the ledger gives one at admission (in memory, one reconcile long), and
the task's status records it with its ``Running`` write (``status.fairness.turn``); from then on the
objects are what counts. The rule: a turn the ledger gave stands until a copy of the task records one,
or the task goes, or gives its slot back. The copies read in between (its Job's creation seen before
its ``Running`` write, say) are older than that write and say nothing about the turn; taking them for
"no turn" gave the next admission the same turn (found by tests/integration/test_keys.py).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from asynctask_operator.core.fairness import Group, Line

K = TypeVar("K", bound=Hashable)
Q = TypeVar("Q", bound=Hashable)


class Turns(Generic[K, Q]):
    def __init__(self, line: Callable[[Q], Line[K]]) -> None:
        self._line = line  # the line (and its TurnBook) of a queue
        self._in: dict[K, Q] = {}  # the queue whose line records the task's turn
        self._given: set[K] = set()

    def seen(self, task: K, queue: Q, turn: tuple[str, int] | None) -> None:
        """What a copy of the task records of its turn (``None``: none)."""
        if turn is None and task in self._given:
            return
        self._given.discard(task)
        before = self._in.get(task)
        if before is not None and (before != queue or turn is None):
            self._line(before).record(task, None)
            del self._in[task]
        if turn is not None:
            self._line(queue).record(task, turn)
            self._in[task] = queue

    def given(self, task: K, queue: Q) -> None:
        """The ledger admitted the task and its line gave it a turn."""
        self._in[task] = queue
        self._given.add(task)

    def given_back(self, task: K) -> None:
        """Its reservation is released: a turn given, and not recorded yet, goes too."""
        if task in self._given:
            self.gone(task)

    def gone(self, task: K) -> None:
        self._given.discard(task)
        where = self._in.pop(task, None)
        if where is not None:
            self._line(where).record(task, None)

    def of(self, task: K) -> tuple[Group, int] | None:
        where = self._in.get(task)
        return self._line(where).turns.of(task) if where is not None else None
