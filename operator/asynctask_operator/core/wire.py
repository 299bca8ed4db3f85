"""Readings of an AsyncTask in its wire form (the JSON dict), without parsing it into the model.

The front doors read thousands of cached tasks per answer (a queue's admission order, the
statistics of a namespace), where parsing each one would cost more than the answer. What a
person sees of a task is its view (:mod:`asynctask_operator.core.views`), built on these readings.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from asynctask_operator.core.concurrency import claim_in
from asynctask_operator.core.effective import resolve_queue
from asynctask_operator.core.models import TaskType
from asynctask_operator.core.naming import LABEL_ATTEMPT, LABEL_TASK, label_value
from asynctask_operator.core.queueing import Seen, WaitingTask
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


def phase_in(obj: Obj) -> str:
    """The task's phase; ``Pending`` before anything is written (the CRD's default status says the same)."""
    return str((obj.get("status") or {}).get("phase") or "Pending")


def queue_in(obj: Obj) -> str:
    """The queue the task is (or will be) in: the one its admission recorded, else the one it asks for."""
    _, spec, status = _parts(obj)
    return resolve_queue((status.get("effective") or {}).get("queue"), spec.get("queue"), None, DEFAULT_QUEUE)


def waiting_task(
    phase: str | None,
    cancel: object,
    deleting: object,
    name: str,
    queue: str,
    priority: object,
    created: object,
    *,
    key: str | None = None,
    limit: int = 1,
    fairness: object = None,
    started: str = "",
) -> WaitingTask | None:
    """A task as its queue's admission order sees it (core/positions.py): while it waits for a slot
    (Pending, not cancelled, not being deleted), while it holds a slot or its key (Running, Retrying),
    or, after that, when it records a fairness turn; ``None`` when it counts for nothing there."""
    phase = phase or "Pending"
    record = fairness if isinstance(fairness, Mapping) else {}
    group = record.get("group")
    turn = record.get("turn")
    waits = phase == "Pending" and not cancel and not deleting
    holds = phase == "Running" or (phase == "Retrying" and key is not None)
    if not (waits or holds or isinstance(turn, int)):
        return None
    return WaitingTask(
        name,
        queue,
        priority if isinstance(priority, int) and not isinstance(priority, bool) else 0,
        str(created or ""),
        phase if waits or holds or phase != "Pending" else "Cancelled",
        key,
        limit,
        group if isinstance(group, str) else None,
        turn if isinstance(turn, int) and not isinstance(turn, bool) else None,
        started,
    )


def waiting_in(obj: Obj) -> WaitingTask | None:
    """:func:`waiting_task` of a task's wire form (its key: the one its admission recorded, else its own)."""
    meta, spec, status = _parts(obj)
    recorded = status.get("effective")
    concurrency = (recorded.get("concurrency") if isinstance(recorded, Mapping) else spec.get("concurrency")) or {}
    key = concurrency.get("key") if isinstance(concurrency, Mapping) else None
    limit = concurrency.get("limit") if isinstance(concurrency, Mapping) else None
    attempts = status.get("attempts") or []
    started = (attempts[-1].get("startTime") if attempts and isinstance(attempts[-1], Mapping) else None) or ""
    return waiting_task(
        status.get("phase"), spec.get("cancel"), meta.get("deletionTimestamp"), str(meta.get("name") or ""),
        queue_in(obj), spec.get("priority"), meta.get("creationTimestamp"),
        key=key if isinstance(key, str) else None, limit=limit if isinstance(limit, int) else 1,
        fairness=status.get("fairness"), started=str(started or status.get("startTime") or ""),
    )  # fmt: skip


def seen_in(obj: Obj, tasktype: TaskType | None, default_queue: str, live_job: bool) -> Seen:
    """A copy of a task as the admission ledger reads it (core/queueing.py ``Seen``): its queue, phase,
    key, newness and fairness turn, from this copy alone; ``live_job``: a Job of it still runs."""
    meta, spec, status = _parts(obj)
    fairness = status.get("fairness") or {}
    turn = fairness.get("turn")
    admitted = (status.get("effective") or {}).get("queue")
    name = str(meta.get("name") or "")
    return Seen(
        queue=(str(meta.get("namespace") or ""), resolve_queue(admitted, spec.get("queue"), tasktype, default_queue)),
        phase=str(status.get("phase") or "Pending"),
        live_job=live_job,
        claim=claim_in(obj, tasktype),
        newness=(str(meta.get("creationTimestamp") or ""), name),
        turn=(str(fairness.get("group") or ""), turn) if isinstance(turn, int) and not isinstance(turn, bool) else None,
    )


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
