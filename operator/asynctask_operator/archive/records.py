"""A task's wire form as an archive row: pure, and total (any object with a uid maps to a row).

The counted columns are read through the task's view (:class:`~asynctask_operator.core.views.TaskView`),
the reading every front door shows, so the archive's history and statistics count what the live ones count. Whatever the object holds, the row is
storable: text loses NUL characters and unpaired surrogates (PostgreSQL's text and JSON refuse them),
and the wire JSON escapes what UTF-8 cannot carry. A status too malformed to read (attempts that are
not objects, a phase that is a number) still gives a row, from what can be read, and a note saying so.

>>> row = row_of({"metadata": {"uid": "u1", "namespace": "ns", "name": "t", "resourceVersion": "42",
...                            "creationTimestamp": "2026-03-01T12:00:00Z"},
...               "spec": {"type": "echo"}, "status": {"phase": "Succeeded", "durationSeconds": 2.5}}, 1.0)
>>> (row.uid, row.type, row.queue, row.phase, row.revision, row.duration_seconds)
('u1', 'echo', 'default', 'Succeeded', 42, 2.5)
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from asynctask_operator.core.idempotency import ANNOTATION_SUBMITTED_BY
from asynctask_operator.core.tracing import trace_of
from asynctask_operator.core.views import TaskView
from asynctask_operator.core.wire import Obj, number_in

DROPPED_ANNOTATIONS = ("kubectl.kubernetes.io/last-applied-configuration",)
"""Left out of the stored object: a second copy of the whole manifest, read by nothing."""


class Unkeyed(ValueError):
    """The object has no uid (or no namespace and name): it cannot be a row."""


@dataclasses.dataclass(frozen=True)
class TaskRow:
    uid: str
    namespace: str
    name: str
    type: str
    queue: str
    phase: str
    reason: str | None
    message: str | None
    priority: int | None
    labels: dict[str, str]
    submitted_by: str | None
    trace_id: str | None
    created: float
    queued: float | None
    started: float | None
    finished: float | None
    duration_seconds: float | None
    queue_wait_seconds: float | None
    attempts: int
    wire: str
    revision: int
    archived_at: float
    note: str | None = dataclasses.field(default=None, compare=False)
    """What could not be read (a malformed status): logged by the writer, not stored."""

    def values(self) -> dict[str, Any]:
        """The row as the ``tasks`` table's column values (shallow: ``dataclasses.asdict`` copies deep, and
        was a fifth of the archiver's time per row)."""
        return {name: getattr(self, name) for name in COLUMNS}


COLUMNS = tuple(f.name for f in dataclasses.fields(TaskRow) if f.name != "note")


def clean(text: object) -> str:
    """``text`` as a string PostgreSQL stores: no NUL, no unpaired surrogate."""
    value = text if isinstance(text, str) else str(text)
    if "\x00" in value:
        value = value.replace("\x00", "")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = value.encode("utf-8", "replace").decode("utf-8")
    return value


def _optional(text: object) -> str | None:
    return None if text is None or text == "" else clean(text)


def revision_of(obj: Obj) -> int:
    """The resourceVersion as a number (etcd's are); 0 where it is none: then the later write wins."""
    version = str((obj.get("metadata") or {}).get("resourceVersion") or "")
    return int(version) if version.isdigit() and len(version) < 19 else 0


def wire_text(obj: Obj) -> str:
    """The object as stored: JSON without managedFields or kubectl's last-applied copy."""
    meta = dict(obj.get("metadata") or {})
    meta.pop("managedFields", None)
    annotations = meta.get("annotations")
    if isinstance(annotations, dict) and any(a in annotations for a in DROPPED_ANNOTATIONS):
        meta["annotations"] = {k: v for k, v in annotations.items() if k not in DROPPED_ANNOTATIONS}
    slim = {**obj, "metadata": meta}
    text = json.dumps(slim, separators=(",", ":"), ensure_ascii=False, default=str)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # an unpaired surrogate: escaped, JSON still reads it back
        text = json.dumps(slim, separators=(",", ":"), ensure_ascii=True, default=str)
    return text


def _strings(value: object) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {clean(k): clean(v) for k, v in value.items()}


