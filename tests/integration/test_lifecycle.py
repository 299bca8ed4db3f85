"""The lifecycle through the real operator process: success, failure, pod errors, budget."""

from __future__ import annotations

import kmock

from asynctask_operator.testing.cluster import NS, Cluster, operator_writes
from asynctask_operator.testing.operators import Operator, eventually

JOBS_PATH = f"/apis/batch/v1/namespaces/{NS}/jobs"


def status_path(name: str) -> str:
    return f"/apis/asynctask.dev/v1alpha1/namespaces/{NS}/asynctasks/{name}/status"


async def test_success_costs_three_writes(
    cluster: Cluster, operator: Operator, kmock: kmock.KubernetesEmulator
) -> None:
    await cluster.create_tasktype("echo")
    await cluster.create_task("hello", {"type": "echo", "payload": {"n": 1}, "ttlSecondsAfterFinished": 3600})
    await eventually(lambda: cluster.phase("hello") == "Running", what="Running")
    job = cluster.job("hello-1")
    env = {e["name"]: e["value"] for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["ASYNCTASK_PAYLOAD"] == '{"n":1}'
    assert job["metadata"]["ownerReferences"][0]["uid"] == cluster.task("hello")["metadata"]["uid"]
    assert job["spec"]["backoffLimit"] == 0

    await cluster.job_succeeds("hello-1")
    await eventually(lambda: cluster.phase("hello") == "Succeeded", what="Succeeded")
    status = cluster.status("hello")
    assert status["reason"] == "Completed"
    assert status["attempts"][0]["outcome"] == "Succeeded"
    assert {c["type"]: c["status"] for c in status["conditions"]}["Succeeded"] == "True"

    # The budget: Job create, status Running, status Succeeded; nothing else written.
    task_writes = [w for w in operator_writes(kmock) if "tasktypes" not in w[1]]
    assert task_writes == [
        ("POST", JOBS_PATH),
        ("PATCH", status_path("hello")),
        ("PATCH", status_path("hello")),
    ]


async def test_nothing_is_written_when_nothing_changed(
    cluster: Cluster, operator: Operator, kmock: kmock.KubernetesEmulator
) -> None:
    await cluster.create_tasktype("echo")
    await cluster.create_task("quiet", {"type": "echo"})
    await eventually(lambda: cluster.phase("quiet") == "Running", what="Running")
    before = len(operator_writes(kmock))
    # Events that change nothing the task depends on: a label on the Job, a pod still running.
    await cluster.patch("/apis/batch/v1", "jobs/quiet-1", {"metadata": {"labels": {"noise": "1"}}})
    await cluster.pod_waiting("quiet-1", "ContainerCreating")
    await cluster.patch("/apis/asynctask.dev/v1alpha1", "asynctasks/quiet", {"metadata": {"labels": {"x": "y"}}})
    await cluster.create_task("marker", {"type": "echo"})  # processed after the noise above
    await eventually(lambda: cluster.phase("marker") == "Running", what="marker Running")
    writes = operator_writes(kmock)[before:]
    assert all("quiet" not in path for _, path in writes), writes


async def test_nonzero_exit_fails_with_exit_code(cluster: Cluster, operator: Operator) -> None:
    await cluster.create_tasktype("echo")
    await cluster.create_task("boom", {"type": "echo", "retry": {"maxRetries": 0}})
    await eventually(lambda: cluster.phase("boom") == "Running", what="Running")
    await cluster.job_fails("boom-1", exit_code=3)
    await eventually(lambda: cluster.phase("boom") == "Failed", what="Failed")
    status = cluster.status("boom")
    assert status["reason"] == "PodFailed"
    assert status["attempts"][0]["exitCode"] == 3
    assert status["error"]["code"] == "PodFailed"
    assert "exited with code 3" in status["error"]["message"]

    def events() -> list[tuple[str, str, str]]:
        posted = [o for (res, _, _), o in cluster.k.objects.items() if res.plural == "events" and not o.deleted]
        return [(e["reason"], e["involvedObject"]["name"], e["type"]) for e in posted]

    # The Event is posted after the status write that ends the task (it may be lost, the status not).
    await eventually(lambda: bool(events()), what="the Warning Event")
    assert events() == [("PodFailed", "boom", "Warning")]


async def test_image_pull_failure_ends_pod_error_and_deletes_the_job(cluster: Cluster, operator: Operator) -> None:
    await cluster.create_tasktype("echo")
    await cluster.create_task("noimage", {"type": "echo", "retry": {"maxRetries": 0}})
    await eventually(lambda: cluster.phase("noimage") == "Running", what="Running")
    await cluster.pod_waiting("noimage-1", "ImagePullBackOff", 'Back-off pulling image "registry.invalid/x"')
    await eventually(lambda: cluster.phase("noimage") == "Failed", what="Failed")
    status = cluster.status("noimage")
    assert status["reason"] == "PodError"
    assert "image pull failed" in status["message"]
    await eventually(
        lambda: not cluster.has_job("noimage-1") or cluster.k.objects[cluster_jobs_key("noimage-1")].deleted,
        what="the Job deleted",
    )


async def test_evicted_pod_ends_pod_error(cluster: Cluster, operator: Operator) -> None:
    await cluster.create_tasktype("echo")
    await cluster.create_task("evicted", {"type": "echo", "retry": {"maxRetries": 0}})
    await eventually(lambda: cluster.phase("evicted") == "Running", what="Running")
    await cluster.job_fails("evicted-1", exit_code=137, pod_reason="Evicted")
    await eventually(lambda: cluster.phase("evicted") == "Failed", what="Failed")
    assert cluster.status("evicted")["reason"] == "PodError"
    assert "evicted" in cluster.status("evicted")["message"]


async def test_unknown_type_fails_after_grace(cluster: Cluster, operator: Operator) -> None:
    await cluster.create_task("orphan", {"type": "nope"})
    await eventually(lambda: cluster.phase("orphan") == "Failed", timeout=20, what="Failed")
    assert cluster.status("orphan")["reason"] == "UnknownTaskType"
    assert cluster.job_names() == []


async def test_type_created_right_after_the_task_is_used(cluster: Cluster, operator: Operator) -> None:
    await cluster.create_task("early", {"type": "late"})
    await cluster.create_tasktype("late")
    await eventually(lambda: cluster.phase("early") == "Running", what="Running")


async def test_invalid_payload_names_the_path(cluster: Cluster, operator: Operator) -> None:
    schema = {"type": "object", "required": ["input"], "properties": {"input": {"type": "string"}}}
    await cluster.create_tasktype(
        "strict",
        {
            "jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "busybox"}]}}}},
            "payloadSchema": schema,
        },
    )
    await cluster.create_task("bad", {"type": "strict", "payload": {"input": 5}})
    await eventually(lambda: cluster.phase("bad") == "Failed", what="Failed")
    assert cluster.status("bad")["reason"] == "InvalidPayload"
    assert "spec.payload.input" in cluster.status("bad")["message"]


async def test_payload_over_the_cap(cluster: Cluster, operator: Operator) -> None:
    await cluster.create_tasktype("echo")
    await cluster.create_task("big", {"type": "echo", "payload": {"blob": "x" * 70000}})
    await eventually(lambda: cluster.phase("big") == "Failed", what="Failed")
    assert cluster.status("big")["reason"] == "PayloadTooLarge"


def cluster_jobs_key(name: str) -> tuple[object, str, str]:
    from asynctask_operator.testing.cluster import JOBS

    return (JOBS, NS, name)
