"""A task runs as a Job and its outcome lands in its status (docs/design.md §2.3, §3.1): the examples, for real."""

from __future__ import annotations

import json
import time

import pytest

from tests.e2e.helpers import (
    API_VERSION,
    GC_TIMEOUT,
    LABEL_ATTEMPT,
    LABEL_TASK,
    LABEL_TYPE,
    SUCCESS_TIMEOUT,
    Cluster,
    condition_of,
    container_env,
    is_subsequence,
    load_example,
    one,
    select,
    status_of,
    to_yaml,
)

pytestmark = pytest.mark.e2e


def test_hello_succeeds_as_a_job(cluster: Cluster) -> None:
    docs = load_example("hello")
    cluster.apply(docs)
    spec = one(docs, "AsyncTask", "hello")["spec"]

    # Poll often: the Running phase lasts only the container's 3 s (plus its start).
    task = cluster.wait_for_phase("hello", {"Succeeded"}, SUCCESS_TIMEOUT, interval=0.25)
    status = status_of(task)
    seen = cluster.phases["hello"]
    why = cluster.describe("hello")
    assert "Running" in seen, f"the test never saw the task Running (phases seen: {seen})\n{why}"
    assert is_subsequence(seen, ["Pending", "Running", "Succeeded"]), f"unexpected phase order {seen}\n{why}"
    assert status.get("reason") == "Completed", why
    assert status.get("attempt") == 1, why
    succeeded = condition_of(task, "Succeeded")
    assert succeeded is not None and succeeded.get("status") == "True", f"condition Succeeded: {succeeded}\n{why}"
    attempts = status.get("attempts") or []
    assert len(attempts) == 1 and attempts[0].get("job") == "hello-1", why
    assert attempts[0].get("outcome") == "Succeeded", why
    assert status.get("startTime") and status.get("completionTime"), why
    assert not status.get("error"), why

    job = cluster.get_job("hello-1")
    assert job is not None, f"Job hello-1 does not exist\n{why}"
    owners = job["metadata"].get("ownerReferences") or []
    assert any(
        o.get("apiVersion") == API_VERSION
        and o.get("kind") == "AsyncTask"
        and o.get("name") == "hello"
        and o.get("uid") == task["metadata"]["uid"]
        and o.get("controller") is True
        for o in owners
    ), f"Job hello-1 is not owned by AsyncTask hello ({task['metadata']['uid']}): {owners}"
    assert job["spec"].get("backoffLimit") == 0, f"backoffLimit: {job['spec'].get('backoffLimit')}"
    labels = job["metadata"].get("labels") or {}
    assert labels.get(LABEL_TASK) == "hello", labels
    assert labels.get(LABEL_TYPE) == "hello", labels
    assert labels.get(LABEL_ATTEMPT) == "1", labels

    env = container_env(job)
    assert "ASYNCTASK_PAYLOAD" in env, f"the container has no ASYNCTASK_PAYLOAD: {env}"
    assert json.loads(env["ASYNCTASK_PAYLOAD"]) == spec["payload"], env["ASYNCTASK_PAYLOAD"]
    expected = {
        "ASYNCTASK_NAME": "hello",
        "ASYNCTASK_NAMESPACE": cluster.namespace,
        "ASYNCTASK_UID": task["metadata"]["uid"],
        "ASYNCTASK_TYPE": "hello",
        "ASYNCTASK_ATTEMPT": "1",
    }
    assert {k: env.get(k) for k in expected} == expected, to_yaml(env)

    pods = cluster.pods_of_job("hello-1")
    assert pods, f"no pod of Job hello-1\n{why}"
    for pod in pods:
        pod_labels = pod["metadata"].get("labels") or {}
        assert pod_labels.get(LABEL_TASK) == "hello", f"pod {pod['metadata']['name']} labels: {pod_labels}"
        assert pod_labels.get(LABEL_ATTEMPT) == "1", f"pod {pod['metadata']['name']} labels: {pod_labels}"


