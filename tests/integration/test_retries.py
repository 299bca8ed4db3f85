"""Retries, timeouts, deadlines, cancellation, manual retry and TTL through the real operator.

Delays here are real but short (1-2 s backoffs and TTLs); the tests poll for the
state they expect and never sleep a fixed time.
"""

from __future__ import annotations

import datetime as dt

import kmock
import pytest

from asynctask_operator.testing.cluster import AT, NS, Cluster, operator_requests
from asynctask_operator.testing.operators import Operator, eventually

FAST_RETRY = {"maxRetries": 2, "backoff": "Fixed", "baseSeconds": 1, "jitter": False}


def parse(ts: str) -> dt.datetime:
    return dt.datetime.fromisoformat(ts.replace("Z", "+00:00"))


async def running(cluster: Cluster, name: str, attempt: int) -> None:
    await eventually(
        lambda: cluster.phase(name) == "Running" and cluster.status(name).get("attempt") == attempt,
        what=f"{name} running attempt {attempt}",
    )


async def test_fails_twice_then_succeeds(cluster: Cluster, operator: Operator) -> None:
    await cluster.create_tasktype("echo")
    await cluster.create_task("third-time", {"type": "echo", "retry": FAST_RETRY})
    await running(cluster, "third-time", 1)
    await cluster.job_fails("third-time-1", exit_code=1)
    await eventually(lambda: cluster.phase("third-time") == "Retrying", what="Retrying")
    status = cluster.status("third-time")
    assert status["nextRetryTime"]
    assert status["attempts"][0]["outcome"] == "Failed"
    await running(cluster, "third-time", 2)
    await cluster.job_fails("third-time-2", exit_code=1)
    await running(cluster, "third-time", 3)
    await cluster.job_succeeds("third-time-3")
    await eventually(lambda: cluster.phase("third-time") == "Succeeded", what="Succeeded")
    status = cluster.status("third-time")
    assert [a["attempt"] for a in status["attempts"]] == [1, 2, 3]
    assert [a["outcome"] for a in status["attempts"]] == ["Failed", "Failed", "Succeeded"]
    assert cluster.job_names() == ["third-time-1", "third-time-2", "third-time-3"]


async def test_retries_exhausted(cluster: Cluster, operator: Operator) -> None:
    await cluster.create_tasktype("echo")
    await cluster.create_task("doomed", {"type": "echo", "retry": {**FAST_RETRY, "maxRetries": 1}})
    await running(cluster, "doomed", 1)
    await cluster.job_fails("doomed-1")
    await running(cluster, "doomed", 2)
    await cluster.job_fails("doomed-2")
    await eventually(lambda: cluster.phase("doomed") == "Failed", what="Failed")
    assert cluster.status("doomed")["reason"] == "RetriesExhausted"


async def test_non_retryable_exit_code_fails_at_once(cluster: Cluster, operator: Operator) -> None:
    await cluster.create_tasktype("echo")
    await cluster.create_task("permanent", {"type": "echo", "retry": {**FAST_RETRY, "nonRetryableExitCodes": [2]}})
    await running(cluster, "permanent", 1)
    await cluster.job_fails("permanent-1", exit_code=2)
    await eventually(lambda: cluster.phase("permanent") == "Failed", what="Failed")
    assert cluster.status("permanent")["reason"] == "NonRetryableExitCode"
    assert cluster.job_names() == ["permanent-1"]


async def test_timeout_is_an_outcome_and_retried_when_listed(cluster: Cluster, operator: Operator) -> None:
    await cluster.create_tasktype("echo")
    await cluster.create_task("slow", {"type": "echo", "timeoutSeconds": 30, "retry": FAST_RETRY})
    await running(cluster, "slow", 1)
    assert cluster.job("slow-1")["spec"]["activeDeadlineSeconds"] == 30
    await cluster.job_times_out("slow-1")
    await running(cluster, "slow", 2)
    assert cluster.status("slow")["attempts"][0]["outcome"] == "Timeout"


async def test_deadline_passing_during_backoff(cluster: Cluster, operator: Operator) -> None:
    await cluster.create_tasktype("echo")
    retry = {"maxRetries": 3, "backoff": "Fixed", "baseSeconds": 60, "jitter": False}
    await cluster.create_task("hurried", {"type": "echo", "deadlineSeconds": 3, "retry": retry})
    await running(cluster, "hurried", 1)
    await cluster.job_fails("hurried-1")
    await eventually(lambda: cluster.phase("hurried") == "Retrying", what="Retrying")
    await eventually(lambda: cluster.phase("hurried") == "Failed", timeout=10, what="Failed by deadline")
    assert cluster.status("hurried")["reason"] == "DeadlineExceeded"
    assert cluster.job_names() == ["hurried-1"]


async def test_deadline_while_running_deletes_the_job(cluster: Cluster, operator: Operator) -> None:
    await cluster.create_tasktype("echo")
    await cluster.create_task("overdue", {"type": "echo", "deadlineSeconds": 2})
    await running(cluster, "overdue", 1)
    await eventually(lambda: cluster.phase("overdue") == "Failed", timeout=10, what="Failed by deadline")
    assert cluster.status("overdue")["reason"] == "DeadlineExceeded"
    await eventually(lambda: not cluster.has_job("overdue-1") or cluster.job_deleted("overdue-1"), what="Job deleted")


