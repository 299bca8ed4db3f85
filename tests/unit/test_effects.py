"""What a status write means: the Events it posts and the metric steps it counts (core/effects.py)."""

from __future__ import annotations

from typing import Any

import pytest

from asynctask_operator.adapters.metrics import Metrics
from asynctask_operator.core.effects import EventNote, MetricDelta, MetricName, event_body, events_of, metrics_of
from asynctask_operator.core.lifecycle import Observed, decide
from asynctask_operator.core.models import AsyncTaskStatus
from tests.unit.builders import at, task, tasktype
from tests.unit.story import CONFIG

NS = "media"
ROUND = {"firstAttempt": 1}
EFFECTIVE = {"queue": "q", "ttlSecondsAfterFinished": 60, "retry": {"maxRetries": 0}}


def status(**fields: Any) -> AsyncTaskStatus:
    return AsyncTaskStatus.model_validate(fields)


CALLBACK = {"id": "e1", "event": "Succeeded", "state": "Pending", "attempts": 0}


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        pytest.param({}, {"phase": "Running"}, [], id="starting-is-no-event"),
        pytest.param(
            {"phase": "Running"},
            {"phase": "Retrying", "reason": "PodFailed", "message": "exit 1"},
            [EventNote("Warning", "PodFailed", "exit 1")],
            id="retrying",
        ),
        pytest.param(
            {"phase": "Running"},
            {"phase": "Failed", "reason": "BackoffLimitExceeded", "message": "no retries left"},
            [EventNote("Warning", "BackoffLimitExceeded", "no retries left")],
            id="failed",
        ),
        pytest.param(
            {"phase": "Failed", "reason": "X"},
            {"phase": "Failed", "reason": "X", "message": "m"},
            [],
            id="no-phase-change",
        ),
        pytest.param({"phase": "Running"}, {"phase": "Succeeded"}, [], id="succeeded-is-no-event"),
        pytest.param(
            {"phase": "Succeeded", "callback": CALLBACK},
            {"phase": "Succeeded", "callback": {**CALLBACK, "state": "Failed", "attempts": 8, "lastError": "HTTP 503"}},
            [EventNote("Warning", "CallbackFailed", "Succeeded event not delivered: HTTP 503")],
            id="callback-gave-up",
        ),
        pytest.param(
            {"phase": "Succeeded", "callback": {**CALLBACK, "state": "Failed"}},
            {"phase": "Succeeded", "callback": {**CALLBACK, "state": "Failed"}},
            [],
            id="callback-gave-up-already",
        ),
    ],
)
def test_events_of_a_write(old: dict[str, Any], new: dict[str, Any], expected: list[EventNote]) -> None:
    assert list(events_of(status(**old), status(**new))) == expected


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        pytest.param(
            {"phase": "Pending"},  # the CRD's default (ADR 0004): what a real API server shows
            {
                "phase": "Running",
                "attempt": 1,
                "round": ROUND,
                "effective": EFFECTIVE,
                "queuedTime": "2025-03-01T12:00:00Z",
            },
            [MetricDelta("tasks_created", (NS, "echo")), MetricDelta("queue_wait", (NS, "q"), 5.0)],
            id="first-write-on-a-real-cluster",
        ),
        pytest.param(
            {},
            {"phase": "Pending", "reason": "Queued", "round": ROUND, "effective": EFFECTIVE},
            [MetricDelta("tasks_created", (NS, "echo"))],
            id="queued",
        ),
        pytest.param(
            {"phase": "Pending", "reason": "Queued", "round": ROUND, "effective": EFFECTIVE},
            {"phase": "Pending", "reason": "QueuePaused", "round": ROUND, "effective": EFFECTIVE},
            [],
            id="still-waiting",
        ),
        pytest.param(
            {
                "phase": "Running",
                "attempt": 1,
                "round": ROUND,
                "effective": EFFECTIVE,
                "attempts": [{"attempt": 1, "job": "t-1"}],
            },
            {
                "phase": "Succeeded",
                "attempt": 1,
                "round": ROUND,
                "effective": EFFECTIVE,
                "durationSeconds": 4.5,
                "reason": "Completed",
                "attempts": [{"attempt": 1, "job": "t-1", "outcome": "Succeeded"}],
            },
            [
                MetricDelta("attempts", (NS, "echo", "Succeeded")),
                MetricDelta("tasks_finished", (NS, "echo", "q", "Succeeded", "Completed")),
                MetricDelta("task_duration", (NS, "echo", "Succeeded"), 4.5),
            ],
            id="succeeded",
        ),
        pytest.param(
            {
                "phase": "Retrying",
                "attempt": 1,
                "round": ROUND,
                "effective": EFFECTIVE,
                "queuedTime": "2025-03-01T12:00:00Z",
                "attempts": [{"attempt": 1, "job": "t-1", "outcome": "Failed"}],
            },
            {
                "phase": "Running",
                "attempt": 2,
                "round": ROUND,
                "effective": EFFECTIVE,
                "queuedTime": "2025-03-01T12:00:00Z",
                "attempts": [{"attempt": 1, "job": "t-1", "outcome": "Failed"}, {"attempt": 2, "job": "t-2"}],
            },
            [],  # the queue wait is the round's first admission's; an ended attempt counts once
            id="second-attempt",
        ),
    ],
)
def test_metrics_of_a_write(old: dict[str, Any], new: dict[str, Any], expected: list[MetricDelta]) -> None:
    obj = task("t").status(status(**old)).build()
    assert list(metrics_of(obj, status(**new), at(5))) == expected


