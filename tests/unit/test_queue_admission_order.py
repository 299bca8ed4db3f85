"""A queue of three admits fifty tasks in priority → age → name order, never more than three at once.

The runtime in process against :class:`~asynctask_operator.testing.fakekube.FakeKube` (this was a subprocess
test against kmock of ~40 s; no process boundary is the point of it). Each Job is finished
by the test, one at a time, so the order in which the operator creates Jobs is the
admission order.
"""

from __future__ import annotations

from typing import Any

from asynctask_operator.adapters.kube import ASYNCTASKS, TASKQUEUES, TASKTYPES
from asynctask_operator.testing.fakekube import FakeKube
from tests.support.inprocess import JobController, running, until
from tests.unit.test_own_runs_reconciled import NO_RESYNC, NS, tasktype


def status(api: FakeKube, name: str) -> dict[str, Any]:
    task = api.get_object(ASYNCTASKS, NS, name) or {}
    return dict(task.get("status") or {})


async def test_fifty_tasks_on_a_queue_of_three() -> None:
    api = FakeKube(order="random", seed=3)
    jobs = JobController(api, auto=False)
    await api.create(TASKTYPES, NS, tasktype())
    queue = {"apiVersion": "asynctask.dev/v1alpha1", "kind": "TaskQueue", "metadata": {"name": "three"}}
    await api.create(TASKQUEUES, NS, {**queue, "spec": {"concurrency": 3, "paused": True}})
    names = [f"t{i:02d}" for i in range(50)]
    async with running(api, NO_RESYNC):
        for i, name in enumerate(names):
            body = {"apiVersion": "asynctask.dev/v1alpha1", "kind": "AsyncTask", "metadata": {"name": name}}
            await api.create(ASYNCTASKS, NS, {**body, "spec": {"type": "echo", "queue": "three", "priority": i % 5}})
        await until(
            lambda: all(status(api, n).get("reason") == "QueuePaused" for n in names),
            what=lambda: f"all paused: {[status(api, n).get('reason') for n in names]}",
        )
        assert jobs.created == []

        await api.patch(TASKQUEUES, NS, "three", {"spec": {"paused": False}})
        # Highest priority first, then oldest (creation), then name: priorities 4,3,2,1,0 in name order.
        expected = sorted(names, key=lambda n: (-(names.index(n) % 5), n))
        for finished in range(len(names)):
            await until(lambda f=finished: len(jobs.created) >= min(f + 3, len(names)), what="the next admission")  # type: ignore[misc]
            running_now = jobs.created[finished:]
            assert len(running_now) <= 3, (
                f"more than 3 Jobs of unfinished tasks: {[j['metadata']['name'] for j in running_now]}"
            )
            job = jobs.created[finished]
            task = job["metadata"]["name"].rsplit("-", 1)[0]
            await until(lambda t=task: status(api, t).get("phase") == "Running", what=f"{task} Running")  # type: ignore[misc]
            await jobs.run(job)
            await until(lambda t=task: status(api, t).get("phase") == "Succeeded", what=f"{task} Succeeded")  # type: ignore[misc]
        admitted = [j["metadata"]["name"].rsplit("-", 1)[0] for j in jobs.created]
        # The first three are admitted together (their Jobs are created concurrently); then one per finish.
        assert set(admitted[:3]) == set(expected[:3])
        assert admitted[3:] == expected[3:]
        assert len(admitted) == 50
