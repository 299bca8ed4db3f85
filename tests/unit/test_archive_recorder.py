"""The recorder on both databases, against the in-memory API: a batch is written, its logs read, its
tasks marked after the commit; the database down or refusing a row never loses or duplicates one."""

from __future__ import annotations

import itertools
import pathlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from asynctask_operator.adapters.kube import ASYNCTASKS, EVENTS, PODS, ApiError, NotFound
from asynctask_operator.archive import ArchiveReader
from asynctask_operator.archive.backlog import Backlog
from asynctask_operator.archive.database import engine_of
from asynctask_operator.archive.metrics import ArchiveMetrics
from asynctask_operator.archive.recorder import Recorder
from asynctask_operator.archive.settings import ArchiveSettings
from asynctask_operator.archive.sink import TaskSink
from asynctask_operator.core.archiving import ANNOTATION_ARCHIVED, archived_in
from asynctask_operator.core.naming import LABEL_ATTEMPT, LABEL_TASK, LABEL_TASK_UID
from asynctask_operator.testing.fakekube import FakeKube
from tests.support.archive_db import count
from tests.unit.archive_builders import NS, finished

Obj = dict[str, Any]


class LogsKube(FakeKube):
    """The in-memory API, with pod logs (bytes, by pod name; a missing one is a 404)."""

    def __init__(self) -> None:
        super().__init__()
        self.logs: dict[str, bytes] = {}
        self.log_reads: list[str] = []

    async def pod_log(
        self, namespace: str, name: str, *, container: str | None = None, follow: bool = False,
        tail_lines: int | None = None, errors: str = "replace",
    ) -> AsyncIterator[str]:  # fmt: skip
        self.log_reads.append(name)
        if name not in self.logs:
            raise NotFound(404, "NotFound", f'pods "{name}" not found')
        for line in self.logs[name].split(b"\n")[:-1]:
            yield line.decode("utf-8", errors)


async def given_task(api: LogsKube, name: str, attempts: int = 1, **kwargs: Any) -> Obj:
    """A finished task in the API, with a pod (and log) per attempt."""
    obj = finished(name, attempt=attempts, **kwargs)
    created = await api.create(ASYNCTASKS, NS, {k: v for k, v in obj.items() if k != "status"})
    created = await api.patch(ASYNCTASKS, NS, name, {"status": obj["status"]}, subresource="status")
    for n in range(1, attempts + 1):
        labels = {LABEL_TASK: name, LABEL_ATTEMPT: str(n), LABEL_TASK_UID: created["metadata"]["uid"]}
        pod = f"{name}-{n}-pod"
        await api.create(
            PODS, NS, {"metadata": {"name": pod, "labels": labels}, "spec": {"containers": [{"name": "main"}]}}
        )
        api.logs[pod] = f"attempt {n} of {name}\n".encode()
    return created


def recorder(engine: AsyncEngine, api: LogsKube, **settings: Any) -> tuple[Recorder, TaskSink, list[float]]:
    naps: list[float] = []

    async def sleep(seconds: float) -> None:
        naps.append(seconds)

    ticks = itertools.count()
    backlog = Backlog(settings.pop("max_waiting", 100))
    config = ArchiveSettings(batch_size=settings.pop("batch_size", 50), **settings)
    rec = Recorder(engine, api, backlog, config, ArchiveMetrics(), wall=lambda: 1_800_000_000.0, sleep=sleep)
    return rec, TaskSink(backlog, lambda: float(next(ticks))), naps


async def test_a_batch_is_written_with_its_logs_then_marked(archive_engine: AsyncEngine) -> None:
    api = LogsKube()
    objs = [await given_task(api, f"t{i}", attempts=2) for i in range(3)]
    rec, sink, _ = recorder(archive_engine, api)
    for obj in objs:
        sink.listed(obj, 0.0)
    assert await rec.once()
    assert await count(archive_engine) == 3 and await count(archive_engine, "attempt_logs") == 6
    for obj in objs:
        now = api.get_object(ASYNCTASKS, NS, obj["metadata"]["name"])
        assert now is not None and archived_in(now)
    log = await ArchiveReader(archive_engine).log(objs[0]["metadata"]["uid"], 2)
    assert log is not None and log.content == b"attempt 2 of t0\n" and log.pod == "t0-2-pod"
    assert rec.metrics.marks.labels("ok")._value.get() == 3


async def test_a_restart_writes_nothing_new_and_reads_no_log_again(archive_engine: AsyncEngine) -> None:
    api = LogsKube()
    obj = await given_task(api, "t", attempts=2)
    rec, sink, _ = recorder(archive_engine, api)
    sink.listed(obj, 0.0)
    await rec.write(rec.backlog.take(10))  # written and marked; now as if killed before the mark's event
    reads = len(api.log_reads)
    rec2, sink2, _ = recorder(archive_engine, api)
    sink2.listed(obj, 0.0)  # the copy from before the mark
    assert await rec2.once()
    assert len(api.log_reads) == reads  # the logs are in the database already
    assert await count(archive_engine) == 1 and await count(archive_engine, "attempt_logs") == 2


async def test_a_task_gone_before_its_mark_is_archived_all_the_same(archive_engine: AsyncEngine) -> None:
    api = LogsKube()
    obj = await given_task(api, "t")
    await api.delete(ASYNCTASKS, NS, "t")
    rec, sink, _ = recorder(archive_engine, api)
    sink.listed(obj, 0.0)
    assert await rec.once()
    assert await count(archive_engine) == 1
    assert rec.metrics.marks.labels("gone")._value.get() == 1
    log = await ArchiveReader(archive_engine).log(obj["metadata"]["uid"], 1)
    assert log is not None and log.content == b"attempt 1 of t\n"  # its pod outlived it (not owned here)