def test_a_decision_carries_the_effects_of_its_status() -> None:
    """decide() names them with the status; the defaulted Pending of a real API server included."""
    obj = task("t").status(phase="Pending").build()
    decision = decide(
        Observed(task=obj, tasktype=tasktype().build(), types_synced=True, jobs={}, pods={}, now=at(5)), CONFIG
    )
    assert decision.status is not None and decision.status.phase == "Running"
    assert [d.metric for d in decision.metrics] == ["tasks_created", "queue_wait"]
    assert decision.events == ()


def test_every_metric_a_decision_can_name_is_one_of_the_operators() -> None:
    metrics = Metrics()
    for name in MetricName.__args__:
        labels = tuple("x" for _ in getattr(metrics, name)._labelnames)
        metrics.record(MetricDelta(name, labels, 2.0))
    assert metrics.registry.get_sample_value("asynctask_tasks_created_total", {"namespace": "x", "type": "x"}) == 2.0
    assert (
        metrics.registry.get_sample_value("asynctask_queue_wait_seconds_sum", {"namespace": "x", "queue": "x"}) == 2.0
    )


def test_an_event_body_names_the_task_and_is_clipped() -> None:
    obj = task("t").uid("u-1").build()
    body = event_body(obj, EventNote("Warning", "PodFailed", "x" * 5000), at(0))
    assert body["involvedObject"] | {"resourceVersion": None} == {
        "apiVersion": "asynctask.dev/v1alpha1", "kind": "AsyncTask", "name": "t", "namespace": NS, "uid": "u-1",
        "resourceVersion": None,
    }  # fmt: skip
    assert (body["type"], body["reason"], len(body["message"])) == ("Warning", "PodFailed", 1024)
    assert body["metadata"] == {"generateName": "t.", "namespace": NS}


def test_the_archiver_posts_the_same_event_shape_under_its_own_name() -> None:
    from asynctask_operator.archive.marks import warning
    from tests.unit.archive_builders import T0, finished, row

    body = warning(row(finished("t", namespace=NS, uid="u-1")), "ArchiveRefused", "y" * 5000, T0)
    assert body["involvedObject"] == {
        "apiVersion": "asynctask.dev/v1alpha1", "kind": "AsyncTask", "name": "t", "namespace": NS, "uid": "u-1",
    }  # fmt: skip
    assert (body["type"], body["reason"], len(body["message"])) == ("Warning", "ArchiveRefused", 1024)
    assert body["metadata"] == {"generateName": "t.", "namespace": NS}
    assert body["source"] == {"component": "asynctask-archive"} == {"component": body["reportingInstance"]}
    assert body["firstTimestamp"] == body["lastTimestamp"] == "2026-01-01T00:00:00Z"
    operators = event_body(task("t").uid("u-1").build(), EventNote("Warning", "PodFailed", "x"), at(0))
    assert set(body) == set(operators) and operators["source"] == {"component": "asynctask-operator"}
