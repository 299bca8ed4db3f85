"""Builders for the objects the core reads, so a test says only what matters to it.

    task("t").type("echo").payload({"n": 1}).retry(max_retries=0).build()   -> AsyncTask
    tasktype("echo").payload_schema({...}).defaults(queue="gpu").build()    -> TaskType
    job("t", 1).owned_by(t).failed("DeadlineExceeded").view()               -> JobView
    pod("t-1").container("main", terminated(exit_code=1)).view()            -> PodView

Times are fixed: every object is created at ``CREATED`` and tests pick a ``now``
with :func:`at` (seconds after creation), so nothing depends on the wall clock.
"""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

from asynctask_operator.core.callbacks import DeliveryOutcome
from asynctask_operator.core.lifecycle import Admission, Observed
from asynctask_operator.core.models import AsyncTask, AsyncTaskStatus, TaskType
from asynctask_operator.core.naming import LABEL_ATTEMPT, LABEL_TASK_UID
from asynctask_operator.core.observed import JobView, PodView, job_view, pod_view
from asynctask_operator.core.reporting import Reported

CREATED = dt.datetime(2025, 3, 1, 12, 0, 0, tzinfo=dt.UTC)
NAMESPACE = "media"
IMAGE = "ghcr.io/acme/echo:1.0"


def at(seconds: float) -> dt.datetime:
    """The moment ``seconds`` after every builder's creationTimestamp."""
    return CREATED + dt.timedelta(seconds=seconds)


def stamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------- AsyncTask


def object_meta(name: str, created: dt.datetime | None = None) -> dict[str, Any]:
    """The metadata every built object starts from (namespace, uid, generation 1, created at CREATED)."""
    return {
        "name": name,
        "namespace": NAMESPACE,
        "uid": f"uid-{name}",
        "generation": 1,
        "creationTimestamp": stamp(created or CREATED),
        "labels": {},
        "annotations": {},
    }


class TaskBuilder:
    def __init__(self, name: str) -> None:
        self._meta: dict[str, Any] = object_meta(name)
        self._spec: dict[str, Any] = {"type": "echo"}
        self._status: dict[str, Any] = {}

    def type(self, name: str) -> TaskBuilder:
        self._spec["type"] = name
        return self

    def payload(self, payload: Any) -> TaskBuilder:
        self._spec["payload"] = payload
        return self

    def queue(self, name: str) -> TaskBuilder:
        self._spec["queue"] = name
        return self

    def priority(self, value: int) -> TaskBuilder:
        self._spec["priority"] = value
        return self

    def timeout(self, seconds: int) -> TaskBuilder:
        self._spec["timeoutSeconds"] = seconds
        return self

    def deadline(self, seconds: int) -> TaskBuilder:
        self._spec["deadlineSeconds"] = seconds
        return self

    def ttl(self, seconds: int) -> TaskBuilder:
        self._spec["ttlSecondsAfterFinished"] = seconds
        return self

    def retry(self, **policy: Any) -> TaskBuilder:
        """Retry fields in snake_case: ``retry(max_retries=2, jitter=False)``."""
        self._spec["retry"] = policy
        return self

    def concurrency(self, key: str, limit: int | None = None, policy: str | None = None) -> TaskBuilder:
        self._spec["concurrency"] = {
            "key": key,
            **({"limit": limit} if limit else {}),
            **({"policy": policy} if policy else {}),
        }
        return self

    def created(self, seconds: float) -> TaskBuilder:
        """Created ``seconds`` after every other builder's objects."""
        self._meta["creationTimestamp"] = stamp(at(seconds))
        return self

    def cancel(self, value: bool = True) -> TaskBuilder:
        self._spec["cancel"] = value
        return self

    def callback(self, url: str = "https://hooks.example.com/tasks", **fields: Any) -> TaskBuilder:
        """spec.callback, fields in camelCase as in a manifest: ``callback(events=["Running"])``."""
        self._spec["callback"] = {"url": url, **fields}
        return self

    def labels(self, **labels: str) -> TaskBuilder:
        self._meta["labels"].update(labels)
        return self

    def label(self, key: str, value: str) -> TaskBuilder:
        self._meta["labels"][key] = value
        return self

    def annotation(self, key: str, value: str) -> TaskBuilder:
        self._meta["annotations"][key] = value
        return self

    def uid(self, uid: str) -> TaskBuilder:
        self._meta["uid"] = uid
        return self

    def deleting(self) -> TaskBuilder:
        self._meta["deletionTimestamp"] = stamp(at(1))
        return self

    def status(self, status: AsyncTaskStatus | None = None, **fields: Any) -> TaskBuilder:
        """Status fields in snake_case, or a whole status (e.g. from a previous decision)."""
        if status is not None:
            self._status = status.model_dump()
        self._status.update(fields)
        return self

    def build(self) -> AsyncTask:
        return AsyncTask.model_validate(
            {"metadata": copy.deepcopy(self._meta), "spec": copy.deepcopy(self._spec), "status": self._status}
        )


