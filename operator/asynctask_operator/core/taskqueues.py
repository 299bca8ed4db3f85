"""The status of a TaskQueue: its counts from the admission ledger, its busiest concurrency keys, and
whether it admits."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence

from asynctask_operator.core.conditions import set_condition
from asynctask_operator.core.models import BusyKey, TaskQueue, TaskQueueStatus
from asynctask_operator.core.models.concurrency import BUSIEST_SHOWN
from asynctask_operator.core.queueing import QueueCounts
from asynctask_operator.core.timestamps import stamp


def taskqueue_status(
    queue: TaskQueue, counts: QueueCounts, now: float, busiest: Sequence[tuple[str, int, int]] = ()
) -> TaskQueueStatus | None:
    """The new status, or ``None`` when the current one is still right (``now``: epoch seconds).

    ``busiest``: ``(key, holding, waiting)`` of the keys of the queue's tasks, most waited for first;
    a queue none of whose tasks has a key shows neither ``waitingForKey`` nor ``busiestKeys``."""
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
        waiting_for_key=counts.waiting_for_key if busiest else None,
        busiest_keys=[BusyKey(key=k, holding=h, waiting=w) for k, h, w in busiest[:BUSIEST_SHOWN]] or None,
        observed_generation=generation,
        conditions=conditions,
    )
    return None if new == current else new
