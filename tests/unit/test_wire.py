"""core/wire.py: the front doors' readings of a task's wire form (queue, place in line, statistics facts)."""

from __future__ import annotations

from typing import Any

import pytest

from asynctask_operator.core.models import AsyncTask
from asynctask_operator.core.queueing import WaitingTask
from asynctask_operator.core.statistics import TaskFacts
from asynctask_operator.core.wire import facts_in, queue_in, waiting_in
from asynctask_operator.gateway.views import task_queue, waiting_of


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
    assert task_queue(AsyncTask.model_validate(task)) == queue  # the gateway's parsed reading agrees


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
    assert waiting_of(AsyncTask.model_validate(task)) == expected


def test_the_facts_statistics_read() -> None:
    task = obj(
        {"queue": "gpu"},
        {
            "phase": "Succeeded",
            "reason": "Completed",
            "queuedTime": "2026-01-01T00:00:10Z",
            "completionTime": "2026-01-01T00:05:04Z",
            "startTime": "2026-01-01T00:05:00Z",
            "durationSeconds": 4.5,
            "attempts": [{"attempt": 1, "job": "t-1", "startTime": "2026-01-01T00:00:30Z"}],
        },
    )
    base = 1767225600.0  # 2026-01-01T00:00:00Z
    assert facts_in(task) == TaskFacts(
        type="echo", queue="gpu", phase="Succeeded", created=base, queued=base + 10, started=base + 30, duration=4.5,
        finished=base + 304, reason="Completed",
    )  # fmt: skip
    assert facts_in(obj()).phase == "Pending"  # no status yet: the CRD's default
    assert (facts_in(obj()).finished, facts_in(obj()).reason) == (None, None)
