"""The aggregated API's documents as Kubernetes writes them: discovery, ``ArchivedTask`` objects, their
list and table, and ``metav1.Status`` errors. Pure: made from the archive's records and the tasks' views.

An ``ArchivedTask`` is the task as the archive kept it, under the archive's group::

    apiVersion: archive.asynctask.dev/v1alpha1
    kind: ArchivedTask
    metadata: {name, namespace, uid, creationTimestamp, labels, annotations}   the task's own
    spec: …; status: …                                                        as last recorded
    archive: {archivedTime, logs: [{attempt, pod, container, bytes, truncated, error}]}   (logs: on a get)
    summary: {…}                    the gateway's answer for the task (core.views.TaskView): every figure
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from starlette.responses import JSONResponse

from asynctask_operator.core.timestamps import parse_stamp, stamp
from asynctask_operator.core.views import TaskView

if TYPE_CHECKING:
    from asynctask_operator.archive import ArchivedTask, AttemptLog

GROUP = "archive.asynctask.dev"
VERSION = "v1alpha1"
GROUP_VERSION = f"{GROUP}/{VERSION}"
RESOURCE = "archivedtasks"
KIND = "ArchivedTask"
TABLE_TYPE = "application/json;as=Table;v=v1;g=meta.k8s.io"
REASONS = {
    400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed",
    406: "NotAcceptable", 409: "Conflict", 422: "Invalid", 429: "TooManyRequests", 503: "ServiceUnavailable",
}  # fmt: skip


def when(seconds: float) -> str:
    return stamp(dt.datetime.fromtimestamp(seconds, dt.UTC))


# --------------------------------------------------------------------------- discovery


def group_document() -> dict[str, Any]:
    version = {"groupVersion": GROUP_VERSION, "version": VERSION}
    return {"kind": "APIGroup", "apiVersion": "v1", "name": GROUP, "versions": [version], "preferredVersion": version}


def group_list() -> dict[str, Any]:
    """``GET /apis``: the one group this server serves."""
    group = group_document()
    del group["kind"], group["apiVersion"]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [group]}


def resource_list() -> dict[str, Any]:
    """``GET /apis/archive.asynctask.dev/v1alpha1``: what kubectl and the aggregator's discovery read."""
    task = {"name": RESOURCE, "singularName": "archivedtask", "namespaced": True, "kind": KIND,
            "verbs": ["get", "list"], "categories": ["asynctask"]}  # fmt: skip
    log = {"name": f"{RESOURCE}/log", "singularName": "", "namespaced": True, "kind": KIND, "verbs": ["get"]}
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": GROUP_VERSION, "resources": [task, log]}


# --------------------------------------------------------------------------- objects


def log_entry(log: AttemptLog) -> dict[str, Any]:
    entry = {"attempt": log.attempt, "pod": log.pod, "container": log.container, "bytes": log.size,
             "truncated": log.truncated, "error": log.error}  # fmt: skip
    return {k: v for k, v in entry.items() if v is not None}


def archived_object(
    task: ArchivedTask, summary: dict[str, Any], logs: Sequence[AttemptLog] | None = None
) -> dict[str, Any]:
    """The task as an ``ArchivedTask``; ``summary`` is its answer on the gateway (the same figures)."""
    obj = task.object
    meta = obj.get("metadata") or {}
    metadata: dict[str, Any] = {
        "name": task.name,
        "namespace": task.namespace,
        "uid": task.uid,
        "creationTimestamp": meta.get("creationTimestamp") or when(task.created),
    }
    for key in ("labels", "annotations"):
        if meta.get(key):
            metadata[key] = dict(meta[key])
    record: dict[str, Any] = {"archivedTime": when(task.archived_at)}
    if logs is not None:
        record["logs"] = [log_entry(log) for log in logs]
    return {"apiVersion": GROUP_VERSION, "kind": KIND, "metadata": metadata, "spec": obj.get("spec") or {},
            "status": obj.get("status") or {}, "archive": record, "summary": summary}  # fmt: skip


