"""Concurrency keys through the whole runtime (cache, intake, ledger, reconcilers) against the in-process fake
API: a key is held from what the objects say, never leaks and is never granted twice — after a crash between
a Job and its Running write, a task deleted while its Job runs, a Job deleted under it — and a key costs no
write of its own. Loop time under looptime: nothing waits in real time."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from asynctask_operator.adapters.kube import ASYNCTASKS, EVENTS, JOBS, TASKQUEUES, TASKTYPES
from asynctask_operator.core.clocks import Clocks
from asynctask_operator.settings import OperatorSettings
from asynctask_operator.testing.fakekube import FakeKube
from tests.support.inprocess import JobController, running, tasktype, until

NS = "media"
SETTINGS = OperatorSettings(http_port=0, resync_seconds=86400, queue_status_seconds=1)


def keyed(name: str, key: str = "video-42", **concurrency: Any) -> dict[str, Any]:
    return {"apiVersion": "asynctask.dev/v1alpha1", "kind": "AsyncTask", "metadata": {"name": name},
            "spec": {"type": "echo", "concurrency": {"key": key, **concurrency}}}  # fmt: skip


def status(api: FakeKube, name: str) -> dict[str, Any]:
    return dict((api.get_object(ASYNCTASKS, NS, name) or {}).get("status") or {})


def job_names(jobs: JobController) -> list[str]:
    return [j["metadata"]["name"] for j in jobs.created]


async def orphaned(api: FakeKube, task: str) -> None:
    """The task is deleted and its running Job orphaned (``kubectl delete --cascade=orphan``, or a garbage
    collector lagging): the Job runs on without an owner, its task's uid still in its labels."""
    await api.patch(JOBS, NS, f"{task}-1", {"metadata": {"ownerReferences": None}})
    await api.delete(ASYNCTASKS, NS, task)


def clocks() -> Clocks:
    return Clocks.of_loop(asyncio.get_running_loop(), epoch=time.time())


@pytest.mark.looptime
async def test_a_mutex_runs_one_task_of_a_key_at_a_time_and_says_who_holds_it() -> None:
    api = FakeKube()
    jobs = JobController(api, auto=False)
    await api.create(TASKTYPES, NS, tasktype())
    await api.create(TASKQUEUES, NS, {"apiVersion": "asynctask.dev/v1alpha1", "kind": "TaskQueue",
                                      "metadata": {"name": "default"}, "spec": {"concurrency": 5}})  # fmt: skip
    async with running(api, SETTINGS, clocks=clocks()):
        await api.create(ASYNCTASKS, NS, keyed("first"))
        await until(lambda: job_names(jobs) == ["first-1"], what="first's Job")
        await api.create(ASYNCTASKS, NS, keyed("second"))
        await api.create(ASYNCTASKS, NS, keyed("other", key="video-7"))
        await until(lambda: status(api, "second").get("reason") == "WaitingForKey", what="second waits for the key")
        await until(lambda: "other-1" in job_names(jobs), what="another key is not held back")
        wait = status(api, "second")
        assert wait["waitingForKey"] == {"key": "video-42", "limit": 1, "holders": ["first"]}
        assert wait["message"] == "waiting for concurrency key 'video-42' (limit 1), held by first"
        events = [e for e in api.of(EVENTS, NS) if e["involvedObject"]["name"] == "second"]
        assert [(e["reason"], e["type"]) for e in events] == [("WaitingForKey", "Normal")]
        await until(
            lambda: ((api.get_object(TASKQUEUES, NS, "default") or {}).get("status") or {}).get("waitingForKey") == 1,
            what="the queue's status counts the wait",
        )
        busiest = api.get_object(TASKQUEUES, NS, "default")["status"]["busiestKeys"]  # type: ignore[index]
        assert busiest[0] == {"key": "video-42", "holding": 1, "waiting": 1}
        await jobs.run(jobs.created[0])  # first's Job completes
        await until(lambda: "second-1" in job_names(jobs), what="second gets the key")
        assert status(api, "first")["phase"] == "Succeeded"
        second = status(api, "second")
        assert "waitingForKey" not in second
        assert {c["type"]: c["reason"] for c in second["conditions"]}["KeyAcquired"] == "KeyAcquired"


@pytest.mark.looptime
async def test_after_a_crash_between_the_job_and_the_running_write_the_job_holds_the_key() -> None:
    api = FakeKube()
    jobs = JobController(api, auto=False)
    await api.create(TASKTYPES, NS, tasktype())
    # The previous operator created first's Job and died before writing Running: first reads Pending.
    first = await api.create(ASYNCTASKS, NS, keyed("first"))
    await api.create(JOBS, NS, {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "first-1", "labels": {"asynctask.dev/attempt": "1",
                                                   "app.kubernetes.io/managed-by": "asynctask-operator"},
                     "annotations": {"asynctask.dev/concurrency-key": "video-42"},
                     "ownerReferences": [{"kind": "AsyncTask", "name": "first", "uid": first["metadata"]["uid"],
                                          "controller": True}]},
        "spec": {"template": {"spec": {"containers": [{"name": "main"}]}}},
    })  # fmt: skip
    await api.create(ASYNCTASKS, NS, keyed("second"))
    async with running(api, SETTINGS, clocks=clocks()):
        await until(lambda: status(api, "first").get("phase") == "Running", what="first's Job adopted")
        await until(lambda: status(api, "second").get("reason") == "WaitingForKey", what="second waits")
        assert job_names(jobs) == ["first-1"]  # the one the test made: none for second, no other for first
        await api.patch(JOBS, NS, "first-1", {"status": {"succeeded": 1, "conditions": [
            {"type": "Complete", "status": "True"}]}}, subresource="status")  # fmt: skip
        await until(lambda: job_names(jobs) == ["first-1", "second-1"], what="second's Job after first's ended")


