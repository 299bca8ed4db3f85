"""Readings of an AsyncTask in its wire form (the JSON dict), without parsing it into the model.

The front doors read thousands of cached tasks per answer (a queue's admission order, the
statistics of a namespace), where parsing each one would cost more than the answer. What a
person sees of a task is its view (:mod:`asynctask_operator.core.views`), built on these readings.
"""

from __future__ import annotations

from typing import Any

from asynctask_operator.core.effective import resolve_queue
from asynctask_operator.core.naming import LABEL_ATTEMPT, LABEL_TASK, label_value
from asynctask_operator.core.queueing import WaitingTask
from asynctask_operator.core.timestamps import parse_stamp

Obj = dict[str, Any]
"""An object in its wire form: the JSON dict the API server sends."""
Key = tuple[str, str]
"""(namespace, name); ``""`` for a cluster-scoped object's namespace."""
DEFAULT_QUEUE = "default"
"""The queue of a task that names none, as the operator's default setting has it. A front door cannot
know a TaskType default the operator has not resolved yet: until admission records it, such a
task is shown in this queue."""


def _parts(obj: Obj) -> tuple[Obj, Obj, Obj]:
    return obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}


def key_of(obj: Obj) -> Key:
    """The object's (namespace, name)."""
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


def queue_in(obj: Obj) -> str:
    """The queue the task is (or will be) in: the one its admission recorded, else the one it asks for."""
    _, spec, status = _parts(obj)
    return resolve_queue((status.get("effective") or {}).get("queue"), spec.get("queue"), None, DEFAULT_QUEUE)


def waiting_task(
    phase: str | None, cancel: object, deleting: object, name: str, queue: str, priority: object, created: object
) -> WaitingTask | None:
    """A task as its queue's admission order sees it, while it waits for a slot (Pending, not
    cancelled, not being deleted); ``None`` otherwise."""
    if (phase or "Pending") != "Pending" or cancel or deleting:
        return None
    return WaitingTask(name, queue, priority if isinstance(priority, int) else 0, str(created or ""))


def waiting_in(obj: Obj) -> WaitingTask | None:
    """:func:`waiting_task` of a task's wire form."""
    meta, spec, status = _parts(obj)
    return waiting_task(
        status.get("phase"), spec.get("cancel"), meta.get("deletionTimestamp"), str(meta.get("name") or ""),
        queue_in(obj), spec.get("priority"), meta.get("creationTimestamp"),
    )  # fmt: skip


def seconds_in(text: object) -> float | None:
    """Epoch seconds of a time an object holds; None for none or one that cannot be read."""
    moment = parse_stamp(text if isinstance(text, str) else None)
    return moment.timestamp() if moment else None


def number_in(value: object) -> float | None:
    """A number an object holds (``durationSeconds``, ``percent``); None for anything else (a bool too)."""
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def event_about(event: Obj, task: Obj) -> bool:
    """Whether a Kubernetes Event is about this task (by uid; by kind and name where an Event carries no uid)."""
    involved = event.get("involvedObject") or {}
    meta = task.get("metadata") or {}
    uid = meta.get("uid")
    if uid and involved.get("uid"):
        return bool(involved["uid"] == uid)
    return involved.get("kind") == "AsyncTask" and involved.get("name") == meta.get("name")


def attempt_pods(name: str, attempt: int) -> str:
    """The label selector of the pods of one attempt of a task (the labels its Job gives them)."""
    return f"{LABEL_TASK}={label_value(name)},{LABEL_ATTEMPT}={attempt}"


def latest_pod(pods: list[Obj]) -> Obj | None:
    """The newest of an attempt's pods (a Job replaces a pod that was evicted or deleted)."""
    ordered = sorted(pods, key=lambda p: str((p.get("metadata") or {}).get("creationTimestamp") or ""))
    return ordered[-1] if ordered else None
