"""docs/design.md §3.1, §3.3: what became of an attempt, from its Job's conditions and its pod's container states."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from asynctask_operator.core.observed import JobView, PodView
from asynctask_operator.core.outcomes import attempt_result
from tests.unit.builders import at, job, pod, running, terminated, waiting


@dataclass(frozen=True)
class Case:
    id: str
    job: JobView | None
    pods: tuple[PodView, ...]
    outcome: str | None  # None: still running
    reason: str = ""
    exit_code: int | None = None
    says: str = ""  # a fragment the message must contain


CASES = [
    Case("job-missing", None, (), "JobDeleted", "JobDeleted", says="deleted"),
    Case(
        "job-being-deleted",
        job().deleting().view(),
        (pod().container("main", running()).view(),),
        "JobDeleted",
        "JobDeleted",
        says="being deleted",
    ),
    Case(
        "complete",
        job().complete().view(),
        (pod().phase("Succeeded").container("main", terminated(0)).view(),),
        "Succeeded",
        "Completed",
        exit_code=0,
    ),
    Case("complete-no-pod", job().complete().view(), (), "Succeeded", "Completed", exit_code=0),
    Case(
        "deadline-exceeded",
        job().failed("DeadlineExceeded", "Job was active longer than specified").view(),
        (pod().phase("Failed").container("main", running()).view(),),
        "Timeout",
        "Timeout",
        says="timeout of 1800s",
    ),
    Case(
        "exit-1",
        job().failed().view(),
        (pod().phase("Failed").container("main", terminated(1)).view(),),
        "Failed",
        "PodFailed",
        exit_code=1,
        says="container main exited with code 1",
    ),
    Case(
        "exit-2-with-message",
        job().failed().view(),
        (pod().phase("Failed").container("main", terminated(2, message="input not found")).view(),),
        "Failed",
        "PodFailed",
        exit_code=2,
        says="code 2: input not found",
    ),
    Case(
        "init-container-fails",
        job().failed().view(),
        (
            pod()
            .phase("Failed")
            .init_container("fetch", terminated(3))
            .container("main", waiting("PodInitializing"))
            .view(),
        ),
        "Failed",
        "PodFailed",
        exit_code=3,
        says="container fetch exited with code 3",
    ),
    Case(
        "oom-killed",
        job().failed().view(),
        (pod().phase("Failed").container("main", terminated(137, reason="OOMKilled")).view(),),
        "PodError",
        "PodError",
        exit_code=137,
        says="OOMKilled",
    ),
    Case(
        "evicted",
        job().failed().view(),
        (pod().phase("Failed", "Evicted", "The node was low on resource: memory.").view(),),
        "PodError",
        "PodError",
        says="evicted",
    ),
    Case(
        "evicted-while-job-active",
        job().view(),
        (pod().phase("Failed", "Evicted", "node pressure").view(),),
        "PodError",
        "PodError",
        says="evicted",
    ),
    Case(
        "disruption-target",
        job().failed().view(),
        (
            pod()
            .phase("Failed")
            .disrupted("DeletionByTaintManager", "node lost")
            .container("main", terminated(137))
            .view(),
        ),
        "PodError",
        "PodError",
        says="disrupted: DeletionByTaintManager: node lost",
    ),
    Case(
        "image-pull-backoff",
        job().view(),
        (pod().phase("Pending").container("main", waiting("ImagePullBackOff", "Back-off pulling image")).view(),),
        "PodError",
        "PodError",
        says="image pull",
    ),
    Case(
        "invalid-image-name",
        job().view(),
        (pod().phase("Pending").container("main", waiting("InvalidImageName")).view(),),
        "PodError",
        "PodError",
        says="image pull",
    ),
    Case(
        "err-image-pull-is-retried-by-kubelet",
        job().view(),
        (pod().phase("Pending").container("main", waiting("ErrImagePull")).view(),),
        None,
    ),
    Case("active-running", job().view(), (pod().container("main", running()).view(),), None),
    Case("active-no-pod-yet", job().view(), (), None),
    Case(
        "active-container-creating",
        job().view(),
        (pod().phase("Pending").container("main", waiting("ContainerCreating")).view(),),
        None,
    ),
    Case(
        "failed-no-pod",
        job().failed("BackoffLimitExceeded", "Job has reached the specified backoff limit").view(),
        (),
        "Failed",
        "PodFailed",
        says="BackoffLimitExceeded",
    ),
    Case("failed-no-reason", job().failed("").view(), (), "Failed", "PodFailed", says="no reason given"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_attempt_result(case: Case) -> None:
    result = attempt_result(case.job, case.pods, timeout_seconds=1800)
    if case.outcome is None:
        assert result is None
        return
    assert result is not None
    assert (result.outcome, result.reason, result.exit_code) == (case.outcome, case.reason, case.exit_code)
    assert case.says in result.message


def test_the_failed_pod_decides_over_a_newer_healthy_one() -> None:
    failed = pod(suffix="old").phase("Failed").container("main", terminated(4)).created(at(1)).view()
    newer = pod(suffix="new").phase("Pending").created(at(9)).view()
    result = attempt_result(job().failed().view(), (newer, failed), None)
    assert result is not None
    assert result.exit_code == 4


def test_the_result_in_the_termination_message_is_kept() -> None:
    done = pod().phase("Succeeded").container("main", terminated(0, message='{"url": "s3://out"}')).view()
    result = attempt_result(job().complete().view(), (done,), None)
    assert result is not None
    assert result.termination_message == '{"url": "s3://out"}'


def test_long_messages_are_clipped() -> None:
    failed = pod().phase("Failed").container("main", terminated(1, message="x" * 5000)).view()
    result = attempt_result(job().failed().view(), (failed,), None)
    assert result is not None
    assert len(result.message) == 1024
    assert result.message.endswith("…")
