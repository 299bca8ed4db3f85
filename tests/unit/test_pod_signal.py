"""A pod's event wakes its task only when something an attempt's result reads changed (core/outcomes.py
``pod_signal``): most of a pod's events (scheduled, its container created, started, a finalizer removed)
change nothing a decision reads, and on a real cluster each was a reconcile of its task for nothing.

Held here as a property: any two versions of a pod with the same signal give the same result, whatever
the Job's state and whichever other pod is there."""

from __future__ import annotations

import itertools

import pytest

from asynctask_operator.core.observed import JobView, PodView
from asynctask_operator.core.outcomes import attempt_result, pod_signal
from tests.unit.builders import at, job, pod, running, terminated, waiting

P = "t-1"
PODS: dict[str, PodView] = {
    "created": pod(P).phase("Pending").view(),
    "creating": pod(P).phase("Pending").container("main", waiting("ContainerCreating")).view(),
    "running": pod(P).container("main", running()).view(),
    "init-running": pod(P).phase("Pending").init_container("init", running()).container("main", waiting("PodInitializing")).view(),
    "pull-retried": pod(P).phase("Pending").container("main", waiting("ErrImagePull", "no such image")).view(),
    "pull-backoff": pod(P).phase("Pending").container("main", waiting("ImagePullBackOff", "no such image")).view(),
    "succeeded": pod(P).phase("Succeeded").container("main", terminated(0)).view(),
    "succeeded-message": pod(P).phase("Succeeded").container("main", terminated(0, message='{"n": 1}')).view(),
    "exited-1": pod(P).phase("Failed").container("main", terminated(1)).view(),
    "exited-1-running-phase": pod(P).container("main", terminated(1)).view(),
    "oom": pod(P).phase("Failed").container("main", terminated(137, "OOMKilled")).view(),
    "evicted": pod(P).phase("Failed", "Evicted", "low on memory").view(),
    "disrupted-waiting": pod(P).phase("Pending").container("main", waiting("ContainerCreating")).disrupted("DeletionByTaintManager", "node gone").view(),
    "disrupted-running": pod(P).container("main", running()).disrupted("DeletionByTaintManager", "node gone").view(),
    "newer-failed": pod(P, "b").created(at(9)).phase("Failed").container("main", terminated(2)).view(),
}  # fmt: skip
JOBS: dict[str, JobView | None] = {
    "active": job("t", 1).view(),
    "complete": job("t", 1).complete().view(),
    "failed": job("t", 1).failed().view(),
    "deadline": job("t", 1).failed("DeadlineExceeded").view(),
    "deleting": job("t", 1).deleting().view(),
    "gone": None,
}
SAME = [(a, b) for a, b in itertools.combinations(sorted(PODS), 2) if pod_signal(PODS[a]) == pod_signal(PODS[b])]


@pytest.mark.parametrize(("a", "b"), SAME, ids=[f"{a}={b}" for a, b in SAME])
@pytest.mark.parametrize("state", sorted(JOBS))
def test_two_pods_with_one_signal_give_one_result(a: str, b: str, state: str) -> None:
    for others in ((), (PODS["newer-failed"],), (PODS["succeeded-message"],)):
        one = attempt_result(JOBS[state], [PODS[a], *others], None)
        two = attempt_result(JOBS[state], [PODS[b], *others], None)
        assert one == two, f"{a} and {b} share a signal, but give {one} and {two} with a Job {state}"


def test_a_pods_way_to_running_wakes_nothing_and_its_end_does() -> None:
    quiet = ["created", "creating", "running", "init-running", "pull-retried"]
    assert {pod_signal(PODS[name]) for name in quiet} == {pod_signal(None)} == {()}
    for name in ("succeeded", "exited-1", "oom", "evicted", "pull-backoff", "disrupted-waiting"):
        assert pod_signal(PODS[name]) != (), name
    assert pod_signal(PODS["succeeded"]) != pod_signal(PODS["succeeded-message"])  # the result comes from it


def test_the_property_has_pairs_to_check() -> None:
    assert len(SAME) >= 10
