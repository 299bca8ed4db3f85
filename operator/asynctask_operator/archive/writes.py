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


def _upsert(conn: AsyncConnection) -> Any:
    stmt = _insert(conn, tasks)
    excluded = stmt.excluded
    return stmt.on_conflict_do_update(
        index_elements=[tasks.c.uid],
        set_={c.name: excluded[c.name] for c in tasks.columns if c.name != "uid"},
        where=or_(excluded.revision > tasks.c.revision, excluded.revision == 0),
    )


async def upsert_tasks(conn: AsyncConnection, rows: Iterable[TaskRow]) -> int:
    """Insert or update task rows (newest revision wins), in the caller's transaction; the rows sent.

    One statement, executed for many rows: SQLAlchemy compiles it once (it is cached) and sends the
    rows as multi-row VALUES of up to :data:`ROWS_PER_STATEMENT` ("insertmanyvalues"); a statement
    built with the rows in it would be compiled again for every batch, which cost more than the write."""
    chosen = newest(list(rows))
    if chosen:
        await conn.execute(_upsert(conn), [row.values() for row in chosen])
    return len(chosen)


async def insert_logs(conn: AsyncConnection, logs: Sequence[dict[str, Any]]) -> None:
    """Insert attempt logs (the ``attempt_logs`` columns); one already there for (uid, attempt) stays."""
    if logs:
        stmt = _insert(conn, attempt_logs).on_conflict_do_nothing(
            index_elements=[attempt_logs.c.uid, attempt_logs.c.attempt]
        )
        await conn.execute(stmt, list(logs))
