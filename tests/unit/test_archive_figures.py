"""The statistics SQL on both databases against the core's own functions over the same tasks: the
archive answers the figures the live statistics would give, for any window."""

from __future__ import annotations

import math
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from asynctask_operator.archive import ArchiveReader, Scope
from asynctask_operator.archive.figures import DAY
from asynctask_operator.archive.writes import upsert_tasks
from asynctask_operator.core.statistics import (
    Figures,
    TaskFacts,
    failures_by_reason,
    finished_per_hour,
    per_bucket,
    summarize,
    window_of,
)
from asynctask_operator.core.views import TaskView
from tests.unit.archive_builders import NS, T0, finished, row, spread

Obj = dict[str, Any]
END = T0 + 40 * DAY
TASKS = spread(300, seed=11)
ROWS = [row(o) for o in TASKS]


@pytest.fixture()
async def tasks(archive_engine: AsyncEngine) -> list[Obj]:
    async with archive_engine.begin() as conn:
        await upsert_tasks(conn, ROWS)
    return TASKS


def facts(objs: list[Obj], namespaces: tuple[str, ...] | None) -> list[TaskFacts]:
    return [TaskView.of(o).facts() for o in objs if namespaces is None or o["metadata"]["namespace"] in namespaces]


def same(a: Figures, b: Figures) -> bool:
    """Equal, the means to the last bits a database's float sum may differ in."""
    for name, x in vars(a).items():
        y = getattr(b, name)
        if isinstance(x, float) and isinstance(y, float):
            if not math.isclose(x, y, rel_tol=1e-12):
                return False
        elif x != y:
            return False
    return True


WINDOWS = [
    (None, None, END),
    ((NS,), None, END),
    ((NS, "team-b"), T0 + 3600, END),
    (None, T0 + 600, T0 + 7200),
    ((NS,), T0 + 10 * DAY, END),  # nothing created in it
    ((), None, END),
]


@pytest.mark.parametrize(("namespaces", "since", "until"), WINDOWS)
async def test_figures_are_the_live_statistics_figures(
    archive_engine: AsyncEngine, tasks: list[Obj], namespaces: tuple[str, ...] | None, since: float | None, until: float
) -> None:
    group_by: Any
    for group_by in (None, "type", "queue"):
        expected = summarize(facts(tasks, namespaces), since=since, until=until, group_by=group_by)
        answer = await ArchiveReader(archive_engine).figures(Scope(namespaces, since, until), group_by)
        assert list(answer) == list(expected), group_by
        assert all(same(answer[k], expected[k]) for k in expected), (group_by, answer, expected)
        if namespaces is None and since is None and group_by is not None:
            assert len(expected) == 3 and all(f.p95_duration_seconds for f in expected.values())  # something to compare


@pytest.mark.parametrize(("namespaces", "since", "until"), WINDOWS)
async def test_window_finishes_and_failures_are_the_live_ones(
    archive_engine: AsyncEngine, tasks: list[Obj], namespaces: tuple[str, ...] | None, since: float | None, until: float
) -> None:
    chosen = facts(tasks, namespaces)
    stats = await ArchiveReader(archive_engine).statistics(Scope(namespaces, since, until), hours=48, days=30)
    assert stats.source == "archive"
    assert stats.window == window_of([f for f in chosen if f.created <= until], since, until)
    assert stats.finished_per_hour == finished_per_hour(chosen, since, until, max_buckets=48)
    assert stats.failures_by_reason == failures_by_reason(chosen, since, until)
    days: dict[float, int] = {}
    for f in chosen:
        if f.finished is not None and (since is None or f.finished >= since) and f.finished <= until:
            days[math.floor(f.finished / DAY) * DAY] = days.get(math.floor(f.finished / DAY) * DAY, 0) + 1
    assert stats.finished_per_day == per_bucket(days, until, width=DAY, max_buckets=30)
    assert same(stats.overall, summarize(chosen, since=since, until=until)[""])


async def test_percentiles_are_nearest_rank_with_ties(archive_engine: AsyncEngine) -> None:
    durations = [5.0, 1.0, 3.0, 3.0, 2.0, 8.0, 3.0, 13.0, 21.0, 1.0, 2.0]
    objs = [finished(f"t{i}", duration=d, created=T0 + i) for i, d in enumerate(durations)]
    objs.append(finished("running", phase="Running", duration=None))
    async with archive_engine.begin() as conn:
        await upsert_tasks(conn, [row(o) for o in objs])
    figures = (await ArchiveReader(archive_engine).figures(Scope(None, None, END)))[""]
    ordered = sorted(durations)
    assert figures.p50_duration_seconds == ordered[math.ceil(0.5 * 11) - 1] == 3.0
    assert figures.p95_duration_seconds == ordered[math.ceil(0.95 * 11) - 1] == 21.0
    assert (figures.total, figures.succeeded) == (12, 11)


async def test_finishes_older_than_the_hours_kept_set_where_the_list_starts(archive_engine: AsyncEngine) -> None:
    objs = [finished("old", created=T0, wait=0.0, duration=10.0)]  # finished 5 days before the end
    async with archive_engine.begin() as conn:
        await upsert_tasks(conn, [row(o) for o in objs])
    until = T0 + 5 * DAY
    stats = await ArchiveReader(archive_engine).statistics(Scope(None, None, until), hours=24)
    assert stats.finished_per_hour == finished_per_hour(
        [TaskView.of(o).facts() for o in objs], None, until, max_buckets=24
    )
    assert len(stats.finished_per_hour) == 24 and sum(n for _, n in stats.finished_per_hour) == 0


async def test_an_empty_archive_answers_empty_figures(archive_engine: AsyncEngine) -> None:
    stats = await ArchiveReader(archive_engine).statistics(Scope((NS,), None, END))
    assert stats.overall == summarize([], since=None, until=END)[""]
    assert stats.by_type == {} and stats.failures_by_reason == []
    assert stats.window.since is None
