"""kubectl asynctask's commands in process, against the in-memory API (asynctask_operator/testing/fakekube.py).

The test plays the operator: it flips a task's status through the status subresource while the
command follows it with a watch.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import io
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from rich.console import Console

from asynctask_operator.adapters.kube import ASYNCTASKS, PODS, SCHEDULEDTASKS, TASKQUEUES, TASKTYPES, ApiError
from asynctask_operator.core.idempotency import task_name_for_key
from asynctask_operator.core.lifecycle import RETRY_ANNOTATION
from asynctask_operator.core.naming import ANNOTATION_RUN_NOW, manual_run_name
from asynctask_operator.kubectl import run
from asynctask_operator.testing.fakekube import FakeKube
from tests.support.kubectl import Result, console, run_plugin

NS = "media"
NOW = dt.datetime(2026, 1, 2, 12, 0, 0, tzinfo=dt.UTC)
TYPE = {"jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "busybox"}]}}}}}


async def kubectl(fake: FakeKube, *argv: str, answer: str | None = None, out: Console | None = None) -> Result:
    return await run_plugin(fake, [*argv, "-n", NS], now=NOW, answer=answer, out=out)


def cluster() -> FakeKube:
    return FakeKube(now=lambda: NOW)


async def given_type(fake: FakeKube, name: str = "video", **spec: Any) -> None:
    await fake.create(TASKTYPES, NS, {"kind": "TaskType", "metadata": {"name": name}, "spec": {**TYPE, **spec}})


async def given_task(fake: FakeKube, name: str, status: dict[str, Any] | None = None, **spec: Any) -> None:
    labels = spec.pop("labels", {})
    body = {"kind": "AsyncTask", "metadata": {"name": name, "labels": labels}, "spec": {"type": "video", **spec}}
    await fake.create(ASYNCTASKS, NS, body)
    if status:
        await fake.patch(ASYNCTASKS, NS, name, {"status": status}, subresource="status")


async def set_status(fake: FakeKube, name: str, status: dict[str, Any]) -> None:
    await fake.patch(ASYNCTASKS, NS, name, {"status": status}, subresource="status")


async def until(check: Callable[[], bool], what: str = "") -> None:
    for _ in range(500):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


def tasks_of(fake: FakeKube) -> list[dict[str, Any]]:
    return fake.of(ASYNCTASKS, NS)


# ---------------------------------------------------------------------- submit


async def test_submit_maps_the_flags_onto_the_spec() -> None:
    fake = cluster()
    await given_type(fake)
    result = await kubectl(
        fake,
        *("submit", "--type", "video", "--payload", '{"input": "s3://a"}', "--queue", "gpu", "--priority", "5"),
        *("--attempt-timeout", "30m", "--deadline", "2h", "--retries", "3", "--ttl", "1d", "-L", "app=portal"),
    )
    assert result.code == 0, result.err
    [task] = tasks_of(fake)
    assert task["metadata"]["name"].startswith("video-")
    assert task["metadata"]["labels"] == {"app": "portal"}
    assert task["spec"] == {
        "type": "video",
        "payload": {"input": "s3://a"},
        "queue": "gpu",
        "priority": 5,
        "timeoutSeconds": 1800,
        "deadlineSeconds": 7200,
        "ttlSecondsAfterFinished": 86400,
        "retry": {"maxRetries": 3},
    }
    assert result.out == f"asynctask/{task['metadata']['name']} created\n"


async def test_an_unknown_type_is_named_and_nothing_is_created() -> None:
    fake = cluster()
    result = await kubectl(fake, "submit", "--type", "nope", "--payload", "{}")
    assert result.code == 4
    assert "no TaskType 'nope' in namespace 'media'" in result.err
    assert tasks_of(fake) == []


async def test_a_payload_the_type_refuses_is_refused_before_creation() -> None:
    fake = cluster()
    schema = {"type": "object", "required": ["input"], "properties": {"input": {"type": "string"}}}
    await given_type(fake, payloadSchema=schema)
    result = await kubectl(fake, "submit", "--type", "video", "--payload", '{"input": 3}')
    assert result.code == 4
    assert "InvalidPayload: spec.payload.input does not match TaskType video payloadSchema" in result.err
    assert tasks_of(fake) == []


async def test_the_same_idempotency_key_creates_one_task() -> None:
    fake = cluster()
    await given_type(fake)
    first = await kubectl(fake, "submit", "--type", "video", "--idempotency-key", "order-42")
    again = await kubectl(fake, "submit", "--type", "video", "--idempotency-key", "order-42")
    name = task_name_for_key(NS, "", "order-42")  # FakeKube answers no user name to a SelfSubjectReview
    assert [t["metadata"]["name"] for t in tasks_of(fake)] == [name]
    assert (first.code, first.out) == (0, f"asynctask/{name} created\n")
    assert (again.code, again.out) == (0, f"asynctask/{name} exists (same idempotency key)\n")


async def test_a_refused_create_says_what_may_not_be_done() -> None:
    fake = cluster()
    await given_type(fake)
    fake.fail("create", "asynctasks", ApiError(403, "Forbidden", "no"))
    result = await kubectl(fake, "submit", "--type", "video", "--name", "a")
    assert (result.code, result.err.strip()) == (4, "error: you may not create asynctasks in 'media' (no)")


def more(count: Callable[[], int], than: int) -> bool:
    return count() > than


async def play(fake: FakeKube, name: str, *statuses: dict[str, Any], out: Console) -> None:
    """The operator's part: once the task exists, write these statuses one after another, each once the
    plugin has printed a line for the one before (two writes at once may be shown as one change)."""

    def printed() -> int:
        return len(out.file.getvalue().splitlines())  # type: ignore[attr-defined]

    await until(lambda: fake.get_object(ASYNCTASKS, NS, name) is not None and printed() >= 1, "the task is created")
    for status in statuses:
        before = printed()
        await set_status(fake, name, status)
        await until(functools.partial(more, printed, before), f"a line for {status}")


STARTED = "2026-01-02T12:00:00Z"  # NOW: the fake's clock
RUNNING = {
    "phase": "Running",
    "reason": "Admitted",
    "attempt": 1,
    "startTime": STARTED,
    "effective": {"queue": "default", "ttlSecondsAfterFinished": 60, "retry": {"maxRetries": 1}},
}


@pytest.mark.parametrize(
    ("final", "code", "last"),
    [
        ({"phase": "Succeeded", "reason": "Completed", "completionTime": "2026-01-02T12:00:07Z"}, 0, ""),
        (
            {
                "phase": "Failed",
                "reason": "RetriesExhausted",
                "error": {
                    "code": "RetriesExhausted",
                    "message": "all 2 attempts failed; the last: container main exited with code 1",
                },
            },
            1,
            "a Failed (RetriesExhausted): all 2 attempts failed; the last: container main exited with code 1\n",
        ),
        (
            {"phase": "Cancelled", "reason": "Cancelled", "message": "cancelled by the user"},
            2,
            "a Cancelled (Cancelled): cancelled by the user\n",
        ),
    ],
)
async def test_submit_wait_exits_with_the_outcome(final: dict[str, Any], code: int, last: str) -> None:
    fake = cluster()
    await given_type(fake)
    progress = {
        **RUNNING,
        "progress": {"percent": 40, "message": "encoding", "step": "encode", "stepsDone": 2, "stepsTotal": 5},
    }
    out = console()
    operator = asyncio.create_task(play(fake, "a", RUNNING, progress, final, out=out))
    result = await asyncio.wait_for(kubectl(fake, "submit", "--type", "video", "--name", "a", "--wait", out=out), 10)
    await operator
    assert result.code == code, result.err
    lines = result.out.splitlines()
    assert lines[:3] == [  # the wait before it starts, then how long it has run
        "a Pending wait 00:00",
        "a Running attempt 1/2 run 00:00",
        'a Running 40% step 2/5 encode attempt 1/2 run 00:00 "encoding"',
    ]
    assert lines[3].startswith(f"a {final['phase']}")
    assert result.err == "asynctask/a created\n" + last


async def test_wait_times_out_with_3_and_names_what_it_waited_for() -> None:
    fake = cluster()
    await given_task(fake, "slow", {"phase": "Running", "attempt": 1})
    result = await kubectl(fake, "wait", "slow", "--timeout", "0")
    assert result.code == 3
    assert result.err == "timed out after 00:00 waiting for slow (Running)\n"


async def test_wait_for_finished_exits_0_whatever_the_outcome() -> None:
    fake = cluster()
    await given_task(fake, "a", {"phase": "Failed", "reason": "PodFailed"})
    await given_task(fake, "b", {"phase": "Succeeded"})
    assert (await kubectl(fake, "wait", "a", "b", "--for", "finished")).code == 0
    assert (await kubectl(fake, "wait", "a", "b")).code == 1


async def test_wait_survives_a_dropped_watch() -> None:
    fake = cluster()
    await given_task(fake, "a", {"phase": "Running", "attempt": 1, "startTime": STARTED})

    async def operator() -> None:
        await until(lambda: any(r.verb == "watch" for r in fake.requests), "the command watches")
        fake.end_watches()  # the server ends the stream (or the connection drops)
        await until(lambda: sum(r.verb == "watch" for r in fake.requests) >= 2, "the command watches again")
        await set_status(fake, "a", {"phase": "Succeeded", "completionTime": STARTED, "durationSeconds": 0.0})

    playing = asyncio.create_task(operator())
    result = await asyncio.wait_for(kubectl(fake, "wait", "a"), 10)
    await playing
    assert result.code == 0
    assert result.out.splitlines() == ["a Running attempt 1 run 00:00", "a Succeeded 100% attempt 1 run 00:00"]


async def test_waiting_for_a_task_that_is_deleted_is_an_error() -> None:
    fake = cluster()
    await given_task(fake, "a", {"phase": "Running"})

    async def delete() -> None:
        await until(lambda: any(r.verb == "watch" for r in fake.requests))
        await fake.delete(ASYNCTASKS, NS, "a")

    deleting = asyncio.create_task(delete())
    result = await asyncio.wait_for(kubectl(fake, "wait", "a"), 10)
    await deleting
    assert (result.code, result.err) == (4, "error: asynctask 'a' was deleted before it finished\n")


# ---------------------------------------------------------------------- get, describe


async def test_get_filters_and_formats() -> None:
    fake = cluster()
    await given_task(fake, "a", {"phase": "Running", "attempt": 1, "progress": {"percent": 40}}, queue="gpu")
    await given_task(fake, "b", {"phase": "Failed"}, type="audio")
    await given_task(fake, "c")
    table = await kubectl(fake, "get")
    assert table.out.splitlines() == [
        "NAME   TYPE    QUEUE     PHASE     PROGRESS   ATTEMPT   AGE",
        "a      video   gpu       Running   40%        1         0s",
        "b      audio   default   Failed                         0s",
        "c      video   default   Pending                        0s",
    ]
    assert (await kubectl(fake, "list", "--phase", "Running,Pending", "-o", "name")).out == "asynctask/a\nasynctask/c\n"
    assert (await kubectl(fake, "get", "--type", "audio", "-o", "name")).out == "asynctask/b\n"
    assert (await kubectl(fake, "get", "--queue", "gpu", "-o", "name")).out == "asynctask/a\n"
    one = json.loads((await kubectl(fake, "get", "a", "-o", "json")).out)
    assert (one["kind"], one["metadata"]["name"]) == ("AsyncTask", "a")
    listed = json.loads((await kubectl(fake, "get", "-o", "json")).out)
    assert (listed["kind"], len(listed["items"])) == ("List", 3)
    none = await kubectl(fake, "get", "--type", "none")
    assert (none.code, none.out, none.err) == (0, "", "No resources found in media namespace.\n")


async def test_get_of_a_missing_task_names_it() -> None:
    result = await kubectl(cluster(), "get", "ghost")
    assert result.code == 4 and result.err.endswith("error: no AsyncTask 'ghost' in namespace 'media'\n")
    assert result.err.startswith("note: the archive is not served in this cluster")  # where a gone task would be


async def test_describe_shows_attempts_with_pods_callback_and_events() -> None:
    fake = cluster()
    await given_task(
        fake,
        "a",
        {
            "phase": "Running",
            "attempt": 2,
            "attempts": [
                {
                    "attempt": 1,
                    "job": "a-1",
                    "startTime": "2026-01-02T11:59:00Z",
                    "finishTime": "2026-01-02T11:59:30Z",
                    "outcome": "Failed",
                    "exitCode": 1,
                    "reason": "PodFailed",
                },
                {"attempt": 2, "job": "a-2", "startTime": "2026-01-02T11:59:40Z"},
            ],
            "callback": {
                "id": "e1",
                "event": "Retrying",
                "taskAttempt": 1,
                "state": "Delivered",
                "attempts": 1,
                "lastStatusCode": 200,
            },
        },
    )
    pod = {
        "metadata": {"name": "a-2-x7k", "labels": {"asynctask.dev/task": "a", "asynctask.dev/attempt": "2"}},
        "status": {"phase": "Running"},
    }
    await fake.create(PODS, NS, pod)
    await fake.patch(PODS, NS, "a-2-x7k", {"status": {"phase": "Running"}}, subresource="status")
    event = {
        "metadata": {"name": "a.1"},
        "involvedObject": {"kind": "AsyncTask", "name": "a"},
        "type": "Warning",
        "reason": "PodFailed",
        "message": "attempt 1 of 2 failed (container main exited with code 1); next attempt at 2026-01-02T11:59:40Z",
        "lastTimestamp": "2026-01-02T11:59:30Z",
    }
    from asynctask_operator.adapters.kube import EVENTS

    await fake.create(EVENTS, NS, event)
    result = await kubectl(fake, "describe", "a")
    assert result.code == 0, result.err
    text = result.out
    assert "Attempts:" in text
    assert "#   JOB   POD                 STARTED                FINISHED               OUTCOME   EXIT   REASON" in text
    assert (
        "1   a-1                       2026-01-02T11:59:00Z   2026-01-02T11:59:30Z   Failed    1      PodFailed" in text
    )
    assert "2   a-2   a-2-x7k (Running)   2026-01-02T11:59:40Z                          Running\n" in text
    assert "State:        Delivered" in text
    assert "Warning   PodFailed   30s   attempt 1 of 2 failed (container main exited with code 1); next attempt" in text


# ---------------------------------------------------------------------- cancel, retry


async def selection_cluster() -> FakeKube:
    fake = cluster()
    await given_task(fake, "web-1", {"phase": "Running"}, labels={"app": "web"})
    await given_task(fake, "web-2", {"phase": "Pending"}, labels={"app": "web"})
    await given_task(fake, "web-done", {"phase": "Succeeded"}, labels={"app": "web"})
    await given_task(fake, "db-1", {"phase": "Running"}, labels={"app": "db"})
    await given_task(fake, "failed", {"phase": "Failed"}, labels={"app": "db"})
    return fake


def cancelled(fake: FakeKube) -> list[str]:
    return [t["metadata"]["name"] for t in tasks_of(fake) if t["spec"].get("cancel")]


async def test_cancel_by_selector_patches_exactly_the_selected_unfinished_tasks() -> None:
    fake = await selection_cluster()
    result = await kubectl(fake, "cancel", "-l", "app=web", "--yes")
    assert result.code == 0
    assert cancelled(fake) == ["web-1", "web-2"]
    assert result.out == "asynctask/web-1 cancel requested\nasynctask/web-2 cancel requested\n"
    assert [(r.verb, r.name) for r in fake.writes()][-2:] == [("patch", "web-1"), ("patch", "web-2")]


async def test_a_selection_is_confirmed_with_its_count() -> None:
    fake = await selection_cluster()
    asked: list[str] = []

    def no(prompt: str) -> str:
        asked.append(prompt)
        return "n"

    out, err = console(), console()
    code = await run(
        ["cancel", "--phase", "Running", "-n", NS],
        api=fake,
        out=out,
        err=err,
        now=lambda: NOW,
        interactive=True,
        ask=no,
    )
    assert (code, asked, cancelled(fake)) == (4, ["Cancel 2 tasks in namespace 'media'? [y/N] "], [])
    assert "db-1" in err.file.getvalue() and "web-1" in err.file.getvalue()  # type: ignore[attr-defined]
    assert (await kubectl(fake, "cancel", "--phase", "Running", answer="y")).code == 0
    assert cancelled(fake) == ["db-1", "web-1"]


async def test_a_selection_without_a_terminal_needs_yes() -> None:
    fake = await selection_cluster()
    result = await kubectl(fake, "cancel", "--type", "video")
    assert result.code == 4
    assert "3 tasks selected in namespace 'media'; add --yes to cancel them" in result.err
    assert cancelled(fake) == []


async def test_named_tasks_need_no_confirmation_and_finished_ones_are_said_so() -> None:
    fake = await selection_cluster()
    result = await kubectl(fake, "cancel", "db-1", "web-done")
    assert (result.code, cancelled(fake)) == (0, ["db-1"])
    assert result.err == "asynctask/web-done is Succeeded: nothing to cancel\n"


async def test_retry_sets_a_new_annotation_on_failed_and_cancelled_tasks_only() -> None:
    fake = await selection_cluster()
    result = await kubectl(fake, "retry", "-l", "app=db", "--yes")
    assert result.out == "asynctask/failed retry requested\n"
    annotations = {t["metadata"]["name"]: (t["metadata"].get("annotations") or {}) for t in tasks_of(fake)}
    assert annotations["failed"] == {RETRY_ANNOTATION: "2026-01-02T12:00:00.000000Z"}
    assert annotations["db-1"] == {}
    named = await kubectl(fake, "retry", "db-1")
    assert (named.code, named.err) == (
        4,
        "asynctask/db-1 is Running: only Failed or Cancelled tasks can be retried\nnothing to retry\n",
    )


async def test_retry_of_a_task_cancelled_by_spec_cancel_clears_it() -> None:
    """The lifecycle honours a retry only when the task no longer asks to be cancelled."""
    fake = cluster()
    await given_task(fake, "stopped", {"phase": "Cancelled", "reason": "Cancelled"}, cancel=True)
    assert (await kubectl(fake, "retry", "stopped")).code == 0
    [task] = tasks_of(fake)
    assert "cancel" not in task["spec"]
    assert task["metadata"]["annotations"] == {RETRY_ANNOTATION: "2026-01-02T12:00:00.000000Z"}


async def test_a_forbidden_patch_says_who_may_not_do_what() -> None:
    fake = await selection_cluster()
    fake.fail("patch", "asynctasks", ApiError(403, "Forbidden", ""))
    result = await kubectl(fake, "cancel", "db-1")
    assert (result.code, result.err) == (4, "error: you may not patch asynctasks in 'media'\n")


# ---------------------------------------------------------------------- queues, schedules, stats


async def test_queue_pending_shows_the_admission_order() -> None:
    fake = cluster()
    await fake.create(TASKQUEUES, NS, {"metadata": {"name": "gpu"}, "spec": {"concurrency": 1}})
    await given_task(fake, "low", queue="gpu")
    await given_task(fake, "high", queue="gpu", priority=9)
    await given_task(fake, "mid", queue="gpu", priority=5)
    await given_task(fake, "running", {"phase": "Running"}, queue="gpu")
    await given_task(fake, "elsewhere", priority=9)
    result = await kubectl(fake, "queue", "pending", "gpu")
    assert result.out.splitlines() == [
        "POSITION   NAME   PRIORITY   TYPE    REASON   WAITING",
        "1          high   9          video   Queued   00:00",
        "2          mid    5          video   Queued   00:00",
        "3          low    0          video   Queued   00:00",
    ]


async def test_queue_pause_and_resume_patch_spec_paused() -> None:
    fake = cluster()
    await fake.create(TASKQUEUES, NS, {"metadata": {"name": "gpu"}, "spec": {"concurrency": 1}})
    assert (await kubectl(fake, "queue", "pause", "gpu")).out == "taskqueue/gpu paused\n"
    assert fake.get_object(TASKQUEUES, NS, "gpu")["spec"]["paused"] is True  # type: ignore[index]
    await kubectl(fake, "queue", "resume", "gpu")
    assert fake.get_object(TASKQUEUES, NS, "gpu")["spec"]["paused"] is False  # type: ignore[index]
    missing = await kubectl(fake, "queue", "pause", "nope")
    assert (missing.code, missing.err) == (4, "error: no TaskQueue 'nope' in namespace 'media'\n")
    listed = await kubectl(fake, "queue", "list")
    assert listed.out.splitlines()[1].split() == ["gpu", "1", "0", "0", "no", "0s"]


async def test_schedule_suspend_resume_and_run_now() -> None:
    fake = cluster()
    await fake.create(SCHEDULEDTASKS, NS, {"metadata": {"name": "nightly"}, "spec": {"schedule": "0 2 * * *"}})
    await kubectl(fake, "schedule", "suspend", "nightly")
    assert fake.get_object(SCHEDULEDTASKS, NS, "nightly")["spec"]["suspend"] is True  # type: ignore[index]
    await kubectl(fake, "schedule", "resume", "nightly")
    assert fake.get_object(SCHEDULEDTASKS, NS, "nightly")["spec"]["suspend"] is False  # type: ignore[index]
    result = await kubectl(fake, "schedule", "run", "nightly")
    value = fake.get_object(SCHEDULEDTASKS, NS, "nightly")["metadata"]["annotations"][ANNOTATION_RUN_NOW]  # type: ignore[index]
    assert result.out == f"scheduledtask/nightly run requested: asynctask/{manual_run_name('nightly', value)}\n"
    listed = await kubectl(fake, "schedule", "list")
    assert listed.out.splitlines()[1].split() == ["nightly", "0", "2", "*", "*", "*", "UTC", "no", "0", "0s"]


def finished_task(seconds: float, phase: str, *, wait: float = 0.0, reason: str = "Completed") -> dict[str, Any]:
    started = NOW + dt.timedelta(seconds=wait)
    return {
        "phase": phase,
        "reason": reason,
        "startTime": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "attempts": [{"attempt": 1, "job": "j", "startTime": started.strftime("%Y-%m-%dT%H:%M:%SZ")}],
        "durationSeconds": seconds,
    }


async def test_stats_over_a_prepared_set() -> None:
    fake = cluster()
    await given_task(fake, "s1", finished_task(10, "Succeeded", wait=2))
    await given_task(fake, "s2", finished_task(20, "Succeeded", wait=4))
    await given_task(fake, "s3", finished_task(30, "Succeeded", wait=6), type="audio")
    await given_task(fake, "f1", finished_task(40, "Failed", wait=8, reason="RetriesExhausted"), type="audio")
    await given_task(fake, "f2", finished_task(50, "Failed", reason="DeadlineExceeded"), type="audio")
    await given_task(fake, "c1", {"phase": "Cancelled", "reason": "Cancelled"})
    later = lambda: NOW + dt.timedelta(minutes=5)  # noqa: E731
    out, err = console(), console()
    assert await run(["stats", "-n", NS, "-o", "json"], api=fake, out=out, err=err, now=later) == 0
    answer = json.loads(out.file.getvalue())  # type: ignore[attr-defined]
    [group] = answer["groups"]
    assert group == {
        "key": "",
        "total": 6,
        "succeeded": 3,
        "failed": 2,
        "cancelled": 1,
        "successRate": 0.5,
        "meanDurationSeconds": 30.0,
        "p50DurationSeconds": 30,
        "p95DurationSeconds": 50,
        "meanQueueWaitSeconds": 4.0,
    }
    assert answer["failuresByReason"] == {"DeadlineExceeded": 1, "RetriesExhausted": 1}
    out = console()
    assert await run(["stats", "-n", NS, "--by", "type"], api=fake, out=out, err=err, now=later) == 0
    text = out.file.getvalue()  # type: ignore[attr-defined]
    assert "audio   3       1           2        0           33.3%     40.0s   50.0s   4.7s" in text
    assert "video   3       2           0        1           66.7%     10.0s   20.0s   3.0s" in text
    assert "DeadlineExceeded   1" in text


# ---------------------------------------------------------------------- logs


class LoggingKube(FakeKube):
    """FakeKube with pod logs: each pod's lines, given by the test."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.logs: dict[str, list[str]] = {}
        self.log_requests: list[tuple[str, bool]] = []

    async def pod_log(
        self, namespace: str, name: str, *, container: str | None = None, follow: bool = False
    ) -> AsyncIterator[str]:
        self.log_requests.append((name, follow))
        for line in self.logs.get(name, []):
            yield line


