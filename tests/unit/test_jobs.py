"""docs/design.md §3.1: the Job of an attempt, built from the TaskType's jobTemplate."""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

import pytest

from asynctask_operator.core.jobs import render_job
from asynctask_operator.core.models import EffectiveSpec, RetryPolicy
from tests.unit.builders import IMAGE, NAMESPACE, task, tasktype

ENV_NAMES = [
    "ASYNCTASK_NAME",
    "ASYNCTASK_NAMESPACE",
    "ASYNCTASK_UID",
    "ASYNCTASK_TYPE",
    "ASYNCTASK_ATTEMPT",
    "ASYNCTASK_PAYLOAD",
]


def effective(timeout: int | None = None) -> EffectiveSpec:
    return EffectiveSpec(queue="default", timeout_seconds=timeout, ttl_seconds_after_finished=60, retry=RetryPolicy())


def render(attempt: int = 2, timeout: int | None = 1800, **pod_spec: Any) -> dict[str, Any]:
    t = task("transcode-7f3a").type("video").payload({"input": "s3://in/a.mp4", "preset": "1080p"})
    t = t.labels(app="portal")
    tt = tasktype("video")
    if pod_spec:
        tt = tt.pod_spec(**pod_spec)
    return render_job(t.build(), tt.build(), attempt, effective(timeout))


def env_of(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container["env"]}


def test_job_is_named_per_attempt_in_the_tasks_namespace() -> None:
    job = render(attempt=2)
    assert (job["apiVersion"], job["kind"]) == ("batch/v1", "Job")
    assert job["metadata"]["name"] == "transcode-7f3a-2"
    assert job["metadata"]["namespace"] == NAMESPACE


def test_job_is_controlled_by_its_task() -> None:
    assert render()["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "asynctask.dev/v1alpha1",
            "kind": "AsyncTask",
            "name": "transcode-7f3a",
            "uid": "uid-transcode-7f3a",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]


def test_the_operator_owns_retries_and_garbage_collection() -> None:
    tt = tasktype("video").job_spec(backoffLimit=6, ttlSecondsAfterFinished=100, activeDeadlineSeconds=5)
    tt = tt.pod_spec(restartPolicy="OnFailure")
    job = render_job(task("t").type("video").build(), tt.build(), 1, effective(timeout=1800))
    assert job["spec"]["backoffLimit"] == 0
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    assert "ttlSecondsAfterFinished" not in job["spec"]
    assert job["spec"]["activeDeadlineSeconds"] == 1800


@pytest.mark.parametrize(
    ("timeout", "template_deadline", "expected"),
    [(1800, None, 1800), (None, None, None), (None, 99, None), (30, 99, 30)],
    ids=["from-timeout", "no-timeout", "template-deadline-removed", "timeout-wins"],
)
def test_active_deadline_comes_from_the_timeout(
    timeout: int | None, template_deadline: int | None, expected: int | None
) -> None:
    tt = tasktype("video")
    if template_deadline is not None:
        tt = tt.job_spec(activeDeadlineSeconds=template_deadline)
    job = render_job(task("t").type("video").build(), tt.build(), 1, effective(timeout))
    assert job["spec"].get("activeDeadlineSeconds") == expected


OPERATOR_LABELS = {
    "asynctask.dev/task": "transcode-7f3a",
    "asynctask.dev/task-uid": "uid-transcode-7f3a",
    "asynctask.dev/type": "video",
    "asynctask.dev/attempt": "2",
    "app.kubernetes.io/managed-by": "asynctask-operator",
}


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        (("metadata",), {**OPERATOR_LABELS, "app": "portal", "team": "media"}),  # + the template's Job labels
        (("spec", "template", "metadata"), {**OPERATOR_LABELS, "app": "portal"}),
    ],
    ids=["job", "pod-template"],
)
def test_operator_and_user_labels_on_job_and_pods(where: tuple[str, ...], expected: dict[str, str]) -> None:
    node: Any = render(attempt=2)
    for key in where:
        node = node[key]
    assert node["labels"] == expected


