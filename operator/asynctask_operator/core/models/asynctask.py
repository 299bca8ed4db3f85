"""AsyncTask: one unit of work, its spec (what to run) and its status (phase, attempts,
progress, the values in force, the latest callback's delivery)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field

from asynctask_operator.core.models.base import API_VERSION, CONDITIONS_MAX, Condition, Model, ObjectMeta, cel, k8s
from asynctask_operator.core.models.concurrency import ConcurrencySpec, FairTurn, KeyWait
from asynctask_operator.core.models.tasktype import (
    PRIORITY_MAX,
    PRIORITY_MIN,
    CallbackEvent,
    CallbackSpec,
    RetryPolicy,
    TtlStrategy,
)

Outcome = Literal["Succeeded", "Failed", "Timeout", "PodError", "JobDeleted", "Cancelled"]
Phase = Literal["Pending", "Running", "Retrying", "Succeeded", "Failed", "Cancelled"]
TERMINAL_PHASES: frozenset[str] = frozenset({"Succeeded", "Failed", "Cancelled"})
IDLE_PHASES: frozenset[str] = TERMINAL_PHASES | {"Retrying"}  # neither waiting for a queue slot nor holding one
CallbackState = Literal["Pending", "Delivering", "Delivered", "Failed", "Refused"]


class AsyncTaskSpec(Model):
    """What to run. ``type`` is required and, with ``queue``, immutable."""

    model_config = ConfigDict(  # merged with Model's: pydantic keeps a base's settings in a subclass
        json_schema_extra=k8s(
            validations=[
                cel(
                    "has(self.queue) == has(oldSelf.queue) && (!has(self.queue) || self.queue == oldSelf.queue)",
                    "spec.queue is immutable (it cannot be set, changed or removed after creation); "
                    "create a new AsyncTask instead",
                    fieldPath=".queue",
                ),
                cel(
                    "has(self.concurrency) == has(oldSelf.concurrency)"
                    " && (!has(self.concurrency) || self.concurrency == oldSelf.concurrency)",
                    "spec.concurrency is immutable (it cannot be set, changed or removed after creation); "
                    "create a new AsyncTask instead",
                    fieldPath=".concurrency",
                ),
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
    ttl_strategy: TtlStrategy | None = Field(
        None,
        description="Per-outcome TTLs: secondsAfterSuccess, secondsAfterFailure, secondsAfterCancelled. The value "
        "for the task's outcome wins over ttlSecondsAfterFinished. Default: the type's defaults.ttlStrategy "
        "(when the task sets neither TTL field).",
    )
    cancel: bool | None = Field(None, description="Set true to cancel a task that has not finished.")
    callback: CallbackSpec | None = Field(
        None, description="Webhook called when the task changes phase. Default: the type's defaults.callback."
    )
    concurrency: ConcurrencySpec | None = Field(
        None,
        description="A concurrency key: at most limit tasks of the namespace holding the same key run at once. "
        "Default: the type's defaults.concurrency; none: no key.",
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
    ttl_strategy: TtlStrategy | None = Field(None, description="The per-outcome TTLs in force, if any.")
    retry: RetryPolicy
    callback: CallbackSpec | None = None
    concurrency: ConcurrencySpec | None = Field(
        None, description="The concurrency key in force, its limit and policy (resolved from keyFrom, if so)."
    )

    def ttl_for(self, phase: str) -> int:
        """Seconds a task that ended in ``phase`` is kept: the per-outcome value, else the flat TTL."""
        chosen = self.ttl_strategy.for_phase(phase) if self.ttl_strategy else None
        return self.ttl_seconds_after_finished if chosen is None else chosen


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
    waiting_for_key: KeyWait | None = Field(
        None, description="While Pending for a busy concurrency key: the key, and who held it when the wait began."
    )
    fairness: FairTurn | None = Field(None, description="In a queue with spec.fairness: the task's group and turn.")
    observed_generation: int | None = None
    conditions: list[Condition] | None = Field(
        None, max_length=CONDITIONS_MAX, json_schema_extra=k8s(list_type="map", list_map_keys=["type"])
    )


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