def _readable(obj: Obj) -> tuple[Obj, str | None]:
    """The object with a status the core's readers can read, and what had to be left out."""
    status = obj.get("status")
    if status is None or status == {}:
        return obj, None
    if not isinstance(status, dict):
        return {**obj, "status": {}}, f"status is {type(status).__name__}, not an object"
    fixed = dict(status)
    notes = []
    attempts = status.get("attempts")
    if attempts is not None and not (isinstance(attempts, list) and all(isinstance(a, dict) for a in attempts)):
        fixed["attempts"] = [a for a in attempts if isinstance(a, dict)] if isinstance(attempts, list) else []
        notes.append("status.attempts is not a list of objects")
    for field in ("phase", "reason", "message"):
        if field in fixed and fixed[field] is not None and not isinstance(fixed[field], str):
            fixed[field] = str(fixed[field])
            notes.append(f"status.{field} is not a string")
    if not isinstance(fixed.get("effective"), dict | None):
        fixed["effective"] = None
        notes.append("status.effective is not an object")
    spec = obj.get("spec")
    return {**obj, "spec": spec if isinstance(spec, dict) else {}, "status": fixed}, "; ".join(notes) or None


def _view(obj: Obj) -> tuple[TaskView, str | None]:
    readable, note = _readable(obj)
    return TaskView.of(readable), note


def row_of(obj: Obj, archived_at: float) -> TaskRow:
    """The row of a task's wire form; :class:`Unkeyed` when it has no uid, namespace or name."""
    meta = obj.get("metadata")
    if not isinstance(meta, dict) or not all(
        isinstance(meta.get(k), str) and meta[k] for k in ("uid", "namespace", "name")
    ):
        raise Unkeyed("the object has no metadata.uid, namespace and name")
    view, note = _view(obj)
    facts = view.facts()
    spec: Obj = obj["spec"] if isinstance(obj.get("spec"), dict) else {}
    status: Obj = obj["status"] if isinstance(obj.get("status"), dict) else {}
    annotations = _strings(meta.get("annotations"))
    priority = spec.get("priority")
    attempt = status.get("attempt")
    wait = view.wait(None) if facts.started is not None else None
    return TaskRow(
        uid=clean(meta["uid"]),
        namespace=clean(meta["namespace"]),
        name=clean(meta["name"]),
        type=clean(facts.type),
        queue=clean(facts.queue),
        phase=clean(facts.phase),
        reason=_optional(facts.reason),
        message=_optional(status.get("message")),
        priority=priority
        if isinstance(priority, int) and not isinstance(priority, bool) and abs(priority) < 2**31
        else None,
        labels=_strings(meta.get("labels")),
        submitted_by=_optional(annotations.get(ANNOTATION_SUBMITTED_BY)),
        trace_id=trace_of(clean(meta["uid"]), annotations).trace_id,
        created=facts.created,
        queued=facts.queued,
        started=facts.started,
        finished=facts.finished,
        duration_seconds=number_in(facts.duration),
        queue_wait_seconds=wait,
        attempts=attempt if isinstance(attempt, int) and not isinstance(attempt, bool) and 0 <= attempt < 2**31 else 0,
        wire=wire_text(obj),
        revision=revision_of(obj),
        archived_at=archived_at,
        note=note,
    )


def newest(rows: list[TaskRow]) -> list[TaskRow]:
    """One row per uid, the newest revision (the later one on a tie): one statement may touch a row once."""
    chosen: dict[str, TaskRow] = {}
    for row in rows:
        held = chosen.get(row.uid)
        if held is None or row.revision == 0 or row.revision >= held.revision:
            chosen[row.uid] = row
    return list(chosen.values())


def minimal(row: TaskRow, reason: str) -> TaskRow:
    """A row the database surely stores: the keys and counted columns, cleaned, and why the rest is missing."""
    meta = {"uid": row.uid, "namespace": row.namespace, "name": row.name}
    wire = json.dumps({"metadata": meta, "archiveError": clean(reason)}, ensure_ascii=True)
    return TaskRow(
        **{**row.values(), "labels": {}, "message": None, "wire": wire, "reason": clean(row.reason or "")[:256] or None}
    )
