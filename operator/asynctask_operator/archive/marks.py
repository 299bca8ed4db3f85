"""What the archiver writes to the API server, as bodies (pure): the archive's mark, a Warning Event.

The mark is a merge patch of one annotation (core/archiving.py says what it names) with the task's
uid in it: the API server refuses it (409) for another task of the same name, so a task is never
marked for the record of an earlier one.
"""

from __future__ import annotations

import datetime as dt

from asynctask_operator.archive.records import TaskRow
from asynctask_operator.core.archiving import ANNOTATION_ARCHIVED, mark_in
from asynctask_operator.core.effects import EventNote, event_for
from asynctask_operator.core.models import API_VERSION
from asynctask_operator.core.wire import Obj

COMPONENT = "asynctask-archive"


def mark_patch(obj: Obj) -> Obj | None:
    """The patch marking a task archived in the state ``obj`` holds; None for a state that is not finished.

    >>> mark_patch({"metadata": {"uid": "u"}, "status": {"phase": "Failed", "attempt": 1, "completionTime": "T"}})
    {'metadata': {'uid': 'u', 'annotations': {'asynctask.dev/archived': '1/T'}}}
    """
    value = mark_in(obj)
    if value is None:
        return None
    return {"metadata": {"uid": (obj.get("metadata") or {}).get("uid"), "annotations": {ANNOTATION_ARCHIVED: value}}}


def warning(row: TaskRow, reason: str, message: str, now: float) -> Obj:
    """A core/v1 Warning Event about the task of ``row``, from the archiver."""
    involved = {
        "apiVersion": API_VERSION,
        "kind": "AsyncTask",
        "name": row.name,
        "namespace": row.namespace,
        "uid": row.uid,
    }
    return event_for(involved, EventNote("Warning", reason, message), dt.datetime.fromtimestamp(now, dt.UTC), COMPONENT)
