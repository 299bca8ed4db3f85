"""core/wire.py: readings of a task's wire form (its queue, its place in line) that the views build on."""

from __future__ import annotations

from typing import Any

import pytest

from asynctask_operator.core.queueing import WaitingTask
from asynctask_operator.core.wire import queue_in, waiting_in


def obj(spec: dict[str, Any] | None = None, status: dict[str, Any] | None = None, **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "asynctask.dev/v1alpha1",
        "kind": "AsyncTask",
        "metadata": {"name": "t", "namespace": "media", "creationTimestamp": "2026-01-01T00:00:00Z", **meta},
        "spec": {"type": "echo", **(spec or {})},
        "status": status or {},
    }


@pytest.mark.parametrize(
    ("task", "queue"),
    [
        (obj(), "default"),
        (obj({"queue": "gpu"}), "gpu"),
        (
            obj({"queue": "gpu"}, {"effective": {"queue": "batch", "ttlSecondsAfterFinished": 60, "retry": {}}}),
            "batch",
        ),  # admission recorded it
    ],
)
def test_the_queue_of_a_task(task: dict[str, Any], queue: str) -> None:
    assert queue_in(task) == queue


@pytest.mark.parametrize(
    ("task", "expected"),
    [
        (obj({"priority": 3}), WaitingTask("t", "default", 3, "2026-01-01T00:00:00Z")),
        (obj({"priority": 3}, {"phase": "Pending", "reason": "Queued"}), WaitingTask("t", "default", 3, "2026-01-01T00:00:00Z")),
        (obj({"cancel": True}), None),
        (obj(status={"phase": "Running"}), WaitingTask("t", "default", 0, "2026-01-01T00:00:00Z", "Running")),
        (obj(deletionTimestamp="2026-01-01T00:01:00Z"), None),
    ],
)  # fmt: skip
def test_a_task_is_in_line_only_while_it_waits(task: dict[str, Any], expected: WaitingTask | None) -> None:
    assert waiting_in(task) == expected
