"""The short-attempt window through the operator (docs/adr/0029-short-attempt-window.md): a Job that
ends within it costs one status write, Pending -> Succeeded, and a watcher never sees Running; a longer
one is written Running when the window ends. Without the window, test_lifecycle.py's three writes hold."""

from __future__ import annotations

import kmock
import pytest

from asynctask_operator.testing.cluster import NS, Cluster, operator_writes
from asynctask_operator.testing.operators import Operator, eventually

JOBS_PATH = f"/apis/batch/v1/namespaces/{NS}/jobs"


def status_path(name: str) -> str:
    return f"/apis/asynctask.dev/v1alpha1/namespaces/{NS}/asynctasks/{name}/status"


def phases_written(kmock: kmock.KubernetesEmulator, name: str) -> list[str]:
    """The phases of every status write the operator made on task ``name``, in order (kmock's history)."""
    return [
        str(((r.data or {}).get("status") or {}).get("phase") or "")
        for r in kmock
        if str(r.headers.get("User-Agent", "")).startswith("asynctask-operator") and r.url.path == status_path(name)
    ]


@pytest.mark.operator_args("--short-attempt-seconds", "30")
async def test_a_short_attempt_is_one_status_write(
    cluster: Cluster, operator: Operator, kmock: kmock.KubernetesEmulator
) -> None:
    await cluster.create_tasktype("echo")
    await cluster.create_task("quick", {"type": "echo", "ttlSecondsAfterFinished": 3600})
    await eventually(lambda: cluster.has_job("quick-1"), what="Job quick-1")
    assert cluster.phase("quick") in (None, "Pending")  # its Job runs; nothing written yet
    await cluster.job_succeeds("quick-1")
    await eventually(lambda: cluster.phase("quick") == "Succeeded", what="Succeeded")
    status = cluster.status("quick")
    assert [(a["attempt"], a["job"], a["outcome"]) for a in status["attempts"]] == [(1, "quick-1", "Succeeded")]
    assert status["attempts"][0]["startTime"] == cluster.job("quick-1")["metadata"]["creationTimestamp"]
    task_writes = [w for w in operator_writes(kmock) if "tasktypes" not in w[1]]
    assert task_writes == [("POST", JOBS_PATH), ("PATCH", status_path("quick"))]
    assert phases_written(kmock, "quick") == ["Succeeded"]


@pytest.mark.operator_args("--short-attempt-seconds", "1")
async def test_a_longer_attempt_is_written_running_when_the_window_ends(
    cluster: Cluster, operator: Operator, kmock: kmock.KubernetesEmulator
) -> None:
    await cluster.create_tasktype("echo")
    await cluster.create_task("slow", {"type": "echo", "ttlSecondsAfterFinished": 3600})
    await eventually(lambda: cluster.phase("slow") == "Running", timeout=10, what="Running after the window")
    await cluster.job_succeeds("slow-1")
    await eventually(lambda: cluster.phase("slow") == "Succeeded", what="Succeeded")
    assert phases_written(kmock, "slow") == ["Running", "Succeeded"]
