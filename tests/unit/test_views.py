"""core/views: the one reading of a task, a queue and a schedule that every front door shows (issue 26).

One table per rule (docs/concepts.md, "Reading a task").
"""

from __future__ import annotations

from typing import Any

import pytest

from asynctask_operator.core.statistics import TaskFacts
from asynctask_operator.core.views import QueueView, ScheduleView, TaskView, queue_views

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def at(seconds: int) -> str:
    return f"2026-01-01T00:{seconds // 60:02d}:{seconds % 60:02d}Z"


def task(status: dict[str, Any] | None = None, spec: dict[str, Any] | None = None, **meta: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "t", "namespace": "ns", "creationTimestamp": at(0), "resourceVersion": "7", **meta},
        "spec": {"type": "video", **(spec or {})},
        "status": status or {},
    }


@pytest.mark.parametrize(
    ("status", "percent"),
    [
        ({}, None),  # nothing reported: unknown
        ({"phase": "Running", "progress": {"percent": 45}}, 45.0),
        ({"phase": "Running", "progress": {"stepsDone": 1, "stepsTotal": 4}}, 25.0),  # steps only
        ({"phase": "Running", "progress": {"percent": 10, "stepsDone": 3, "stepsTotal": 4}}, 10.0),  # percent wins
        ({"phase": "Running", "progress": {"stepsDone": 2, "stepsTotal": 0}}, None),  # no total: unknown
        ({"phase": "Succeeded", "progress": {"percent": 90}}, 100.0),  # done is done, whatever it said last
        ({"phase": "Succeeded"}, 100.0),
        ({"phase": "Failed", "progress": {"percent": 90}}, 90.0),  # how far it got
        ({"phase": "Running", "progress": {"percent": 150}}, 100.0),  # clamped
        ({"phase": "Running", "progress": {"percent": True}}, None),  # not a number
    ],
)
def test_percent(status: dict[str, Any], percent: float | None) -> None:
    view = TaskView.of(task(status))
    assert view.percent == percent
    assert view.progress == status.get("progress")  # what the task said is kept as it said it


@pytest.mark.parametrize(
    ("status", "headline"),
    [
        ({"phase": "Running", "message": "attempt 1 of 4", "progress": {"message": "encoding"}}, "encoding"),
        ({"phase": "Running", "message": "attempt 1 of 4"}, "attempt 1 of 4"),  # no progress message yet
        ({"phase": "Pending", "message": "waiting for a slot", "progress": {"message": "old"}}, "waiting for a slot"),
        ({"phase": "Failed", "message": "exit code 1", "progress": {"message": "encoding"}}, "exit code 1"),
        ({"phase": "Retrying", "message": "retry in 10 s", "progress": {"message": "encoding"}}, "retry in 10 s"),
        ({}, ""),
    ],
)
def test_headline(status: dict[str, Any], headline: str) -> None:
    assert TaskView.of(task(status)).headline == headline


NOW = T0 + 100


@pytest.mark.parametrize(
    ("status", "age", "wait", "duration", "settled_duration"),
    [
        ({}, 100.0, 100.0, None, None),  # waiting since creation
        ({"phase": "Running", "queuedTime": at(0), "startTime": at(30)}, 100.0, 30.0, 70.0, None),
        (
            {"phase": "Succeeded", "queuedTime": at(0), "startTime": at(30), "completionTime": at(80),
             "durationSeconds": 50.0},
            100.0, 30.0, 50.0, 50.0,
        ),
        # a manual retry: queued again at 60, its round's first start at 75; its first round's attempt is older
        (
            {"phase": "Running", "queuedTime": at(60), "startTime": at(75),
             "attempts": [{"attempt": 1, "job": "t-1", "startTime": at(5)}]},
            100.0, 15.0, 25.0, None,
        ),
        ({"phase": "Cancelled", "queuedTime": at(0), "completionTime": at(40)}, 100.0, 40.0, None, None),  # never ran
    ],
)  # fmt: skip
def test_age_wait_and_duration(
    status: dict[str, Any], age: float, wait: float, duration: float | None, settled_duration: float | None
) -> None:
    view = TaskView.of(task(status))
    assert (view.age(NOW), view.wait(NOW), view.duration(NOW)) == (age, wait, duration)
    assert view.duration(None) == settled_duration  # without a clock: only what will not change