def task(name: str = "t") -> TaskBuilder:
    return TaskBuilder(name)


def with_status(obj: AsyncTask, status: AsyncTaskStatus | None) -> AsyncTask:
    """``obj`` after a decision's status write (unchanged when it wrote none)."""
    return obj if status is None else obj.model_copy(update={"status": status})


def with_annotation(obj: AsyncTask, key: str, value: str) -> AsyncTask:
    meta = obj.metadata.model_copy(update={"annotations": {**obj.metadata.annotations, key: value}})
    return obj.model_copy(update={"metadata": meta})


def with_cancel(obj: AsyncTask) -> AsyncTask:
    return obj.model_copy(update={"spec": obj.spec.model_copy(update={"cancel": True})})


# --------------------------------------------------------------------------- TaskType


class TaskTypeBuilder:
    def __init__(self, name: str) -> None:
        self._name = name
        self._generation = 1
        self._template: dict[str, Any] = {
            "metadata": {"labels": {"team": "media"}},
            "spec": {
                "template": {
                    "spec": {
                        "containers": [{"name": "main", "image": IMAGE}],
                        "restartPolicy": "Never",
                    }
                }
            },
        }
        self._spec: dict[str, Any] = {}
        self._status: dict[str, Any] | None = None

    def template(self, job_template: dict[str, Any]) -> TaskTypeBuilder:
        self._template = job_template
        return self

    def pod_spec(self, **fields: Any) -> TaskTypeBuilder:
        self._template["spec"]["template"]["spec"].update(fields)
        return self

    def job_spec(self, **fields: Any) -> TaskTypeBuilder:
        self._template["spec"].update(fields)
        return self

    def payload_schema(self, schema: dict[str, Any]) -> TaskTypeBuilder:
        self._spec["payloadSchema"] = schema
        return self

    def defaults(self, **defaults: Any) -> TaskTypeBuilder:
        """Defaults in snake_case: ``defaults(queue="gpu", retry={"max_retries": 1})``."""
        self._spec["defaults"] = defaults
        return self

    def generation(self, value: int) -> TaskTypeBuilder:
        self._generation = value
        return self

    def status(self, status: Any) -> TaskTypeBuilder:
        self._status = None if status is None else status.model_dump()
        return self

    def build(self) -> TaskType:
        return TaskType.model_validate(
            {
                "metadata": {"name": self._name, "namespace": NAMESPACE, "generation": self._generation},
                "spec": {"jobTemplate": copy.deepcopy(self._template), **copy.deepcopy(self._spec)},
                "status": self._status,
            }
        )


def tasktype(name: str = "echo") -> TaskTypeBuilder:
    return TaskTypeBuilder(name)


# --------------------------------------------------------------------------- Jobs


class JobBuilder:
    """A raw batch/v1 Job as the API server returns it, owned by task ``task_name``."""

    def __init__(self, task_name: str, attempt: int) -> None:
        self._job: dict[str, Any] = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {
                "name": f"{task_name}-{attempt}",
                "namespace": NAMESPACE,
                "uid": f"job-uid-{task_name}-{attempt}",
                "labels": {LABEL_ATTEMPT: str(attempt), LABEL_TASK_UID: f"uid-{task_name}"},
                "ownerReferences": [
                    {
                        "apiVersion": "asynctask.dev/v1alpha1",
                        "kind": "AsyncTask",
                        "name": task_name,
                        "uid": f"uid-{task_name}",
                        "controller": True,
                    }
                ],
            },
            "status": {"startTime": stamp(at(1)), "active": 1},
        }

    @property
    def _status(self) -> dict[str, Any]:
        status: dict[str, Any] = self._job["status"]
        return status

    def _condition(self, type_: str, reason: str = "", message: str = "") -> JobBuilder:
        self._status.pop("active", None)
        self._status.setdefault("conditions", []).append(
            {"type": type_, "status": "True", "reason": reason, "message": message}
        )
        return self

    def complete(self, when: dt.datetime | None = None) -> JobBuilder:
        self._status["completionTime"] = stamp(when or at(30))
        self._status["succeeded"] = 1
        return self._condition("Complete")

    def failed(self, reason: str = "BackoffLimitExceeded", message: str = "") -> JobBuilder:
        self._status["failed"] = 1
        return self._condition("Failed", reason, message)

    def deleting(self) -> JobBuilder:
        self._job["metadata"]["deletionTimestamp"] = stamp(at(2))
        return self

    def created(self, when: dt.datetime) -> JobBuilder:
        """The creationTimestamp the API server gave it (whole seconds, as it gives them)."""
        self._job["metadata"]["creationTimestamp"] = stamp(when)
        return self

    def build(self) -> dict[str, Any]:
        return copy.deepcopy(self._job)

    def view(self) -> JobView:
        return job_view(self._job)