@pytest.mark.looptime
async def test_a_task_deleted_while_its_job_runs_holds_the_key_until_the_job_is_gone() -> None:
    api = FakeKube()
    jobs = JobController(api, auto=False)
    await api.create(TASKTYPES, NS, tasktype())
    async with running(api, SETTINGS, clocks=clocks()):
        await api.create(ASYNCTASKS, NS, keyed("first"))
        await until(lambda: job_names(jobs) == ["first-1"], what="first's Job")
        await api.create(ASYNCTASKS, NS, keyed("second"))
        await until(lambda: status(api, "second").get("reason") == "WaitingForKey", what="second waits")
        await orphaned(api, "first")
        await asyncio.sleep(30)
        assert job_names(jobs) == ["first-1"]
        await api.delete(JOBS, NS, "first-1")
        await until(lambda: job_names(jobs) == ["first-1", "second-1"], what="second's Job once first's is gone")


@pytest.mark.looptime
async def test_the_key_of_a_deleted_tasks_job_is_held_after_a_restart_too() -> None:
    """The key of an orphaned Job is read from the Job itself (its annotation): a restart keeps it held."""
    api = FakeKube()
    jobs = JobController(api, auto=False)
    await api.create(TASKTYPES, NS, tasktype())
    async with running(api, SETTINGS, clocks=clocks()):
        await api.create(ASYNCTASKS, NS, keyed("first"))
        await until(lambda: job_names(jobs) == ["first-1"], what="first's Job")
        await orphaned(api, "first")
    await api.create(ASYNCTASKS, NS, keyed("second"))
    async with running(api, SETTINGS, clocks=clocks()):  # a new operator: its ledger from the objects
        await until(lambda: status(api, "second").get("reason") == "WaitingForKey", what="second waits")
        assert status(api, "second")["waitingForKey"]["holders"] == ["job/first-1"]
        await api.delete(JOBS, NS, "first-1")
        await until(lambda: "second-1" in job_names(jobs), what="second's Job")


@pytest.mark.looptime
async def test_a_job_deleted_under_its_task_frees_the_key() -> None:
    api = FakeKube()
    jobs = JobController(api, auto=False)
    await api.create(TASKTYPES, NS, tasktype())
    async with running(api, SETTINGS, clocks=clocks()):
        await api.create(
            ASYNCTASKS, NS, {**keyed("first"), "spec": {**keyed("first")["spec"], "retry": {"maxRetries": 0}}}
        )
        await until(lambda: job_names(jobs) == ["first-1"], what="first's Job")
        await api.create(ASYNCTASKS, NS, keyed("second"))
        await until(lambda: status(api, "second").get("reason") == "WaitingForKey", what="second waits")
        await api.delete(JOBS, NS, "first-1")  # someone deletes it
        await until(lambda: status(api, "first").get("reason") == "JobDeleted", what="first failed JobDeleted")
        await until(lambda: "second-1" in job_names(jobs), what="second's Job")


@pytest.mark.looptime
async def test_cancel_in_progress_cancels_the_running_holder_and_the_newer_task_runs_after_its_job_stops() -> None:
    api = FakeKube()
    jobs = JobController(api, auto=False)
    deleted: list[str] = []
    await api.create(TASKTYPES, NS, tasktype())
    async with running(api, SETTINGS, clocks=clocks()) as runtime:
        original = runtime.api.delete

        async def recording(resource: Any, namespace: str, name: str, **kw: Any) -> bool:
            if resource == JOBS:
                deleted.append(name)
            return await original(resource, namespace, name, **kw)

        runtime.api.delete = recording  # type: ignore[method-assign]
        runtime.tasks.api = runtime.api
        await api.create(ASYNCTASKS, NS, keyed("a-old", policy="CancelInProgress"))
        await until(lambda: job_names(jobs) == ["a-old-1"], what="the old one runs")
        await api.create(ASYNCTASKS, NS, keyed("b-new", policy="CancelInProgress"))
        await until(lambda: job_names(jobs) == ["a-old-1", "b-new-1"], what="the new one runs")
        assert deleted == ["a-old-1"]  # the old Job was deleted before the new one was created
        old = status(api, "a-old")
        assert (old["phase"], old["reason"]) == ("Cancelled", "Superseded")
        assert "b-new" in old["message"]


@pytest.mark.looptime
async def test_a_keyed_task_whose_key_is_free_costs_the_writes_of_one_without_a_key() -> None:
    api = FakeKube()
    JobController(api)
    await api.create(TASKTYPES, NS, tasktype())
    async with running(api, SETTINGS, clocks=clocks()):
        for name, body in (("plain", {**keyed("plain"), "spec": {"type": "echo"}}), ("keyed", keyed("keyed"))):
            await api.create(ASYNCTASKS, NS, body)
            await until(lambda n=name: status(api, n).get("phase") == "Succeeded", what=f"{name} Succeeded")  # type: ignore[misc]

    def writes(name: str) -> int:
        """The operator's: its Job, the task's status, Events (not the test's create, nor the Job controller's)."""
        ours = {("create", "jobs", None), ("patch", "asynctasks", "status"), ("create", "events", None)}
        return sum(1 for r in api.requests if (r.verb, r.resource, r.subresource) in ours and r.name.startswith(name))

    assert writes("keyed") == writes("plain") == 3
