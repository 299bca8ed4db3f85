"""The TaskQueue reconcile (controllers/taskqueues.py): driven by the work queue, coalesced, written only on change.

The runtime runs in the test's event loop against the in-process fake API, its clocks tied to the
loop's under looptime: the interval between two status writes is loop time, so the counts below
are of writes in so many loop-seconds, not of how fast this machine is.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import pytest

from asynctask_operator.adapters.kube import ASYNCTASKS, TASKQUEUES, TASKTYPES
from asynctask_operator.core.clocks import Clocks
from asynctask_operator.settings import OperatorSettings
from asynctask_operator.testing.fakekube import FakeKube
from tests.support.inprocess import JobController, running, tasktype, until

NS = "media"
INTERVAL = 5.0
SETTINGS = OperatorSettings(http_port=0, resync_seconds=86400, queue_status_seconds=INTERVAL)


def queue_manifest(name: str, concurrency: int) -> dict[str, Any]:
    return {"apiVersion": "asynctask.dev/v1alpha1", "kind": "TaskQueue", "metadata": {"name": name},
            "spec": {"concurrency": concurrency}}  # fmt: skip


def task_manifest(name: str, queue: str) -> dict[str, Any]:
    return {"apiVersion": "asynctask.dev/v1alpha1", "kind": "AsyncTask", "metadata": {"name": name},
            "spec": {"type": "echo", "queue": queue}}  # fmt: skip


def status_writes(api: FakeKube, name: str) -> int:
    return sum(
        1
        for r in api.requests
        if (r.verb, r.resource, r.name, r.subresource) == ("patch", TASKQUEUES.plural, name, "status")
    )


def queue_status(api: FakeKube, name: str) -> dict[str, Any]:
    return dict((api.get_object(TASKQUEUES, NS, name) or {}).get("status") or {})


@pytest.mark.looptime
async def test_a_burst_through_a_queue_costs_one_status_write_per_interval_and_ends_at_zero() -> None:
    loop = asyncio.get_running_loop()
    api = FakeKube()
    JobController(api)
    await api.create(TASKTYPES, NS, tasktype())
    await api.create(TASKQUEUES, NS, queue_manifest("q", 2))
    async with running(api, SETTINGS, clocks=Clocks.of_loop(loop, epoch=time.time())):
        began = loop.time()
        for i in range(40):
            await api.create(ASYNCTASKS, NS, task_manifest(f"t{i:02}", "q"))
        await until(
            lambda: all(
                (api.get_object(ASYNCTASKS, NS, f"t{i:02}") or {}).get("status", {}).get("phase") == "Succeeded"
                for i in range(40)
            ),
            timeout=60,
            what="every task Succeeded",
        )
        await until(
            lambda: queue_status(api, "q").get("pending") == 0 and queue_status(api, "q").get("running") == 0,
            timeout=3 * INTERVAL,
            what=lambda: f"the queue's status back at zero: {queue_status(api, 'q')}",
        )
        elapsed = loop.time() - began
        writes = status_writes(api, "q")
        await asyncio.sleep(4 * INTERVAL)  # nothing moves any more: nothing more is written
        assert status_writes(api, "q") == writes
    # Hundreds of ledger changes (each task waits, is admitted, runs, ends), at most one write per interval.
    assert 1 <= writes <= elapsed // INTERVAL + 2, (writes, elapsed)
    assert queue_status(api, "q")["conditions"][0]["type"] == "Admitting"


@pytest.mark.looptime
async def test_while_tasks_wait_the_status_follows_their_wait_and_stops_when_none_waits() -> None:
    """oldestPendingSeconds grows on its own: the queue is looked at again every interval while tasks wait."""
    loop = asyncio.get_running_loop()
    api = FakeKube()
    await api.create(TASKTYPES, NS, tasktype())
    await api.create(TASKQUEUES, NS, queue_manifest("held", 0))  # admits nothing
    async with running(api, SETTINGS, clocks=Clocks.of_loop(loop, epoch=time.time())):
        await api.create(ASYNCTASKS, NS, task_manifest("waits", "held"))
        await until(lambda: queue_status(api, "held").get("pending") == 1, timeout=2 * INTERVAL, what="pending 1")
        await asyncio.sleep(6 * INTERVAL)
        status = queue_status(api, "held")
        assert status["oldestPendingSeconds"] >= 5 * INTERVAL - 1
        assert 6 <= status_writes(api, "held") <= 8
        await api.delete(ASYNCTASKS, NS, "waits")
        await until(lambda: queue_status(api, "held").get("pending") == 0, timeout=2 * INTERVAL, what="pending 0")
        after = status_writes(api, "held")
        await asyncio.sleep(6 * INTERVAL)
        assert status_writes(api, "held") == after  # none waits: no more looks, no more writes


@pytest.mark.looptime
async def test_a_rate_limited_queue_is_admitted_from_when_its_token_is_due() -> None:
    """The ledger's next-token time queues the queue's key; its reconcile admits."""
    loop = asyncio.get_running_loop()
    api = FakeKube()
    jobs = JobController(api)
    created_at: list[float] = []
    api.on_create("jobs", lambda job: created_at.append(loop.time()))
    await api.create(TASKTYPES, NS, tasktype())
    spec = {"concurrency": 10, "maxStartsPerMinute": 6}  # one start every 10 s
    await api.create(TASKQUEUES, NS, {**queue_manifest("slow", 10), "spec": spec})
    async with running(api, SETTINGS, clocks=Clocks.of_loop(loop, epoch=time.time())):
        for i in range(3):
            await api.create(ASYNCTASKS, NS, task_manifest(f"s{i}", "slow"))
        await until(lambda: len(jobs.created) == 3, timeout=60, what="three Jobs")
    assert [j["metadata"]["name"] for j in jobs.created] == ["s0-1", "s1-1", "s2-1"]
    gaps = [b - a for a, b in itertools.pairwise(created_at)]
    assert all(9.9 <= gap < 11 for gap in gaps), gaps
