"""Retries, timeouts, cancellation, deletion and TTL against a real cluster (docs/design.md §3.1, §3.3, §3.5)."""

from __future__ import annotations

import pytest

from tests.e2e.helpers import (
    GC_TIMEOUT,
    LABEL_TASK,
    SUCCESS_TIMEOUT,
    Cluster,
    condition_of,
    container_env,
    load_example,
    one,
    renamed,
    select,
    status_of,
)

pytestmark = pytest.mark.e2e


def test_failed_attempt_is_retried_and_the_second_succeeds(cluster: Cluster) -> None:
    cluster.apply(load_example("retry"))
    task = cluster.wait_for_phase("flaky", {"Succeeded"}, SUCCESS_TIMEOUT)
    status = status_of(task)
    why = cluster.describe("flaky")
    assert status.get("attempt") == 2, why
    attempts = status.get("attempts") or []
    assert [a.get("attempt") for a in attempts] == [1, 2], why
    assert [a.get("job") for a in attempts] == ["flaky-1", "flaky-2"], why
    assert attempts[0].get("outcome") == "Failed" and attempts[0].get("exitCode") == 1, why
    assert attempts[1].get("outcome") == "Succeeded", why
    succeeded = condition_of(task, "Succeeded")
    assert succeeded is not None and succeeded.get("status") == "True", f"condition Succeeded: {succeeded}\n{why}"

    for attempt in (1, 2):
        job = cluster.get_job(f"flaky-{attempt}")
        assert job is not None, f"Job flaky-{attempt} does not exist\n{why}"
        assert container_env(job).get("ASYNCTASK_ATTEMPT") == str(attempt), f"Job flaky-{attempt}\n{why}"
    assert cluster.get_job("flaky-3") is None, f"a third attempt ran after the second succeeded\n{why}"


def test_attempt_past_its_timeout_fails_with_timeout(cluster: Cluster) -> None:
    cluster.apply(load_example("timeout"))
    task = cluster.wait_for_phase("too-slow", {"Failed"}, SUCCESS_TIMEOUT)
    status = status_of(task)
    why = cluster.describe("too-slow")
    assert status.get("reason") == "Timeout", why
    attempts = status.get("attempts") or []
    assert len(attempts) == 1 and attempts[0].get("outcome") == "Timeout", why
    job = cluster.get_job("too-slow-1")
    assert job is not None, f"Job too-slow-1 does not exist\n{why}"
    assert job["spec"].get("activeDeadlineSeconds") == 5, f"activeDeadlineSeconds: {job['spec']}"


def _wait_until_running(cluster: Cluster, task: str) -> None:
    """Until the task is Running and the container of its first attempt has started."""
    cluster.wait_for_phase(task, {"Running"}, SUCCESS_TIMEOUT)

    def container_running() -> bool | None:
        for pod in cluster.pods_of_job(f"{task}-1"):
            for cs in (pod.get("status") or {}).get("containerStatuses") or ():
                if (cs.get("state") or {}).get("running") is not None:
                    return True
        return None

    cluster.wait(
        container_running,
        SUCCESS_TIMEOUT,
        f"the container of Job {task}-1 to be running",
        describe=lambda: cluster.describe(task),
    )


def test_cancel_stops_a_running_task(cluster: Cluster) -> None:
    cluster.apply(load_example("cancel"))
    _wait_until_running(cluster, "sleepy")

    cluster.patch_task("sleepy", {"spec": {"cancel": True}})  # kubectl patch at sleepy --type merge -p ...
    task = cluster.wait_for_phase("sleepy", {"Cancelled"}, GC_TIMEOUT)
    status = status_of(task)
    why = cluster.describe("sleepy")
    assert status.get("reason") == "Cancelled", why
    attempts = status.get("attempts") or []
    assert attempts and attempts[-1].get("outcome") == "Cancelled", why
    cluster.wait(
        lambda: cluster.job_gone("sleepy-1"),
        GC_TIMEOUT,
        "Job sleepy-1 of the cancelled task to be deleted",
        describe=lambda: cluster.describe("sleepy"),
    )


def test_deleting_a_task_deletes_its_jobs(cluster: Cluster) -> None:
    docs = load_example("cancel")
    cluster.apply(select(docs, "TaskType"))
    cluster.apply([renamed(one(docs, "AsyncTask", "sleepy"), "sleepy-delete")])
    _wait_until_running(cluster, "sleepy-delete")
    assert cluster.get_job("sleepy-delete-1") is not None, cluster.describe("sleepy-delete")

    cluster.delete_task("sleepy-delete")
    cluster.wait_gone("AsyncTask sleepy-delete", lambda: cluster.get_task("sleepy-delete"))
    cluster.wait(
        lambda: True if not cluster.jobs_of("sleepy-delete") else None,
        GC_TIMEOUT,
        "the garbage collector to delete the Jobs of deleted AsyncTask sleepy-delete",
        describe=lambda: cluster.describe("sleepy-delete"),
    )
    cluster.wait(
        lambda: (
            True
            if all(p["metadata"].get("deletionTimestamp") for p in cluster.pods(f"{LABEL_TASK}=sleepy-delete"))
            else None
        ),
        GC_TIMEOUT,
        "the pods of deleted AsyncTask sleepy-delete to be deleted",
        describe=lambda: cluster.describe("sleepy-delete"),
    )


def test_finished_task_is_deleted_after_its_ttl(cluster: Cluster) -> None:
    docs = load_example("ttl")
    assert one(docs, "AsyncTask", "short-lived")["spec"]["ttlSecondsAfterFinished"] == 5
    cluster.apply(docs)
    cluster.wait_for_phase("short-lived", {"Succeeded"}, SUCCESS_TIMEOUT)
    cluster.wait(
        lambda: True if cluster.get_task("short-lived") is None else None,
        GC_TIMEOUT,
        "AsyncTask short-lived to be deleted 5 s after it succeeded (ttlSecondsAfterFinished: 5)",
        describe=lambda: cluster.describe("short-lived"),
    )
    cluster.wait(
        lambda: True if not cluster.jobs_of("short-lived") else None,
        GC_TIMEOUT,
        "the Jobs of expired AsyncTask short-lived to be deleted with it",
        describe=lambda: cluster.describe("short-lived"),
    )
