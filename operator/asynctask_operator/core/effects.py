"""What a status write means besides itself: the Kubernetes Events to post and the metrics it counts.

Both follow from the status before and after the write, so they are decided with it
(:class:`~asynctask_operator.core.draft.Decision` carries them) and performed by the
reconciler only once the write is accepted: a refused write posts nothing and counts
nothing, and a repeated decision of the same transition (after a 409) counts it once.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any, Literal

from asynctask_operator.core.models import TERMINAL_PHASES, AsyncTask, AsyncTaskStatus
from asynctask_operator.core.timestamps import parse_stamp, stamp

COMPONENT = "asynctask-operator"
WARNED_PHASES = ("Retrying", "Failed")
"""The phases an Event is posted for: what an operator of the cluster wants to see. Not every
transition: each Event is an API write."""

KEY_EVENTS = ("WaitingForKey", "Superseded")
"""Reasons an Event is posted for besides the warned phases: a wait for a key, a cancel by a newer task."""

MetricName = Literal["tasks_created", "attempts", "queue_wait", "tasks_finished", "task_duration"]


@dataclasses.dataclass(frozen=True)
class EventNote:
    """A core/v1 Event about the task (what ``kubectl describe at`` lists)."""

    type: Literal["Normal", "Warning"]
    reason: str
    message: str


@dataclasses.dataclass(frozen=True)
class MetricDelta:
    """One step of one metric of :class:`~asynctask_operator.adapters.metrics.Metrics`: a counter
    goes up by ``value``, a histogram observes ``value``."""

    metric: MetricName
    labels: tuple[str, ...]
    value: float = 1.0


def effects_of(
    task: AsyncTask, new: AsyncTaskStatus, now: dt.datetime
) -> tuple[tuple[EventNote, ...], tuple[MetricDelta, ...]]:
    """The Events and metric steps of writing status ``new`` over the task's current status."""
    return events_of(task.status, new), metrics_of(task, new, now)


def events_of(old: AsyncTaskStatus, new: AsyncTaskStatus) -> tuple[EventNote, ...]:
    notes: list[EventNote] = []
    record = new.callback
    if record is not None and record.state in ("Failed", "Refused"):
        before = old.callback
        if before is None or before.id != record.id or before.state != record.state:
            notes.append(
                EventNote(
                    "Warning",
                    f"Callback{record.state}",
                    f"{record.event} event not delivered: {record.last_error or ''}",
                )
            )
    if new.phase != old.phase and new.phase in WARNED_PHASES:
        notes.append(EventNote("Warning", new.reason or new.phase or "", new.message or ""))
    # A concurrency key: once when a wait for it begins (naming the holders), and when a newer task
    # of it supersedes this one (naming that task).
    if new.reason in KEY_EVENTS and (new.reason, new.phase) != (old.reason, old.phase):
        notes.append(EventNote("Normal", new.reason or "", new.message or ""))
    return tuple(notes)


def metrics_of(task: AsyncTask, new: AsyncTaskStatus, now: dt.datetime) -> tuple[MetricDelta, ...]:
    ns, type_ = task.metadata.namespace, task.spec.type
    old = task.status
    queue = new.effective.queue if new.effective else ""
    deltas: list[MetricDelta] = []
    # The operator's first write fixes the task's round (when it is admitted, queued, refused or
    # cancelled unadmitted). Not "no phase yet": the CRD defaults the phase to Pending (ADR 0004).
    if old.round is None and new.round is not None:
        deltas.append(MetricDelta("tasks_created", (ns, type_)))
    ended = {a.attempt for a in old.attempts or [] if a.outcome}
    for attempt in new.attempts or []:
        if attempt.outcome and attempt.attempt not in ended:
            deltas.append(MetricDelta("attempts", (ns, type_, attempt.outcome)))
    first_of_round = new.round.first_attempt if new.round else 1
    if new.phase == "Running" and old.phase != "Running" and (new.attempt or 0) == first_of_round:
        since = parse_stamp(new.queued_time)
        if since is not None:
            deltas.append(MetricDelta("queue_wait", (ns, queue), max((now - since).total_seconds(), 0.0)))
    if new.phase in TERMINAL_PHASES and old.phase not in TERMINAL_PHASES:
        deltas.append(MetricDelta("tasks_finished", (ns, type_, queue, new.phase or "", new.reason or "")))
        if new.duration_seconds is not None:
            deltas.append(MetricDelta("task_duration", (ns, type_, new.phase or ""), new.duration_seconds))
    return tuple(deltas)


def event_body(task: AsyncTask, note: EventNote, now: dt.datetime) -> dict[str, Any]:
    """The core/v1 Event to create for ``note``."""
    involved = {
        "apiVersion": task.api_version,
        "kind": "AsyncTask",
        "name": task.metadata.name,
        "namespace": task.metadata.namespace,
        "uid": task.metadata.uid,
        "resourceVersion": task.metadata.resource_version,
    }
    return event_for(involved, note, now)


def event_for(
    involved: dict[str, Any], note: EventNote, now: dt.datetime, component: str = COMPONENT
) -> dict[str, Any]:
    """The core/v1 Event to create for ``note`` about the object ``involved`` names (its ``involvedObject``),
    posted by ``component``: the operator, or the archiver (``archive/marks.py``).

    Named after the object (``generateName``), in its namespace; the message clipped to 1 KiB."""
    at = stamp(now)
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{str(involved['name'])[:200]}.", "namespace": involved["namespace"]},
        "involvedObject": involved,
        "type": note.type,
        "reason": note.reason,
        "message": note.message[:1024],
        "source": {"component": component},
        "reportingComponent": component,
        "reportingInstance": component,
        "firstTimestamp": at,
        "lastTimestamp": at,
        "count": 1,
    }
