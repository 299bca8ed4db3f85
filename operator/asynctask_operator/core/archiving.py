"""The archive mark: which finished state of a task the archive holds (docs/adr/0025-ttl-hold-archived-annotation.md).

The archiver (``asynctask-archive``) writes a task's record to its database, then the annotation
:data:`ANNOTATION_ARCHIVED` on the task, valued :func:`mark` of the finished state it recorded. With
the archive required (``--archive-required``), the operator deletes a finished task at its TTL, and a
ScheduledTask a run beyond its history limits, only once the annotation equals the mark of the task's
state now (:func:`archived`): level-based, so the annotation's own watch event lets the deletion go,
and a task retried by hand that finishes again needs a new mark before it can go.

>>> mark("Succeeded", 2, "2026-03-01T12:00:05Z", None)
'2/2026-03-01T12:00:05Z'
>>> mark("Failed", 1, "2026-03-01T12:00:05Z", "again"), mark("Running", 1, None, None)
('1/2026-03-01T12:00:05Z/r-b4c9e140', None)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from asynctask_operator.core.models import TERMINAL_PHASES, AsyncTask
from asynctask_operator.core.naming import short_hash

ANNOTATION_ARCHIVED = "asynctask.dev/archived"


def mark(phase: str | None, attempt: int, completion_time: str | None, requested: str | None) -> str | None:
    """The mark of a finished state: its last attempt and completion time, and the retry request that
    began its round (a retry refused at once ends in the same second, with the same attempt); None
    for a task that has not finished (nothing to archive yet)."""
    if phase not in TERMINAL_PHASES or not completion_time:
        return None
    value = f"{max(attempt, 0)}/{completion_time}"
    return value if requested is None else f"{value}/r-{short_hash(requested)}"


def mark_in(obj: Mapping[str, Any]) -> str | None:
    """:func:`mark` of a task's wire form (a malformed status has none)."""
    status = obj.get("status")
    if not isinstance(status, Mapping):
        return None
    attempt = status.get("attempt")
    round_ = status.get("round")
    requested = round_.get("requested") if isinstance(round_, Mapping) else None
    completion = status.get("completionTime")
    return mark(
        status.get("phase") if isinstance(status.get("phase"), str) else None,
        attempt if isinstance(attempt, int) and not isinstance(attempt, bool) else 0,
        completion if isinstance(completion, str) else None,
        requested if isinstance(requested, str) else None,
    )


def archived_in(obj: Mapping[str, Any]) -> bool:
    """Whether a task's wire form carries the mark of its finished state (the archive holds it)."""
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    wanted = mark_in(obj)
    return wanted is not None and isinstance(annotations, Mapping) and annotations.get(ANNOTATION_ARCHIVED) == wanted


def archived(task: AsyncTask) -> bool:
    """:func:`archived_in` of a parsed task: the operator's reading."""
    status = task.status
    wanted = mark(
        status.phase, status.attempt or 0, status.completion_time, status.round.requested if status.round else None
    )
    return wanted is not None and task.metadata.annotations.get(ANNOTATION_ARCHIVED) == wanted
