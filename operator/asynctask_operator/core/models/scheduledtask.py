"""ScheduledTask: cron for AsyncTasks; at each fire time one AsyncTask from its template."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from asynctask_operator.core.models.asynctask import AsyncTaskSpec
from asynctask_operator.core.models.base import API_VERSION, CONDITIONS_MAX, Condition, Model, ObjectMeta, cel, k8s

CRON_MACROS: dict[str, str] = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
ConcurrencyPolicy = Literal["Allow", "Forbid", "Replace"]

# What the API server can tell about a schedule without a cron parser: a macro, or five
# fields of cron characters separated by spaces. The operator's parser checks the rest
# (ranges, names, steps) and reports it in the Ready condition. Spaces only (no \s): the
# rule is the same in RE2 (the API server) and in Python (the unit tests), with no escapes.
SCHEDULE_RULE = (
    "self.matches('^@(yearly|annually|monthly|weekly|daily|midnight|hourly)$')"
    " || self.matches('^[-0-9A-Za-z*/,#]+( +[-0-9A-Za-z*/,#]+){4}$')"
)
TIME_ZONE_PATTERN = r"^[A-Za-z][-+_A-Za-z0-9]*(/[-+_A-Za-z0-9]+)*$"


class TaskTemplateMeta(Model):
    """Labels and annotations every created AsyncTask carries."""

    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None


class TaskTemplate(Model):
    """The AsyncTask each run creates: its metadata (labels, annotations) and its spec."""

    metadata: TaskTemplateMeta | None = None
    spec: AsyncTaskSpec


class ScheduledTaskSpec(Model):
    """Cron for AsyncTasks: at each fire time, one AsyncTask from ``taskTemplate``."""

    schedule: str = Field(
        min_length=1,
        max_length=256,
        description="5-field cron (minute hour day-of-month month day-of-week), or @hourly, @daily, "
        "@midnight, @weekly, @monthly, @yearly, @annually.",
        json_schema_extra=k8s(
            validations=[
                cel(
                    SCHEDULE_RULE,
                    "spec.schedule must be 5 cron fields separated by spaces (minute hour day-of-month "
                    "month day-of-week) or one of @hourly, @daily, @midnight, @weekly, @monthly, @yearly, @annually",
                )
            ]
        ),
    )
    time_zone: str = Field(
        "UTC",
        min_length=1,
        max_length=64,
        pattern=TIME_ZONE_PATTERN,
        description="IANA time zone the schedule is read in (e.g. Europe/Berlin). Default UTC.",
    )
    suspend: bool = Field(False, description="true: no runs start (nextScheduleTime is still shown).")
    concurrency_policy: ConcurrencyPolicy = Field(
        "Allow",
        description="When a run is due while an earlier one has not finished: Allow runs both, Forbid skips "
        "the new run (counted in status.counts.skipped), Replace cancels the running one and starts the new one.",
    )
    starting_deadline_seconds: int | None = Field(
        None,
        ge=1,
        le=31536000,
        description="A run that could not start within this many seconds of its time is skipped and counted "
        "in status.missedRuns. Default: no deadline.",
    )
    successful_tasks_history_limit: int = Field(
        3, ge=0, le=1000, description="Succeeded AsyncTasks kept; older ones are deleted."
    )
    failed_tasks_history_limit: int = Field(
        1, ge=0, le=1000, description="Failed or Cancelled AsyncTasks kept; older ones are deleted."
    )
    task_template: TaskTemplate


class ScheduleCounts(Model):
    succeeded: int = 0
    failed: int = 0
    skipped: int = 0


class ScheduledTaskStatus(Model):
    last_schedule_time: str | None = Field(None, description="Fire time of the last run the schedule started.")
    next_schedule_time: str | None = Field(None, description="The next fire time.")
    last_successful_time: str | None = Field(None, description="When the last succeeded run finished.")
    active: list[str] | None = Field(None, description="Names of the AsyncTasks of this schedule not yet finished.")
    missed_runs: int | None = Field(
        None, description="Fire times that passed without a run (operator down, or past startingDeadlineSeconds)."
    )
    counts: ScheduleCounts | None = None
    last_run_now: str | None = Field(
        None, description="The asynctask.dev/run-now value honoured last: each value starts one run."
    )
    observed_generation: int | None = None
    conditions: list[Condition] | None = Field(
        None, max_length=CONDITIONS_MAX, json_schema_extra=k8s(list_type="map", list_map_keys=["type"])
    )


class ScheduledTask(Model):
    api_version: str = API_VERSION
    kind: Literal["ScheduledTask"] = "ScheduledTask"
    metadata: ObjectMeta
    spec: ScheduledTaskSpec
    status: ScheduledTaskStatus = Field(default_factory=ScheduledTaskStatus)
