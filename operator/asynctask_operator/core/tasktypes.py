"""The status of a TaskType: Ready when its template and payload schema are usable."""

from __future__ import annotations

import datetime as dt

from asynctask_operator.core.conditions import set_condition
from asynctask_operator.core.models import TaskType, TaskTypeStatus
from asynctask_operator.core.timestamps import stamp
from asynctask_operator.core.validation import Refusal, check_job_template, check_payload_schema


def tasktype_status(tasktype: TaskType, now: dt.datetime) -> TaskTypeStatus | None:
    """The new status, or ``None`` when the current one is still right."""
    try:
        check_job_template(tasktype.spec.job_template)
        check_payload_schema(tasktype.spec.payload_schema)
        ready, reason, message = True, "Valid", "the job template and payload schema are valid"
    except Refusal as refusal:
        ready, reason, message = False, refusal.reason, refusal.message
    current = tasktype.status or TaskTypeStatus()
    generation = tasktype.metadata.generation
    conditions = set_condition(current.conditions or [], "Ready", ready, reason, message, stamp(now), generation)
    new = TaskTypeStatus(observed_generation=generation, conditions=conditions)
    return None if new == current else new
