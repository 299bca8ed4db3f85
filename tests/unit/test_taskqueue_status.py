"""The TaskQueue status is a pure function of the queue and the ledger's counts (core/taskqueues.py)."""

from __future__ import annotations

from typing import Any

import pytest

from asynctask_operator.core.models import TaskQueue
from asynctask_operator.core.queueing import QueueCounts
from asynctask_operator.core.taskqueues import taskqueue_status

NOW = 1_796_000_000.75  # 2026-11-30T00:53:20.75Z: a fraction that must not round a second up


def queue(spec: dict[str, Any], status: dict[str, Any] | None = None, generation: int = 3) -> TaskQueue:
    obj: dict[str, Any] = {
        "apiVersion": "asynctask.dev/v1alpha1",
        "kind": "TaskQueue",
        "metadata": {"namespace": "media", "name": "q", "generation": generation},
        "spec": spec,
    }
    if status is not None:
        obj["status"] = status
    return TaskQueue.model_validate(obj)


COUNTS = QueueCounts(pending=4, running=2, oldest_pending_seconds=17, exists=True)


@pytest.mark.parametrize(
    ("spec", "admitting", "reason", "message"),
    [
        ({"concurrency": 2}, "True", "Admitting", "admitting up to 2 at once"),
        ({"concurrency": 0}, "False", "ZeroConcurrency", "admitting up to 0 at once"),
        ({"concurrency": 2, "paused": True}, "False", "Paused", "paused: the backlog is kept"),
        ({"concurrency": 0, "paused": True}, "False", "Paused", "paused: the backlog is kept"),
    ],
)
def test_counts_and_the_admitting_condition(spec: dict[str, Any], admitting: str, reason: str, message: str) -> None:
    status = taskqueue_status(queue(spec), COUNTS, NOW)
    assert status is not None
    dumped = status.dump()
    assert (dumped["pending"], dumped["running"], dumped["oldestPendingSeconds"]) == (4, 2, 17)
    assert dumped["observedGeneration"] == 3
    [condition] = dumped["conditions"]
    assert (condition["type"], condition["status"], condition["reason"], condition["message"]) == (
        "Admitting",
        admitting,
        reason,
        message,
    )
    assert condition["lastTransitionTime"] == "2026-11-30T00:53:20Z"  # floored: not :21


def test_nothing_to_write_when_the_status_is_already_right() -> None:
    first = taskqueue_status(queue({"concurrency": 2}), COUNTS, NOW)
    assert first is not None
    again = queue({"concurrency": 2}, first.dump())
    assert taskqueue_status(again, COUNTS, NOW + 60) is None  # same counts: the transition time is kept
    moved = QueueCounts(pending=3, running=3, oldest_pending_seconds=17, exists=True)
    changed = taskqueue_status(again, moved, NOW + 60)
    assert changed is not None and changed.dump()["pending"] == 3
    assert changed.dump()["conditions"] == first.dump()["conditions"]
