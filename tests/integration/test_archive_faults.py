"""The archiver under faults, with a real PostgreSQL: SIGKILLed in the middle of its batches, and its
database stopped and started again while the operator, with the archive required, holds the TTL."""

from __future__ import annotations

import asyncio
import pathlib
import time
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from asynctask_operator.archive.database import engine_of
from asynctask_operator.core.archiving import archived_in
from asynctask_operator.testing.archiving import ArchiverProcess, InProcessArchiver
from asynctask_operator.testing.cluster import AT, NS, Cluster
from asynctask_operator.testing.operators import Operator, eventually
from asynctask_operator.testing.postgres import PostgresServer
from tests.support.archive_db import SHARED_DB, count

TASK_API = "/apis/asynctask.dev/v1alpha1"


@pytest.fixture()
async def pg(postgres_server: PostgresServer) -> AsyncIterator[tuple[str, AsyncEngine]]:
    if not postgres_server.running():
        postgres_server.start()
    dsn = postgres_server.dsn(SHARED_DB)
    engine = engine_of(dsn)
    async with engine.begin() as conn:
        await conn.execute(text("TRUNCATE tasks, attempt_logs"))
    yield dsn, engine
    await engine.dispose()


def rows(engine: AsyncEngine, n: int) -> object:
    async def check() -> bool:
        return await count(engine) == n

    return check


async def uids(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        return [str(u) for u in (await conn.execute(text("SELECT uid FROM tasks"))).scalars()]


async def finished_tasks(cluster: Cluster, n: int) -> None:
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    for i in range(n):
        await cluster.create_task(f"done-{i:03d}", {"type": "echo"})
        status = {"phase": "Succeeded", "attempt": 1, "completionTime": now, "durationSeconds": 1.0}
        await cluster.patch(TASK_API, f"asynctasks/done-{i:03d}", {"status": status})


async def test_sigkill_in_the_middle_of_the_batches_leaves_every_task_archived_once(
    cluster: Cluster, kubeconfig: pathlib.Path, tmp_path: pathlib.Path, pg: tuple[str, AsyncEngine]
) -> None:
    dsn, engine = pg
    n = 60
    await finished_tasks(cluster, n)
    archiver = ArchiverProcess(kubeconfig, dsn, tmp_path / "archive.log", "--batch-size", "3")
    await archiver.start()
    try:
        await eventually(lambda: _some(engine), timeout=30, interval=0.01, what="the first rows")
        archiver.kill()
        assert archiver.proc is not None
        await archiver.proc.wait()
        at_kill = await count(engine)
        print(f"killed with {at_kill} of {n} tasks written")
        await archiver.start()
        await eventually(rows(engine, n), timeout=30, what="every task")  # type: ignore[arg-type]
        await eventually(lambda: all(archived_in(cluster.task(f"done-{i:03d}")) for i in range(n)), timeout=30,
                         what="every task marked")  # fmt: skip
    finally:
        await archiver.stop()
    stored = await uids(engine)
    assert sorted(stored) == sorted(cluster.task(f"done-{i:03d}")["metadata"]["uid"] for i in range(n))
    assert archiver.starts == 2


async def _some(engine: AsyncEngine) -> bool:
    return await count(engine) > 0


@pytest.mark.operator_args("--archive-required")
async def test_the_database_down_holds_the_ttl_and_the_archiver_catches_up(
    cluster: Cluster, operator: Operator, kubeconfig: pathlib.Path, tmp_path: pathlib.Path,
    postgres_server: PostgresServer, pg: tuple[str, AsyncEngine],
) -> None:  # fmt: skip
    dsn, engine = pg
    archiver = InProcessArchiver(kubeconfig, dsn, tmp_path / "archive.log")
    await archiver.start()
    try:
        await cluster.create_tasktype("echo")
        postgres_server.stop()
        try:
            for name in ("a", "b"):
                await cluster.create_task(name, {"type": "echo", "ttlSecondsAfterFinished": 1})
            for name in ("a", "b"):
                await eventually(lambda n=name: cluster.phase(n) == "Running", what=f"{name} Running")  # type: ignore[misc]
                await cluster.job_succeeds(f"{name}-1")
            await eventually(lambda: cluster.phase("a") == cluster.phase("b") == "Succeeded", what="Succeeded")
            await asyncio.sleep(2.5)  # past the TTL by the operator's own clock: held, not deleted
            assert all((AT, NS, name) in cluster.k.objects and not cluster.k.objects[AT, NS, name].deleted
                       for name in ("a", "b"))  # fmt: skip
            await eventually(lambda: "archive write of" in archiver.log(), what="the archiver's backing off")
            assert not archiver.ended()
            assert archiver.archiver.backlog and len(archiver.archiver.backlog) >= 1
        finally:
            postgres_server.start()
        await eventually(
            lambda: all(cluster.k.objects[AT, NS, name].deleted for name in ("a", "b")),
            timeout=30,
            what="deleted once archived",
        )
        assert await count(engine) == 2
    finally:
        await archiver.stop()