def test_failing_task_fails_with_its_exit_code(cluster: Cluster) -> None:
    cluster.apply(load_example("failing"))
    task = cluster.wait_for_phase("failing", {"Failed"}, SUCCESS_TIMEOUT)
    status = status_of(task)
    why = cluster.describe("failing")
    assert status.get("reason") == "PodFailed", why
    attempts = status.get("attempts") or []
    assert len(attempts) == 1, f"maxRetries 0 allows one attempt only\n{why}"
    assert attempts[0].get("exitCode") == 3, why
    assert attempts[0].get("outcome") == "Failed", why
    assert (status.get("error") or {}).get("code") == "PodFailed", why
    failed = condition_of(task, "Failed")
    assert failed is not None and failed.get("status") == "True", f"condition Failed: {failed}\n{why}"
    succeeded = condition_of(task, "Succeeded")
    assert succeeded is None or succeeded.get("status") == "False", f"condition Succeeded: {succeeded}\n{why}"


def test_oomkilled_task_fails_with_pod_error(cluster: Cluster) -> None:
    cluster.apply(load_example("pod-errors"))
    task = cluster.wait_for_phase("oom", {"Failed"}, SUCCESS_TIMEOUT)
    status = status_of(task)
    why = cluster.describe("oom")
    assert status.get("reason") == "PodError", why
    assert "OOMKilled" in str(status.get("message")), why
    assert (status.get("error") or {}).get("code") == "PodError", why
    attempts = status.get("attempts") or []
    assert len(attempts) == 1 and attempts[0].get("outcome") == "PodError", why


def test_image_pull_failure_fails_with_pod_error(cluster: Cluster) -> None:
    cluster.apply(load_example("pod-errors"))
    # The kubelet tries the pull, fails (ErrImagePull), and backs off (ImagePullBackOff): allow for both.
    task = cluster.wait_for_phase("bad-image", {"Failed"}, SUCCESS_TIMEOUT)
    status = status_of(task)
    why = cluster.describe("bad-image")
    assert status.get("reason") == "PodError", why
    assert "image pull" in str(status.get("message")).lower(), why
    # An image that cannot be pulled never ends the Job by itself: the operator must stop it.
    cluster.wait(
        lambda: cluster.job_gone("bad-image-1"),
        GC_TIMEOUT,
        "the operator to delete Job bad-image-1 (its pod can never start)",
        describe=lambda: cluster.describe("bad-image"),
    )


def test_unknown_task_type_fails_after_a_grace_period(cluster: Cluster) -> None:
    docs = select(load_example("invalid"), "AsyncTask", {"unknown-type"})
    created = time.monotonic()
    cluster.apply(docs)
    task = cluster.wait_for_phase("unknown-type", {"Failed"}, 90)
    elapsed = time.monotonic() - created
    status = status_of(task)
    why = cluster.describe("unknown-type")
    assert status.get("reason") == "UnknownTaskType", why
    assert "no-such-type" in str(status.get("message")), why
    # ~10 s of grace (a TaskType applied a moment after the task must not fail it); creationTimestamp has
    # whole seconds, so allow for one second of rounding and some slack.
    assert elapsed >= 8, f"failed after {elapsed:.1f}s, before the ~10 s grace for a late TaskType\n{why}"
    assert cluster.jobs_of("unknown-type") == [], f"a Job was created for a task without a TaskType\n{why}"


def test_invalid_payload_fails_naming_the_field(cluster: Cluster) -> None:
    docs = load_example("invalid")
    cluster.apply(select(docs, "TaskType") + select(docs, "AsyncTask", {"bad-payload"}))
    task = cluster.wait_for_phase("bad-payload", {"Failed"}, 90)
    status = status_of(task)
    why = cluster.describe("bad-payload")
    assert status.get("reason") == "InvalidPayload", why
    assert "spec.payload.width" in str(status.get("message")), why
    assert (status.get("error") or {}).get("code") == "InvalidPayload", why
    assert cluster.jobs_of("bad-payload") == [], f"a Job was created for a task whose payload is invalid\n{why}"
