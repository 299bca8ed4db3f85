"""The archiver against kmock's emulator and a real database, beside the real operator: finished tasks
are recorded with their logs and marked; with the archive required the TTL waits for the mark; a task
deleted by hand is recorded from its last state; odd input is stored safely."""

from __future__ import annotations

import asyncio
import json
import pathlib
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import kmock
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from asynctask_operator.archive import ArchiveReader, HistoryQuery
from asynctask_operator.core.archiving import ANNOTATION_ARCHIVED, archived_in
from asynctask_operator.testing.archiving import InProcessArchiver
from asynctask_operator.testing.cluster import AT, NS, Cluster
from asynctask_operator.testing.operators import Operator, eventually
from tests.support.archive_db import count

TASK_API = "/apis/asynctask.dev/v1alpha1"


@pytest.fixture()
async def archiver(
    cluster: Cluster, kubeconfig: pathlib.Path, tmp_path: pathlib.Path, archive_dsn: str, archive_engine: AsyncEngine
) -> AsyncIterator[InProcessArchiver]:
    archiver = InProcessArchiver(kubeconfig, archive_dsn, tmp_path / "archive.log")
    await archiver.start()
    yield archiver
    await archiver.stop()


def serve_log(k: kmock.KubernetesEmulator, pod: str, body: bytes) -> None:
    k["get", f"/api/v1/namespaces/{NS}/pods/{pod}/log"] << body


async def stored(engine: AsyncEngine, name: str) -> Any:
    return await ArchiveReader(engine).latest(NS, name)


def gone(cluster: Cluster, name: str) -> bool:
    return (AT, NS, name) not in cluster.k.objects or cluster.k.objects[AT, NS, name].deleted


async def test_finished_tasks_are_recorded_with_their_logs_and_marked(
    cluster: Cluster, operator: Operator, archiver: InProcessArchiver, archive_engine: AsyncEngine
) -> None:
    await cluster.create_tasktype("echo")
    await cluster.create_task("ok", {"type": "echo", "ttlSecondsAfterFinished": 3600}, labels={"app": "web"})
    await cluster.create_task("bad", {"type": "echo", "retry": {"maxRetries": 1, "backoff": "Fixed", "baseSeconds": 1}})
    for name in ("ok", "bad"):
        await eventually(lambda n=name: cluster.phase(n) == "Running", what=f"{name} Running")  # type: ignore[misc]
    serve_log(cluster.k, "ok-1-pod", b"hello\nworld\n")
    serve_log(cluster.k, "bad-1-pod", b"first try failed\n")
    serve_log(cluster.k, "bad-2-pod", b"second try failed\n")
    await cluster.job_succeeds("ok-1", termination_message='{"answer": 42}')
    await cluster.job_fails("bad-1", exit_code=2)
    await eventually(lambda: (cluster.status("bad").get("attempt") or 0) == 2, what="bad's second attempt")
    await cluster.job_fails("bad-2", exit_code=3)
    for name in ("ok", "bad"):
        await eventually(lambda n=name: archived_in(cluster.task(n)), timeout=20, what=f"{name} marked")  # type: ignore[misc]
    ok, bad = await stored(archive_engine, "ok"), await stored(archive_engine, "bad")
    assert (ok.phase, ok.labels, ok.object["status"].get("result")) == ("Succeeded", {"app": "web"}, {"answer": 42})
    assert (bad.phase, bad.reason, bad.attempts) == ("Failed", "RetriesExhausted", 2)
    assert ok.uid == cluster.task("ok")["metadata"]["uid"]
    reader = ArchiveReader(archive_engine)
    assert (await reader.log(ok.uid, 1)).content == b"hello\nworld\n"  # type: ignore[union-attr]
    assert [(log.attempt, log.error) for log in await reader.logs(bad.uid)] == [(1, None), (2, None)]
    assert (await reader.log(bad.uid, 2)).text == "second try failed\n"  # type: ignore[union-attr]
    assert cluster.task("ok")["metadata"]["annotations"][ANNOTATION_ARCHIVED].startswith("1/")
    assert await count(archive_engine) == 2


