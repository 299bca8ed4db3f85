"""Pydantic models of the CRDs: the single source of truth for the API.

The CRD YAML in ``crds/`` is generated from these models (``core/crds.py``), so a
field, bound, default or validation rule is written once, here. Extra schema that
only the API server understands (CEL rules, ``x-kubernetes-*`` markers) is attached
with :func:`k8s` and ends up verbatim in the generated schema.

The models parse objects *read from* the API server leniently (unknown fields are
ignored, so an older operator survives a newer CRD), while the CRD schema is what
refuses bad input at admission.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

GROUP = "asynctask.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

PRIORITY_MIN = -1000
PRIORITY_MAX = 1000

Outcome = Literal["Succeeded", "Failed", "Timeout", "PodError", "JobDeleted", "Cancelled"]
RetryableOutcome = Literal["Failed", "Timeout", "PodError"]
Phase = Literal["Pending", "Running", "Retrying", "Succeeded", "Failed", "Cancelled"]
TERMINAL_PHASES: frozenset[str] = frozenset({"Succeeded", "Failed", "Cancelled"})
IDLE_PHASES: frozenset[str] = TERMINAL_PHASES | {"Retrying"}  # neither waiting for a queue slot nor holding one
CallbackEvent = Literal["Succeeded", "Failed", "Cancelled", "Running", "Retrying"]
CallbackState = Literal["Pending", "Delivering", "Delivered", "Failed", "Refused"]


def k8s(**extra: Any) -> dict[str, Any]:
    """Schema extras for a field: ``Field(json_schema_extra=k8s(validations=[...]))``.

    ``validations`` becomes ``x-kubernetes-validations``; every other keyword is
    written as ``x-kubernetes-<kebab-case>`` (``preserve_unknown_fields=True``).
    """
    out: dict[str, Any] = {}
    for key, value in extra.items():
        out["x-kubernetes-" + key.replace("_", "-")] = value
    return out


def cel(rule: str, message: str, **more: str) -> dict[str, str]:
    return {"rule": rule, "message": message, **more}


class Model(BaseModel):
    """Base: camelCase on the wire, snake_case in Python, tolerant of unknown fields."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore",
        frozen=True,
    )

    def dump(self) -> dict[str, Any]:
        """The wire form: camelCase keys, unset optional fields left out."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


# --------------------------------------------------------------------------- shared pieces


class RetryPolicy(Model):
    """How failed attempts are retried. Every field left out falls back to the
    TaskType's ``defaults.retry``, then to the built-in default shown here."""

    max_retries: int | None = Field(
        None,
        ge=0,
        le=100,
        description="Retries after the first attempt (attempts = maxRetries + 1). Default 3.",
    )
    backoff: Literal["Exponential", "Fixed"] | None = Field(
        None,
        description="Exponential: baseSeconds * 2^(n-1), capped at maxSeconds. Fixed: baseSeconds. "
        "Default Exponential.",
    )
    base_seconds: int | None = Field(None, ge=0, le=86400, description="Default 10.")
    max_seconds: int | None = Field(None, ge=0, le=604800, description="Cap on one delay; 0 means no cap. Default 600.")
    jitter: bool | None = Field(None, description="Spread each delay by +/-20%. Default true.")
    retry_on: list[RetryableOutcome] | None = Field(
        None,
        max_length=3,
        description="Attempt outcomes that are retried. Default [Failed, Timeout, PodError].",
        json_schema_extra=k8s(list_type="set"),
    )
    non_retryable_exit_codes: list[int] | None = Field(
        None,
        max_length=64,
        description="Exit codes that mean a permanent failure: the task fails at once.",
        json_schema_extra=k8s(list_type="set"),
    )


