"""The shapes the gateway answers with, and the pure functions that make them from the views.

The request and answer models are the OpenAPI (``docs/gateway-openapi.json``); the CRD
models of :mod:`asynctask_operator.core.models` are reused where they fit (a task's
progress, attempts and error are the same on the wire as in its status). Every figure comes
from :mod:`asynctask_operator.core.views`, the reading the console and the kubectl plugin show.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import ConfigDict, Field

from asynctask_operator.core.models import TERMINAL_PHASES, AsyncTaskSpec, Attempt, Model, Progress, TaskError
from asynctask_operator.core.views import QueueView, ScheduleView, TaskView
from asynctask_operator.core.wire import Obj

RUNNING_RETRY_AFTER = 2  # seconds: a running task is polled at this pace
MAX_RETRY_AFTER = 60


class TaskSubmission(AsyncTaskSpec):
    """The body of ``POST …/tasks``: an AsyncTask's spec, and its labels."""

    model_config = ConfigDict(
        alias_generator=AsyncTaskSpec.model_config.get("alias_generator"),
        populate_by_name=True,
        extra="forbid",
        frozen=True,
    )

    labels: dict[str, str] | None = Field(None, description="Labels of the AsyncTask (select on them when listing).")

    def task_spec(self) -> dict[str, Any]:
        """The AsyncTask's ``spec`` in wire form."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json", exclude={"labels"})


class TaskSummary(Model):
    name: str
    namespace: str
    uid: str = ""
    type: str
    queue: str
    priority: int | None = None
    phase: str
    reason: str | None = None
    message: str | None = Field(None, description="The status message: what the operator last said.")
    headline: str | None = Field(
        None, description="What is happening, in words: the progress message while Running, the message otherwise."
    )
    percent: float | None = Field(
        None,
        description="100 once Succeeded; otherwise the reported percent, or stepsDone/stepsTotal; absent when unknown.",
    )
    progress: Progress | None = Field(None, description="The progress as the task itself last reported it.")
    attempt: int | None = None
    attempts_allowed: int | None = Field(
        None, description="The highest attempt number this round may reach (attempt N of attemptsAllowed)."
    )
    attempts: list[Attempt] = Field(default_factory=list)
    result: Any = None
    error: TaskError | None = None
    position: int | None = Field(None, description="Place in its queue's admission order (1: next) while Pending.")
    concurrency_key: str | None = Field(None, description="Its concurrency key (spec.concurrency, or its TaskType's).")
    waiting_for_key: KeyWait | None = Field(
        None,
        description="While Pending for a busy concurrency key: the key, its limit, who held it when the wait began.",
    )
    submitted_by: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    created_time: str | None = None
    queued_time: str | None = None
    start_time: str | None = None
    completion_time: str | None = None
    next_retry_time: str | None = None
    wait_seconds: float | None = Field(
        None,
        description="From entering the queue (creation, or the last manual retry) to the first start; once started.",
    )
    duration_seconds: float | None = Field(
        None, description="From the first start to the finish; once finished (while it runs: count from startTime)."
    )
    resource_version: str = ""
    archived: bool = Field(False, description="true: the task is gone from the cluster, read from the archive.")
    archived_time: str | None = Field(None, description="When the archive last recorded it.")


class KeyWait(Model):
    key: str
    limit: int
    holders: list[str] = Field(default_factory=list)


class BusyKey(Model):
    key: str
    holding: int
    waiting: int


class TaskPage(Model):
    items: list[TaskSummary]
    continue_: str | None = Field(None, alias="continue", description="Pass as ?continue= for the next page.")


class HistoryAnswer(Model):
    items: list[TaskSummary] = Field(description="Archived tasks, newest first (by creation).")
    continue_: str | None = Field(
        None, alias="continue", description="Pass as ?continue= for the next page; absent on the last page."
    )


class QueueSummary(Model):
    name: str
    namespace: str
    exists: bool = Field(description="false: the implicit default queue, or a queue tasks name that does not exist.")
    concurrency: int | None = None
    paused: bool = False
    running: int = Field(
        description="The tasks holding a slot (what concurrency counts), as the TaskQueue's status says; "
        "for a queue without one, its Running tasks."
    )
    pending: int
    oldest_pending_seconds: int | None = None
    max_starts_per_minute: int | None = None
    fairness: str | None = Field(None, description="Round-robin admission across groups: Key, or Label and its name.")
    waiting_for_key: int = Field(0, description="Of the pending tasks, those whose concurrency key is busy.")
    busiest_keys: list[BusyKey] = Field(
        default_factory=list,
        description="The keys with the most tasks waiting for them, as the TaskQueue's status says.",
    )


class QueueList(Model):
    items: list[QueueSummary]


class ScheduleSummary(Model):
    name: str
    namespace: str
    schedule: str
    time_zone: str
    suspend: bool
    concurrency_policy: str
    type: str
    last_schedule_time: str | None = None
    next_schedule_time: str | None = None
    last_successful_time: str | None = None
    active: list[str] = Field(default_factory=list)
    resource_version: str = ""


class ScheduleList(Model):
    items: list[ScheduleSummary]


# --------------------------------------------------------------------------- from views


def task_answer(view: TaskView, obj: Obj, position: int | None = None) -> dict[str, Any]:
    """A task's :class:`TaskSummary` in wire form, made from its view (and, for what a view does not
    hold, its object) without parsing the object: a listing answers hundreds of them."""
    status = obj.get("status") or {}
    priority = (obj.get("spec") or {}).get("priority")
    attempts = status.get("attempts")
    answer = {
        "name": view.name,
        "namespace": view.namespace,
        "uid": view.uid,
        "type": view.type,
        "queue": view.queue,
        "priority": priority if isinstance(priority, int) else None,
        "phase": view.phase,
        "reason": view.reason or None,
        "message": view.message or None,
        "headline": view.headline or None,
        "percent": view.percent,
        "progress": view.progress,
        "attempt": view.attempt or None,
        "attemptsAllowed": view.attempts_allowed,
        "attempts": attempts if isinstance(attempts, list) else [],
        "result": status.get("result"),
        "error": status.get("error"),
        "position": position,
        "concurrencyKey": view.concurrency_key or None,
        "waitingForKey": (
            {
                "key": view.waiting_for_key.key,
                "limit": view.waiting_for_key.limit,
                "holders": list(view.waiting_for_key.holders),
            }
            if view.waiting_for_key is not None
            else None
        ),
        "submittedBy": view.submitted_by or None,
        "labels": dict(view.labels),
        "createdTime": view.created_time,
        "queuedTime": view.queued_time,
        "startTime": view.start_time,
        "completionTime": view.completion_time,
        "nextRetryTime": view.next_retry_time,
        "waitSeconds": view.wait(None),
        "durationSeconds": view.duration(None),
        "resourceVersion": view.resource_version,
    }
    return {k: v for k, v in answer.items() if v is not None}


def retry_after(phase: str, position: int | None, concurrency: int | None) -> int | None:
    """When to poll again, in seconds; None once the task finished (nothing more will change).

    A waiting task is polled more slowly the further back it waits: one more second for each
    batch of ``concurrency`` tasks ahead of it, at most a minute.

    >>> retry_after("Running", None, None), retry_after("Pending", 1, 4), retry_after("Pending", 41, 4)
    (2, 1, 11)
    >>> retry_after("Succeeded", None, None) is None
    True
    """
    if phase in TERMINAL_PHASES:
        return None
    if phase != "Pending" or position is None:
        return RUNNING_RETRY_AFTER
    batch = concurrency if concurrency and concurrency > 0 else 1
    return min(MAX_RETRY_AFTER, 1 + math.ceil((position - 1) / batch) if position > 1 else 1)


def queue_answer(view: QueueView) -> QueueSummary:
    return QueueSummary(
        name=view.name,
        namespace=view.namespace,
        exists=view.exists,
        concurrency=view.concurrency,
        paused=view.paused,
        running=view.running,
        pending=view.pending,
        oldest_pending_seconds=view.oldest_pending_seconds,
        max_starts_per_minute=view.max_starts_per_minute,
        fairness=view.fairness or None,
        waiting_for_key=view.waiting_for_key,
        busiest_keys=[BusyKey(key=b.key, holding=b.holding, waiting=b.waiting) for b in view.busiest_keys],
    )


def schedule_answer(view: ScheduleView) -> ScheduleSummary:
    return ScheduleSummary(
        name=view.name,
        namespace=view.namespace,
        schedule=view.schedule,
        time_zone=view.time_zone,
        suspend=view.suspend,
        concurrency_policy=view.concurrency_policy,
        type=view.type,
        last_schedule_time=view.last_schedule_time,
        next_schedule_time=view.next_schedule_time,
        last_successful_time=view.last_successful_time,
        active=list(view.active),
        resource_version=view.resource_version,
    )