def test_user_labels_in_the_reserved_prefix_are_not_copied() -> None:
    t = task("t").type("video").label("asynctask.dev/attempt", "99").label("asynctask.dev/custom", "x")
    job = render_job(t.labels(app="portal").build(), tasktype("video").build(), 1, effective())
    for labels in (job["metadata"]["labels"], job["spec"]["template"]["metadata"]["labels"]):
        assert labels["asynctask.dev/attempt"] == "1"
        assert "asynctask.dev/custom" not in labels
        assert labels["app"] == "portal"


def test_long_task_names_get_a_valid_task_label() -> None:
    name = "r" * 100
    job = render_job(task(name).type("video").build(), tasktype("video").build(), 1, effective())
    value = job["metadata"]["labels"]["asynctask.dev/task"]
    assert len(value) <= 63
    assert len(job["metadata"]["name"]) <= 63


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_every_container_and_init_container_gets_the_task_env() -> None:
    job = render(
        attempt=2,
        initContainers=[{"name": "fetch", "image": "busybox"}],
        containers=[{"name": "main", "image": IMAGE}, {"name": "sidecar", "image": "envoy"}],
    )
    pod_spec = job["spec"]["template"]["spec"]
    containers = pod_spec["initContainers"] + pod_spec["containers"]
    assert [c["name"] for c in containers] == ["fetch", "main", "sidecar"]
    for container in containers:
        assert env_of(container) == {
            "ASYNCTASK_NAME": "transcode-7f3a",
            "ASYNCTASK_NAMESPACE": NAMESPACE,
            "ASYNCTASK_UID": "uid-transcode-7f3a",
            "ASYNCTASK_TYPE": "video",
            "ASYNCTASK_ATTEMPT": "2",
            "ASYNCTASK_PAYLOAD": '{"input":"s3://in/a.mp4","preset":"1080p"}',
            # the attempt's span, in the task's own trace: sha256(uid)[:16], sha256("uid/2/attempt")[:8]
            "TRACEPARENT": f"00-{sha('uid-transcode-7f3a')[:32]}-{sha('uid-transcode-7f3a/2/attempt')[:16]}-01",
        }


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"b": 1, "a": [1, 2]}, '{"a":[1,2],"b":1}'),
        (None, "null"),
        ("text", '"text"'),
        ({"name": "ünïcode"}, '{"name":"ünïcode"}'),
    ],
    ids=["object-compact", "absent", "string", "unicode"],
)
def test_payload_env_is_compact_json(payload: Any, expected: str) -> None:
    job = render_job(task("t").type("video").payload(payload).build(), tasktype("video").build(), 1, effective())
    value = env_of(job["spec"]["template"]["spec"]["containers"][0])["ASYNCTASK_PAYLOAD"]
    assert value == expected
    assert json.loads(value) == payload


def test_user_env_var_with_our_name_is_replaced_and_others_kept() -> None:
    job = render(
        containers=[
            {
                "name": "main",
                "image": IMAGE,
                "env": [{"name": "ASYNCTASK_ATTEMPT", "value": "7"}, {"name": "LOG_LEVEL", "value": "debug"}],
            }
        ]
    )
    env = job["spec"]["template"]["spec"]["containers"][0]["env"]
    names = [e["name"] for e in env]
    assert names.count("ASYNCTASK_ATTEMPT") == 1
    assert env_of(job["spec"]["template"]["spec"]["containers"][0])["ASYNCTASK_ATTEMPT"] == "2"
    assert {"name": "LOG_LEVEL", "value": "debug"} in env
    assert set(ENV_NAMES) <= set(names)


def test_extra_env_is_added_to_every_container() -> None:
    t, tt = task("t").type("video").build(), tasktype("video").build()
    job = render_job(t, tt, 1, effective(), extra_env={"ASYNCTASK_REPORT_TOKEN": "tok"})
    assert env_of(job["spec"]["template"]["spec"]["containers"][0])["ASYNCTASK_REPORT_TOKEN"] == "tok"


def test_the_tasktype_template_is_not_mutated() -> None:
    tt = (
        tasktype("video")
        .pod_spec(initContainers=[{"name": "fetch", "image": "busybox", "env": [{"name": "A", "value": "1"}]}])
        .build()
    )
    before = copy.deepcopy(tt.spec.job_template)
    render_job(task("t").type("video").labels(app="portal").build(), tt, 1, effective(timeout=5))
    render_job(task("u").type("video").build(), tt, 2, effective())
    assert tt.spec.job_template == before
