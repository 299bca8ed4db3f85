"""The archive's writes and reads on both databases (a real PostgreSQL and SQLite): newer-wins
upserts that never duplicate, attempt logs kept once and read back byte for byte, retention."""

from __future__ import annotations

import zlib

from sqlalchemy.ext.asyncio import AsyncEngine

from asynctask_operator.archive import ArchiveReader
from asynctask_operator.archive.capture import Tail, log_row
from asynctask_operator.archive.retention import Retention, apply, delete_batch
from asynctask_operator.archive.schema import tasks
from asynctask_operator.archive.writes import insert_logs, upsert_tasks
from tests.support.archive_db import count
from tests.unit.archive_builders import T0, finished, row

DAY = 86400.0


async def write(engine: AsyncEngine, *objs: dict[str, object]) -> int:
    async with engine.begin() as conn:
        return await upsert_tasks(conn, [row(o) for o in objs])


async def test_a_replayed_batch_writes_no_second_row(archive_engine: AsyncEngine) -> None:
    batch = [finished(f"t{i}") for i in range(5)]
    await write(archive_engine, *batch)
    await write(archive_engine, *batch)
    await write(archive_engine, *batch[:2])
    assert await count(archive_engine) == 5


async def test_an_older_state_never_replaces_a_newer_one(archive_engine: AsyncEngine) -> None:
    running = finished("t", phase="Running", rv=10, duration=None)
    done = finished("t", phase="Succeeded", rv=20)
    reader = ArchiveReader(archive_engine)
    await write(archive_engine, done)
    await write(archive_engine, running)  # a late event of an earlier state
    stored = await reader.get("uid-team-a-t")
    assert stored is not None and (stored.phase, stored.revision) == ("Succeeded", 20)
    await write(archive_engine, finished("t", phase="Failed", rv=30))
    stored = await reader.get("uid-team-a-t")
    assert stored is not None and (stored.phase, stored.revision) == ("Failed", 30)


async def test_one_batch_with_two_copies_of_a_task_keeps_the_newer(archive_engine: AsyncEngine) -> None:
    await write(archive_engine, finished("t", phase="Failed", rv=31), finished("t", phase="Succeeded", rv=30))
    stored = await ArchiveReader(archive_engine).get("uid-team-a-t")
    assert stored is not None and stored.phase == "Failed"


async def test_without_a_numeric_version_the_later_write_wins(archive_engine: AsyncEngine) -> None:
    await write(archive_engine, finished("t", phase="Failed", rv=50))
    await write(archive_engine, finished("t", phase="Succeeded", rv="opaque"))
    stored = await ArchiveReader(archive_engine).get("uid-team-a-t")
    assert stored is not None and (stored.phase, stored.revision) == ("Succeeded", 0)


async def test_the_stored_object_reads_back_as_the_task_was(archive_engine: AsyncEngine) -> None:
    obj = finished("t", result={"rows": [1, 2], "text": "ünïcode"}, labels={"app": "web"})
    await write(archive_engine, obj)
    stored = await ArchiveReader(archive_engine).get("uid-team-a-t")
    assert stored is not None
    assert stored.object["status"] == obj["status"] and stored.object["spec"] == obj["spec"]
    assert stored.labels == {"app": "web"}


async def test_latest_by_name_is_the_newest_of_the_tasks_that_had_it(archive_engine: AsyncEngine) -> None:
    reader = ArchiveReader(archive_engine)
    await write(archive_engine, finished("t", uid="old", created=T0), finished("t", uid="new", created=T0 + 60))
    await write(archive_engine, finished("t", uid="elsewhere", namespace="team-b", created=T0 + 120))
    latest = await reader.latest("team-a", "t")
    assert latest is not None and latest.uid == "new"
    assert await reader.latest("team-a", "nope") is None
    assert await reader.get("missing") is None


async def test_logs_are_kept_once_and_read_back_byte_for_byte(archive_engine: AsyncEngine) -> None:
    binary = bytes(range(256)) + b"\xff\xfe not utf-8 \xc3\x28\n"
    tail = Tail(1024)
    tail.add(binary)
    first = log_row("u", 1, T0, pod="t-1-abc", container="main", tail=tail)
    again = log_row("u", 1, T0 + 5, pod="t-1-xyz", container="main", error="the pod is gone")
    missing = log_row("u", 2, T0, error="no pod of this attempt is left")
    async with archive_engine.begin() as conn:
        await insert_logs(conn, [first, missing])
    async with archive_engine.begin() as conn:
        await insert_logs(conn, [again])  # a second capture (after a restart): the first stays
    reader = ArchiveReader(archive_engine)
    log = await reader.log("u", 1)
    assert log is not None
    assert (log.content, log.size, log.truncated, log.pod, log.error) == (binary, len(binary), False, "t-1-abc", None)
    assert "\ufffd" in log.text
    gone = await reader.log("u", 2)
    assert gone is not None and (gone.content, gone.error) == (None, "no pod of this attempt is left")
    assert [(entry.attempt, entry.content) for entry in await reader.logs("u")] == [(1, None), (2, None)]
    assert await reader.log("u", 3) is None


async def test_a_long_log_keeps_its_end_and_says_it_was_cut(archive_engine: AsyncEngine) -> None:
    tail = Tail(1000)
    for i in range(5000):
        tail.add(f"line {i}\n".encode())
    async with archive_engine.begin() as conn:
        await insert_logs(conn, [log_row("u", 1, T0, tail=tail)])
    log = await ArchiveReader(archive_engine).log("u", 1)
    assert log is not None and log.truncated and log.content is not None
    assert len(log.content) == 1000 and log.content.endswith(b"line 4999\n")
    assert log.size == sum(len(f"line {i}\n") for i in range(5000))
    assert len(zlib.compress(log.content)) < 1000  # stored compressed


async def test_retention_deletes_old_tasks_and_their_logs_in_batches(archive_engine: AsyncEngine) -> None:
    now = T0 + 100 * DAY
    old = [finished(f"old{i}", created=T0 + i) for i in range(25)]
    young = [finished(f"young{i}", created=now - DAY) for i in range(3)]
    audited = [finished(f"audit{i}", namespace="audit", created=T0) for i in range(2)]
    await write(archive_engine, *old, *young, *audited)
    async with archive_engine.begin() as conn:
        await insert_logs(conn, [log_row(f"uid-team-a-old{i}", 1, T0, error="x") for i in range(25)])
    assert await delete_batch(archive_engine, tasks.c.namespace == "team-a", now - 90 * DAY, 10) == 10
    deleted = await apply(archive_engine, Retention(90 * DAY, (("audit", 365 * DAY),)), now, batch=10)
    assert deleted == 15
    assert await count(archive_engine) == 5  # the young and the audited
    assert await count(archive_engine, "attempt_logs") == 0
    assert await apply(archive_engine, Retention(0), now) == 0  # 0: kept forever
    assert await apply(archive_engine, Retention(DAY / 2, (("audit", 0),)), now) == 3
    assert await count(archive_engine) == 2
