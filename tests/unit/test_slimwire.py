"""The operator decodes only the fields it reads of Jobs, pods and tasks (adapters/slimwire.py): what it
reads of them must be exactly what it would read of the whole object, at every stage of a real Job's
life (testing/realobjects.py, with managedFields)."""

from __future__ import annotations

import copy
import datetime as dt
import json
from typing import Any

import pytest

from asynctask_operator.adapters.kube import ASYNCTASKS, JOBS, PODS
from asynctask_operator.adapters.slimwire import CODECS
from asynctask_operator.controllers.cache import slim_task
from asynctask_operator.core.observed import job_view, pod_view
from asynctask_operator.testing import realobjects as real
from asynctask_operator.testing.apiserver import ApiServer

NS = "media"
NOW = dt.datetime(2026, 5, 28, 12, 0, tzinfo=dt.UTC)
T = "2026-05-28T12:00:00Z"


def wire(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def lives() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every version of a Job and its pod, for a success and for a failure with an exit code and a message."""
    model = ApiServer(now=lambda: NOW, real_objects=True)
    jobs, pods = [], []
    for name, succeeded in (("ok-1", True), ("bad-1", False)):
        body = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {
                "name": name,
                "labels": {"asynctask.dev/attempt": "1", "app.kubernetes.io/managed-by": "asynctask-operator"},
                "annotations": {"asynctask.dev/concurrency-key": "k"},
                "ownerReferences": [{"apiVersion": "asynctask.dev/v1alpha1", "kind": "AsyncTask", "name": "t", "uid": "u", "controller": True}],
            },
            "spec": {"template": {"spec": {"containers": [{"name": "main", "image": "busybox:1.36"}]}}},
        }  # fmt: skip
        job = model.create(JOBS, NS, body, manager="asynctask-operator").answer
        jobs.append(job)
        pod = model.create(PODS, NS, real.pod_for(job), manager="kube-controller-manager").answer
        pods.append(pod)
        pod_name = pod["metadata"]["name"]
        pods.append(model.bind(NS, pod_name, real.NODE, T).answer)
        for stage in ("creating", "running", "terminated"):
            status = real.pod_status(pods[-1], stage, T, 0 if succeeded else 137, "" if succeeded else "OOM")
            if stage == "terminated" and not succeeded:
                status["status"]["containerStatuses"][0]["state"]["terminated"]["reason"] = "OOMKilled"
            pods.append(model.patch(PODS, NS, pod_name, status, subresource="status", manager="kubelet").answer)
        for status in (real.job_started(T), real.job_ready(1), real.job_finished(T, succeeded)):
            jobs.append(model.patch(JOBS, NS, name, status, subresource="status", manager="k").answer)
    waiting = copy.deepcopy(pods[2])
    waiting["status"]["containerStatuses"] = [
        {"name": "main", "state": {"waiting": {"reason": "ImagePullBackOff", "message": "no"}}}
    ]
    waiting["status"]["conditions"].append(
        {"type": "DisruptionTarget", "status": "True", "reason": "Evicted", "message": "m"}
    )
    deleting = copy.deepcopy(jobs[-1])
    deleting["metadata"]["deletionTimestamp"] = T
    return [*jobs, deleting], [*pods, waiting]


JOB_VERSIONS, POD_VERSIONS = lives()


@pytest.mark.parametrize("job", JOB_VERSIONS, ids=lambda j: str(j["metadata"]["resourceVersion"]))
def test_a_slim_job_reads_as_the_whole_one(job: dict[str, Any]) -> None:
    slim = CODECS["jobs"].one(wire(job))
    assert job_view(slim) == job_view(job)
    assert "managedFields" not in slim["metadata"] and "spec" not in slim
    assert len(wire(slim)) < len(wire(job)) / 2


@pytest.mark.parametrize("pod", POD_VERSIONS, ids=lambda p: str(p["metadata"]["resourceVersion"]))
def test_a_slim_pod_reads_as_the_whole_one(pod: dict[str, Any]) -> None:
    slim = CODECS["pods"].one(wire(pod))
    assert pod_view(slim) == pod_view(pod)
    assert len(wire(slim)) < len(wire(pod)) / 2


def test_a_task_is_whole_but_its_managed_fields() -> None:
    model = ApiServer(now=lambda: NOW, real_objects=True)
    body = {
        "apiVersion": "asynctask.dev/v1alpha1",
        "kind": "AsyncTask",
        "metadata": {"name": "t", "labels": {"a": "b"}, "annotations": {"x": "y"}},
        "spec": {"type": "echo", "payload": {"n": [1, 2.5, None, {"deep": True}]}, "retry": {"maxRetries": 2}},
    }
    model.create(ASYNCTASKS, NS, body, manager="kubectl")
    status = {"status": {"phase": "Running", "attempts": [{"attempt": 1, "job": "t-1"}], "result": {"k": 1}}}
    task = model.patch(ASYNCTASKS, NS, "t", status, subresource="status", manager="asynctask-operator").answer
    assert CODECS["asynctasks"].one(wire(task)) == slim_task(task)


def test_a_listing_and_watch_events_of_each_kind() -> None:
    codec = CODECS["pods"]
    page = codec.page(
        wire({"kind": "PodList", "metadata": {"resourceVersion": "9", "continue": "c"}, "items": POD_VERSIONS[:3]})
    )
    assert page["metadata"] == {"resourceVersion": "9", "continue": "c"}
    assert [pod_view(p) for p in page["items"]] == [pod_view(p) for p in POD_VERSIONS[:3]]
    event = codec.event(wire({"type": "MODIFIED", "object": POD_VERSIONS[-1]}))
    assert event["type"] == "MODIFIED" and pod_view(event["object"]) == pod_view(POD_VERSIONS[-1])
    # A bookmark and an error are read whole: the reflector reads a Status's code, reason and message.
    bookmark = {
        "type": "BOOKMARK",
        "object": {
            "kind": "Pod",
            "metadata": {"resourceVersion": "12", "annotations": {"k8s.io/initial-events-end": "true"}},
        },
    }
    error = {"type": "ERROR", "object": {"kind": "Status", "code": 410, "reason": "Expired", "message": "too old"}}
    assert codec.event(wire(bookmark)) == bookmark and codec.event(wire(error)) == error  # fmt: skip


def test_an_object_of_another_shape_is_decoded_whole() -> None:
    odd = {"metadata": {"name": "p", "labels": {"n": 1}}, "status": {"phase": "Running"}}  # a label that is no string
    assert CODECS["pods"].one(wire(odd)) == odd
