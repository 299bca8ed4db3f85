"""The history query on both databases: every filter against the same filter in Python, keyset pages
that neither repeat nor skip (even with rows added between pages), and parameters that try to be SQL."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from asynctask_operator.archive import ArchiveReader, BadQuery, HistoryQuery
from asynctask_operator.archive.history import Position, encode_cursor
from asynctask_operator.archive.writes import upsert_tasks
from asynctask_operator.core.labelselectors import matches, parse
from tests.support.archive_db import count
from tests.unit.archive_builders import NS, T0, finished, row, spread

Obj = dict[str, Any]


async def write(engine: AsyncEngine, objs: list[Obj]) -> None:
    async with engine.begin() as conn:
        await upsert_tasks(conn, [row(o) for o in objs])


async def every_page(reader: ArchiveReader, query: HistoryQuery) -> list[list[str]]:
    pages: list[list[str]] = []
    cursor = None
    while True:
        page = await reader.page(HistoryQuery(**{**vars(query), "cursor": cursor}))
        pages.append([t.uid for t in page.items])
        cursor = page.next_cursor
        if cursor is None:
            return pages


def newest_first(objs: list[Obj], keep: Callable[[Obj], bool] = lambda o: True) -> list[str]:
    rows = [row(o) for o in objs if keep(o)]
    return [r.uid for r in sorted(rows, key=lambda r: (r.created, r.uid), reverse=True)]


def meta(o: Obj) -> Obj:
    return dict(o["metadata"])


def status(o: Obj) -> Obj:
    return dict(o["status"])


SPREAD = spread(120)


@pytest.fixture()
async def tasks(archive_engine: AsyncEngine) -> list[Obj]:
    await write(archive_engine, SPREAD)
    return SPREAD


async def test_pages_cover_every_task_once_newest_first(archive_engine: AsyncEngine, tasks: list[Obj]) -> None:
    pages = await every_page(ArchiveReader(archive_engine), HistoryQuery(limit=7))
    assert [len(p) for p in pages[:-1]] == [7] * (len(pages) - 1) and 0 < len(pages[-1]) <= 7
    assert [uid for page in pages for uid in page] == newest_first(tasks)


async def test_the_last_full_page_says_there_is_no_next(archive_engine: AsyncEngine) -> None:
    await write(archive_engine, [finished(f"t{i}", created=T0 + i) for i in range(4)])
    page = await ArchiveReader(archive_engine).page(HistoryQuery(limit=4))
    assert len(page.items) == 4 and page.next_cursor is None


async def test_pages_are_stable_when_tasks_are_archived_between_them(archive_engine: AsyncEngine) -> None:
    first_batch = [finished(f"t{i:03d}", created=T0 + (i // 3) * 60) for i in range(30)]  # ties in created
    await write(archive_engine, first_batch)
    reader = ArchiveReader(archive_engine)
    seen: list[str] = []
    page = await reader.page(HistoryQuery(limit=8))
    seen += [t.uid for t in page.items]
    newer = [finished(f"n{i}", created=T0 + 10_000 + i) for i in range(5)]
    await write(archive_engine, newer)  # finished meanwhile: newer than any page already read
    while page.next_cursor is not None:
        page = await reader.page(HistoryQuery(limit=8, cursor=page.next_cursor))
        seen += [t.uid for t in page.items]
        await write(archive_engine, [finished(f"m{len(seen)}", created=T0 + 20_000 + len(seen))])
    assert seen == newest_first(first_batch)  # not one repeated, not one skipped


FILTERS: list[tuple[str, dict[str, Any], Callable[[Obj], bool]]] = [
    ("namespace", {"namespaces": (NS,)}, lambda o: meta(o)["namespace"] == NS),
    ("namespaces", {"namespaces": (NS, "team-b")}, lambda o: True),
    ("no namespace", {"namespaces": ()}, lambda o: False),
    ("type", {"type": "render"}, lambda o: o["spec"]["type"] == "render"),
    ("queue", {"queue": "gpu"}, lambda o: status(o)["effective"]["queue"] == "gpu"),
    ("phase", {"phase": "Failed"}, lambda o: status(o)["phase"] == "Failed"),
    ("reason", {"reason": "DeadlineExceeded"}, lambda o: status(o).get("reason") == "DeadlineExceeded"),
    ("since", {"since": T0 + 3600}, lambda o: row(o).created >= T0 + 3600),
    ("until", {"until": T0 + 3600}, lambda o: row(o).created <= T0 + 3600),
    ("q", {"q": "00"}, lambda o: "00" in meta(o)["name"]),
    ("q upper", {"q": "TASK-01"}, lambda o: "task-01" in meta(o)["name"]),
    ("together", {"namespaces": (NS,), "phase": "Succeeded", "type": "echo", "q": "1"},
     lambda o: meta(o)["namespace"] == NS and status(o)["phase"] == "Succeeded" and o["spec"]["type"] == "echo"
     and "1" in meta(o)["name"]),
]  # fmt: skip


async def test_each_filter_chooses_what_python_chooses(archive_engine: AsyncEngine, tasks: list[Obj]) -> None:
    for what, filters, keep in FILTERS:
        pages = await every_page(ArchiveReader(archive_engine), HistoryQuery(limit=9, **filters))
        expected = newest_first(tasks, keep)
        assert [uid for page in pages for uid in page] == expected, what
        assert expected or what == "no namespace", what  # the table has something to find


SELECTORS = ["app=web", "app==api", "app!=web", "tier", "!tier", "app=web,tier=b", "app,!tier", "tier!=a,app=api"]


async def test_label_selectors_match_as_kubernetes_does(archive_engine: AsyncEngine, tasks: list[Obj]) -> None:
    for selector in SELECTORS:
        pages = await every_page(ArchiveReader(archive_engine), HistoryQuery(limit=50, label_selector=selector))
        expected = newest_first(tasks, lambda o: matches(parse(selector), meta(o)["labels"]))  # noqa: B023
        assert [uid for page in pages for uid in page] == expected, selector
        assert expected, selector


async def test_label_keys_with_prefixes_dots_and_dashes(archive_engine: AsyncEngine) -> None:
    labels = {"app.kubernetes.io/name": "web", "example.com/tier-x": "a.b_c", "under_score": "1"}
    await write(archive_engine, [finished("t", labels=labels), finished("u", labels={"app.kubernetes.io/name": "db"})])
    reader = ArchiveReader(archive_engine)
    for selector, names in [
        ("app.kubernetes.io/name=web", ["t"]),
        ("example.com/tier-x=a.b_c", ["t"]),
        ("under_score", ["t"]),
        ("app.kubernetes.io/name", ["t", "u"]),
        ("!example.com/tier-x", ["u"]),
    ]:
        page = await reader.page(HistoryQuery(label_selector=selector))
        assert sorted(t.name for t in page.items) == names, selector


HOSTILE_Q = ["'; DROP TABLE tasks; --", "%", "_", "\\", "a%b", "' OR '1'='1", '"', "\x00", "task-00%' --"]


async def test_a_name_substring_is_only_ever_a_substring(archive_engine: AsyncEngine, tasks: list[Obj]) -> None:
    await write(archive_engine, [finished("literal-%-_-name", created=T0)])
    for q in HOSTILE_Q:
        try:
            page = await ArchiveReader(archive_engine).page(HistoryQuery(q=q, limit=1000))
            assert all(q.lower() in t.name for t in page.items), q
            assert [t.name for t in page.items] == (["literal-%-_-name"] if q.lower() in "literal-%-_-name" else []), q
        except BadQuery:
            pytest.fail("a substring is never refused")
        except Exception as exc:  # PostgreSQL refuses a NUL in text: refused, not run
            assert q == "\x00", exc
        assert await count(archive_engine) == len(tasks) + 1


HOSTILE_SELECTORS = ["app=web' OR '1'='1", "app in (web)", "x=y;DELETE FROM tasks", "a=b)", "'=1", 'a"b=c', "=web"]


@pytest.mark.parametrize("selector", HOSTILE_SELECTORS)
async def test_a_selector_that_is_not_one_is_refused_naming_it(archive_engine: AsyncEngine, selector: str) -> None:
    with pytest.raises(BadQuery, match="labelSelector"):
        await ArchiveReader(archive_engine).page(HistoryQuery(label_selector=selector))


def cursor_of(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


HOSTILE_CURSORS = [
    "not-a-cursor", "", "!!!", cursor_of({"created": 1}), cursor_of([1]), cursor_of(["1' OR 1=1", "x"]),
    cursor_of([True, "x"]), cursor_of([1e999, "x"]), cursor_of([1, 2]), cursor_of([1, "x" * 300]),
    base64.urlsafe_b64encode(b"\xff\xfe").decode(),
]  # fmt: skip


@pytest.mark.parametrize("cursor", HOSTILE_CURSORS)
async def test_a_cursor_that_is_not_ours_is_refused(archive_engine: AsyncEngine, cursor: str) -> None:
    query = HistoryQuery(cursor=cursor)
    if cursor == "":
        await ArchiveReader(archive_engine).page(query)  # empty: the first page
        return
    with pytest.raises(BadQuery, match="continue"):
        await ArchiveReader(archive_engine).page(query)


async def test_a_well_formed_cursor_carrying_sql_is_only_a_position(
    archive_engine: AsyncEngine, tasks: list[Obj]
) -> None:
    cursor = encode_cursor(Position(T0 + 10**6, "zzz'); DELETE FROM tasks; --"))
    page = await ArchiveReader(archive_engine).page(HistoryQuery(cursor=cursor, limit=1000))
    assert [t.uid for t in page.items] == newest_first(tasks)
    assert await count(archive_engine) == len(tasks)


@pytest.mark.parametrize("limit", [0, -1, 1001])
async def test_a_limit_out_of_range_is_refused(archive_engine: AsyncEngine, limit: int) -> None:
    with pytest.raises(BadQuery, match="limit"):
        await ArchiveReader(archive_engine).page(HistoryQuery(limit=limit))
