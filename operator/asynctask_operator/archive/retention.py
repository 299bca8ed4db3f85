"""Retention: archived tasks created before the cut-off are deleted, with their logs, a batch at a time.

Each batch is its own short transaction: ``DELETE FROM tasks WHERE uid IN (SELECT uid … ORDER BY
created LIMIT n)``, found through the index on ``created`` (or ``(namespace, created)`` for a
namespace of its own), then the same uids' logs. So a retention of millions of rows never holds a
lock on more than ``n`` rows, nor for longer than one batch, and readers and the recorder go on
between batches. A namespace may keep its tasks longer or shorter than the rest.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence

from sqlalchemy import ColumnElement, delete, select, true
from sqlalchemy.ext.asyncio import AsyncEngine

from asynctask_operator.archive.schema import attempt_logs, tasks


@dataclasses.dataclass(frozen=True)
class Retention:
    seconds: float
    """Kept this long after their creation; 0: forever."""
    overrides: tuple[tuple[str, float], ...] = ()
    """(namespace, seconds) of the namespaces kept otherwise."""

    def cuts(self, now: float) -> list[tuple[ColumnElement[bool], float]]:
        """(which rows, their cut-off) for each rule; a rule of 0 seconds deletes nothing."""
        out: list[tuple[ColumnElement[bool], float]] = []
        named = [ns for ns, _ in self.overrides]
        for namespace, seconds in self.overrides:
            if seconds > 0:
                out.append((tasks.c.namespace == namespace, now - seconds))
        if self.seconds > 0:
            out.append((tasks.c.namespace.not_in(named) if named else true(), now - self.seconds))
        return out


async def delete_batch(engine: AsyncEngine, which: ColumnElement[bool], cutoff: float, batch: int) -> int:
    """Delete up to ``batch`` of the oldest rows matching ``which`` created before ``cutoff``; how many went."""
    async with engine.begin() as conn:
        oldest = select(tasks.c.uid).where(which, tasks.c.created < cutoff).order_by(tasks.c.created).limit(batch)
        uids: Sequence[str] = (await conn.execute(oldest)).scalars().all()
        if not uids:
            return 0
        await conn.execute(delete(attempt_logs).where(attempt_logs.c.uid.in_(uids)))
        await conn.execute(delete(tasks).where(tasks.c.uid.in_(uids)))
    return len(uids)


async def apply(engine: AsyncEngine, retention: Retention, now: float, *, batch: int = 1000) -> int:
    """Delete everything past its retention, batch after batch (yielding between them); rows deleted."""
    deleted = 0
    for which, cutoff in retention.cuts(now):
        while True:
            n = await delete_batch(engine, which, cutoff, batch)
            deleted += n
            if n < batch:
                break
            await asyncio.sleep(0)  # the recorder and readers get their turn between batches
    return deleted
