"""Slim, immutable views of the Jobs and pods the operator watches.

The cache keeps these instead of the raw objects: a Job carries its whole pod
template, and only a handful of fields decide an attempt's outcome.
"""

from __future__ import annotations

import dataclasses
import sys
from typing import Any

from asynctask_operator.core.naming import ANNOTATION_CONCURRENCY_KEY, LABEL_ATTEMPT, LABEL_TASK_UID


@dataclasses.dataclass(frozen=True, slots=True)
class JobView:
    namespace: str
    name: str
    uid: str
    owner_uid: str | None
    owner_name: str | None
    attempt: int | None
    complete: bool = False
    failed: bool = False
    failed_reason: str = ""
    failed_message: str = ""
    completion_time: str | None = None
    deleting: bool = False
    concurrency_key: str = ""  # the key its task held when it was created (an annotation)
    creation_timestamp: str | None = None  # when the attempt began (the short-attempt window counts from it)

    @property
    def finished(self) -> bool:
        return self.complete or self.failed

    @property
    def live(self) -> bool:
        """It may still run: not finished, and not being deleted (by us or anyone)."""
        return not (self.finished or self.deleting)


@dataclasses.dataclass(frozen=True, slots=True)
class ContainerView:
    name: str
    state: str  # waiting | running | terminated | unknown
    reason: str = ""
    message: str = ""
    exit_code: int | None = None
    init: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class PodView:
    namespace: str
    name: str
    job_name: str
    phase: str
    reason: str = ""
    message: str = ""
    creation_timestamp: str = ""
    containers: tuple[ContainerView, ...] = ()
    disruption: str = ""  # message of a DisruptionTarget condition, if any


def controller_ref(meta: dict[str, Any]) -> dict[str, Any]:
    for ref in meta.get("ownerReferences") or ():
        if ref.get("controller"):
            return dict(ref)
    return {}


def job_view(job: dict[str, Any]) -> JobView:
    meta = job.get("metadata") or {}
    status = job.get("status") or {}
    labels = meta.get("labels") or {}
    complete = failed = False
    failed_reason = failed_message = ""
    for cond in status.get("conditions") or ():
        if cond.get("status") != "True":
            continue
        if cond.get("type") == "Complete":
            complete = True
        elif cond.get("type") == "Failed":
            failed = True
            failed_reason = cond.get("reason") or ""
            failed_message = cond.get("message") or ""
    attempt_label = labels.get(LABEL_ATTEMPT, "")
    return JobView(
        namespace=meta.get("namespace", ""),
        name=meta.get("name", ""),
        uid=meta.get("uid", ""),
        owner_uid=controller_ref(meta).get("uid") or labels.get(LABEL_TASK_UID),
        owner_name=controller_ref(meta).get("name"),
        attempt=int(attempt_label) if attempt_label.isdigit() else None,
        complete=complete,
        failed=failed,
        failed_reason=failed_reason,
        failed_message=failed_message,
        completion_time=status.get("completionTime"),
        deleting=bool(meta.get("deletionTimestamp")),
        concurrency_key=str((meta.get("annotations") or {}).get(ANNOTATION_CONCURRENCY_KEY) or ""),
        creation_timestamp=_shared(meta.get("creationTimestamp")),
    )


def _shared(stamp: str | None) -> str | None:
    """One string per second: whole-second timestamps repeat across thousands of Jobs held at once."""
    return sys.intern(stamp) if isinstance(stamp, str) else None


def _container(status: dict[str, Any], init: bool) -> ContainerView:
    state = status.get("state") or {}
    for kind in ("terminated", "waiting", "running"):
        if kind in state and state[kind] is not None:
            detail = state[kind]
            return ContainerView(
                name=status.get("name", ""),
                state=kind,
                reason=detail.get("reason") or "",
                message=detail.get("message") or "",
                exit_code=detail.get("exitCode"),
                init=init,
            )
    return ContainerView(name=status.get("name", ""), state="unknown", init=init)


def pod_view(pod: dict[str, Any]) -> PodView:
    meta = pod.get("metadata") or {}
    status = pod.get("status") or {}
    labels = meta.get("labels") or {}
    job = labels.get("batch.kubernetes.io/job-name") or labels.get("job-name") or ""
    if not job:
        job = next((r.get("name", "") for r in meta.get("ownerReferences") or () if r.get("kind") == "Job"), "")
    containers = tuple(_container(c, True) for c in status.get("initContainerStatuses") or ()) + tuple(
        _container(c, False) for c in status.get("containerStatuses") or ()
    )
    disruption = next(
        (
            f"{c.get('reason', '')}: {c.get('message', '')}".strip(": ")
            for c in status.get("conditions") or ()
            if c.get("type") == "DisruptionTarget" and c.get("status") == "True"
        ),
        "",
    )
    return PodView(
        namespace=meta.get("namespace", ""),
        name=meta.get("name", ""),
        job_name=job,
        phase=status.get("phase") or "Unknown",
        reason=status.get("reason") or "",
        message=status.get("message") or "",
        creation_timestamp=_shared(meta.get("creationTimestamp")) or "",
        containers=containers,
        disruption=disruption,
    )
