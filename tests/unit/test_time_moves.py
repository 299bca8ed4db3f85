"""Time is injected (core/clocks.py): under ``looptime`` a minute of backoff passes at once.

The operator's parts read one :class:`Clocks`; tied to the event loop's clock, whose idle waits
``looptime`` skips, the retry below waits its 60 s of loop time in a few milliseconds of real
time — and not one loop-second less than its policy says.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import time

import pytest

from asynctask_operator.adapters.kube import ASYNCTASKS, JOBS, SCHEDULEDTASKS, TASKTYPES
from asynctask_operator.core.clocks import Clocks
from asynctask_operator.core.naming import ANNOTATION_SCHEDULED_TIME
from asynctask_operator.settings import OperatorSettings
from asynctask_operator.testing.fakekube import FakeKube
from tests.support.inprocess import JobController, running, tasktype, until

NS = "media"


@pytest.mark.looptime
async def test_a_sixty_second_backoff_passes_in_loop_time_not_real_time() -> None:
    loop = asyncio.get_running_loop()
    clocks = Clocks.of_loop(loop, epoch=time.time())
    api = FakeKube()
    jobs = JobController(api, exit_code=1)
    await api.create(TASKTYPES, NS, tasktype("flaky", "false"))
    retry = {"maxRetries": 1, "backoff": "Fixed", "baseSeconds": 60, "jitter": False}
    task = {"apiVersion": "asynctask.dev/v1alpha1", "kind": "AsyncTask", "metadata": {"name": "t"}}
    await api.create(ASYNCTASKS, NS, {**task, "spec": {"type": "flaky", "retry": retry}})
    settings = OperatorSettings(http_port=0, resync_seconds=3600, queue_status_seconds=3600)
    real_start = time.monotonic()
    async with running(api, settings, clocks=clocks):
        await until(lambda: len(jobs.created) == 1, timeout=10, what="the first attempt's Job")
        first = loop.time()
        await until(lambda: len(jobs.created) == 2, timeout=600, what="the second attempt's Job", every=0.1)
        waited = loop.time() - first
        await until(
            lambda: (api.get_object(ASYNCTASKS, NS, "t") or {}).get("status", {}).get("phase") == "Failed",
            timeout=60,
            what="Failed after the last retry",
        )
    assert 60 <= waited < 62, f"the second attempt came {waited:.3f} loop-seconds after the first"
    assert time.monotonic() - real_start < 10  # a minute of backoff, not a minute of the suite
    assert [j["metadata"]["name"] for j in jobs.created] == ["t-1", "t-2"]


def loop_clocks() -> Clocks:
    return Clocks.of_loop(asyncio.get_running_loop(), epoch=time.time())


def phase_of(api: FakeKube, name: str) -> str:
    return str(((api.get_object(ASYNCTASKS, NS, name) or {}).get("status") or {}).get("phase") or "")


SETTINGS = OperatorSettings(http_port=0, resync_seconds=86400, queue_status_seconds=86400)


@pytest.mark.looptime
async def test_an_hour_of_ttl_passes_and_the_task_is_deleted_on_time() -> None:
    loop = asyncio.get_running_loop()
    clocks = loop_clocks()
    api = FakeKube(now=clocks.utcnow)
    JobController(api)
    await api.create(TASKTYPES, NS, tasktype())
    body = {"apiVersion": "asynctask.dev/v1alpha1", "kind": "AsyncTask", "metadata": {"name": "t"}}
    await api.create(ASYNCTASKS, NS, {**body, "spec": {"type": "echo", "ttlSecondsAfterFinished": 3600}})
    real_start = time.monotonic()
    async with running(api, SETTINGS, clocks=clocks):
        await until(lambda: phase_of(api, "t") == "Succeeded", timeout=60, what="Succeeded")
        finished = loop.time()
        await until(
            lambda: api.get_object(ASYNCTASKS, NS, "t") is None, timeout=7200, what="deleted at its TTL", every=1
        )
        kept = loop.time() - finished
    assert 3599 <= kept < 3602, f"deleted {kept:.3f} loop-seconds after it finished"
    assert time.monotonic() - real_start < 10


@pytest.mark.looptime
async def test_a_deadline_ends_a_task_whose_job_never_finishes() -> None:
    loop = asyncio.get_running_loop()
    clocks = loop_clocks()
    api = FakeKube(now=clocks.utcnow)
    jobs = JobController(api, auto=False)  # the Job runs forever
    await api.create(TASKTYPES, NS, tasktype())
    body = {"apiVersion": "asynctask.dev/v1alpha1", "kind": "AsyncTask", "metadata": {"name": "t"}}
    await api.create(ASYNCTASKS, NS, {**body, "spec": {"type": "echo", "deadlineSeconds": 900}})
    created = loop.time()
    async with running(api, SETTINGS, clocks=clocks):
        await until(lambda: len(jobs.created) == 1, timeout=10, what="the Job")
        await until(lambda: phase_of(api, "t") == "Failed", timeout=3600, what="Failed at the deadline", every=1)
        ended = loop.time() - created
    status = (api.get_object(ASYNCTASKS, NS, "t") or {})["status"]
    assert status["reason"] == "DeadlineExceeded"
    assert 899 <= ended < 902, f"ended {ended:.3f} loop-seconds after creation"
    assert api.of(JOBS, NS) == []  # the running Job is deleted with it


@pytest.mark.looptime
async def test_a_schedule_fires_on_its_minutes_in_loop_time() -> None:
    clocks = loop_clocks()
    api = FakeKube(now=clocks.utcnow)
    JobController(api)
    await api.create(TASKTYPES, NS, tasktype())
    await api.create(
        SCHEDULEDTASKS,
        NS,
        {
            "apiVersion": "asynctask.dev/v1alpha1",
            "kind": "ScheduledTask",
            "metadata": {"name": "every-ten"},
            "spec": {"schedule": "*/10 * * * *", "taskTemplate": {"spec": {"type": "echo"}}},
        },
    )
    async with running(api, SETTINGS, clocks=clocks):
        await until(lambda: len(api.of(ASYNCTASKS, NS)) >= 3, timeout=3 * 3600, what="three runs", every=10)
    runs = api.of(ASYNCTASKS, NS)[:3]
    fired = sorted(dt.datetime.fromisoformat(r["metadata"]["annotations"][ANNOTATION_SCHEDULED_TIME]) for r in runs)
    assert [(b - a).total_seconds() for a, b in itertools.pairwise(fired)] == [600.0, 600.0]
    assert all(f.minute % 10 == 0 and f.second == 0 for f in fired)
