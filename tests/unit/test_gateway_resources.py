"""The gateway's queues, schedules and statistics routes in process against FakeKube (issue 16, items 7-8)."""

from __future__ import annotations

from typing import Any

from asynctask_operator.adapters.kube import ASYNCTASKS, SCHEDULEDTASKS, TASKQUEUES
from asynctask_operator.core.naming import ANNOTATION_RUN_NOW
from tests.support.gateway import NS, RunningGateway, running_gateway

V1 = f"/v1/namespaces/{NS}"


async def task(gw: RunningGateway, name: str, type_: str, queue: str | None = None, **status: Any) -> None:
    spec: dict[str, Any] = {"type": type_} | ({"queue": queue} if queue else {})
    body = {"metadata": {"name": name, "namespace": NS}, "spec": spec}
    await gw.fake.create(ASYNCTASKS, NS, body)
    if status:
        await gw.fake.patch(ASYNCTASKS, NS, name, {"status": status}, subresource="status")


async def test_queues_count_their_tasks_and_pause() -> None:
    async with running_gateway() as gw:
        await gw.fake.create(TASKQUEUES, NS, {"metadata": {"name": "gpu", "namespace": NS}, "spec": {"concurrency": 2}})
        await task(gw, "a", "x", "gpu", phase="Running")
        await task(gw, "b", "x", "gpu")
        await task(gw, "c", "x", "gpu", phase="Succeeded")
        await task(gw, "d", "x")  # the implicit default queue
        await gw.settle()
        listed = (await gw.client.get(f"{V1}/queues", headers=gw.alice)).json()["items"]
        by_name = {q["name"]: q for q in listed}
        assert set(by_name) == {"gpu", "default"}
        gpu = by_name["gpu"]
        assert (gpu["exists"], gpu["concurrency"], gpu["running"], gpu["pending"]) == (True, 2, 1, 1)
        assert gpu["oldestPendingSeconds"] >= 0 and not gpu["paused"]
        assert by_name["default"]["exists"] is False and by_name["default"]["pending"] == 1
        paused = await gw.client.post(f"{V1}/queues/gpu:pause", headers=gw.alice)
        assert paused.status_code == 200 and paused.json()["paused"] is True
        assert (gw.fake.get_object(TASKQUEUES, NS, "gpu") or {})["spec"]["paused"] is True
        resumed = await gw.client.post(f"{V1}/queues/gpu:resume", headers=gw.alice)
        assert resumed.json()["paused"] is False
        assert (await gw.client.post(f"{V1}/queues/default:pause", headers=gw.alice)).status_code == 404
        assert (await gw.client.get(f"{V1}/queues/nope", headers=gw.alice)).status_code == 404
        assert (await gw.client.get(f"{V1}/queues/gpu", headers=gw.alice)).json()["running"] == 1


async def test_a_queues_figures_are_its_status_once_the_operator_counted() -> None:
    """Running is the tasks holding a slot, as the operator counts them: a task admitted a moment ago holds
    one before anyone sees it Running (docs/concepts.md, "Reading a task")."""
    async with running_gateway() as gw:
        await gw.fake.create(TASKQUEUES, NS, {"metadata": {"name": "gpu", "namespace": NS}, "spec": {"concurrency": 2}})
        await task(gw, "a", "x", "gpu", phase="Running")
        await gw.fake.patch(
            TASKQUEUES, NS, "gpu", {"status": {"running": 2, "pending": 0, "oldestPendingSeconds": 0}},
            subresource="status",
        )  # fmt: skip
        await gw.settle()
        gpu = (await gw.client.get(f"{V1}/queues/gpu", headers=gw.alice)).json()
        assert (gpu["running"], gpu["pending"]) == (2, 0)


SCHEDULE = {"schedule": "@daily", "taskTemplate": {"spec": {"type": "report"}}}


async def test_schedules_list_suspend_resume_and_run() -> None:
    async with running_gateway() as gw:
        await gw.fake.create(SCHEDULEDTASKS, NS, {"metadata": {"name": "nightly", "namespace": NS}, "spec": SCHEDULE})
        await gw.settle()
        [listed] = (await gw.client.get(f"{V1}/schedules", headers=gw.alice)).json()["items"]
        assert (listed["name"], listed["type"], listed["suspend"]) == ("nightly", "report", False)
        suspended = await gw.client.post(f"{V1}/schedules/nightly:suspend", headers=gw.alice)
        assert suspended.status_code == 200 and suspended.json()["suspend"] is True
        assert (await gw.client.post(f"{V1}/schedules/nightly:resume", headers=gw.alice)).json()["suspend"] is False
        run = await gw.client.post(f"{V1}/schedules/nightly:run", headers=gw.alice)
        assert run.status_code == 202
        stored = gw.fake.get_object(SCHEDULEDTASKS, NS, "nightly") or {}
        first = stored["metadata"]["annotations"][ANNOTATION_RUN_NOW]
        gw.now[0] += 1
        await gw.client.post(f"{V1}/schedules/nightly:run", headers=gw.alice)
        again = (gw.fake.get_object(SCHEDULEDTASKS, NS, "nightly") or {})["metadata"]["annotations"][ANNOTATION_RUN_NOW]
        assert again != first  # each run is a new value
        assert (await gw.client.get(f"{V1}/schedules/nope", headers=gw.alice)).status_code == 404


async def test_statistics_say_the_window_they_cover() -> None:
    async with running_gateway() as gw:
        await task(gw, "a", "x", phase="Succeeded", durationSeconds=2.0)
        await task(gw, "b", "x", phase="Failed", durationSeconds=4.0)
        await task(gw, "c", "y", phase="Running")
        await gw.settle()
        answer = (await gw.client.get(f"{V1}/statistics", headers=gw.alice)).json()
        [everything] = answer["groups"]
        assert (everything["total"], everything["succeeded"], everything["failed"]) == (3, 1, 1)
        assert everything["successRate"] == 0.5 and everything["meanDurationSeconds"] == 3.0
        assert answer["since"] and answer["until"] and "TTL" in answer["note"]
        grouped = (await gw.client.get(f"{V1}/statistics", params={"groupBy": "type"}, headers=gw.alice)).json()
        assert [(g["key"], g["total"]) for g in grouped["groups"]] == [("x", 2), ("y", 1)]
        bad = await gw.client.get(f"{V1}/statistics", params={"since": "yesterday"}, headers=gw.alice)
        assert bad.status_code == 400 and "RFC 3339" in bad.json()["detail"]
        backwards = await gw.client.get(
            f"{V1}/statistics",
            params={"since": "2026-02-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"},
            headers=gw.alice,
        )
        assert backwards.status_code == 400
