"""Reading the archive: the calls the front doors make (the module docstring of the package lists them).

Every call opens a connection of the engine's pool for one statement or a few, and answers plain
frozen dataclasses. Errors are two: :class:`~.history.BadQuery` (the caller's parameters; a 400)
and :class:`ArchiveUnavailable` (the database cannot answer now; a 503 — live reads go on).
Authorization is the caller's: a reader is handed the namespaces its user may read.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import json
import zlib
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from asynctask_operator.archive import figures as sql_figures
from asynctask_operator.archive.figures import Part, Scope, Statistics
from asynctask_operator.archive.history import HistoryQuery, Position, encode_cursor, page_statement
from asynctask_operator.archive.records import TaskRow
from asynctask_operator.archive.schema import attempt_logs, tasks
from asynctask_operator.core.statistics import Figures, GroupBy, Window


class ArchiveUnavailable(Exception):
    """The database did not answer (down, unreachable, a statement past its timeout)."""


@dataclasses.dataclass(frozen=True)
class ArchivedTask(TaskRow):
    """A task as the archive holds it: the counted columns, and the whole object in ``wire``."""

    @functools.cached_property
    def object(self) -> dict[str, Any]:
        """The task's wire form (metadata, spec, status), as a live task's: read it with core.wire."""
        value = json.loads(self.wire)
        return value if isinstance(value, dict) else {}


@dataclasses.dataclass(frozen=True)
class HistoryPage:
    items: list[ArchivedTask]
    next_cursor: str | None
    """Pass as ``cursor`` for the next page; None on the last page."""


@dataclasses.dataclass(frozen=True)
class AttemptLog:
    uid: str
    attempt: int
    pod: str | None
    container: str | None
    captured_at: float
    size: int
    """Bytes of the log as the pod had it; ``content`` holds the last of them when ``truncated``."""
    truncated: bool
    content: bytes | None
    """The log's (last) bytes, decompressed; None when it could not be read (``error`` says why)."""
    error: str | None

    @property
    def text(self) -> str:
        """The log as text: bytes that are not UTF-8 shown as U+FFFD."""
        return (self.content or b"").decode("utf-8", "replace")


def _task(row: Row[Any]) -> ArchivedTask:
    return ArchivedTask(**{c.name: row._mapping[c.name] for c in tasks.columns})


STATISTICS_CONNECTIONS = 3
"""Connections one statistics page reads over at once (PostgreSQL): the pool's others stay for history reads."""


class ArchiveReader:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[AsyncConnection]:
        try:
            async with self.engine.connect() as conn:
                yield conn
        except (OperationalError, PoolTimeout, OSError, TimeoutError) as exc:
            raise ArchiveUnavailable(f"the archive's database did not answer: {type(exc).__name__}") from exc
        except DBAPIError as exc:
            if exc.connection_invalidated:
                raise ArchiveUnavailable("the archive's database connection broke") from exc
            raise

    async def get(self, uid: str) -> ArchivedTask | None:
        """The task of this uid."""
        async with self._connection() as conn:
            row = (await conn.execute(select(*tasks.columns).where(tasks.c.uid == uid))).first()
        return _task(row) if row is not None else None

    async def latest(self, namespace: str, name: str) -> ArchivedTask | None:
        """The newest task of this name in this namespace (names are reused after a deletion)."""
        statement = (
            select(*tasks.columns)
            .where(tasks.c.namespace == namespace, tasks.c.name == name)
            .order_by(tasks.c.created.desc(), tasks.c.uid.desc())
            .limit(1)
        )
        async with self._connection() as conn:
            row = (await conn.execute(statement)).first()
        return _task(row) if row is not None else None

    async def page(self, query: HistoryQuery) -> HistoryPage:
        """One page of history, newest first (:mod:`.history`)."""
        statement = page_statement(query)
        async with self._connection() as conn:
            rows = (await conn.execute(statement)).all()
        items = [_task(row) for row in rows[: query.limit]]
        more = len(rows) > query.limit
        cursor = encode_cursor(Position(items[-1].created, items[-1].uid)) if more and items else None
        return HistoryPage(items, cursor)

    async def logs(self, uid: str) -> list[AttemptLog]:
        """The task's attempt logs, by attempt, without their content (which attempts have one, how big)."""
        columns = [c for c in attempt_logs.columns if c.name != "content"]
        statement = select(*columns).where(attempt_logs.c.uid == uid).order_by(attempt_logs.c.attempt)
        async with self._connection() as conn:
            rows = (await conn.execute(statement)).all()
        return [AttemptLog(**row._mapping, content=None) for row in rows]

    async def log(self, uid: str, attempt: int) -> AttemptLog | None:
        """One attempt's log, decompressed."""
        statement = select(*attempt_logs.columns).where(attempt_logs.c.uid == uid, attempt_logs.c.attempt == attempt)
        async with self._connection() as conn:
            row = (await conn.execute(statement)).first()
        if row is None:
            return None
        values = dict(row._mapping)
        packed = values.pop("content")
        return AttemptLog(**values, content=zlib.decompress(packed) if packed is not None else None)

    async def figures(self, scope: Scope, group_by: GroupBy | None = None) -> dict[str, Figures]:
        """:func:`~asynctask_operator.core.statistics.summarize` over the archive (the gateway's groups)."""
        async with self._connection() as conn:
            return await sql_figures.figures(conn, scope, group_by)

    async def window(self, scope: Scope) -> Window:
        async with self._connection() as conn:
            return await sql_figures.window(conn, scope)

    async def statistics(self, scope: Scope, *, hours: int = 168, days: int = 90) -> Statistics:
        """Every figure of the statistics page over the scope's window. In PostgreSQL its seven parts
        at once, over up to :data:`STATISTICS_CONNECTIONS` connections of the pool (each is a scan of
        its own, which a server with cores to spare answers side by side); in SQLite one after the
        other over one connection."""
        if self.engine.dialect.name != "postgresql":
            async with self._connection() as conn:
                lock = asyncio.Lock()  # one statement at a time on the one connection

                async def in_turn(part: Part) -> Any:
                    async with lock:
                        return await part(conn)

                return await sql_figures.statistics(in_turn, scope, hours=hours, days=days)
        slots = asyncio.Semaphore(STATISTICS_CONNECTIONS)

        async def side_by_side(part: Part) -> Any:
            async with slots, self._connection() as conn:
                return await part(conn)

        return await sql_figures.statistics(side_by_side, scope, hours=hours, days=days)
