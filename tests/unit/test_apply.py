"""``TaskReconciler.apply``: the writes of one decision, in their crash-safe order, against the fake API server.

Each case runs the real reconciler over :class:`~asynctask_operator.testing.fakekube.FakeKube` (which
answers 409 for a name that exists and for a stale resourceVersion, and fails a request on
demand) and checks the requests it made, in order, with what is left behind: the Jobs, the
status, the admission ledger's slot, the Events, the metrics. A failing request stands for
a crash between two writes: the next reconcile must carry on from what did happen.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from asynctask_operator.adapters.kube import (
    ASYNCTASKS,
    EVENTS,
    JOBS,
    TASKQUEUES,
    TASKTYPES,
    ApiError,
    Conflict,
    Invalid,
)
from asynctask_operator.controllers.manager import Manager
from asynctask_operator.controllers.workqueue import RequeueSoon
from asynctask_operator.core.naming import job_name
from asynctask_operator.settings import OperatorSettings
from asynctask_operator.testing.fakekube import FakeKube
from tests.support.inprocess import tasktype

NS = "media"
SETTINGS = OperatorSettings(http_port=0, resync_seconds=3600, queue_status_seconds=3600)
Step = tuple[str, str]  # (verb, resource[/subresource])


def task(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "asynctask.dev/v1alpha1",
        "kind": "AsyncTask",
        "metadata": {"name": name},
        "spec": {"type": "echo", **spec},
    }


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


async def started(*tasks: dict[str, Any], queue: dict[str, Any] | None = None) -> tuple[FakeKube, Manager]:
    api = FakeKube()
    await api.create(TASKTYPES, NS, tasktype())
    if queue is not None:
        await api.create(TASKQUEUES, NS, queue)
    for body in tasks:
        await api.create(ASYNCTASKS, NS, body)
    runtime = Manager(api, SETTINGS)
    await runtime.sync()
    api.requests.clear()
    return api, runtime


async def reconcile(runtime: Manager, name: str) -> float | None:
    return await runtime.tasks.reconcile((NS, name), now())


def steps(api: FakeKube) -> list[Step]:
    """The requests since the last call, as (verb, resource[/subresource])."""
    out = [(r.verb, r.resource + (f"/{r.subresource}" if r.subresource else "")) for r in api.requests]
    api.requests.clear()
    return out


def status(api: FakeKube, name: str) -> dict[str, Any]:
    obj = api.get_object(ASYNCTASKS, NS, name)
    assert obj is not None
    return dict(obj.get("status") or {})


def counted(runtime: Manager, metric: str, **labels: str) -> float:
    return runtime.metrics.registry.get_sample_value(metric, labels) or 0.0


def reserved(runtime: Manager, name: str) -> bool:
    return runtime.admissions.is_reserved((NS, name))


async def test_an_admitted_task_creates_its_job_then_writes_running() -> None:
    api, runtime = await started(task("t"))
    await reconcile(runtime, "t")
    assert steps(api) == [("create", "jobs"), ("patch", "asynctasks/status")]
    assert status(api, "t")["phase"] == "Running"
    assert [j["metadata"]["name"] for j in api.of(JOBS, NS)] == [job_name("t", 1)]
    assert counted(runtime, "asynctask_tasks_created_total", namespace=NS, type="echo") == 1
    assert counted(runtime, "asynctask_queue_wait_seconds_count", namespace=NS, queue="default") == 1
    assert api.of(EVENTS, NS) == []  # starting is not an Event: each one is an API write


async def test_a_job_a_crash_left_behind_is_adopted_after_the_409() -> None:
    api, runtime = await started(task("t"))
    # An earlier life of the operator created the Job and died before the status write; the
    # new one's cache has not seen the Job yet.
    uid = api.get_object(ASYNCTASKS, NS, "t")["metadata"]["uid"]  # type: ignore[index]
    await api.create(
        JOBS,
        NS,
        {
            "metadata": {
                "name": job_name("t", 1),
                "ownerReferences": [{"kind": "AsyncTask", "uid": uid, "controller": True}],
            }
        },
    )
    api.requests.clear()
    await reconcile(runtime, "t")
    assert steps(api) == [("create", "jobs"), ("get", "jobs"), ("patch", "asynctasks/status")]
    assert len(api.of(JOBS, NS)) == 1
    assert status(api, "t")["attempts"][0]["job"] == job_name("t", 1)


async def test_a_job_of_an_earlier_task_of_the_same_name_is_waited_for_and_the_slot_given_back() -> None:
    api, runtime = await started(task("t"))
    await api.create(JOBS, NS, {"metadata": {"name": job_name("t", 1), "ownerReferences": [{"uid": "someone-else"}]}})
    api.requests.clear()
    with pytest.raises(RequeueSoon):
        await reconcile(runtime, "t")
    assert steps(api) == [("create", "jobs"), ("get", "jobs")]  # no status write
    assert status(api, "t") == {}
    assert not reserved(runtime, "t")


async def test_a_job_create_that_fails_gives_the_slot_back_and_the_next_reconcile_starts_over() -> None:
    api, runtime = await started(task("t"))
    api.fail("create", "jobs", ApiError(500, "InternalError", "etcd timed out"))
    with pytest.raises(ApiError):
        await reconcile(runtime, "t")
    assert steps(api) == [("create", "jobs")]
    assert not reserved(runtime, "t")
    await reconcile(runtime, "t")
    assert steps(api) == [("create", "jobs"), ("patch", "asynctasks/status")]
    assert len(api.of(JOBS, NS)) == 1


async def test_a_status_write_that_fails_after_the_job_keeps_the_slot_and_is_not_counted() -> None:
    """The crash between the two writes: the Job exists, the status does not say so."""
    api, runtime = await started(task("t"))
    api.fail("patch", "asynctasks", ApiError(500, "InternalError", "etcd timed out"))
    with pytest.raises(ApiError):
        await reconcile(runtime, "t")
    assert steps(api) == [("create", "jobs"), ("patch", "asynctasks/status")]
    assert reserved(runtime, "t")  # the Job holds it: no other task may take it meanwhile
    assert counted(runtime, "asynctask_tasks_created_total", namespace=NS, type="echo") == 0
    await reconcile(runtime, "t")
    assert steps(api) == [("patch", "asynctasks/status")]  # the Job is adopted, never doubled
    assert len(api.of(JOBS, NS)) == 1
    assert status(api, "t")["phase"] == "Running"
    assert counted(runtime, "asynctask_tasks_created_total", namespace=NS, type="echo") == 1


async def test_a_conflicting_status_write_decides_again_soon_and_counts_nothing() -> None:
    api, runtime = await started(task("t"))
    api.fail("patch", "asynctasks", Conflict(409, "Conflict", "the object has been modified"))
    with pytest.raises(RequeueSoon) as raised:
        await reconcile(runtime, "t")
    assert raised.value.delay < 1
    assert counted(runtime, "asynctask_tasks_created_total", namespace=NS, type="echo") == 0


async def test_a_job_the_api_server_refuses_ends_the_task_and_posts_its_event_after_the_status() -> None:
    api, runtime = await started(task("t"))
    api.fail("create", "jobs", Invalid(422, "Invalid", "spec.template.spec.containers[0].image: Required value"))
    await reconcile(runtime, "t")
    assert steps(api) == [("create", "jobs"), ("patch", "asynctasks/status"), ("create", "events")]
    assert (status(api, "t")["phase"], status(api, "t")["reason"]) == ("Failed", "InvalidJobTemplate")
    [event] = api.of(EVENTS, NS)
    assert (event["type"], event["reason"], event["involvedObject"]["name"]) == ("Warning", "InvalidJobTemplate", "t")
    assert "containers[0].image" in event["message"]
    assert not reserved(runtime, "t")
    labels = {"namespace": NS, "type": "echo", "queue": "default", "phase": "Failed", "reason": "InvalidJobTemplate"}
    assert counted(runtime, "asynctask_tasks_finished_total", **labels) == 1


async def test_a_task_without_a_free_slot_writes_pending_and_holds_none() -> None:
    queue = {"apiVersion": "asynctask.dev/v1alpha1", "kind": "TaskQueue", "metadata": {"name": "q"},
             "spec": {"concurrency": 1}}  # fmt: skip
    api, runtime = await started(task("a", queue="q"), task("b", queue="q"), queue=queue)
    await reconcile(runtime, "a")
    steps(api)
    await reconcile(runtime, "b")
    assert steps(api) == [("patch", "asynctasks/status")]
    assert (status(api, "b")["phase"], status(api, "b")["reason"]) == ("Pending", "Queued")
    assert not reserved(runtime, "b")
    assert [j["metadata"]["name"] for j in api.of(JOBS, NS)] == [job_name("a", 1)]


async def test_a_cancel_writes_the_status_before_it_deletes_the_running_job() -> None:
    api, runtime = await started(task("t"))
    await reconcile(runtime, "t")
    runtime.on_job("ADDED", api.of(JOBS, NS)[0])
    cancelled = await api.patch(ASYNCTASKS, NS, "t", {"spec": {"cancel": True}})
    runtime.on_task("MODIFIED", cancelled)
    steps(api)
    await reconcile(runtime, "t")
    # The Job is read back first: a copy older than the server's must not delete a finished Job.
    assert steps(api) == [("patch", "asynctasks/status"), ("get", "jobs"), ("delete", "jobs")]
    assert status(api, "t")["phase"] == "Cancelled"
    assert api.of(JOBS, NS) == []


async def test_a_failed_attempt_posts_its_event_only_once_the_retrying_status_is_written() -> None:
    api, runtime = await started(task("t"))
    await reconcile(runtime, "t")
    job = api.of(JOBS, NS)[0]
    failed = await api.patch(
        JOBS, NS, job["metadata"]["name"],
        {"status": {"failed": 1, "conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]}},
        subresource="status",
    )  # fmt: skip
    runtime.on_job("MODIFIED", failed)
    api.fail("patch", "asynctasks", ApiError(503, "ServiceUnavailable", "try again"))
    steps(api)
    with pytest.raises(ApiError):
        await reconcile(runtime, "t")
    assert ("create", "events") not in steps(api)
    assert api.of(EVENTS, NS) == []
    await reconcile(runtime, "t")
    assert steps(api)[-2:] == [("patch", "asynctasks/status"), ("create", "events")]
    assert status(api, "t")["phase"] == "Retrying"
    assert [e["type"] for e in api.of(EVENTS, NS)] == ["Warning"]
    assert counted(runtime, "asynctask_attempts_total", namespace=NS, type="echo", outcome="Failed") == 1
