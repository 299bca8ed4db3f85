"""The console's History (issue 27, item 4): archived tasks as the task table shows live ones, a keyset
page at a time, the filter, the export of every match streamed; an archived task's page with its kept
log; statistics over the archive for windows of days to months. Real SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import html
import io
import json
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from asynctask_operator.archive.capture import Tail, log_row
from asynctask_operator.archive.records import row_of
from asynctask_operator.archive.writes import insert_logs, upsert_tasks
from asynctask_operator.gateway.auth import ALLOWED_TTL
from tests.support.gateway import EPOCH, NS, RunningGateway, running_gateway
from tests.support.rbac import Rule

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def stamp(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def finished(i: int, phase: str = "Succeeded", ago_days: float = 1.0) -> dict[str, Any]:
    created = EPOCH - ago_days * 86400 + i
    return {
        "metadata": {"name": f"old-{i:02d}", "namespace": NS, "uid": f"u-{i:02d}", "resourceVersion": str(100 + i),
                     "creationTimestamp": stamp(created), "labels": {"tier": "a" if i % 2 else "b"}},
        "spec": {"type": "video", "queue": "gpu"},
        "status": {"phase": phase, "reason": "Completed" if phase == "Succeeded" else "RetriesExhausted",
                   "message": f"ended {i}", "attempt": 1, "queuedTime": stamp(created), "startTime": stamp(created + 2),
                   "completionTime": stamp(created + 12), "durationSeconds": 10.0,
                   "attempts": [{"attempt": 1, "job": f"old-{i:02d}-1", "startTime": stamp(created + 2),
                                 "finishTime": stamp(created + 12), "outcome": phase}],
                   "effective": {"queue": "gpu", "ttlSecondsAfterFinished": 60, "retry": {"maxRetries": 3}}},
    }  # fmt: skip


async def archive(engine: AsyncEngine, objs: list[dict[str, Any]], logs: list[dict[str, Any]] | None = None) -> None:
    async with engine.begin() as conn:
        await upsert_tasks(conn, [row_of(o, EPOCH - 60) for o in objs])
        await insert_logs(conn, logs or [])


@pytest.fixture()
async def gw(archive_dsn: str, archive_engine: AsyncEngine) -> AsyncIterator[RunningGateway]:
    async with running_gateway(archive_dsn=archive_dsn) as running:
        signed = await running.client.post("/ui/login", content="token=alice-token", headers=FORM)
        assert signed.status_code == 303
        yield running


def names(page: str) -> list[str]:
    return re.findall(r'<tr data-key="[^/"]+/([^"]+)" data-uid', page)


async def test_the_history_pages_through_the_archive_newest_first(
    gw: RunningGateway, archive_engine: AsyncEngine
) -> None:
    await archive(archive_engine, [finished(i, "Failed" if i % 5 == 0 else "Succeeded") for i in range(30)])
    seen: list[str] = []
    url = "/ui/history?size=25"
    while url:
        page = (await gw.client.get(url)).text
        seen += names(page)
        older = re.search(r'<a rel="next" href="(\?[^"]+)">Older', page)
        url = "/ui/history" + html.unescape(older.group(1)) if older else ""
    assert seen == [f"old-{i:02d}" for i in reversed(range(30))]
    failed = (await gw.client.get("/ui/history", params={"phase": "Failed", "label": "tier=b"})).text
    assert names(failed) == ["old-20", "old-10", "old-00"]
    assert 'href="/ui/namespaces/media/tasks/old-20?uid=u-20"' in failed


async def test_the_export_streams_every_match_not_a_page(gw: RunningGateway, archive_engine: AsyncEngine) -> None:
    await archive(archive_engine, [finished(i) for i in range(60)])
    exported = await gw.client.get("/ui/export/history.csv", params={"size": "25"})
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert len(rows) == 60 and rows[0]["name"] == "old-59" and rows[0]["percent"] == "100.0"
    as_json = json.loads((await gw.client.get("/ui/export/history.json", params={"q": "old-1"})).text)
    assert sorted(r["name"] for r in as_json) == [f"old-1{i}" for i in range(10)]


async def test_an_archived_tasks_page_is_read_only_with_its_kept_log(
    gw: RunningGateway, archive_engine: AsyncEngine
) -> None:
    kept = Tail(1024)
    kept.add(b"encoding\ndone\n")
    await archive(archive_engine, [finished(7)], [log_row("u-07", 1, EPOCH - 50, pod="old-07-1-x", tail=kept)])
    page = html.unescape((await gw.client.get(f"/ui/namespaces/{NS}/tasks/old-07", params={"uid": "u-07"})).text)
    assert 'data-testid="archived"' in page and "as the archive kept it" in page
    assert "/cancel" not in page and "/retry" not in page and "data-live=" not in page
    assert "Attempt 1" in page and "does not allow you to get pods/log" in page
    log = await gw.client.get(f"/ui/namespaces/{NS}/tasks/old-07/log", params={"uid": "u-07", "attempt": "1"})
    assert log.status_code == 403  # alice may not get pods/log: the kept log is the pod's
    gw.allow.add(("alice", "get", "pods/log", NS))
    gw.now[0] += 5.1
    page = html.unescape((await gw.client.get(f"/ui/namespaces/{NS}/tasks/old-07", params={"uid": "u-07"})).text)
    assert 'data-log="/ui/namespaces/media/tasks/old-07/log?uid=u-07"' in page
    log = await gw.client.get(f"/ui/namespaces/{NS}/tasks/old-07/log", params={"uid": "u-07", "attempt": "1"})
    assert (log.status_code, log.text, log.headers["X-Log-Source"]) == (200, "encoding\ndone\n", "archive")


async def test_statistics_of_a_month_come_from_the_archive(gw: RunningGateway, archive_engine: AsyncEngine) -> None:
    await archive(archive_engine, [finished(i, "Failed" if i < 3 else "Succeeded", ago_days=10 + i) for i in range(12)])
    page = html.unescape((await gw.client.get("/ui/statistics", params={"window": "30d"})).text)
    assert "Over the archive's tasks" in page and "Finished per day" in page
    assert "12 tasks, 9 succeeded, 3 failed" in page
    week = html.unescape((await gw.client.get("/ui/statistics", params={"window": "7d"})).text)
    assert "0 tasks" in week  # none were created in the last week
    live = html.unescape((await gw.client.get("/ui/statistics", params={"window": "30d", "source": "live"})).text)
    assert "Over the tasks still present" in live and "0 tasks" in live


async def test_a_reader_of_every_namespace_reads_the_history_of_deleted_ones_as_kubectl_does(
    gw: RunningGateway, archive_engine: AsyncEngine
) -> None:
    """The archive outlives namespaces: a user who may list tasks cluster-wide reads all of it in History
    and its statistics (what ``kubectl asynctask history -A`` reads); a user of some namespaces, theirs."""
    gone = finished(1)
    gone["metadata"] |= {"namespace": "deleted-team", "name": "from-a-deleted-namespace", "uid": "u-gone"}
    await archive(archive_engine, [finished(0), gone])

    def overall(page: str) -> str:
        found = re.search(r"(\d+) tasks, (\d+) succeeded", html.unescape(page))
        assert found, page
        return found.group(1)

    gw.rules.append(Rule("alice", ("list",), "asynctasks", ""))  # a ClusterRole's list, bound cluster-wide
    every = html.unescape((await gw.client.get("/ui/history")).text)
    assert sorted(names(every)) == ["from-a-deleted-namespace", "old-00"]
    assert overall((await gw.client.get("/ui/statistics", params={"window": "30d"})).text) == "2"
    chosen = html.unescape((await gw.client.get("/ui/history", params={"namespace": NS})).text)
    assert names(chosen) == ["old-00"]  # a namespace chosen: that one only

    gw.rules.clear()
    gw.now[0] += ALLOWED_TTL + 1  # the cached answer to the cluster-wide review expires
    mine = html.unescape((await gw.client.get("/ui/history")).text)
    assert names(mine) == ["old-00"]  # allowed in NS only: nothing of another namespace, deleted or not
    assert overall((await gw.client.get("/ui/statistics", params={"window": "30d"})).text) == "1"


async def test_without_an_archive_the_history_says_how_to_get_one() -> None:
    async with running_gateway() as gw:
        await gw.client.post("/ui/login", content="token=alice-token", headers=FORM)
        page = (await gw.client.get("/ui/history")).text
        assert page.count("<tr data-key=") == 0 and "reads no archive" in page and "--archive-dsn" in page