@pytest.mark.parametrize(
    ("status", "text"),
    [
        ({}, ""),
        ({"attempt": 2}, "2"),  # before admission recorded the retry policy
        ({"attempt": 2, "effective": {"retry": {"maxRetries": 3}}}, "2/4"),
        ({"attempt": 5, "effective": {"retry": {"maxRetries": 3}}, "round": {"firstAttempt": 5}}, "5/8"),  # a retry
    ],
)
def test_attempt_n_of_m(status: dict[str, Any], text: str) -> None:
    assert TaskView.of(task(status)).attempt_text == text


def test_steps_queue_and_facts() -> None:
    view = TaskView.of(
        task(
            {"phase": "Succeeded", "reason": "Completed", "queuedTime": at(10), "startTime": at(30),
             "completionTime": at(34), "durationSeconds": 4.0,
             "effective": {"queue": "batch", "retry": {}}, "progress": {"stepsDone": 2, "stepsTotal": 5, "step": "mux"}},
            {"queue": "gpu", "priority": 3},
        )
    )  # fmt: skip
    assert (view.queue, view.priority, view.steps, view.key) == ("batch", 3, "2/5 mux", "ns/t")
    assert view.facts() == TaskFacts(
        type="video", queue="batch", phase="Succeeded", created=T0, queued=T0 + 10, started=T0 + 30, duration=4.0,
        finished=T0 + 34, reason="Completed",
    )  # fmt: skip


def test_a_view_never_fails_on_a_malformed_status() -> None:
    view = TaskView.of(task({"phase": 3, "progress": "x", "attempts": "y", "attempt": "z", "round": {}}))
    assert (view.phase, view.percent, view.attempt, view.start_time) == ("Pending", None, 0, None)


def test_a_waiting_task_is_in_line_only_while_it_waits() -> None:
    assert TaskView.of(task()).waits
    assert not TaskView.of(task({"phase": "Running"})).waits  # it holds a slot: in the order, not in line
    assert TaskView.of(task({"phase": "Running"})).waiting is not None
    assert not TaskView.of(task(spec={"cancel": True})).waits
    assert not TaskView.of(task(deletionTimestamp=at(1))).waits


def queue(name: str, status: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {"concurrency": 2}, **({"status": status} if status else {})}


def test_a_queues_figures() -> None:
    tasks = [
        TaskView.of(task({"phase": "Running"}, {"queue": "gpu"}, name="a")),
        TaskView.of(task({}, {"queue": "gpu"}, name="b", creationTimestamp=at(40))),
        TaskView.of(task({}, name="c")),
    ]
    views = queue_views("ns", [queue("gpu", {"running": 2, "pending": 0}), queue("idle")], tasks, NOW)
    assert list(views) == ["default", "gpu", "idle"]
    gpu, idle, default = views["gpu"], views["idle"], views["default"]
    assert (gpu.exists, gpu.running, gpu.pending) == (True, 2, 0)  # the operator's count: a slot is reserved
    assert (idle.exists, idle.running, idle.pending, idle.oldest_pending_seconds) == (True, 0, 0, None)
    assert (default.exists, default.running, default.pending, default.oldest_pending_seconds) == (False, 0, 1, 100)
    counted = QueueView.of("ns", "gpu", queue("gpu"), tasks, NOW)  # no status yet: counted from the tasks
    assert (counted.running, counted.pending, counted.oldest_pending_seconds) == (1, 1, 60)


def test_a_schedules_figures() -> None:
    view = ScheduleView.of(
        {"metadata": {"name": "nightly", "namespace": "ns"},
         "spec": {"schedule": "0 2 * * *", "timeZone": "Europe/Berlin", "taskTemplate": {"spec": {"type": "report"}}},
         "status": {"lastScheduleTime": at(0), "nextScheduleTime": at(60), "active": ["nightly-1"], "missedRuns": 2,
                    "counts": {"succeeded": 4, "failed": 1}}}
    )  # fmt: skip
    assert (view.type, view.time_zone, view.suspend, view.concurrency_policy) == (
        "report",
        "Europe/Berlin",
        False,
        "Allow",
    )
    assert (view.last_schedule_time, view.next_schedule_time, view.active) == (at(0), at(60), ("nightly-1",))
    assert (view.missed_runs, view.succeeded, view.failed, view.skipped) == (2, 4, 1, 0)
