"""kubectl asynctask's rendering as golden text: the live progress view, its line form, tables, ages."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

import pytest
from rich.console import Console, RenderableType

from asynctask_operator.adapters.kube import ApiError
from asynctask_operator.core import acts
from asynctask_operator.core.wire import waiting_in
from asynctask_operator.kubectl import render, selection
from asynctask_operator.kubectl.errors import explain

NOW = dt.datetime(2026, 1, 2, 12, 1, 5, tzinfo=dt.UTC)
EFFECTIVE = {"queue": "gpu", "ttlSecondsAfterFinished": 60, "retry": {"maxRetries": 3}}
RUNNING: dict[str, Any] = {
    "metadata": {"name": "transcode-a", "creationTimestamp": "2026-01-02T12:00:00Z"},
    "spec": {"type": "video", "queue": "gpu", "priority": 5},
    "status": {
        "phase": "Running",
        "reason": "Admitted",
        "attempt": 2,
        "startTime": "2026-01-02T12:00:05Z",
        "effective": EFFECTIVE,
        "progress": {"percent": 45, "message": "transcoding", "step": "encode", "stepsDone": 2, "stepsTotal": 5},
    },
}
PENDING: dict[str, Any] = {
    "metadata": {"name": "transcode-b", "creationTimestamp": "2026-01-02T12:00:30Z"},
    "spec": {"type": "video"},
    "status": {"phase": "Pending", "reason": "Queued", "message": "waiting for a slot in queue gpu"},
}
DONE: dict[str, Any] = {
    "metadata": {"name": "transcode-c", "creationTimestamp": "2026-01-02T11:58:00Z"},
    "spec": {"type": "video"},
    "status": {
        "phase": "Succeeded",
        "reason": "Completed",
        "attempt": 1,
        "startTime": "2026-01-02T11:58:20Z",
        "completionTime": "2026-01-02T11:59:10Z",
        "durationSeconds": 50.0,
    },
}


def text(renderable: RenderableType, width: int = 120) -> list[str]:
    console = Console(record=True, width=width, color_system=None, file=io.StringIO())
    console.print(renderable)
    return [line.rstrip() for line in console.export_text().splitlines()]


def test_the_progress_view_has_one_row_per_task() -> None:
    assert text(render.progress_view([RUNNING, PENDING, DONE], NOW)) == [
        "transcode-a  Running    ━━━━━━━━━              45%  step 2/5 encode  attempt 2/4  run 01:00   transcoding",
        "transcode-b  Pending                                                              wait 00:35  waiting for a slot in que…",
        "transcode-c  Succeeded  ━━━━━━━━━━━━━━━━━━━━  100%                   attempt 1    run 00:50",
    ]


def test_a_long_message_is_cut_not_wrapped_so_each_task_stays_one_line() -> None:
    long = {**RUNNING, "status": {**RUNNING["status"], "progress": {"percent": 5, "message": "x" * 300}}}
    [line] = text(render.progress_view([long], NOW), width=100)
    assert len(line) == 100 and line.endswith("…")


def test_progress_lines() -> None:
    assert [render.progress_line(t, NOW) for t in (RUNNING, PENDING, DONE)] == [
        'transcode-a Running 45% step 2/5 encode attempt 2/4 run 01:00 "transcoding"',
        'transcode-b Pending wait 00:35 "waiting for a slot in queue gpu"',
        "transcode-c Succeeded 100% attempt 1 run 00:50",
    ]


def test_a_line_is_printed_for_a_change_of_progress_not_for_time_passing() -> None:
    later = {**RUNNING, "metadata": {**RUNNING["metadata"], "resourceVersion": "9"}}
    moved = {**RUNNING, "status": {**RUNNING["status"], "progress": {**RUNNING["status"]["progress"], "percent": 50}}}
    assert render.change_of(later) == render.change_of(RUNNING)
    assert render.change_of(moved) != render.change_of(RUNNING)


def test_the_task_table_wide_and_across_namespaces() -> None:
    ns = {**PENDING, "metadata": {**PENDING["metadata"], "namespace": "media"}}
    assert text(render.tasks_table([RUNNING, DONE], NOW, wide=True), width=140) == [
        "NAME          TYPE    QUEUE     PHASE       PROGRESS   ATTEMPT   AGE   WAIT    DURATION   PRIORITY   REASON      MESSAGE",
        "transcode-a   video   gpu       Running     45%        2/4       65s   00:05   01:00      5          Admitted    transcoding",
        "transcode-c   video   default   Succeeded   100%       1         3m    00:20   00:50      0          Completed",
    ]
    assert text(render.tasks_table([ns], NOW, all_namespaces=True)) == [
        "NAMESPACE   NAME          TYPE    QUEUE     PHASE     PROGRESS   ATTEMPT   AGE",
        "media       transcode-b   video   default   Pending                        35s",
    ]


def test_the_outcome_of_a_finished_task() -> None:
    failed = {
        "metadata": {"name": "t"},
        "status": {
            "phase": "Failed",
            "reason": "NonRetryableExitCode",
            "message": "m",
            "error": {"code": "NonRetryableExitCode", "message": "container main exited with code 2: input not found"},
        },
    }
    assert (
        render.outcome(failed) == "t Failed (NonRetryableExitCode): container main exited with code 2: input not found"
    )
    assert render.outcome(DONE) == "transcode-c Succeeded (Completed)"


@pytest.mark.parametrize(
    ("seconds", "age", "clock"),
    [
        (0, "0s", "00:00"),
        (59, "59s", "00:59"),
        (60, "60s", "01:00"),
        (125, "2m", "02:05"),
        (7199, "119m", "1:59:59"),
        (7200, "2h", "2:00:00"),
        (3 * 86400, "3d", "72:00:00"),
    ],
)
def test_ages_and_clocks(seconds: int, age: str, clock: str) -> None:
    then = NOW - dt.timedelta(seconds=seconds)
    assert render.age(then.strftime("%Y-%m-%dT%H:%M:%SZ"), NOW) == age
    assert render.clock(seconds) == clock


def task(phase: str, **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "t"}, "spec": {"type": "video", **spec}, "status": {"phase": phase}}


@pytest.mark.parametrize(
    ("obj", "action", "why"),
    [
        (task("Pending"), "cancel", None),
        (task("Running"), "cancel", None),
        (task("Retrying"), "cancel", None),
        (task("Running", cancel=True), "cancel", "is already being cancelled"),
        (task("Succeeded"), "cancel", "is Succeeded: nothing to cancel"),
        (task("Failed"), "cancel", "is Failed: nothing to cancel"),
        (task("Failed"), "retry", None),
        (task("Cancelled"), "retry", None),
        (task("Succeeded"), "retry", "is Succeeded: only Failed or Cancelled tasks can be retried"),
        (task("Running"), "retry", "is Running: only Failed or Cancelled tasks can be retried"),
    ],
)
def test_what_cancel_and_retry_apply_to(obj: dict[str, Any], action: str, why: str | None) -> None:
    assert acts.actionable(obj, action) == why


@pytest.mark.parametrize(
    ("phases", "until", "code"),
    [
        (["Succeeded"], "Succeeded", 0),
        (["Succeeded", "Succeeded"], "Succeeded", 0),
        (["Failed"], "Succeeded", 1),
        (["Cancelled"], "Succeeded", 2),
        (["Cancelled", "Failed", "Succeeded"], "Succeeded", 1),
        (["Cancelled", "Succeeded"], "Succeeded", 2),
        (["Failed", "Cancelled"], "finished", 0),
    ],
)
def test_exit_codes(phases: list[str], until: str, code: int) -> None:
    assert selection.exit_code([task(p) for p in phases], until) == code


@pytest.mark.parametrize(
    ("filters", "names"),
    [
        ({}, ["a", "b", "c"]),
        ({"type_": "audio"}, ["b"]),
        ({"queue": "gpu"}, ["a"]),
        ({"phases": ["Running", "Failed"]}, ["a", "c"]),
        ({"type_": "video", "phases": ["Failed"]}, ["c"]),
    ],
)
def test_filters(filters: dict[str, Any], names: list[str]) -> None:
    tasks: list[dict[str, Any]] = [
        {"metadata": {"name": "a"}, "spec": {"type": "video", "queue": "gpu"}, "status": {"phase": "Running"}},
        {"metadata": {"name": "b"}, "spec": {"type": "audio"}, "status": {"phase": "Pending"}},
        {
            "metadata": {"name": "c"},
            "spec": {"type": "video"},
            "status": {"phase": "Failed", "effective": {"queue": "default"}},
        },
    ]
    assert [t["metadata"]["name"] for t in tasks if selection.matches(t, **filters)] == names


def test_a_task_waits_in_its_queue_only_while_pending_and_not_cancelled() -> None:
    assert waiting_in(task("Pending", priority=3)) is not None
    assert waiting_in(task("Pending", cancel=True)) is None
    running = waiting_in(task("Running"))  # it holds a slot: the order counts it, gives it no place
    assert running is not None and not running.waits


@pytest.mark.parametrize(
    ("error", "verb", "plural", "name", "message"),
    [
        (ApiError(404, "NotFound", "x"), "get", "tasktypes", "video", "no TaskType 'video' in namespace 'media'"),
        (ApiError(404, "NotFound", "x"), "get", "taskqueues", "gpu", "no TaskQueue 'gpu' in namespace 'media'"),
        (ApiError(403, "Forbidden", ""), "patch", "asynctasks", None, "you may not patch asynctasks in 'media'"),
        (
            ApiError(401, "Unauthorized", ""),
            "list",
            "asynctasks",
            None,
            "the API server did not accept your credentials (401 Unauthorized): log in again, or check --context/--kubeconfig",
        ),
        (
            ApiError(0, "Unreachable", "connection refused"),
            "get",
            "asynctasks",
            "a",
            "cannot reach the API server: connection refused",
        ),
        (
            ApiError(422, "Invalid", "spec.type: Required value"),
            "create",
            "asynctasks",
            "a",
            "the API server refused the AsyncTask: spec.type: Required value",
        ),
    ],
)
def test_refusals_in_the_plugins_words(error: ApiError, verb: str, plural: str, name: str | None, message: str) -> None:
    assert explain(error, verb, plural, "media", name) == message
