"""The gateway reads the archive (issue 27, item 4): a gone task by name or uid, the history a page at
a time, an attempt's kept log, statistics over the archive; authorized like live reads; 503 when the
database is down, live routes unaffected. Against a real SQLite and a real PostgreSQL."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from asynctask_operator.archive.capture import Tail, log_row
from asynctask_operator.archive.records import row_of
from asynctask_operator.archive.writes import insert_logs, upsert_tasks
from asynctask_operator.gateway.access import Gateway
from asynctask_operator.gateway.auth import DENIED_TTL
from tests.support.gateway import NS, RunningGateway, running_gateway
from tests.support.rbac import grant

T = f"/v1/namespaces/{NS}"
T0 = 1_779_000_000.0


def stamp(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def finished(name: str, uid: str, created: float, phase: str = "Succeeded", **labels: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": NS, "uid": uid, "resourceVersion": str(int(created) % 100000),
                     "creationTimestamp": stamp(created), "labels": labels},
        "spec": {"type": "video", "queue": "gpu"},
        "status": {"phase": phase, "reason": "Completed" if phase == "Succeeded" else "RetriesExhausted",
                   "message": "done", "attempt": 1, "queuedTime": stamp(created), "startTime": stamp(created + 5),
                   "completionTime": stamp(created + 25), "durationSeconds": 20.0,
                   "effective": {"queue": "gpu", "ttlSecondsAfterFinished": 60, "retry": {"maxRetries": 3}},
                   "progress": {"percent": 80, "message": "almost"}, "result": {"url": f"s3://out/{name}"}},
    }  # fmt: skip


async def archive(engine: AsyncEngine, objs: list[dict[str, Any]], logs: list[dict[str, Any]] | None = None) -> None:
    async with engine.begin() as conn:
        await upsert_tasks(conn, [row_of(o, T0 + 1000) for o in objs])
        await insert_logs(conn, logs or [])


def tail(text: bytes) -> Tail:
    kept = Tail(1024)
    kept.add(text)
    return kept


@pytest.fixture()
async def gw(archive_dsn: str, archive_engine: AsyncEngine) -> AsyncIterator[RunningGateway]:
    """The gateway reading an empty archive of each kind (``archive_engine`` empties PostgreSQL's)."""
    async with running_gateway(archive_dsn=archive_dsn) as running:
        yield running


async def test_a_gone_task_is_read_from_the_archive_with_the_same_figures(
    gw: RunningGateway, archive_engine: AsyncEngine
) -> None:
    await archive(archive_engine, [finished("old", "u-1", T0)])
    answer = await gw.client.get(f"{T}/tasks/old", headers=gw.alice)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["archived"] is True and body["archivedTime"] == stamp(T0 + 1000)
    assert (body["phase"], body["percent"], body["headline"], body["attempt"], body["attemptsAllowed"]) == (
        "Succeeded", 100.0, "done", 1, 4
    )  # fmt: skip
    assert (body["durationSeconds"], body["waitSeconds"]) == (20.0, 5.0)
    assert "Retry-After" not in answer.headers and answer.headers["ETag"] == f'"{body["resourceVersion"]}"'
    result = await gw.client.get(f"{T}/tasks/old/result", headers=gw.alice)
    assert result.json() == {"result": {"url": "s3://out/old"}}
    missing = await gw.client.get(f"{T}/tasks/never", headers=gw.alice)
    assert missing.status_code == 404 and "live or archived" in missing.json()["detail"]


async def test_by_name_the_newest_by_uid_exactly(gw: RunningGateway, archive_engine: AsyncEngine) -> None:
    await archive(archive_engine, [finished("again", "u-old", T0), finished("again", "u-new", T0 + 60, "Failed")])
    assert (await gw.client.get(f"{T}/tasks/again", headers=gw.alice)).json()["uid"] == "u-new"
    older = await gw.client.get(f"{T}/tasks/again", params={"uid": "u-old"}, headers=gw.alice)
    assert older.json()["uid"] == "u-old" and older.json()["phase"] == "Succeeded"
    other = await gw.client.get(f"{T}/tasks/somethingelse", params={"uid": "u-old"}, headers=gw.alice)
    assert other.status_code == 404  # a uid is read only under its own name and namespace


async def test_the_history_pages_by_keyset_and_filters(gw: RunningGateway, archive_engine: AsyncEngine) -> None:
    objs = [finished(f"t{i:02d}", f"u-{i:02d}", T0 + i, "Failed" if i % 3 == 0 else "Succeeded", tier="a" if i % 2 else "b")
            for i in range(12)]  # fmt: skip
    await archive(archive_engine, objs)
    seen: list[str] = []
    params: dict[str, Any] = {"limit": 5}
    while True:
        page = await gw.client.get(f"{T}/history", params=params, headers=gw.alice)
        assert page.status_code == 200, page.text
        seen += [t["name"] for t in page.json()["items"]]
        if "continue" not in page.json():
            break
        params = {"limit": 5, "continue": page.json()["continue"]}
    assert seen == [f"t{i:02d}" for i in reversed(range(12))]  # newest first, each once
    failed_a = await gw.client.get(
        f"{T}/history", params={"phase": "Failed", "labelSelector": "tier=a"}, headers=gw.alice
    )
    assert [t["name"] for t in failed_a.json()["items"]] == ["t09", "t03"]
    assert all(t["archived"] for t in failed_a.json()["items"])
    bad = await gw.client.get(f"{T}/history", params={"labelSelector": "a in (b"}, headers=gw.alice)
    assert bad.status_code == 400 and bad.headers["content-type"] == "application/problem+json"
    torn = await gw.client.get(f"{T}/history", params={"continue": "not-a-cursor"}, headers=gw.alice)
    assert torn.status_code == 400


async def test_history_and_archived_reads_are_authorized_like_live_ones(
    gw: RunningGateway, archive_engine: AsyncEngine
) -> None:
    await archive(archive_engine, [finished("old", "u-1", T0)])
    assert (await gw.client.get(f"{T}/history", headers=gw.bob)).status_code == 403
    assert (await gw.client.get(f"{T}/tasks/old", headers=gw.bob)).status_code == 403
    gw.rules.append(grant("bob", "get", "asynctasks", NS, "old"))
    gw.now[0] += DENIED_TTL + 0.1  # the refusal cached a moment
    assert (await gw.client.get(f"{T}/tasks/old", headers=gw.bob)).status_code == 200  # by name, as live
    assert (await gw.client.get(f"{T}/history", headers=gw.bob)).status_code == 403  # a listing: namespace-wide
    other = await gw.client.get("/v1/namespaces/elsewhere/history", headers=gw.alice)
    assert other.status_code == 403  # alice may read NS only


async def test_an_attempts_log_is_the_archives_copy_once_its_pod_is_gone(
    gw: RunningGateway, archive_engine: AsyncEngine
) -> None:
    logs = [log_row("u-1", 1, T0 + 30, pod="old-1-x", container="main", tail=tail(b"frame 1\nframe 2\n\xff\n"))]
    await archive(archive_engine, [finished("old", "u-1", T0)], logs)
    answer = await gw.client.get(f"{T}/tasks/old/log", headers=gw.alice)
    assert answer.status_code == 403  # alice may not get pods/log
    gw.rules.append(grant("alice", "get", "pods/log", NS, "old-1-x"))  # the pod, by name, as kubectl logs asks
    gw.now[0] += DENIED_TTL + 0.1
    answer = await gw.client.get(f"{T}/tasks/old/log", headers=gw.alice)
    assert answer.status_code == 200 and answer.text == "frame 1\nframe 2\n\ufffd\n"
    assert answer.headers["X-Log-Source"] == "archive" and "X-Log-Truncated" not in answer.headers
    assert (await gw.client.get(f"{T}/tasks/old/log", params={"attempt": 2}, headers=gw.alice)).status_code == 404


async def test_statistics_over_the_archive_say_so(gw: RunningGateway, archive_engine: AsyncEngine) -> None:
    await archive(
        archive_engine, [finished(f"t{i}", f"u-{i}", T0 + i, "Failed" if i == 0 else "Succeeded") for i in range(4)]
    )
    answer = (await gw.client.get(f"{T}/statistics", headers=gw.alice)).json()
    assert answer["source"] == "archive" and "archive" in answer["note"]
    [overall] = answer["groups"]
    assert (overall["total"], overall["succeeded"], overall["failed"], overall["successRate"]) == (4, 3, 1, 0.75)
    live = (await gw.client.get(f"{T}/statistics", params={"source": "live"}, headers=gw.alice)).json()
    assert live["source"] == "live" and live["groups"][0]["total"] == 0  # nothing live here


async def test_a_database_that_does_not_answer_is_503_and_live_reads_go_on(tmp_path: Any) -> None:
    dsn = "postgresql://nobody@127.0.0.1:1/none"  # nothing listens on port 1
    async with running_gateway(archive_dsn=dsn) as gw:
        for path in (f"{T}/history", f"{T}/tasks/gone", f"{T}/statistics"):
            answer = await gw.client.get(path, headers=gw.alice)
            assert answer.status_code == 503, (path, answer.text)
            assert answer.headers["Retry-After"] and "archive is unavailable" in answer.json()["detail"]
        submitted = await gw.client.post(f"{T}/tasks", json={"type": "echo"}, headers=gw.alice)
        assert submitted.status_code == 202
        assert (await gw.client.get(submitted.headers["Location"], headers=gw.alice)).status_code == 200
        assert (await gw.client.get(f"{T}/tasks", headers=gw.alice)).status_code == 200


async def test_without_an_archive_history_is_404_and_gone_tasks_are_404() -> None:
    async with running_gateway() as gw:
        assert isinstance(gw.gateway, Gateway) and gw.gateway.archive is None
        history = await gw.client.get(f"{T}/history", headers=gw.alice)
        assert history.status_code == 404 and "--archive-dsn" in history.json()["detail"]
        assert (await gw.client.get(f"{T}/tasks/gone", headers=gw.alice)).status_code == 404
        assert (await gw.client.get(f"{T}/statistics", headers=gw.alice)).json()["source"] == "live"


@pytest.mark.parametrize("hostile", ["' OR 1=1 --", "x'); DROP TABLE tasks; --", "%", "_", "\\"])
async def test_hostile_filters_are_only_ever_values(
    gw: RunningGateway, archive_engine: AsyncEngine, hostile: str
) -> None:
    await archive(archive_engine, [finished("old", "u-1", T0)])
    for params in (
        {"q": hostile},
        {"type": hostile},
        {"reason": hostile},
        {"labelSelector": f"k={json.dumps(hostile)[1:-1]}"},
    ):
        answer = await gw.client.get(f"{T}/history", params=params, headers=gw.alice)
        assert answer.status_code in (200, 400), answer.text
        if answer.status_code == 200:
            assert answer.json()["items"] == []
    assert [t["name"] for t in (await gw.client.get(f"{T}/history", headers=gw.alice)).json()["items"]] == ["old"]
