"""Time is injected (core/clocks.py): under ``looptime`` a minute of backoff passes at once.

The operator's parts read one :class:`Clocks`; tied to the event loop's clock, whose idle waits
``looptime`` skips, the retry below waits its 60 s of loop time in a few milliseconds of real
time — and not one loop-second less than its policy says.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from asynctask_operator.adapters.kube import ASYNCTASKS, TASKTYPES
from asynctask_operator.core.clocks import Clocks
from asynctask_operator.settings import OperatorSettings
from tests.support.fakekube import FakeKube
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
        await until(lambda: len(jobs.created) == 2, timeout=600, what="the second attempt's Job")
        waited = loop.time() - first
        await until(
            lambda: (api.get_object(ASYNCTASKS, NS, "t") or {}).get("status", {}).get("phase") == "Failed",
            timeout=60,
            what="Failed after the last retry",
        )
    assert 60 <= waited < 62, f"the second attempt came {waited:.3f} loop-seconds after the first"
    assert time.monotonic() - real_start < 10  # a minute of backoff, not a minute of the suite
    assert [j["metadata"]["name"] for j in jobs.created] == ["t-1", "t-2"]