def job(task_name: str = "t", attempt: int = 1) -> JobBuilder:
    return JobBuilder(task_name, attempt)


# --------------------------------------------------------------------------- Pods


def terminated(exit_code: int, reason: str = "", message: str = "") -> dict[str, Any]:
    detail: dict[str, Any] = {"exitCode": exit_code, "reason": reason or ("Completed" if exit_code == 0 else "Error")}
    if message:
        detail["message"] = message
    return {"terminated": detail}


def waiting(reason: str, message: str = "") -> dict[str, Any]:
    return {"waiting": {"reason": reason, "message": message}}


def running() -> dict[str, Any]:
    return {"running": {"startedAt": stamp(at(2))}}


class PodBuilder:
    """A raw Pod of Job ``job_name`` (phase Running, no container statuses until added)."""

    def __init__(self, job_name: str, suffix: str) -> None:
        self._pod: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": f"{job_name}-{suffix}",
                "namespace": NAMESPACE,
                "creationTimestamp": stamp(at(1)),
                "labels": {"batch.kubernetes.io/job-name": job_name},
            },
            "status": {"phase": "Running"},
        }

    def phase(self, phase: str, reason: str = "", message: str = "") -> PodBuilder:
        status = self._pod["status"]
        status["phase"] = phase
        if reason:
            status["reason"] = reason
        if message:
            status["message"] = message
        return self

    def container(self, name: str, state: dict[str, Any]) -> PodBuilder:
        self._pod["status"].setdefault("containerStatuses", []).append({"name": name, "state": state})
        return self

    def init_container(self, name: str, state: dict[str, Any]) -> PodBuilder:
        self._pod["status"].setdefault("initContainerStatuses", []).append({"name": name, "state": state})
        return self

    def disrupted(self, reason: str, message: str) -> PodBuilder:
        self._pod["status"].setdefault("conditions", []).append(
            {"type": "DisruptionTarget", "status": "True", "reason": reason, "message": message}
        )
        return self

    def created(self, when: dt.datetime) -> PodBuilder:
        self._pod["metadata"]["creationTimestamp"] = stamp(when)
        return self

    def build(self) -> dict[str, Any]:
        return copy.deepcopy(self._pod)

    def view(self) -> PodView:
        return pod_view(self._pod)


def pod(job_name: str = "t-1", suffix: str = "x7k2p") -> PodBuilder:
    return PodBuilder(job_name, suffix)


# --------------------------------------------------------------------------- what decide() sees


GRANTED = Admission()  # what decide() sees unless a test says the task's queue holds it


def observe(
    obj: AsyncTask,
    *,
    now: dt.datetime,
    tasktype: TaskType | None,
    jobs: tuple[JobView, ...] = (),
    pods: tuple[PodView, ...] = (),
    types_synced: bool = True,
    jitter_sample: float = 0.5,
    admission: Admission = GRANTED,
    reported: Reported | None = None,
    callback_outcome: DeliveryOutcome | None = None,
    superseded_by: str | None = None,
) -> Observed:
    by_job: dict[str, list[PodView]] = {}
    for p in pods:
        by_job.setdefault(p.job_name, []).append(p)
    return Observed(
        task=obj,
        tasktype=tasktype,
        types_synced=types_synced,
        jobs={j.attempt: j for j in jobs if j.attempt is not None},
        pods=by_job,
        now=now,
        jitter_sample=jitter_sample,
        admission=admission,
        reported=reported,
        callback_outcome=callback_outcome,
        superseded_by=superseded_by,
    )