async def given_pod(fake: FakeKube, task: str, attempt: int, phase: str = "Succeeded") -> str:
    name = f"{task}-{attempt}-pod"
    labels = {"asynctask.dev/task": task, "asynctask.dev/attempt": str(attempt)}
    await fake.create(PODS, NS, {"metadata": {"name": name, "labels": labels}})
    await fake.patch(PODS, NS, name, {"status": {"phase": phase}}, subresource="status")
    return name


async def test_logs_of_the_latest_attempt_or_the_one_asked_for() -> None:
    fake = LoggingKube(now=lambda: NOW)
    await given_task(fake, "a", {"phase": "Failed", "attempt": 2})
    fake.logs = {await given_pod(fake, "a", 1): ["one"], await given_pod(fake, "a", 2): ["two", "", "done"]}
    assert (await kubectl(fake, "logs", "a")).out == "two\n\ndone\n"
    assert (await kubectl(fake, "logs", "a", "--attempt", "1")).out == "one\n"
    missing = await kubectl(fake, "logs", "a", "--attempt", "3")
    assert (missing.code, missing.err) == (
        4,
        "error: no pod of attempt 3 of asynctask 'a' (its pods may have been deleted)\n",
    )


async def test_logs_follow_goes_on_to_the_next_attempt_after_a_retry() -> None:
    fake = LoggingKube(now=lambda: NOW)
    await given_task(fake, "a", {"phase": "Retrying", "attempt": 1})
    fake.logs[await given_pod(fake, "a", 1, "Failed")] = ["first try"]

    async def operator() -> None:
        await until(lambda: len(fake.log_requests) == 1, "the first log is read")
        await until(lambda: any(r.verb == "watch" and r.resource == "pods" for r in fake.requests), "a pod watch")
        fake.logs["a-2-pod"] = ["second try"]
        await given_pod(fake, "a", 2, "Running")
        await until(lambda: len(fake.log_requests) == 2, "the second log is read")
        await set_status(fake, "a", {"phase": "Succeeded", "attempt": 2})

    playing = asyncio.create_task(operator())
    result = await asyncio.wait_for(kubectl(fake, "logs", "a", "-f"), 10)
    await playing
    assert result.code == 0, result.err
    assert result.out == "first try\nsecond try\n"
    assert fake.log_requests == [("a-1-pod", True), ("a-2-pod", True)]
    assert result.err == "==> attempt 1: pod/a-1-pod <==\n==> attempt 2: pod/a-2-pod <==\n"


async def test_on_a_terminal_the_live_view_shows_the_end_and_logs_a_reconnect_above_it() -> None:
    fake = cluster()
    await given_task(fake, "a", {"phase": "Running", "attempt": 1, "progress": {"percent": 30}})
    fake.fail("watch", "asynctasks", ApiError(500, "InternalError", "etcd hiccup"))  # the first watch fails
    screen = Console(file=io.StringIO(), width=120, force_terminal=True, color_system=None)

    async def operator() -> None:
        await until(lambda: sum(r.verb == "watch" for r in fake.requests) >= 2, "the watch is made again")
        await set_status(fake, "a", {"phase": "Succeeded", "progress": {"percent": 100}})

    playing = asyncio.create_task(operator())
    result = await asyncio.wait_for(kubectl(fake, "wait", "a", out=screen), 10)
    await playing
    assert result.code == 0
    assert "watching asynctasks failed" in result.out  # printed by the live console, above the rows
    assert "\x1b[" in result.out  # redrawn in place (cursor movement), not lines appended
    last = result.out.rsplit("\x1b[2K", 1)[-1]
    assert "a  Succeeded" in last and "100%" in last, repr(result.out[-400:])