async def test_a_new_task_of_the_same_name_is_never_marked_for_the_old(archive_engine: AsyncEngine) -> None:
    api = LogsKube()
    old = await given_task(api, "t")
    await api.delete(ASYNCTASKS, NS, "t")
    await api.delete(PODS, NS, "t-1-pod")
    await given_task(api, "t")  # the name reused: another uid
    rec, sink, _ = recorder(archive_engine, api)
    sink.listed(old, 0.0)
    assert await rec.once()
    now = api.get_object(ASYNCTASKS, NS, "t")
    assert now is not None and ANNOTATION_ARCHIVED not in (now["metadata"].get("annotations") or {})
    assert rec.metrics.marks.labels("gone")._value.get() == 1


async def test_the_database_down_keeps_the_batch_and_backs_off(
    archive_dsn: str, archive_engine: AsyncEngine, tmp_path: pathlib.Path
) -> None:
    api = LogsKube()
    obj = await given_task(api, "t")
    dead = engine_of(  # a server that is not there; a "file" that is a directory
        "postgresql://nobody@/nowhere?host=/nonexistent" if "postgresql" in archive_dsn else f"sqlite:///{tmp_path}"
    )
    rec, sink, naps = recorder(dead, api, max_backoff_seconds=8.0)
    sink.listed(obj, 0.0)
    for _ in range(6):
        assert not await rec.once()
    assert len(rec.backlog) == 1 and rec.metrics.db_errors._value.get() == 6
    assert naps == sorted(naps) and naps[-1] == 8.0  # backing off, to the cap
    current = api.get_object(ASYNCTASKS, NS, "t")
    assert current is not None and not archived_in(current)  # never marked without its row
    rec.engine = archive_engine  # the database is back
    assert await rec.once()
    assert await count(archive_engine) == 1 and len(rec.backlog) == 0 and rec.failures == 0
    await dead.dispose()


async def test_refused_marks_come_back_after_a_pause(archive_engine: AsyncEngine) -> None:
    api = LogsKube()
    obj = await given_task(api, "t")
    api.fail("patch", "asynctasks", ApiError(500, "InternalError", "etcd is slow"), times=1)
    rec, sink, naps = recorder(archive_engine, api)
    sink.listed(obj, 0.0)
    assert not await rec.once()
    assert len(rec.backlog) == 1 and naps
    assert await rec.once()
    current = api.get_object(ASYNCTASKS, NS, "t")
    assert current is not None and archived_in(current)
    assert await count(archive_engine) == 1


async def test_a_missing_pod_and_an_unreadable_log_are_recorded_as_such(archive_engine: AsyncEngine) -> None:
    api = LogsKube()
    obj = await given_task(api, "t", attempts=3)
    await api.delete(PODS, NS, "t-1-pod")  # gone with its Job
    api.logs["t-3-pod"] = b"\xff\xfebinary\x00\n" + "ünïcode\n".encode()
    rec, sink, _ = recorder(archive_engine, api)
    sink.listed(obj, 0.0)
    assert await rec.once()
    reader = ArchiveReader(archive_engine)
    first, third = await reader.log(obj["metadata"]["uid"], 1), await reader.log(obj["metadata"]["uid"], 3)
    assert first is not None and first.error and "no pod" in first.error
    assert third is not None and third.content == b"\xff\xfebinary\x00\n" + "ünïcode\n".encode()


async def test_the_log_limit_keeps_the_end(archive_engine: AsyncEngine) -> None:
    api = LogsKube()
    obj = await given_task(api, "t")
    api.logs["t-1-pod"] = b"".join(f"{i:06d}\n".encode() for i in range(10_000))
    rec, sink, _ = recorder(archive_engine, api, log_limit_bytes=70)
    sink.listed(obj, 0.0)
    assert await rec.once()
    log = await ArchiveReader(archive_engine).log(obj["metadata"]["uid"], 1)
    assert log is not None and log.truncated and log.size == 70_000
    assert log.content == b"".join(f"{i:06d}\n".encode() for i in range(9990, 10_000))


@pytest.mark.parametrize("poison", ["labels", "message"])
async def test_a_row_the_database_refuses_is_stored_minimal_and_the_rest_as_they_are(
    archive_engine: AsyncEngine, poison: str
) -> None:
    if archive_engine.dialect.name != "postgresql":
        pytest.skip("SQLite stores anything: only PostgreSQL refuses a NUL in text")
    api = LogsKube()
    good = await given_task(api, "good")
    bad = await given_task(api, "bad")
    rec, _, _ = recorder(archive_engine, api)
    rows, _ = rec._rows([p for p in [_pending(good), _pending(bad)]])
    import dataclasses

    poisoned = dataclasses.replace(
        rows[1], **({"labels": {"k": "\x00"}} if poison == "labels" else {"message": "a\x00b"})
    )
    written = await rec._one_by_one([rows[0], poisoned], [])
    assert written == 2 and rec.metrics.refused._value.get() == 1
    stored = await ArchiveReader(archive_engine).get(bad["metadata"]["uid"])
    assert stored is not None and "archiveError" in stored.object and stored.phase == "Succeeded"
    kept = await ArchiveReader(archive_engine).get(good["metadata"]["uid"])
    assert kept is not None and kept.object["status"] == good["status"]
    [event] = api.of(EVENTS, NS)
    assert (event["reason"], event["involvedObject"]["name"], event["type"]) == ("ArchiveRefused", "bad", "Warning")


def _pending(obj: Obj) -> Any:
    from asynctask_operator.archive.backlog import Pending

    return Pending(obj["metadata"]["uid"], obj, mark=True, seen=0.0)
