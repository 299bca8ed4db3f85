"""Tasks the operator creates itself are reconciled when they appear (issue #10, seen on a real cluster).

A ScheduledTask's run was created, the create's answer stored in the cache, and the watch's
ADDED event for the same object then skipped as "held already": nothing had queued the
task, so it sat Pending until the next resync or restart. These tests run the real runtime
against :class:`~asynctask_operator.testing.fakekube.FakeKube` (resourceVersions that advance, the
create's answer before or after the watch event of the same object), with a resync far
away so that none can hide the bug.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from asynctask_operator.adapters.kube import ASYNCTASKS, SCHEDULEDTASKS, TASKTYPES
from asynctask_operator.core.naming import ANNOTATION_RUN_NOW
from asynctask_operator.settings import OperatorSettings
from asynctask_operator.testing.fakekube import FakeKube, Order
from tests.support.inprocess import JobController, running, tasktype, until

NS = "media"
NO_RESYNC = OperatorSettings(http_port=0, resync_seconds=3600, queue_status_seconds=3600)


def scheduled(name: str, schedule: str, run_now: str | None = None, **spec: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if run_now is not None:
        meta["annotations"] = {ANNOTATION_RUN_NOW: run_now}
    return {
        "apiVersion": "asynctask.dev/v1alpha1",
        "kind": "ScheduledTask",
        "metadata": meta,
        "spec": {"schedule": schedule, "taskTemplate": {"spec": {"type": "echo"}}, **spec},
    }


def phases(api: FakeKube) -> dict[str, str]:
    return {t["metadata"]["name"]: (t.get("status") or {}).get("phase", "") for t in api.of(ASYNCTASKS, NS)}


def all_succeeded(api: FakeKube, n: int) -> bool:
    current = phases(api)
    return len(current) == n and all(p == "Succeeded" for p in current.values())


def fired_a_minute_ago(name: str) -> dict[str, Any]:
    """A ScheduledTask whose one fire time in a year was the last minute: due now, and not again in the test."""
    fire = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    return scheduled(name, f"{fire.minute} {fire.hour} {fire.day} {fire.month} *")


async def create_before_its_fire(api: FakeKube, body: dict[str, Any]) -> None:
    """Create ``body`` with a creationTimestamp before its fire time, as if created three minutes ago."""
    real = api.now
    api.now = lambda: real() - dt.timedelta(minutes=3)
    try:
        await api.create(SCHEDULEDTASKS, NS, body)
    finally:
        api.now = real


ORDERS: list[Order] = ["answer-first", "event-first"]


async def run_now(api: FakeKube) -> None:
    await api.create(SCHEDULEDTASKS, NS, scheduled("yearly", "0 0 1 1 *", run_now="1"))


async def scheduled_fire(api: FakeKube) -> None:
    await create_before_its_fire(api, fired_a_minute_ago("fired"))


async def user_creates(api: FakeKube) -> None:
    body = {"apiVersion": "asynctask.dev/v1alpha1", "kind": "AsyncTask", "metadata": {"name": "t"}}
    await api.create(ASYNCTASKS, NS, {**body, "spec": {"type": "echo"}})


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("start", [run_now, scheduled_fire, user_creates], ids=["run-now", "scheduled", "by a user"])
async def test_one_task_is_reconciled_to_succeeded(order: Order, start: Callable[[FakeKube], Awaitable[None]]) -> None:
    """A run-now run, a scheduled run, and (for contrast: its create's answer is not the operator's) a user's task."""
    api = FakeKube(order=order)
    JobController(api)
    await api.create(TASKTYPES, NS, tasktype())
    async with running(api, NO_RESYNC):
        await start(api)
        await until(lambda: all_succeeded(api, 1), what=lambda: f"the task to succeed: {phases(api)}")


async def test_fifty_run_nows_and_fifty_scheduled_fires_at_once_all_succeed() -> None:
    """The hammer: 100 runs created in one burst, each write's answer and event in a random order."""
    api = FakeKube(order="random", seed=10)
    jobs = JobController(api)
    await api.create(TASKTYPES, NS, tasktype())
    async with running(api, NO_RESYNC) as runtime:
        for i in range(50):
            await api.create(SCHEDULEDTASKS, NS, scheduled(f"manual-{i}", "0 0 1 1 *", run_now="go"))
        for i in range(50):
            await create_before_its_fire(api, fired_a_minute_ago(f"fired-{i}"))
        await until(lambda: all_succeeded(api, 100), timeout=30, what=lambda: f"100 runs to succeed: {phases(api)}")
        assert len(jobs.started) == 100  # one Job each, none twice
        assert runtime.settings.resync_seconds == 3600