def object_list(items: list[dict[str, Any]], cursor: str | None) -> dict[str, Any]:
    metadata = {"resourceVersion": ""} | ({"continue": cursor} if cursor else {})
    return {"apiVersion": GROUP_VERSION, "kind": f"{KIND}List", "metadata": metadata, "items": items}


# --------------------------------------------------------------------------- kubectl get's table

COLUMNS = [
    ("Name", "string", "name", "The task's name"),
    ("Type", "string", "", "Its TaskType"),
    ("Queue", "string", "", "Its TaskQueue"),
    ("Phase", "string", "", "How it ended"),
    ("Reason", "string", "", "Why"),
    ("Attempts", "integer", "", "Attempts it ran"),
    ("Duration", "string", "", "From its first start to its finish"),
    ("Age", "string", "", "Since it was created"),
    ("Archived", "string", "", "Since the archive last recorded it"),
]


def age(seconds: float) -> str:
    """How long, as kubectl's AGE column says it.

    >>> age(90), age(300), age(3 * 3600), age(12 * 86400)
    ('90s', '5m', '3h', '12d')
    """
    whole = max(int(seconds), 0)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if whole >= 2 * size:
            return f"{whole // size}{unit}"
    return f"{whole}s"


def duration_text(seconds: float | None) -> str:
    if seconds is None:
        return ""
    whole = int(seconds)
    return f"{whole}s" if whole < 60 else f"{whole // 60}m{whole % 60:02d}s"


def table(objects: list[dict[str, Any]], cursor: str | None, now: float, include: str = "Metadata") -> dict[str, Any]:
    """The objects as a ``meta.k8s.io/v1`` Table (what ``kubectl get archivedtasks`` prints), each row with
    the object as ``include`` says (``None``, ``Metadata``: the default, or ``Object``)."""
    rows = []
    for obj in objects:
        view = TaskView.of(obj)
        created = parse_stamp(view.created_time)
        archived = parse_stamp(obj["archive"]["archivedTime"])
        cells = [view.name, view.type, view.queue, view.phase, view.reason, view.attempt,
                 duration_text(view.duration(None)),
                 age(now - created.timestamp()) if created else "<unknown>",
                 age(now - archived.timestamp()) if archived else "<unknown>"]  # fmt: skip
        row: dict[str, Any] = {"cells": cells}
        if include == "Object":
            row["object"] = obj
        elif include != "None":
            row["object"] = {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": obj["metadata"],
            }
        rows.append(row)
    columns = [{"name": n, "type": t, "format": f, "description": d, "priority": 0} for n, t, f, d in COLUMNS]
    metadata = {"resourceVersion": ""} | ({"continue": cursor} if cursor else {})
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": columns,
        "rows": rows,
    }


def wants_table(accept: str) -> bool:
    """Whether ``Accept`` asks for a Table first, as kubectl get does
    (``application/json;as=Table;v=v1;g=meta.k8s.io,application/json``).

    >>> wants_table("application/json;as=Table;v=v1;g=meta.k8s.io,application/json"), wants_table("application/json")
    (True, False)
    """
    for media in accept.split(","):
        params = dict(p.strip().partition("=")[::2] for p in media.split(";")[1:])
        if params.get("as") == "Table" and params.get("g") == "meta.k8s.io" and params.get("v") in ("v1", "v1beta1"):
            return True
        if media.split(";")[0].strip() in ("application/json", "*/*"):
            return False
    return False


# --------------------------------------------------------------------------- errors


def status(code: int, message: str, *, name: str | None = None, retry_after: int | None = None) -> dict[str, Any]:
    """A ``metav1.Status`` of failure: what kubectl prints as ``Error from server (Reason): message``."""
    details: dict[str, Any] = {"group": GROUP, "kind": RESOURCE} | ({"name": name} if name else {})
    if retry_after is not None:
        details["retryAfterSeconds"] = retry_after
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": REASONS.get(code, "InternalError"), "details": details, "code": code}  # fmt: skip


def status_response(
    code: int, message: str, *, name: str | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    after = (headers or {}).get("Retry-After", "")
    body = status(code, message, name=name, retry_after=int(after) if after.isdigit() else None)
    return JSONResponse(body, status_code=code, headers=headers)
