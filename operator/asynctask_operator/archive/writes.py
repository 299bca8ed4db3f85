"""The archive's writes: newer-wins upserts of task rows, and attempt logs, each batch one transaction.

One statement per batch, idempotent by construction::

    INSERT INTO tasks (...) VALUES (...), (...)
    ON CONFLICT (uid) DO UPDATE SET ... = excluded....
    WHERE excluded.revision > tasks.revision OR excluded.revision = 0

A replayed event, a restart in the middle of a batch, or two archivers for a moment write the same
row again, or nothing: never a second row for a uid, never an older state over a newer one (a
revision of 0, an object without a numeric resourceVersion, cannot be ordered: the later write wins,
as the gateway's cache decides). A log is written once per (uid, attempt): the first capture stays.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import or_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from asynctask_operator.archive.records import TaskRow, newest
from asynctask_operator.archive.schema import attempt_logs, tasks

ROWS_PER_STATEMENT = 500
"""Rows in one INSERT: well under PostgreSQL's 32,767 bound parameters (22 per row) and SQLite's."""


def _insert(conn: AsyncConnection, table: Any) -> Any:
    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)


async def upsert_tasks(conn: AsyncConnection, rows: Iterable[TaskRow]) -> int:
    """Insert or update task rows (newest revision wins), in the caller's transaction; the rows sent."""
    chosen = newest(list(rows))
    for start in range(0, len(chosen), ROWS_PER_STATEMENT):
        part = chosen[start : start + ROWS_PER_STATEMENT]
        stmt = _insert(conn, tasks).values([row.values() for row in part])
        excluded = stmt.excluded
        stmt = stmt.on_conflict_do_update(
            index_elements=[tasks.c.uid],
            set_={c.name: excluded[c.name] for c in tasks.columns if c.name != "uid"},
            where=or_(excluded.revision > tasks.c.revision, excluded.revision == 0),
        )
        await conn.execute(stmt)
    return len(chosen)


async def insert_logs(conn: AsyncConnection, logs: Sequence[dict[str, Any]]) -> None:
    """Insert attempt logs (the ``attempt_logs`` columns); one already there for (uid, attempt) stays."""
    for start in range(0, len(logs), ROWS_PER_STATEMENT):
        stmt = _insert(conn, attempt_logs).values(list(logs[start : start + ROWS_PER_STATEMENT]))
        await conn.execute(stmt.on_conflict_do_nothing(index_elements=[attempt_logs.c.uid, attempt_logs.c.attempt]))
