"""The tasks waiting to be archived: the newest copy of each, oldest first, bounded.

The watch offers a task each time it changes; the recorder takes them in batches. A task offered
again while it waits keeps its place and takes the newer copy, so a burst of events about one task
is one row written. A batch whose write failed is given back in front, unless a newer copy arrived
meanwhile. Beyond ``capacity`` a finished task is not held (the process's memory stays bounded
while the database is down): :attr:`Backlog.overflowed` asks for a new listing once the backlog has
drained, which offers every task not yet archived again. A deleted task is held beyond that, up
to twice the capacity: its DELETED event is the last time its state can be read (no listing
offers it again), but a namespace of 100,000 tasks deleted while the database is down must not
exhaust the process's memory either; past that it is counted in :attr:`Backlog.lost`.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterable

from asynctask_operator.archive.records import revision_of
from asynctask_operator.core.wire import Obj


@dataclasses.dataclass
class Pending:
    """One task to write: its copy, whether to mark it archived after (it is still there), and its logs
    once read (kept across a failed write, so a retry does not read them again)."""

    uid: str
    obj: Obj
    mark: bool
    seen: float
    """When it was first offered (the process's monotonic clock): its wait, for the lag."""
    logs: list[Obj] | None = None
    tries: int = 0


class Backlog:
    def __init__(self, capacity: int) -> None:
        self.capacity = max(capacity, 1)
        self.items: dict[str, Pending] = {}
        self.overflowed = False
        self.dropped = 0  # offers not held since the last listing asked for
        self.lost = 0  # deleted tasks not held (the backlog was full twice over): never archived
        self._arrived = asyncio.Event()
        self.drained = asyncio.Event()
        """Set once the backlog overflowed and has since been written out: time to list again."""

    def __len__(self) -> int:
        return len(self.items)

    def offer(self, uid: str, obj: Obj, *, mark: bool, now: float, deleted: bool = False) -> bool:
        """Hold this copy (replacing an older one of the same task); False when it was not held."""
        held = self.items.get(uid)
        if held is not None:
            old, new = revision_of(held.obj), revision_of(obj)
            if new == 0 or new >= old:
                held.obj, held.mark, held.logs = obj, mark and not deleted, None if new != old else held.logs
            return True
        if len(self.items) >= self.capacity * (2 if deleted else 1):
            if deleted:
                self.lost += 1  # gone from the cluster, and no room: it will not be archived
            else:
                self.overflowed = True
                self.dropped += 1
            return False
        self.items[uid] = Pending(uid, obj, mark and not deleted, now)
        self._arrived.set()
        return True

    def forget(self, uid: str) -> None:
        """Not to be written after all (archived meanwhile, by another replica)."""
        self.items.pop(uid, None)

    def take(self, n: int) -> list[Pending]:
        """Up to ``n`` of the longest waiting, out of the backlog until :meth:`give_back`."""
        batch = []
        for uid in list(self.items)[:n]:
            batch.append(self.items.pop(uid))
        if not self.items:
            self._arrived.clear()
            if self.overflowed:
                self.drained.set()
        return batch

    def give_back(self, batch: Iterable[Pending]) -> None:
        """A batch not written: in front again, each unless a newer copy arrived while it was out."""
        ahead = {p.uid: p for p in batch if p.uid not in self.items}
        for p in ahead.values():
            p.tries += 1
        self.items = {**ahead, **self.items}
        if self.items:
            self._arrived.set()

    def oldest(self) -> float | None:
        return min((p.seen for p in self.items.values()), default=None)

    async def wait(self) -> None:
        """Until something is held."""
        await self._arrived.wait()

    def relisted(self) -> None:
        """A new listing began: what was not held will be offered again."""
        self.overflowed = False
        self.dropped = 0
        self.drained.clear()
