"""The status of a TaskQueue: its counts from the admission ledger, and whether it admits."""

from __future__ import annotations

import datetime as dt
import math

from asynctask_operator.core.conditions import set_condition
from asynctask_operator.core.models import TaskQueue, TaskQueueStatus
from asynctask_operator.core.queueing import QueueCounts
from asynctask_operator.core.timestamps import stamp


def taskqueue_status(queue: TaskQueue, counts: QueueCounts, now: float) -> TaskQueueStatus | None:
    """The new status, or ``None`` when the current one is still right (``now``: epoch seconds)."""
    current = queue.status or TaskQueueStatus()
    generation = queue.metadata.generation
    paused = bool(queue.spec.paused)
    conditions = set_condition(
        current.conditions or [],
        "Admitting",
        not paused and queue.spec.concurrency > 0,
        "Paused" if paused else ("ZeroConcurrency" if queue.spec.concurrency == 0 else "Admitting"),
        "paused: the backlog is kept" if paused else f"admitting up to {queue.spec.concurrency} at once",
        stamp(dt.datetime.fromtimestamp(math.floor(now), dt.UTC)),  # floor: never round up a second
        generation,
    )
    new = TaskQueueStatus(
        pending=counts.pending,
        running=counts.running,
        oldest_pending_seconds=counts.oldest_pending_seconds,
        observed_generation=generation,
        conditions=conditions,
    )
    return None if new == current else new
