"""The slim views of Jobs and pods the cache keeps: only what decides an attempt's outcome."""

from __future__ import annotations

from typing import Any

import pytest

from asynctask_operator.core.observed import ContainerView, job_view, pod_view
from tests.unit.builders import job, pod, running, terminated, waiting


def test_job_view_of_an_active_job() -> None:
    view = job("t", 2).view()
    assert (view.name, view.namespace, view.attempt, view.owner_uid, view.owner_name) == (
        "t-2",
        "media",
        2,
        "uid-t",
        "t",
    )
    assert (view.complete, view.failed, view.finished, view.deleting) == (False, False, False, False)


@pytest.mark.parametrize(
    ("built", "complete", "failed", "reason"),
    [
        (job().complete(), True, False, ""),
        (job().failed("DeadlineExceeded", "too long"), False, True, "DeadlineExceeded"),
        (job().failed("BackoffLimitExceeded"), False, True, "BackoffLimitExceeded"),
    ],
    ids=["complete", "deadline", "backoff-limit"],
)
def test_job_view_reads_terminal_conditions(built: Any, complete: bool, failed: bool, reason: str) -> None:
    view = built.view()
    assert (view.complete, view.failed, view.failed_reason, view.finished) == (complete, failed, reason, True)


def test_conditions_that_are_not_true_do_not_count() -> None:
    raw = job().build()
    raw["status"]["conditions"] = [
        {"type": "Failed", "status": "False", "reason": "DeadlineExceeded"},
        {"type": "FailureTarget", "status": "True", "reason": "DeadlineExceeded"},  # pods still terminating
    ]
    view = job_view(raw)
    assert (view.failed, view.finished) == (False, False)


def test_job_view_falls_back_to_the_task_uid_label_without_an_owner() -> None:
    raw = job("t", 1).build()
    raw["metadata"]["ownerReferences"] = []
    raw["metadata"]["labels"]["asynctask.dev/attempt"] = "not-a-number"
    view = job_view(raw)
    assert (view.owner_uid, view.owner_name, view.attempt) == ("uid-t", None, None)


@pytest.mark.parametrize(
    "labels_and_owners",
    [
        ({"batch.kubernetes.io/job-name": "t-1"}, []),
        ({"job-name": "t-1"}, []),
        ({}, [{"kind": "Job", "name": "t-1", "controller": True}]),
    ],
    ids=["label", "legacy-label", "owner-reference"],
)
def test_pod_view_finds_its_job(labels_and_owners: tuple[dict[str, str], list[dict[str, Any]]]) -> None:
    raw = pod("t-1").build()
    raw["metadata"]["labels"], raw["metadata"]["ownerReferences"] = labels_and_owners
    assert pod_view(raw).job_name == "t-1"


def test_pod_view_lists_init_containers_first_with_their_states() -> None:
    view = (
        pod("t-1")
        .phase("Failed", "Evicted", "low on memory")
        .init_container("fetch", terminated(0))
        .container("main", terminated(137, "OOMKilled"))
        .container("sidecar", waiting("CrashLoopBackOff", "back-off"))
        .container("proxy", running())
        .view()
    )
    assert (view.phase, view.reason, view.message) == ("Failed", "Evicted", "low on memory")
    assert view.containers == (
        ContainerView("fetch", "terminated", "Completed", "", 0, init=True),
        ContainerView("main", "terminated", "OOMKilled", "", 137),
        ContainerView("sidecar", "waiting", "CrashLoopBackOff", "back-off"),
        ContainerView("proxy", "running"),
    )


def test_a_container_without_a_state_is_unknown() -> None:
    raw = pod("t-1").build()
    raw["status"]["containerStatuses"] = [{"name": "main", "state": {}}]
    assert pod_view(raw).containers == (ContainerView("main", "unknown"),)


def test_pod_view_reads_the_disruption_target_condition() -> None:
    assert pod("t-1").disrupted("PreemptionByScheduler", "preempted").view().disruption == (
        "PreemptionByScheduler: preempted"
    )
    assert pod("t-1").view().disruption == ""
