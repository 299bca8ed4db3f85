"""What became of an attempt, from its Job's conditions and its pods' container states.

Outcome classes (docs/design.md §3.3): ``Succeeded``; ``Failed`` (a container exited non-zero);
``Timeout`` (the attempt deadline, Job ``activeDeadlineSeconds``); ``PodError``
(evicted, OOMKilled, image pull failure, disrupted); ``JobDeleted`` (someone deleted
the Job under us).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from asynctask_operator.core.observed import ContainerView, JobView, PodView

# Waiting reasons after which a pod will not start without someone changing something.
IMAGE_ERRORS = frozenset({"ImagePullBackOff", "ErrImagePull", "InvalidImageName", "ErrImageNeverPull"})
# ErrImagePull is the first failure and the kubelet retries it; only its back-off is final.
FATAL_WAITING = IMAGE_ERRORS - {"ErrImagePull"}

MESSAGE_LIMIT = 1024


@dataclasses.dataclass(frozen=True)
class AttemptResult:
    outcome: str  # Succeeded | Failed | Timeout | PodError | JobDeleted
    reason: str  # the attempt's reason: Completed | PodFailed | PodError | Timeout | JobDeleted
    message: str
    exit_code: int | None = None
    termination_message: str = ""

    @property
    def succeeded(self) -> bool:
        return self.outcome == "Succeeded"


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 1] + "…"


def _latest(pods: Sequence[PodView]) -> PodView | None:
    failed = [p for p in pods if p.phase == "Failed"]
    pool = failed or list(pods)
    return max(pool, key=lambda p: (p.creation_timestamp, p.name)) if pool else None


def _pod_error(pod: PodView) -> AttemptResult | None:
    """A pod-level failure that is not the task's own doing."""
    if pod.reason == "Evicted":
        return AttemptResult("PodError", "PodError", _clip(f"pod {pod.name} was evicted: {pod.message}"))
    for c in pod.containers:
        if c.state == "terminated" and c.reason == "OOMKilled":
            return AttemptResult(
                "PodError",
                "PodError",
                _clip(f"container {c.name} was OOMKilled (exit code {c.exit_code}): raise its memory limit"),
                exit_code=c.exit_code,
            )
    for c in pod.containers:
        if c.state == "waiting" and c.reason in FATAL_WAITING:
            return AttemptResult(
                "PodError",
                "PodError",
                _clip(f"image pull failed for container {c.name}: {c.reason}: {c.message}"),
            )
    if pod.disruption:
        return AttemptResult("PodError", "PodError", _clip(f"pod {pod.name} was disrupted: {pod.disruption}"))
    return None


def _exit_failure(pod: PodView) -> AttemptResult | None:
    failed: ContainerView | None = next(
        (c for c in pod.containers if c.state == "terminated" and (c.exit_code or 0) != 0), None
    )
    if failed is None:
        return None
    detail = f": {failed.message}" if failed.message else ""
    return AttemptResult(
        "Failed",
        "PodFailed",
        _clip(f"container {failed.name} exited with code {failed.exit_code}{detail}"),
        exit_code=failed.exit_code,
        termination_message=failed.message,
    )


def pod_signal(pod: PodView | None) -> tuple[object, ...]:
    """What of one pod an attempt's result can depend on (:func:`attempt_result`, and the reconciler's
    look for a failed Job's lagging pod): two versions of a pod with the same signal give the same
    result, so a change outside it (scheduled, its container created, started, its finalizer
    removed) wakes no task. ``()`` for no pod."""
    if pod is None:
        return ()
    terminated = tuple(
        (c.name, c.init, c.exit_code, c.reason, c.message) for c in pod.containers if c.state == "terminated"
    )
    waiting = pod.disruption and any(c.state == "waiting" for c in pod.containers)  # read only with a disruption
    ended = pod.phase if pod.phase in ("Succeeded", "Failed") else ""
    error = _pod_error(pod)
    if not (ended or pod.reason or error or waiting or terminated):
        return ()  # a pod on its way (created, scheduled, starting, running) reads as no pod yet
    return (ended, pod.reason, pod.creation_timestamp, error, waiting, terminated)


def attempt_result(job: JobView | None, pods: Sequence[PodView], timeout_seconds: int | None) -> AttemptResult | None:
    """The outcome of an attempt, or ``None`` while it is still running."""
    if job is None:
        return AttemptResult("JobDeleted", "JobDeleted", "the Job of this attempt was deleted before it finished")
    pod = _latest(pods)
    if job.complete:
        message = ""
        if pod is not None:
            message = next((c.message for c in pod.containers if not c.init and c.state == "terminated"), "")
        return AttemptResult("Succeeded", "Completed", "the Job completed", exit_code=0, termination_message=message)
    if job.failed:
        if job.failed_reason == "DeadlineExceeded":
            limit = f" of {timeout_seconds}s" if timeout_seconds else ""
            return AttemptResult(
                "Timeout", "Timeout", f"the attempt ran past its timeout{limit} (Job activeDeadlineSeconds)"
            )
        if pod is not None:
            found = _pod_error(pod) or _exit_failure(pod)
            if found is not None:
                return found
        detail = f"{job.failed_reason}: {job.failed_message}".strip(": ")
        return AttemptResult("Failed", "PodFailed", _clip(f"the Job failed ({detail or 'no reason given'})"))
    if job.deleting:
        return AttemptResult("JobDeleted", "JobDeleted", "the Job of this attempt is being deleted")
    # Still active: some pod failures never end the Job by themselves (an image that cannot be pulled).
    for p in pods:
        found = _pod_error(p)
        if found is not None and (p.phase == "Failed" or any(c.state == "waiting" for c in p.containers)):
            return found
    return None
