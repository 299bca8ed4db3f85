"""A de-duplicating work queue and the one clock that feeds it.

A key is queued at most once, and never reconciled by two workers at once: a key
added while it is being reconciled runs again right after; a reconcile that raises
:class:`RequeueSoon` is looked at again after the delay it names. The clock is a heap of
due times (retries, deadlines, TTLs, error backoff): when a time comes, its key is
queued. Nothing per object runs in the meantime — no task, no timer, no finalizer.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable
from typing import Generic, TypeVar

K = TypeVar("K")


class RequeueSoon(Exception):
    """Not an error: the state is not settled yet; try again after ``delay`` seconds.

    Any reconciler raises it (a status write answered 409, a Job of an earlier object of the same name not yet deleted); the worker
    that runs the reconcile puts the key on the clock for ``delay`` and counts no failure."""

    def __init__(self, delay: float, why: str) -> None:
        super().__init__(why)
        self.delay = delay


class WorkQueue(Generic[K]):
    def __init__(self) -> None:
        self._queue: asyncio.Queue[K] = asyncio.Queue()
        self._pending: set[K] = set()
        self._active: set[K] = set()
        self._again: set[K] = set()

    def add(self, key: K) -> None:
        if key in self._active:
            self._again.add(key)
        elif key not in self._pending:
            self._pending.add(key)
            self._queue.put_nowait(key)

    async def get(self) -> K:
        key = await self._queue.get()
        self._pending.discard(key)
        self._active.add(key)
        return key

    def done(self, key: K) -> None:
        self._active.discard(key)
        if key in self._again:
            self._again.discard(key)
            self.add(key)

    def __len__(self) -> int:
        return len(self._pending) + len(self._active)

    @property
    def idle(self) -> bool:
        return not self._pending and not self._active


class Clock(Generic[K]):
    """Queues each key when its earliest due time comes (``time.time`` seconds)."""

    def __init__(self, queue: WorkQueue[K], now: Callable[[], float] = time.time) -> None:
        self._queue = queue
        self._now = now
        self._heap: list[tuple[float, int, K]] = []
        self._due: dict[K, float] = {}
        self._seq = itertools.count()
        self._wake = asyncio.Event()

    def schedule(self, key: K, at: float) -> None:
        current = self._due.get(key)
        if current is not None and current <= at:
            return
        self._due[key] = at
        heapq.heappush(self._heap, (at, next(self._seq), key))
        self._wake.set()

    def cancel(self, key: K) -> None:
        self._due.pop(key, None)

    def due_of(self, key: K) -> float | None:
        return self._due.get(key)

    def __len__(self) -> int:
        return len(self._due)

    def fire_due(self) -> float | None:
        """Queue every key whose time has come; return the next due time, if any."""
        now = self._now()
        while self._heap:
            at, _, key = self._heap[0]
            if self._due.get(key) != at:
                heapq.heappop(self._heap)  # superseded by an earlier time, or cancelled
                continue
            if at > now:
                return at
            heapq.heappop(self._heap)
            del self._due[key]
            self._queue.add(key)
        return None

    async def run(self) -> None:
        while True:
            self._wake.clear()
            nxt = self.fire_due()
            timeout = None if nxt is None else max(nxt - self._now(), 0.0)
            try:  # asyncio.timeout, not wait_for: no helper task per wait
                async with asyncio.timeout(timeout):
                    await self._wake.wait()
            except TimeoutError:
                pass
