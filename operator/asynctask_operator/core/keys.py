"""Concurrency keys: who holds each key, who waits for it, who is superseded. Pure: it decides, it writes nothing.

A key is ``(namespace, key)``. The rule of holding, read from the objects (the admission ledger is
told by the intake what every copy of a task says, :meth:`KeyLedger.hold` / :meth:`unhold`):

- a task **holds** its key while its phase is ``Running`` or ``Retrying`` (a retry keeps the key
  between attempts), or while a Job of it has not finished and is not being deleted — which covers
  a crash between the Job's creation and the ``Running`` write, and a holder cancelled whose Job
  is still being deleted;
- the ledger also **reserves** the key for a task it admits, between the admission and that task's
  ``Running`` write (Kueue's "assume"); a reservation whose write fails is released;
- a finished, deleted or ``Pending`` task holds nothing (a manual retry waits like a new task).

So nothing about a key exists only in memory but the reservations, which last one reconcile: after
a restart the holders are read back from the tasks and their Jobs, and no key is lost or granted
twice. A task starts only while fewer than its own ``limit`` tasks hold its key (it does not count
itself). A task found waiting for a full key is *parked* out of its queue's line; when the key frees,
the best of its waiters per fairness group (by admission order) go back into their lines.

``CancelInProgress``: a task is **superseded** while a newer unfinished task with the same key has
that policy ("the latest wins"); newness is ``(creationTimestamp, name)``, the later the newer.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
from collections.abc import Hashable
from typing import Generic, TypeVar

from asynctask_operator.core.concurrency import CANCEL_IN_PROGRESS, KeyClaim

K = TypeVar("K", bound=Hashable)
KeyRef = tuple[str, str]  # (namespace, key)
Newness = tuple[str, str]  # (creationTimestamp, name): the greater, the newer
Order = tuple[int, str, str]  # a task's place in its queue's line (see core/fairness.py)


@dataclasses.dataclass
class _Key(Generic[K]):
    held: set[K] = dataclasses.field(default_factory=set)
    reserved: set[K] = dataclasses.field(default_factory=set)
    members: dict[K, Newness] = dataclasses.field(default_factory=dict)  # unfinished tasks with this key
    cancelling: dict[K, Newness] = dataclasses.field(default_factory=dict)  # ... whose policy is CancelInProgress
    newest: K | None = None  # the newest of ``cancelling``
    waiting: set[K] = dataclasses.field(default_factory=set)  # parked
    parked: dict[Hashable, list[tuple[Order, int, K, int]]] = dataclasses.field(default_factory=dict)  # by group

    @property
    def holding(self) -> int:
        return len(self.held) + len(self.reserved)

    def empty(self) -> bool:
        return not (self.held or self.reserved or self.members or self.waiting)


class KeyLedger(Generic[K]):
    def __init__(self) -> None:
        self._keys: dict[KeyRef, _Key[K]] = {}
        self._holds: dict[K, KeyRef] = {}  # observed holders and reservations
        self._claims: dict[K, tuple[KeyRef, Newness, bool]] = {}  # members: (key, newness, CancelInProgress)
        self._parked: dict[K, tuple[KeyRef, Hashable, Order]] = {}
        self._seq = itertools.count()
        self.woken: list[K] = []
        """Tasks whose answer changed (superseded now): their reconcile must look again."""

    def _key(self, ref: KeyRef) -> _Key[K]:
        state = self._keys.get(ref)
        if state is None:
            state = self._keys[ref] = _Key()
        return state

    def _tidy(self, ref: KeyRef) -> None:
        state = self._keys.get(ref)
        if state is not None and state.empty():
            del self._keys[ref]

    # ------------------------------------------------------------------ holding

    def hold(self, task: K, ref: KeyRef) -> bool:
        """The task holds the key (observed); True when it did not before."""
        before = self._holds.get(task)
        state = self._key(ref)
        if before == ref and task in state.held:
            return False
        self._drop_hold(task)
        state.held.add(task)
        self._holds[task] = ref
        return True

    def reserve(self, task: K, ref: KeyRef) -> None:
        """The ledger admitted the task: the key is its own until its write lands or fails."""
        if self._holds.get(task) == ref:
            return
        self._drop_hold(task)
        self._key(ref).reserved.add(task)
        self._holds[task] = ref

    def unhold(self, task: K, which: str = "any") -> KeyRef | None:
        """The task holds its key no longer: ``held`` drops only an observed hold (a copy of a task still
        ``Pending`` from before its ``Running`` write leaves its reservation), ``reserved`` only a
        reservation (its write failed: a ``Retrying`` holder keeps its key), ``any`` both (finished,
        gone). The key it freed, if it did."""
        ref = self._holds.get(task)
        if ref is None:
            return None
        state = self._keys[ref]
        if (which == "held" and task not in state.held) or (which == "reserved" and task not in state.reserved):
            return None
        self._drop_hold(task)
        return ref

    def _drop_hold(self, task: K) -> None:
        ref = self._holds.pop(task, None)
        if ref is not None:
            state = self._keys[ref]
            state.held.discard(task)
            state.reserved.discard(task)
            self._tidy(ref)

    def holds(self, task: K) -> KeyRef | None:
        return self._holds.get(task)

    def holders(self, ref: KeyRef) -> list[K]:
        state = self._keys.get(ref)
        return sorted(state.held | state.reserved, key=str) if state else []

    def holding(self, ref: KeyRef) -> int:
        state = self._keys.get(ref)
        return state.holding if state else 0

    def room(self, task: K, ref: KeyRef, limit: int) -> bool:
        """Whether the task may start with the key now: fewer than its limit of *other* tasks hold it.

        Not "it holds the key already": a ``Retrying`` task holds its key between attempts, but a task
        whose first attempt ended unrecorded (a crash) held nothing meanwhile, and another may have
        taken the key; its next attempt waits for that one like any task."""
        return self.holding(ref) - (self._holds.get(task) == ref) < limit

    # ------------------------------------------------------------------ members: CancelInProgress

    def claim(self, task: K, ref: KeyRef, claim: KeyClaim, newness: Newness) -> None:
        """The task is unfinished and has this key (any phase): it counts for ``CancelInProgress``."""
        cancels = claim.policy == CANCEL_IN_PROGRESS
        if self._claims.get(task) == (ref, newness, cancels):
            return
        self.unclaim(task)
        self._claims[task] = (ref, newness, cancels)
        state = self._key(ref)
        state.members[task] = newness
        if cancels:
            state.cancelling[task] = newness
            before = state.newest
            if before is None or newness > state.cancelling[before]:
                state.newest = task
                self._supersede(state, newness, before)
                return
        newest = state.newest
        if newest is not None and newest != task and state.cancelling[newest] > newness:
            self.woken.append(task)  # it comes already superseded

    def _supersede(self, state: _Key[K], newness: Newness, before: K | None) -> None:
        """A newer ``CancelInProgress`` task came: wake the members it supersedes that were not already
        (older than it, and not older than the one it replaces: that one woke those)."""
        if before is not None and len(state.members) == len(state.cancelling):
            # Only CancelInProgress members: none is newer than ``before`` but the newcomer.
            self.woken.append(before)
            return
        floor = state.cancelling[before] if before is not None else None
        for task, seen in state.members.items():
            if seen < newness and (floor is None or seen >= floor):
                self.woken.append(task)

    def unclaim(self, task: K) -> None:
        """The task finished, or went: it is no member of its key any more."""
        claimed = self._claims.pop(task, None)
        if claimed is None:
            return
        ref = claimed[0]
        state = self._keys[ref]
        state.members.pop(task, None)
        if state.cancelling.pop(task, None) is not None and state.newest == task:
            state.newest = max(state.cancelling, key=state.cancelling.__getitem__, default=None)
        self._tidy(ref)

    def superseded_by(self, task: K) -> K | None:
        """The newer ``CancelInProgress`` task that supersedes this one, if any."""
        claimed = self._claims.get(task)
        if claimed is None:
            return None
        state = self._keys[claimed[0]]
        newest = state.newest
        if newest is None or newest == task or state.cancelling[newest] <= state.members[task]:
            return None
        return newest

    # ------------------------------------------------------------------ waiting: parked out of the line

    def park(self, task: K, ref: KeyRef, limit: int, group: Hashable, order: Order) -> None:
        """The task came up in its line with its key full: it waits here until the key frees."""
        self.unpark(task)
        state = self._key(ref)
        self._parked[task] = (ref, group, order)
        state.waiting.add(task)
        heapq.heappush(state.parked.setdefault(group, []), (order, next(self._seq), task, limit))

    def unpark(self, task: K) -> bool:
        """The task waits here no more (gone, or finished): its entry is dropped (lazily from the heap)."""
        parked = self._parked.pop(task, None)
        if parked is None:
            return False
        state = self._keys[parked[0]]
        state.waiting.discard(task)
        if not state.waiting:
            state.parked.clear()
        self._tidy(parked[0])
        return True

    def is_parked(self, task: K) -> bool:
        return task in self._parked

    def parked_count(self) -> int:
        return len(self._parked)

    def waiting(self, ref: KeyRef) -> int:
        state = self._keys.get(ref)
        return len(state.waiting) if state else 0

    def release(self, ref: KeyRef) -> list[tuple[K, Hashable, Order]]:
        """The key has room again: take out of the parking, per group, its best waiters that fit (by
        their own limit); the caller puts them back in their lines."""
        state = self._keys.get(ref)
        if state is None:
            return []
        out: list[tuple[K, Hashable, Order]] = []
        for group in list(state.parked):
            heap = state.parked[group]
            taken = 0
            while heap:
                order, _, task, limit = heap[0]
                if self._parked.get(task) != (ref, group, order):
                    heapq.heappop(heap)  # gone, or parked again since: a stale entry
                    continue
                if state.holding + taken >= limit:
                    break
                heapq.heappop(heap)
                del self._parked[task]
                state.waiting.discard(task)
                out.append((task, group, order))
                taken += 1
            if not heap:
                del state.parked[group]
        self._tidy(ref)
        return out

    def refs(self, namespace: str) -> list[KeyRef]:
        return [ref for ref in self._keys if ref[0] == namespace]

    def level_state(self) -> dict[KeyRef, tuple[frozenset[K], dict[K, Newness], frozenset[K], K | None]]:
        """What was read from the objects, per key: holders, members, CancelInProgress members, the newest
        of those (reservations and waiters left out: they come from requests, not from the objects)."""
        return {
            ref: (frozenset(state.held), dict(state.members), frozenset(state.cancelling), state.newest)
            for ref, state in self._keys.items()
            if state.held or state.members
        }
