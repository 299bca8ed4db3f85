"""Crashes, restarts and API errors: no task lost, no attempt run twice."""

from __future__ import annotations

import pathlib
from typing import Any

import kmock
import pytest

from asynctask_operator.testing.cluster import NS, Cluster, operator_requests
from asynctask_operator.testing.operators import Operator, eventually

JOBS_PATH = f"/apis/batch/v1/namespaces/{NS}/jobs"
TASKS_PATH = "/apis/asynctask.dev/v1alpha1/asynctasks"


def job_posts(k: kmock.KubernetesEmulator) -> int:
    return sum(1 for m, p in operator_requests(k) if m == "POST" and p == JOBS_PATH)


def owned_job(cluster: Cluster, task: str, attempt: int, owner_uid: str) -> dict[str, object]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": f"{task}-{attempt}",
            "namespace": NS,
            "resourceVersion": "1",
            "labels": {
                "app.kubernetes.io/managed-by": "asynctask-operator",
                "asynctask.dev/attempt": str(attempt),
                "asynctask.dev/task": task,
            },
            "ownerReferences": [
                {
                    "apiVersion": "asynctask.dev/v1alpha1",
                    "kind": "AsyncTask",
                    "name": task,
                    "uid": owner_uid,
                    "controller": True,
                }
            ],
        },
        "spec": {
            "template": {
                "metadata": {"labels": {"app.kubernetes.io/managed-by": "asynctask-operator"}},
                "spec": {"containers": [{"name": "main", "image": "busybox"}]},
            }
        },
    }


@pytest.mark.process
async def test_restart_while_running_adopts_the_job(
    cluster: Cluster, operator: Operator, kmock: kmock.KubernetesEmulator
) -> None:
    await cluster.create_tasktype("echo")
    await cluster.create_task("survivor", {"type": "echo"})
    await eventually(lambda: cluster.phase("survivor") == "Running", what="Running")
    operator.kill()
    await cluster.job_succeeds("survivor-1")  # finishes while nobody watches
    await operator.start()
    await eventually(lambda: cluster.phase("survivor") == "Succeeded", what="Succeeded after restart")
    assert job_posts(kmock) == 1
    assert cluster.job_names() == ["survivor-1"]


async def test_crash_between_job_create_and_status_write(
    cluster: Cluster, operator: Operator, kmock: kmock.KubernetesEmulator
) -> None:
    await cluster.create_tasktype("echo")
    await operator.stop()
    # What a crash right after the Job POST leaves behind: the Job, and a task with no status.
    await cluster.create_task("halfway", {"type": "echo"})
    uid = cluster.task("halfway")["metadata"]["uid"]
    resp = await kmock.post(JOBS_PATH, json=owned_job(cluster, "halfway", 1, uid))
    assert resp.status == 200
    await operator.start()
    await eventually(lambda: cluster.phase("halfway") == "Running", what="Running")
    assert job_posts(kmock) == 0, "the existing Job must be adopted, not created again"
    assert cluster.status("halfway")["attempts"][0]["job"] == "halfway-1"


async def test_job_of_an_earlier_task_with_the_same_name_is_not_adopted(
    cluster: Cluster, operator: Operator, kmock: kmock.KubernetesEmulator
) -> None:
    await cluster.create_tasktype("echo")
    resp = await kmock.post(JOBS_PATH, json=owned_job(cluster, "reborn", 1, "uid-of-a-deleted-task"))
    assert resp.status == 200
    await cluster.create_task("reborn", {"type": "echo"})
    await eventually(lambda: job_posts(kmock) >= 1, what="a Job POST (answered 409)")
    assert cluster.phase("reborn") is None, "must not claim the old Job"
    await cluster.delete("/apis/batch/v1", "jobs/reborn-1")  # the garbage collector's part
    await eventually(lambda: cluster.phase("reborn") == "Running", what="Running once the old Job is gone")
    owner = cluster.job("reborn-1")["metadata"]["ownerReferences"][0]["uid"]
    assert owner == cluster.task("reborn")["metadata"]["uid"]


async def test_server_errors_on_job_create_are_survived(
    cluster: Cluster, operator: Operator, kmock: kmock.KubernetesEmulator
) -> None:
    # kmock stores the Job before answering 500: the "timed out after commit" case.
    kmock["post", JOBS_PATH][:1] << 500
    await cluster.create_tasktype("echo")
    await cluster.create_task("flaky", {"type": "echo"})
    await eventually(lambda: cluster.phase("flaky") == "Running", what="Running")
    assert cluster.job_names() == ["flaky-1"]
    assert job_posts(kmock) == 2  # a 500, then the retry meets a 409: the Job exists and is ours


async def test_conflict_on_job_create_is_adopted(
    cluster: Cluster, operator: Operator, kmock: kmock.KubernetesEmulator
) -> None:
    kmock["post", JOBS_PATH][:1] << 409
    await cluster.create_tasktype("echo")
    await cluster.create_task("racy", {"type": "echo"})
    await eventually(lambda: cluster.phase("racy") == "Running", what="Running")
    assert cluster.job_names() == ["racy-1"]


async def test_server_errors_on_status_write_are_retried(
    cluster: Cluster, operator: Operator, kmock: kmock.KubernetesEmulator
) -> None:
    status = f"/apis/asynctask.dev/v1alpha1/namespaces/{NS}/asynctasks/patient/status"
    kmock["patch", status][:2] << 503
    await cluster.create_tasktype("echo")
    await cluster.create_task("patient", {"type": "echo"})
    await eventually(lambda: cluster.phase("patient") == "Running", what="Running")
    assert job_posts(kmock) == 1


async def test_a_watch_refused_as_expired_lists_again_and_one_refused_with_500_is_retried(
    cluster: Cluster, kubeconfig: pathlib.Path, tmp_path: pathlib.Path, kmock: kmock.KubernetesEmulator
) -> None:
    """The operator's own watch of tasks (ADR 0013): 410 Gone -> a new listing; 500 -> the watch again."""
    watches = kmock["get", TASKS_PATH, {"watch": "true"}]
    watches[:1] << 410
    watches[1:2] << 500
    await cluster.create_tasktype("echo")
    await cluster.create_task("early", {"type": "echo"})
    op = Operator(kubeconfig, tmp_path / "operator.log")
    await op.start()
    try:
        await eventually(lambda: len(ours(watches)) >= 3, what="a third watch of tasks")
        await cluster.create_task("late", {"type": "echo"})  # seen only through the third watch
        await eventually(lambda: cluster.phase("early") == cluster.phase("late") == "Running", what="both Running")
        listings = [r for r in ours(kmock["get", TASKS_PATH]) if r.params.get("watch") != "true"]
        assert len(listings) == 2, "the listing before the first reconcile, and one after the 410"
        assert "expired; listing again" in op.log()
    finally:
        await op.stop()


def ours(view: Any) -> list[Any]:
    return [r for r in view if r.headers.get("User-Agent", "").startswith("asynctask-operator")]
