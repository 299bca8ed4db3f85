"""The live statistics' figures, computed in the database over any window of the archive.

Each function is one SQL statement and answers in the core's own shapes (:mod:`asynctask_operator.
core.statistics`): the same window rule (tasks created in ``[since, until]``), the same counts, the
same nearest-rank percentiles (``rank = ceil(f * n)``: PostgreSQL's ``percentile_disc``, and in
SQLite a window function at ``(n + 1) / 2`` and ``(95 n + 99) / 100``), the same finishes per hour
and failures by reason. So a
front door shows either source with one template, and says which it used.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import math
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from sqlalchemy import ColumnElement, Integer, Row, Select, and_, case, cast, func, literal, select, true
from sqlalchemy.ext.asyncio import AsyncConnection

from asynctask_operator.archive.history import namespace_clause
from asynctask_operator.archive.schema import tasks
from asynctask_operator.core.statistics import (
    FINISHED,
    HOUR,
    UNKNOWN_REASON,
    Figures,
    GroupBy,
    Window,
    per_bucket,
)

DAY = 24 * HOUR
SOURCE: Literal["archive"] = "archive"


@dataclasses.dataclass(frozen=True)
class Scope:
    """Which tasks: those of ``namespaces`` (None: every one) created in ``[since, until]``."""

    namespaces: tuple[str, ...] | None
    since: float | None
    until: float

    def created_within(self) -> ColumnElement[bool]:
        conditions = [namespace_clause(self.namespaces), tasks.c.created <= self.until]
        if self.since is not None:
            conditions.append(tasks.c.created >= self.since)
        return and_(*conditions)


def _group(group_by: GroupBy | None) -> ColumnElement[Any]:
    if group_by is None:
        return literal("").label("key")
    return tasks.c[group_by].label("key")


def _counted() -> ColumnElement[bool]:
    return and_(tasks.c.phase.in_(FINISHED), tasks.c.duration_seconds.is_not(None))


def _totals() -> list[ColumnElement[Any]]:
    """The counts and means of a group, as columns of an aggregate."""

    def phase_count(phase: str) -> Any:
        return func.coalesce(func.sum(case((tasks.c.phase == phase, 1), else_=0)), 0)

    return [
        func.count().label("total"),
        phase_count("Succeeded").label("succeeded"),
        phase_count("Failed").label("failed"),
        phase_count("Cancelled").label("cancelled"),
        func.avg(case((_counted(), tasks.c.duration_seconds))).label("mean_duration"),
        func.avg(tasks.c.queue_wait_seconds).label("mean_wait"),
    ]


def _percentiles() -> list[ColumnElement[Any]]:
    """PostgreSQL: p50 and p95 of a group's finished durations (``percentile_disc``: the nearest rank)."""
    durations, counted = tasks.c.duration_seconds, _counted()
    return [
        func.percentile_disc(0.5).within_group(durations).filter(counted).label("p50"),
        func.percentile_disc(0.95).within_group(durations).filter(counted).label("p95"),
    ]


def totals_statement(scope: Scope, group_by: GroupBy | None = None) -> Select[Any]:
    """Counts and means of each group, one pass over the window (the history index, in PostgreSQL alone)."""
    key = _group(group_by)
    return select(key, *_totals()).where(scope.created_within()).group_by(key)