@pytest.mark.operator_args("--archive-required")
async def test_with_the_archive_required_the_ttl_waits_for_the_archive(
    cluster: Cluster, operator: Operator, kubeconfig: pathlib.Path, tmp_path: pathlib.Path,
    archive_dsn: str, archive_engine: AsyncEngine,
) -> None:  # fmt: skip
    await cluster.create_tasktype("echo")
    await cluster.create_task("short", {"type": "echo", "ttlSecondsAfterFinished": 1})
    await eventually(lambda: cluster.phase("short") == "Running", what="Running")
    await cluster.job_succeeds("short-1")
    await eventually(lambda: cluster.phase("short") == "Succeeded", what="Succeeded")
    # Real time, briefly: the operator's own TTL timer fires 1 s after completion; nothing else would
    # show that it held the deletion rather than not having looked yet.
    await asyncio.sleep(2.5)
    assert not gone(cluster, "short"), "deleted at its TTL before it was archived"
    archiver = InProcessArchiver(kubeconfig, archive_dsn, tmp_path / "archive.log")
    await archiver.start()
    try:
        await eventually(lambda: gone(cluster, "short"), timeout=20, what="deleted once archived")
    finally:
        await archiver.stop()
    row = await stored(archive_engine, "short")
    assert row is not None and row.phase == "Succeeded"


async def test_a_task_deleted_by_hand_is_recorded_from_its_last_state(
    cluster: Cluster, operator: Operator, archiver: InProcessArchiver, archive_engine: AsyncEngine
) -> None:
    await cluster.create_tasktype("echo")
    await cluster.create_task("doomed", {"type": "echo"})
    await eventually(lambda: cluster.phase("doomed") == "Running", what="Running")
    serve_log(cluster.k, "doomed-1-pod", b"half way\n")
    await cluster.pod_waiting("doomed-1", "ContainerCreating")  # its pod exists
    await cluster.delete(TASK_API, "asynctasks/doomed")
    await eventually(rows(archive_engine, 1), what="a row")
    row = await stored(archive_engine, "doomed")
    assert row is not None and (row.phase, row.finished) == ("Running", None)
    log = await ArchiveReader(archive_engine).log(row.uid, 1)
    assert log is not None and log.content == b"half way\n"


async def test_odd_input_is_stored_safely_and_the_archiver_goes_on(
    cluster: Cluster, archiver: InProcessArchiver, archive_engine: AsyncEngine
) -> None:
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    done = {"phase": "Succeeded", "attempt": 1, "completionTime": now, "attempts": [{"attempt": 1, "job": "x-1"}]}
    huge = {**done, "result": {"blob": "x" * 900_000}}
    await cluster.create_task("huge", {"type": "echo"}, labels={"weird key": "spaces & 'quotes' \"too\""})
    await cluster.create_task("binary", {"type": "echo"}, labels={"ünï": "cødé"})
    await cluster.create_task("broken", {"type": "echo"})
    uid = cluster.task("binary")["metadata"]["uid"]
    labels = {"asynctask.dev/task": "binary", "asynctask.dev/attempt": "1", "asynctask.dev/task-uid": uid}
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "binary-1-pod", "namespace": NS, "labels": labels}}
    assert (await cluster.k.post(f"/api/v1/namespaces/{NS}/pods", json=pod)).status == 200
    serve_log(cluster.k, "binary-1-pod", b"\xff\xfe\x00binary \xc3\x28 bytes\n")  # before it finishes
    await cluster.patch(TASK_API, "asynctasks/huge", {"status": huge})
    await cluster.patch(TASK_API, "asynctasks/binary", {"status": done})
    await cluster.patch(TASK_API, "asynctasks/broken", {"status": {"phase": 7, "attempts": "many", "attempt": "x"}})
    for name in ("huge", "binary"):
        await eventually(lambda n=name: archived_in(cluster.task(n)), timeout=20, what=f"{name} marked")  # type: ignore[misc]
    await cluster.delete(TASK_API, "asynctasks/broken")  # unreadable as finished: recorded when it goes
    await eventually(rows(archive_engine, 3), timeout=20, what="three rows")
    reader = ArchiveReader(archive_engine)
    assert len((await stored(archive_engine, "huge")).object["status"]["result"]["blob"]) == 900_000
    assert (await stored(archive_engine, "huge")).labels == {"weird key": "spaces & 'quotes' \"too\""}
    binary = await stored(archive_engine, "binary")
    assert binary.labels == {"ünï": "cødé"}
    log = await reader.log(binary.uid, 1)
    assert log is not None and log.content == b"\xff\xfe\x00binary \xc3\x28 bytes\n"
    broken = await stored(archive_engine, "broken")
    assert json.loads(broken.wire)["status"]["attempts"] == "many"
    assert not archiver.ended()
    page = await reader.page(HistoryQuery(namespaces=(NS,), label_selector="!app"))
    assert {t.name for t in page.items} == {"huge", "binary", "broken"}


