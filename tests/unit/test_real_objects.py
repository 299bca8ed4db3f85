"""The fake API server's real objects (issue 29): managedFields as the API server keeps them, a Job's
defaults, and the cluster's controllers played write by write (testing/jobrunner.py). The benchmarks'
figures are only as good as these objects are real."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from asynctask_operator.adapters.kube import ASYNCTASKS, JOBS, PODS, Resource
from asynctask_operator.testing.apiserver import ApiServer
from asynctask_operator.testing.jobrunner import JobRunner

NS = "media"
NOW = dt.datetime(2026, 5, 28, 12, 0, tzinfo=dt.UTC)


def entries(obj: dict[str, Any]) -> dict[tuple[str, str | None], dict[str, Any]]:
    return {(e["manager"], e.get("subresource")): e["fieldsV1"] for e in obj["metadata"]["managedFields"]}


def job(name: str) -> dict[str, Any]:
    container = {"name": "main", "image": "busybox:1.36"}
    labels = {"app.kubernetes.io/managed-by": "asynctask-operator"}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "labels": labels},
        "spec": {"template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}}},
    }


@pytest.fixture()
def model() -> ApiServer:
    return ApiServer(now=lambda: NOW, real_objects=True)


def test_a_create_records_its_writer_and_every_field_it_set(model: ApiServer) -> None:
    body = {
        "kind": "AsyncTask",
        "apiVersion": "asynctask.dev/v1alpha1",
        "metadata": {"name": "a", "labels": {"x": "1"}},
    }
    created = model.create(ASYNCTASKS, NS, body | {"spec": {"type": "echo"}}, manager="kubectl").answer
    fields = entries(created)[("kubectl", None)]
    assert fields == {"f:metadata": {"f:labels": {".": {}, "f:x": {}}}, "f:spec": {"f:type": {}}}
    assert created["metadata"]["managedFields"][0]["time"] == "2026-05-28T12:00:00Z"


def test_a_status_write_is_its_writers_own_entry_and_a_field_changes_hands(model: ApiServer) -> None:
    body = {"kind": "AsyncTask", "metadata": {"name": "a", "labels": {"x": "1"}}, "spec": {"type": "echo"}}
    model.create(ASYNCTASKS, NS, body, manager="kubectl")
    model.patch(ASYNCTASKS, NS, "a", {"status": {"phase": "Running"}}, subresource="status", manager="operator")
    taken = model.patch(ASYNCTASKS, NS, "a", {"metadata": {"labels": {"x": "2"}}}, manager="gateway").answer
    owners = entries(taken)
    assert owners[("operator", "status")] == {"f:status": {"f:phase": {}}}
    assert owners[("gateway", None)] == {"f:metadata": {"f:labels": {"f:x": {}}}}
    assert owners[("kubectl", None)] == {"f:metadata": {"f:labels": {".": {}}}, "f:spec": {"f:type": {}}}


def test_a_removed_field_leaves_every_entry_and_an_empty_entry_goes(model: ApiServer) -> None:
    body = {"kind": "AsyncTask", "metadata": {"name": "a", "labels": {"x": "1"}}, "spec": {"type": "echo"}}
    model.create(ASYNCTASKS, NS, body, manager="kubectl")
    model.patch(
        ASYNCTASKS, NS, "a", {"status": {"phase": "Running", "reason": "R"}}, subresource="status", manager="op"
    )
    left = model.patch(ASYNCTASKS, NS, "a", {"status": {"reason": None}}, subresource="status", manager="other").answer
    assert entries(left)[("op", "status")] == {"f:status": {"f:phase": {}}}
    assert ("other", "status") not in entries(left)  # it set nothing that is still there


def test_a_write_that_changes_nothing_writes_nothing(model: ApiServer) -> None:
    model.create(ASYNCTASKS, NS, {"metadata": {"name": "a"}, "spec": {"type": "echo"}}, manager="kubectl")
    first = model.patch(ASYNCTASKS, NS, "a", {"status": {"phase": "Running"}}, subresource="status", manager="op")
    again = model.patch(ASYNCTASKS, NS, "a", {"status": {"phase": "Running"}}, subresource="status", manager="op")
    assert (
        again.events == []
        and again.answer["metadata"]["resourceVersion"] == first.answer["metadata"]["resourceVersion"]
    )


def test_a_job_gets_the_servers_defaults(model: ApiServer) -> None:
    stored = model.create(JOBS, NS, job("t-1"), manager="asynctask-operator").answer
    uid = stored["metadata"]["uid"]
    assert stored["spec"]["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
    assert stored["spec"]["backoffLimit"] == 6 and stored["spec"]["completionMode"] == "NonIndexed"
    assert stored["spec"]["template"]["metadata"]["labels"]["batch.kubernetes.io/job-name"] == "t-1"
    assert stored["spec"]["template"]["spec"]["containers"][0]["terminationMessagePath"] == "/dev/termination-log"


def test_without_real_objects_nothing_is_added() -> None:
    plain = ApiServer(now=lambda: NOW)
    stored = plain.create(JOBS, NS, job("t-1"), manager="asynctask-operator").answer
    assert "managedFields" not in stored["metadata"] and "selector" not in stored["spec"]


async def test_the_runner_plays_a_real_clusters_writes_for_one_job(model: ApiServer) -> None:
    events: list[tuple[str, str]] = []
    model.listeners.append(lambda e: events.append((e.resource.plural, e.type)))
    runner = JobRunner(model, auto=False, step_seconds=0)
    model.create(JOBS, NS, job("t-1"), manager="asynctask-operator")
    await runner.start("t-1", NS)
    await runner.finish("t-1", NS, succeeded=True)
    kinds = [plural for plural, _ in events]
    assert kinds.count("jobs") == 5  # created, started, ready, a pod uncounted, finished
    assert kinds.count("pods") == 6  # created, bound, creating, running, terminated, finalizer removed
    assert kinds.count("events") == 6  # SuccessfulCreate, Scheduled, Pulled, Created, Started, Completed
    finished = model.get(JOBS, NS, "t-1")
    assert [c["type"] for c in finished["status"]["conditions"]] == ["SuccessCriteriaMet", "Complete"]
    (pod,) = [o for (r, _, _), o in model.objects.items() if r == PODS]
    assert pod["status"]["phase"] == "Succeeded" and "finalizers" not in pod["metadata"]
    assert pod["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 0
    assert {e["manager"] for e in pod["metadata"]["managedFields"]} == {
        "kube-controller-manager",
        "kube-scheduler",
        "kubelet",
    }
    assert sum(runner.writes.values()) == 16
    # A real pod with its managedFields is several KB: what the operator's pod watch receives each time.
    assert len(json.dumps(pod)) > 5000


async def test_a_failed_job_ends_its_pod_with_the_exit_code(model: ApiServer) -> None:
    runner = JobRunner(model, auto=False, step_seconds=0)
    model.create(JOBS, NS, job("t-1"), manager="asynctask-operator")
    await runner.start("t-1", NS)
    await runner.finish("t-1", NS, succeeded=False, exit_code=3)
    (pod,) = [o for (r, _, _), o in model.objects.items() if r == PODS]
    assert pod["status"]["phase"] == "Failed"
    assert pod["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 3
    assert model.get(JOBS, NS, "t-1")["status"]["conditions"][-1]["type"] == "Failed"
    assert runner.writes["kube-scheduler", "create", Resource("", "v1", "pods/binding").plural] == 1