def percentiles_statement(scope: Scope, group_by: GroupBy | None = None) -> Select[Any]:
    """SQLite: p50 and p95 of the durations of each group's finished tasks, nearest rank over a window
    function (``row_number()`` at ``(n + 1) / 2`` and ``(95 n + 99) / 100``, the integer ``ceil(f * n)``)."""
    key = _group(group_by)
    counted = _counted()
    ranked = (
        select(
            key,
            tasks.c.duration_seconds.label("duration"),
            func.row_number().over(partition_by=key, order_by=tasks.c.duration_seconds).label("rank"),
            func.count().over(partition_by=key).label("n"),
        )
        .where(scope.created_within(), counted)
        .subquery()
    )
    return select(
        ranked.c.key,
        func.max(case((ranked.c.rank == (ranked.c.n + 1) // 2, ranked.c.duration))).label("p50"),
        func.max(case((ranked.c.rank == (95 * ranked.c.n + 99) // 100, ranked.c.duration))).label("p95"),
    ).group_by(ranked.c.key)


def figures_statement(scope: Scope, group_by: GroupBy | None = None) -> Select[Any]:
    """PostgreSQL: the counts, means and percentiles in one pass (``percentile_disc`` is the nearest rank:
    the value at ``ceil(f * n)``, as the core's ``percentile``), the window read from the history index alone.

    Every namespace by a group: :func:`each_group_statement`."""
    if group_by is not None and scope.namespaces is None:
        return each_group_statement(scope, group_by)
    return totals_statement(scope, group_by).add_columns(*_percentiles())


def each_group_statement(scope: Scope, group_by: GroupBy) -> Select[Any]:
    """PostgreSQL, every namespace: the groups found by a skip scan of the group's index (the least
    value, then the least greater than it, ...: one index probe each), and each group's figures over
    its own range of that index, ``(group, created)``. The same figures as :func:`totals_statement`
    with the percentiles, without sorting the whole window by group first (0.5-0.7 s over 333,000
    tasks; docs/performance.md, "The archive")."""
    column = tasks.c[group_by]
    first = select(func.min(column).label("value")).cte("groups", recursive=True)
    following = select(select(func.min(column)).where(column > first.c.value).scalar_subquery())
    groups = first.union_all(following.where(first.c.value.is_not(None)))
    figures = (
        select(*_totals(), *_percentiles())
        .where(scope.created_within(), column == groups.c.value)
        .lateral("figures")
    )
    shown = [figures.c[name] for name in ("total", "succeeded", "failed", "cancelled", "mean_duration", "mean_wait")]
    return (
        select(groups.c.value.label("key"), *shown, figures.c.p50, figures.c.p95)
        .select_from(groups.join(figures, true()))
        .where(groups.c.value.is_not(None), figures.c.total > 0)
    )


async def figures(conn: AsyncConnection, scope: Scope, group_by: GroupBy | None = None) -> dict[str, Figures]:
    """:func:`~asynctask_operator.core.statistics.summarize` in SQL: one group ``""``, or one per type or queue.

    One statement in PostgreSQL; two in SQLite, which has no ``percentile_disc``."""
    rows: dict[str, Row[Any] | None]
    if conn.dialect.name == "postgresql":
        rows = {row.key: row for row in (await conn.execute(figures_statement(scope, group_by))).all()}
        cuts = {key: row for key, row in rows.items() if row is not None}
    else:
        rows = {row.key: row for row in (await conn.execute(totals_statement(scope, group_by))).all()}
        cuts = {row.key: row for row in (await conn.execute(percentiles_statement(scope, group_by))).all()}
    if group_by is None and not rows:
        rows = {"": None}
    out: dict[str, Figures] = {}
    for name in sorted(rows):
        row, cut = rows[name], cuts.get(name)
        succeeded, failed, cancelled = (int(row.succeeded), int(row.failed), int(row.cancelled)) if row else (0, 0, 0)
        done = succeeded + failed + cancelled
        out[name] = Figures(
            total=int(row.total) if row else 0,
            succeeded=succeeded,
            failed=failed,
            cancelled=cancelled,
            success_rate=succeeded / done if done else None,
            mean_duration_seconds=_float(row.mean_duration) if row else None,
            p50_duration_seconds=_float(cut.p50) if cut else None,
            p95_duration_seconds=_float(cut.p95) if cut else None,
            mean_queue_wait_seconds=_float(row.mean_wait) if row else None,
        )
    return out


def _float(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]


def _bucket(conn: AsyncConnection, width: float) -> ColumnElement[Any]:
    """The start of the UTC hour (or day) a task finished in, in seconds. SQLite's CAST truncates (the
    times are positive, so it floors); PostgreSQL's rounds, so it floors explicitly."""
    if conn.dialect.name == "postgresql":
        return func.floor(tasks.c.finished / width) * width
    return cast(tasks.c.finished / width, Integer) * width


async def finished_per(
    conn: AsyncConnection, scope: Scope, *, width: float = HOUR, max_buckets: int = 168
) -> list[tuple[float, int]]:
    """:func:`~asynctask_operator.core.statistics.finished_per_hour` in SQL (``width=DAY``: per UTC day):
    the tasks that finished in ``[since, until]``, whenever they were created."""
    within = [namespace_clause(scope.namespaces), tasks.c.finished <= scope.until]
    if scope.since is not None:
        within.append(tasks.c.finished >= scope.since)
    # Only the buckets kept are counted; the first finish (an index's first entry) still says where
    # the list starts, as it does in the core's function.
    earliest = (await conn.execute(select(func.min(tasks.c.finished)).where(*within))).scalar()
    if earliest is None:
        return per_bucket({}, scope.until, width=width, max_buckets=max_buckets)
    start = _bucket(conn, width).label("start")
    kept = tasks.c.finished >= scope.until - max_buckets * width
    statement = select(start, func.count().label("n")).where(*within, kept).group_by(start)
    counts = {float(row.start): int(row.n) for row in (await conn.execute(statement)).all()}
    counts.setdefault(math.floor(float(earliest) / width) * width, 0)
    return per_bucket(counts, scope.until, width=width, max_buckets=max_buckets)


async def failures_by_reason(conn: AsyncConnection, scope: Scope) -> list[tuple[str, int]]:
    """:func:`~asynctask_operator.core.statistics.failures_by_reason` in SQL."""
    reason = func.coalesce(func.nullif(tasks.c.reason, ""), UNKNOWN_REASON).label("reason")
    statement = (
        select(reason, func.count().label("n"))
        .where(scope.created_within(), tasks.c.phase == "Failed")
        .group_by(reason)
    )
    counts = [(str(row.reason), int(row.n)) for row in (await conn.execute(statement)).all()]
    return sorted(counts, key=lambda item: (-item[1], item[0]))


async def window(conn: AsyncConnection, scope: Scope) -> Window:
    """:func:`~asynctask_operator.core.statistics.window_of`: from ``since``, but not before the oldest task held."""
    statement = select(func.min(tasks.c.created)).where(
        namespace_clause(scope.namespaces), tasks.c.created <= scope.until
    )
    oldest = (await conn.execute(statement)).scalar()
    if oldest is None:
        return Window(scope.since, scope.until)
    return Window(float(oldest) if scope.since is None else max(scope.since, float(oldest)), scope.until)


@dataclasses.dataclass(frozen=True)
class Statistics:
    """Every figure of the console's statistics page over one window, and where they came from."""

    source: Literal["archive"]
    window: Window
    overall: Figures
    by_type: dict[str, Figures]
    by_queue: dict[str, Figures]
    finished_per_hour: list[tuple[float, int]]
    finished_per_day: list[tuple[float, int]]
    failures_by_reason: list[tuple[str, int]]


Part = Callable[[AsyncConnection], Awaitable[Any]]
"""One figure of the statistics page, read over a connection."""


async def statistics(
    run: Callable[[Part], Awaitable[Any]], scope: Scope, *, hours: int = 168, days: int = 90
) -> Statistics:
    """Every figure of the page: each part given to ``run``, which reads it over a connection of its
    choosing (the reader's: at once over several in PostgreSQL, one after the other in SQLite)."""

    async def overall(conn: AsyncConnection) -> Figures:
        return (await figures(conn, scope))[""]

    parts: list[Part] = [
        functools.partial(window, scope=scope),
        overall,
        functools.partial(figures, scope=scope, group_by="type"),
        functools.partial(figures, scope=scope, group_by="queue"),
        functools.partial(finished_per, scope=scope, width=HOUR, max_buckets=hours),
        functools.partial(finished_per, scope=scope, width=DAY, max_buckets=days),
        functools.partial(failures_by_reason, scope=scope),
    ]
    covered, every, by_type, by_queue, per_hour, per_day, failures = await asyncio.gather(*(run(p) for p in parts))
    return Statistics(
        source=SOURCE,
        window=covered,
        overall=every,
        by_type=by_type,
        by_queue=by_queue,
        finished_per_hour=per_hour,
        finished_per_day=per_day,
        failures_by_reason=failures,
    )