def rows(engine: AsyncEngine, n: int) -> Any:
    async def check() -> bool:
        return await count(engine) == n

    return check


async def finished(cluster: Cluster, *names: str) -> None:
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    for name in names:
        await cluster.create_task(name, {"type": "echo"})
        await cluster.patch(
            TASK_API, f"asynctasks/{name}", {"status": {"phase": "Succeeded", "attempt": 0, "completionTime": now}}
        )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_one_of_two_archivers_records_and_the_other_takes_over(
    cluster: Cluster, kubeconfig: pathlib.Path, tmp_path: pathlib.Path, archive_dsn: str, archive_engine: AsyncEngine
) -> None:
    election = ("--leader-elect", "--lease-duration", "3", "--renew-deadline", "2", "--retry-period", "0.2")
    first = InProcessArchiver(kubeconfig, archive_dsn, tmp_path / "first.log", *election)
    second = InProcessArchiver(kubeconfig, archive_dsn, tmp_path / "second.log", *election)
    await finished(cluster, "a", "b")
    await first.start()
    try:
        await second.start(marker="")  # a standby: it waits for the Lease
        await eventually(rows(archive_engine, 2), what="two rows")
        assert first.archiver.elector.leading and not second.archiver.elector.leading
        assert second.archiver.ready() and second.archiver.sink.listings == 0  # Ready, and lists nothing
        await first.stop()  # a clean stop releases the Lease: the standby takes over at once
        await finished(cluster, "c")
        await eventually(lambda: second.archiver.elector.leading, what="the standby to lead")
        await eventually(rows(archive_engine, 3), what="the third row, by the new leader")
        # the row commits before the task is marked: the mark follows, it is not there at the same instant
        await eventually(lambda: archived_in(cluster.task("c")), what="the task marked archived")
    finally:
        await first.stop()
        await second.stop()


async def test_probes_and_metrics(
    cluster: Cluster, kubeconfig: pathlib.Path, tmp_path: pathlib.Path, archive_dsn: str, archive_engine: AsyncEngine
) -> None:
    port = free_port()
    archiver = InProcessArchiver(kubeconfig, archive_dsn, tmp_path / "archive.log", "--http-port", str(port))
    await finished(cluster, "a")
    await archiver.start()
    try:
        await eventually(rows(archive_engine, 1), what="a row")
        async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as http:
            for path in ("/healthz", "/readyz"):
                async with http.get(path) as answer:
                    assert answer.status == 200, path
            async with http.get("/metrics") as answer:
                text = await answer.text()
    finally:
        await archiver.stop()
    assert 'asynctask_archive_rows_written_total{table="tasks"} 1.0' in text
    assert 'asynctask_archive_marks_total{result="ok"} 1.0' in text
    assert "asynctask_archive_leader 1.0" in text and "asynctask_archive_waiting_tasks 0.0" in text