class SecretKeyRef(Model):
    """One key of a Secret in the task's namespace."""

    name: str = Field(min_length=1, max_length=253, pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    key: str = Field(min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$")


class SecretRef(Model):
    """A Secret in the task's namespace."""

    name: str = Field(min_length=1, max_length=253, pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


class CallbackSpec(Model):
    """A webhook the operator calls when the task reaches one of ``events`` (SPEC 3.4)."""

    url: str = Field(
        min_length=8,
        max_length=2048,
        pattern=r"^https?://[^\s/?#@]+([/?#]\S*)?$",
        description="http:// or https:// URL that receives a CloudEvents 1.0 JSON event (POST). Addresses that "
        "are loopback, link-local, private or unspecified are refused unless the operator allows them.",
    )
    events: list[CallbackEvent] | None = Field(
        None,
        min_length=1,
        max_length=5,
        description="Phases that trigger a call. Default [Succeeded, Failed, Cancelled].",
        json_schema_extra=k8s(list_type="set"),
    )
    secret_ref: SecretKeyRef | None = Field(
        None,
        description="Secret key holding the Standard Webhooks signing secret (whsec_<base64>, or any bytes "
        "used as the raw key). Unset: the calls are not signed.",
    )
    headers_secret_ref: SecretRef | None = Field(
        None,
        description="Secret whose every key is sent as an HTTP header of that name (e.g. an API key).",
    )
    max_attempts: int | None = Field(
        None, ge=1, le=20, description="Deliveries tried before giving up. Default: the operator's (6)."
    )
    timeout_seconds: int | None = Field(
        None, ge=1, le=60, description="Per-request timeout. Default: the operator's (10)."
    )


class TaskDefaults(Model):
    """Values an AsyncTask of this type gets where it leaves a field out."""

    queue: str | None = Field(None, min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    priority: int | None = Field(None, ge=PRIORITY_MIN, le=PRIORITY_MAX)
    timeout_seconds: int | None = Field(None, ge=1, le=31536000)
    deadline_seconds: int | None = Field(None, ge=1, le=31536000)
    retry: RetryPolicy | None = None
    ttl_seconds_after_finished: int | None = Field(None, ge=0, le=31536000)
    callback: CallbackSpec | None = None


# --------------------------------------------------------------------------- TaskType

# Only the skeleton of a JobTemplateSpec is declared, so that the schema can require
# a pod template with containers; the rest is kept as written (the API server
# validates it for real when the operator creates the Job).
JOB_TEMPLATE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "A batch/v1 JobTemplateSpec. Its pod template is required; restartPolicy must be Never "
    "(the operator owns retries); backoffLimit is forced to 0.",
    "required": ["spec"],
    "properties": {
        "metadata": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        "spec": {
            "type": "object",
            "required": ["template"],
            "x-kubernetes-preserve-unknown-fields": True,
            "properties": {
                "template": {
                    "type": "object",
                    "required": ["spec"],
                    "x-kubernetes-preserve-unknown-fields": True,
                    "properties": {
                        "metadata": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                        "spec": {
                            "type": "object",
                            "required": ["containers"],
                            "x-kubernetes-preserve-unknown-fields": True,
                            "properties": {
                                "restartPolicy": {
                                    "type": "string",
                                    "x-kubernetes-validations": [
                                        cel(
                                            "self == 'Never'",
                                            "jobTemplate.spec.template.spec.restartPolicy must be Never "
                                            "(or left out): the operator retries failed attempts itself",
                                        )
                                    ],
                                },
                                "containers": {
                                    "type": "array",
                                    "minItems": 1,
                                    "items": {
                                        "type": "object",
                                        "required": ["name"],
                                        "x-kubernetes-preserve-unknown-fields": True,
                                        "properties": {
                                            "name": {"type": "string"},
                                            "image": {"type": "string"},
                                        },
                                    },
                                },
                            },
                        },
                    },
                },
            },
        },
    },
}

PAYLOAD_SCHEMA_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Optional JSON Schema (draft 2020-12) every payload of this type must satisfy.",
    "x-kubernetes-preserve-unknown-fields": True,
}


class TaskTypeSpec(Model):
    job_template: dict[str, Any] = Field(json_schema_extra={"x-asynctask-schema": JOB_TEMPLATE_SCHEMA})
    payload_schema: dict[str, Any] | None = Field(None, json_schema_extra={"x-asynctask-schema": PAYLOAD_SCHEMA_SCHEMA})
    defaults: TaskDefaults | None = None


class Condition(Model):
    """A metav1.Condition."""

    type: str
    status: Literal["True", "False", "Unknown"]
    reason: str
    message: str = ""
    last_transition_time: str
    observed_generation: int | None = None


class TaskTypeStatus(Model):
    observed_generation: int | None = None
    conditions: list[Condition] | None = None


class ObjectMeta(Model):
    """The parts of metav1.ObjectMeta the operator reads."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True)

    name: str
    namespace: str = "default"
    uid: str = ""
    generation: int = 0
    resource_version: str = ""
    creation_timestamp: str | None = None
    deletion_timestamp: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class TaskType(Model):
    api_version: str = API_VERSION
    kind: Literal["TaskType"] = "TaskType"
    metadata: ObjectMeta
    spec: TaskTypeSpec
    status: TaskTypeStatus | None = None


# --------------------------------------------------------------------------- AsyncTask


class AsyncTaskSpec(Model):
    """What to run. ``type`` is required and, with ``queue``, immutable."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore",
        frozen=True,
        json_schema_extra=k8s(
            validations=[
                cel(
                    "has(self.queue) == has(oldSelf.queue) && (!has(self.queue) || self.queue == oldSelf.queue)",
                    "spec.queue is immutable (it cannot be set, changed or removed after creation); "
                    "create a new AsyncTask instead",
                    fieldPath=".queue",
                )
            ]
        ),
    )

    type: str = Field(
        min_length=1,
        max_length=253,
        pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
        description="Name of a TaskType in the same namespace.",
        json_schema_extra=k8s(
            validations=[cel("self == oldSelf", "spec.type is immutable; create a new AsyncTask instead")]
        ),
    )
    payload: Any = Field(
        None,
        description="Any JSON. Given to every container as ASYNCTASK_PAYLOAD. Size capped by the operator "
        "(default 64 KiB): a larger one ends the task Failed/PayloadTooLarge.",
        json_schema_extra=k8s(preserve_unknown_fields=True),
    )
    queue: str | None = Field(
        None,
        min_length=1,
        max_length=63,
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
        description="TaskQueue name. Default: the type's defaults.queue, then 'default'.",
    )
    priority: int | None = Field(
        None,
        ge=PRIORITY_MIN,
        le=PRIORITY_MAX,
        description=f"Higher is admitted first ({PRIORITY_MIN}..{PRIORITY_MAX}). Default: the type's, then 0.",
    )
    timeout_seconds: int | None = Field(
        None, ge=1, le=31536000, description="Bound on one attempt (the Job's activeDeadlineSeconds)."
    )
    deadline_seconds: int | None = Field(
        None, ge=1, le=31536000, description="Bound on the whole task, across queueing and retries."
    )
    retry: RetryPolicy | None = None
    ttl_seconds_after_finished: int | None = Field(
        None, ge=0, le=31536000, description="Delete the task this long after it finished. Default 7 days."
    )
    cancel: bool | None = Field(None, description="Set true to cancel a task that has not finished.")
    callback: CallbackSpec | None = Field(
        None, description="Webhook called when the task changes phase. Default: the type's defaults.callback."
    )


class Attempt(Model):
    """One attempt of a task: one Job."""

    attempt: int
    job: str
    start_time: str | None = None
    finish_time: str | None = None
    outcome: Outcome | None = None
    exit_code: int | None = None
    reason: str | None = None
    message: str | None = None


class TaskError(Model):
    code: str
    message: str


class Progress(Model):
    percent: int | None = Field(None, ge=0, le=100)
    message: str | None = Field(None, max_length=1024)
    step: str | None = Field(None, max_length=253)
    steps_done: int | None = Field(None, ge=0)
    steps_total: int | None = Field(None, ge=0)
    update_time: str | None = None


class EffectiveSpec(Model):
    """The values in force for this task, resolved at admission (task, then type, then operator)."""

    queue: str
    timeout_seconds: int | None = None
    deadline_seconds: int | None = None
    ttl_seconds_after_finished: int
    retry: RetryPolicy
    callback: CallbackSpec | None = None


class RetryRound(Model):
    """The attempts since the task was (re)started: a manual retry starts a new round."""

    first_attempt: int = 1
    requested: str | None = Field(
        None, description="The asynctask.dev/retry-requested value that started this round (honoured once)."
    )


class CallbackStatus(Model):
    """Delivery of the latest callback event; a newer event replaces it."""

    id: str = Field(description="The event's id (also webhook-id): the same on every retry of this event.")
    event: CallbackEvent
    task_attempt: int = Field(0, description="The task's attempt the event is about.")
    event_time: str | None = None
    state: CallbackState
    attempts: int = Field(0, description="Deliveries tried so far.")
    last_status_code: int | None = None
    last_error: str | None = None
    last_attempt_time: str | None = None
    next_attempt_time: str | None = None


class AsyncTaskStatus(Model):
    phase: Phase | None = None
    reason: str | None = None
    message: str | None = None
    attempt: int | None = None
    attempts: list[Attempt] | None = Field(None, max_length=10)
    next_retry_time: str | None = None
    queued_time: str | None = None
    start_time: str | None = None
    completion_time: str | None = None
    duration_seconds: float | None = None
    progress: Progress | None = None
    result: Any = Field(None, json_schema_extra=k8s(preserve_unknown_fields=True))
    error: TaskError | None = None
    effective: EffectiveSpec | None = None
    round: RetryRound | None = None
    callback: CallbackStatus | None = None
    observed_generation: int | None = None
    conditions: list[Condition] | None = Field(None, json_schema_extra=k8s(list_type="map", list_map_keys=["type"]))


class AsyncTask(Model):
    api_version: str = API_VERSION
    kind: Literal["AsyncTask"] = "AsyncTask"
    metadata: ObjectMeta
    spec: AsyncTaskSpec
    status: AsyncTaskStatus = Field(default_factory=AsyncTaskStatus)

    @property
    def phase(self) -> str:
        """The phase, with a task the operator never wrote to reading as Pending."""
        return self.status.phase or "Pending"

    @property
    def finished(self) -> bool:
        return self.phase in TERMINAL_PHASES


# --------------------------------------------------------------------------- TaskQueue


class TaskQueueSpec(Model):
    """Admission control for the tasks that name this queue."""

    concurrency: int = Field(
        ge=0, le=100000, description="Most tasks Running at once; 0 holds every task (admits nothing)."
    )
    max_starts_per_minute: int | None = Field(
        None,
        ge=1,
        le=60000,
        description="Optional rate limit: admissions are spread evenly, one every 60/maxStartsPerMinute seconds.",
    )
    paused: bool | None = Field(None, description="true: admit nothing and keep the backlog.")


class TaskQueueStatus(Model):
    pending: int | None = None
    running: int | None = None
    oldest_pending_seconds: int | None = None
    observed_generation: int | None = None
    conditions: list[Condition] | None = Field(None, json_schema_extra=k8s(list_type="map", list_map_keys=["type"]))


class TaskQueue(Model):
    api_version: str = API_VERSION
    kind: Literal["TaskQueue"] = "TaskQueue"
    metadata: ObjectMeta
    spec: TaskQueueSpec
    status: TaskQueueStatus | None = None


# --------------------------------------------------------------------------- ScheduledTask

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
    conditions: list[Condition] | None = Field(None, json_schema_extra=k8s(list_type="map", list_map_keys=["type"]))


class ScheduledTask(Model):
    api_version: str = API_VERSION
    kind: Literal["ScheduledTask"] = "ScheduledTask"
    metadata: ObjectMeta
    spec: ScheduledTaskSpec
    status: ScheduledTaskStatus = Field(default_factory=ScheduledTaskStatus)
