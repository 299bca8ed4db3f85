"""The shapes the gateway answers with, and the pure functions that make them from cached objects.

The request and answer models are the OpenAPI (``docs/gateway-openapi.json``); the CRD
models of :mod:`asynctask_operator.core.models` are reused where they fit (a task's
progress, attempts and error are the same on the wire as in its status).
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import ConfigDict, Field

from asynctask_operator.core.effective import resolve_queue
from asynctask_operator.core.idempotency import ANNOTATION_SUBMITTED_BY
from asynctask_operator.core.models import (
    TERMINAL_PHASES,
    AsyncTask,
    AsyncTaskSpec,
    Attempt,
    Model,
    Progress,
    ScheduledTask,
    TaskError,
    TaskQueue,
)
from asynctask_operator.core.queueing import WaitingTask
from asynctask_operator.core.timestamps import parse_stamp
from asynctask_operator.core.wire import DEFAULT_QUEUE, waiting_task

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
    message: str | None = None
    progress: Progress | None = None
    attempt: int | None = None
    attempts: list[Attempt] = Field(default_factory=list)
    result: Any = None
    error: TaskError | None = None
    position: int | None = Field(None, description="Place in its queue's admission order (1: next) while Pending.")
    submitted_by: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    created_time: str | None = None
    queued_time: str | None = None
    start_time: str | None = None
    completion_time: str | None = None
    next_retry_time: str | None = None
    duration_seconds: float | None = None
    resource_version: str = ""


class TaskPage(Model):
    items: list[TaskSummary]
    continue_: str | None = Field(None, alias="continue", description="Pass as ?continue= for the next page.")


class QueueSummary(Model):
    name: str
    namespace: str
    exists: bool = Field(description="false: the implicit default queue, or a queue tasks name that does not exist.")
    concurrency: int | None = None
    paused: bool = False
    running: int
    pending: int
    oldest_pending_seconds: int | None = None
    max_starts_per_minute: int | None = None


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


# --------------------------------------------------------------------------- from objects


def task_queue(task: AsyncTask) -> str:
    """:func:`~asynctask_operator.core.wire.queue_in` of a parsed task."""
    admitted = task.status.effective.queue if task.status.effective else None
    return resolve_queue(admitted, task.spec.queue, None, DEFAULT_QUEUE)


def waiting_of(task: AsyncTask) -> WaitingTask | None:
    """:func:`~asynctask_operator.core.wire.waiting_in` of a parsed task."""
    meta, status = task.metadata, task.status
    concurrency = status.effective.concurrency if status.effective else task.spec.concurrency
    last = status.attempts[-1] if status.attempts else None
    return waiting_task(
        status.phase, task.spec.cancel, meta.deletion_timestamp, meta.name, task_queue(task),
        task.spec.priority, meta.creation_timestamp,
        key=concurrency.key if concurrency else None, limit=(concurrency.limit or 1) if concurrency else 1,
        fairness=status.fairness.dump() if status.fairness else None,
        started=(last.start_time if last else None) or status.start_time or "",
    )  # fmt: skip


def summary(task: AsyncTask, position: int | None = None) -> TaskSummary:
    status, meta = task.status, task.metadata
    return TaskSummary(
        name=meta.name,
        namespace=meta.namespace,
        uid=meta.uid,
        type=task.spec.type,
        queue=task_queue(task),
        priority=task.spec.priority,
        phase=task.phase,
        reason=status.reason,
        message=status.message,
        progress=status.progress,
        attempt=status.attempt,
        attempts=list(status.attempts or ()),
        result=status.result,
        error=status.error,
        position=position,
        submitted_by=meta.annotations.get(ANNOTATION_SUBMITTED_BY),
        labels=dict(meta.labels),
        created_time=meta.creation_timestamp,
        queued_time=status.queued_time,
        start_time=status.start_time,
        completion_time=status.completion_time,
        next_retry_time=status.next_retry_time,
        duration_seconds=status.duration_seconds,
        resource_version=meta.resource_version,
    )


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


def queue_summary(
    namespace: str, name: str, queue: TaskQueue | None, tasks: list[AsyncTask], now: float
) -> QueueSummary:
    """A queue's figures from the tasks that name it (the cache's, not the queue's own status: fresher)."""
    mine = [t for t in tasks if task_queue(t) == name]
    running = sum(1 for t in mine if t.phase == "Running")
    waiting = [t for t in mine if (w := waiting_of(t)) is not None and w.waits]
    created = [s.timestamp() for s in (parse_stamp(t.metadata.creation_timestamp) for t in waiting) if s]
    return QueueSummary(
        name=name,
        namespace=namespace,
        exists=queue is not None,
        concurrency=queue.spec.concurrency if queue else None,
        paused=bool(queue and queue.spec.paused),
        running=running,
        pending=len(waiting),
        oldest_pending_seconds=int(max(0.0, now - min(created))) if created else None,
        max_starts_per_minute=queue.spec.max_starts_per_minute if queue else None,
    )


def schedule_summary(scheduled: ScheduledTask) -> ScheduleSummary:
    spec, status = scheduled.spec, scheduled.status
    return ScheduleSummary(
        name=scheduled.metadata.name,
        namespace=scheduled.metadata.namespace,
        schedule=spec.schedule,
        time_zone=spec.time_zone,
        suspend=spec.suspend,
        concurrency_policy=spec.concurrency_policy,
        type=spec.task_template.spec.type,
        last_schedule_time=status.last_schedule_time,
        next_schedule_time=status.next_schedule_time,
        last_successful_time=status.last_successful_time,
        active=list(status.active or ()),
        resource_version=scheduled.metadata.resource_version,
    )