async def test_cancel_in_each_phase(cluster: Cluster, operator: Operator) -> None:
    await cluster.create_tasktype("echo")
    # Running: the Job goes, the attempt is marked Cancelled.
    await cluster.create_task("c-running", {"type": "echo"})
    await running(cluster, "c-running", 1)
    await cluster.patch("/apis/asynctask.dev/v1alpha1", "asynctasks/c-running", {"spec": {"cancel": True}})
    await eventually(lambda: cluster.phase("c-running") == "Cancelled", what="Cancelled")
    assert cluster.status("c-running")["attempts"][0]["outcome"] == "Cancelled"
    await eventually(lambda: cluster.job_deleted("c-running-1"), what="Job deleted")
    # Retrying: no further attempt ever starts.
    await cluster.create_task("c-retrying", {"type": "echo", "retry": {**FAST_RETRY, "baseSeconds": 2}})
    await running(cluster, "c-retrying", 1)
    await cluster.job_fails("c-retrying-1")
    await eventually(lambda: cluster.phase("c-retrying") == "Retrying", what="Retrying")
    await cluster.patch("/apis/asynctask.dev/v1alpha1", "asynctasks/c-retrying", {"spec": {"cancel": True}})
    await eventually(lambda: cluster.phase("c-retrying") == "Cancelled", what="Cancelled")
    # Pending (a type that does not exist yet, so it waits): cancelled before any Job.
    await cluster.create_task("c-pending", {"type": "later", "cancel": True})
    await eventually(lambda: cluster.phase("c-pending") == "Cancelled", what="Cancelled")
    # A finished task: cancel changes nothing.
    await cluster.create_task("c-done", {"type": "echo"})
    await running(cluster, "c-done", 1)
    await cluster.job_succeeds("c-done-1")
    await eventually(lambda: cluster.phase("c-done") == "Succeeded", what="Succeeded")
    await cluster.patch("/apis/asynctask.dev/v1alpha1", "asynctasks/c-done", {"spec": {"cancel": True}})
    await cluster.create_task("marker", {"type": "echo"})
    await running(cluster, "marker", 1)
    assert cluster.phase("c-done") == "Succeeded"
    assert not any(n.startswith("c-retrying-2") or n.startswith("c-pending") for n in cluster.job_names())


async def test_manual_retry_continues_numbering(
    cluster: Cluster, operator: Operator, kmock: kmock.KubernetesEmulator
) -> None:
    await cluster.create_tasktype("echo")
    await cluster.create_task("again", {"type": "echo", "retry": {"maxRetries": 0}})
    await running(cluster, "again", 1)
    await cluster.job_fails("again-1")
    await eventually(lambda: cluster.phase("again") == "Failed", what="Failed")
    retry = {"metadata": {"annotations": {"asynctask.dev/retry-requested": "1"}}}
    await cluster.patch("/apis/asynctask.dev/v1alpha1", "asynctasks/again", retry)
    await running(cluster, "again", 2)
    await cluster.job_succeeds("again-2")
    await eventually(lambda: cluster.phase("again") == "Succeeded", what="Succeeded")
    # The same value again does nothing (even on a Failed task later).
    writes_before = len(operator_requests(kmock))
    await cluster.patch("/apis/asynctask.dev/v1alpha1", "asynctasks/again", retry)
    await cluster.create_task("marker", {"type": "echo"})
    await running(cluster, "marker", 1)
    assert cluster.status("again")["attempt"] == 2
    assert not any("again" in p for m, p in operator_requests(kmock)[writes_before:] if m != "GET")


async def test_ttl_deletes_the_finished_task(cluster: Cluster, operator: Operator) -> None:
    await cluster.create_tasktype("echo")
    await cluster.create_task("brief", {"type": "echo", "ttlSecondsAfterFinished": 1})
    await running(cluster, "brief", 1)
    await cluster.job_succeeds("brief-1")
    await eventually(lambda: cluster.k.objects[AT, NS, "brief"].deleted, timeout=10, what="task deleted by TTL")


async def test_job_deleted_by_hand_follows_the_retry_policy(cluster: Cluster, operator: Operator) -> None:
    await cluster.create_tasktype("echo")
    await cluster.create_task("orphaned", {"type": "echo", "retry": FAST_RETRY})
    await running(cluster, "orphaned", 1)
    await cluster.delete("/apis/batch/v1", "jobs/orphaned-1")
    await running(cluster, "orphaned", 2)
    assert cluster.status("orphaned")["attempts"][0]["reason"] == "JobDeleted"


@pytest.mark.process
async def test_restart_during_backoff_neither_loses_nor_shortens_it(cluster: Cluster, operator: Operator) -> None:
    await cluster.create_tasktype("echo")
    retry = {"maxRetries": 1, "backoff": "Fixed", "baseSeconds": 3, "jitter": False}
    await cluster.create_task("patient", {"type": "echo", "retry": retry})
    await running(cluster, "patient", 1)
    await cluster.job_fails("patient-1")
    await eventually(lambda: cluster.phase("patient") == "Retrying", what="Retrying")
    due = parse(cluster.status("patient")["nextRetryTime"])
    operator.kill()
    await operator.start()
    await running(cluster, "patient", 2)
    started = parse(cluster.status("patient")["attempts"][-1]["startTime"])
    assert started >= due, (started, due)
