"""SPEC 2.3/3.6: a new task is admitted once — its Job created, its status Running — and never twice."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from asynctask_operator.core.conditions import get_condition
from asynctask_operator.core.config import BUILTIN_RETRY
from asynctask_operator.core.jobs import render_job
from asynctask_operator.core.lifecycle import Decision, Observed, decide
from asynctask_operator.core.models import AsyncTaskStatus, TaskType
from tests.unit.builders import at, job, observe, pod, running, task, tasktype
from tests.unit.story import CONFIG, ECHO, Story, attempt_running, attempt_succeeded


def test_a_new_task_creates_the_job_of_attempt_1_and_runs() -> None:
    obj = task("t").payload({"n": 1}).build()
    decision = decide(observe(obj, now=at(5), tasktype=ECHO), CONFIG)

    assert decision.create_job == render_job(obj, ECHO, 1, decision.status.effective)  # type: ignore[union-attr]
    assert decision.create_job is not None and decision.create_job["metadata"]["name"] == "t-1"
    assert (decision.delete_job, decision.delete_task, decision.requeue_after) == (None, False, None)
    status = decision.status
    assert status is not None
    assert (status.phase, status.reason, status.attempt) == ("Running", "JobCreated", 1)
    assert status.message == "attempt 1 of 4 running as Job t-1"
    assert [a.dump() for a in status.attempts or []] == [
        {"attempt": 1, "job": "t-1", "startTime": "2025-03-01T12:00:05Z"}
    ]
    assert status.effective is not None
    assert status.effective.dump() == {
        "queue": "default",
        "ttlSecondsAfterFinished": 604800,
        "retry": BUILTIN_RETRY.dump(),
    }
    assert (status.queued_time, status.start_time) == ("2025-03-01T12:00:00Z", "2025-03-01T12:00:05Z")
    assert status.observed_generation == 1
    conditions = {c.type: (c.status, c.reason) for c in status.conditions or []}
    assert conditions == {"Admitted": ("True", "Admitted"), "Running": ("True", "JobCreated")}


def test_the_api_servers_pending_default_is_the_same_as_no_status() -> None:
    bare = decide(observe(task("t").build(), now=at(5), tasktype=ECHO), CONFIG)
    defaulted = decide(observe(task("t").status(phase="Pending").build(), now=at(5), tasktype=ECHO), CONFIG)
    assert defaulted == bare


def test_deciding_again_with_the_job_running_writes_nothing() -> None:
    story = Story(task("t").build())
    story.step(5)
    again = story.step(6, pods=(pod("t-1").container("main", running()).view(),))
    assert again == Decision()
    assert not again.writes


def test_a_job_created_before_a_crash_is_adopted_not_created_again() -> None:
    pending = task("t").build()  # the status write after the create never happened
    decision = decide(observe(pending, now=at(8), tasktype=ECHO, **attempt_running("t", 1)), CONFIG)
    assert decision.create_job is None
    assert decision.status is not None
    assert (decision.status.phase, decision.status.attempt) == ("Running", 1)


def test_an_adopted_job_that_already_completed_finishes_the_task_at_once() -> None:
    decision = decide(observe(task("t").build(), now=at(40), tasktype=ECHO, **attempt_succeeded("t", 1)), CONFIG)
    assert decision.create_job is None
    assert decision.status is not None
    assert (decision.status.phase, decision.status.reason) == ("Succeeded", "Completed")


@dataclasses.dataclass(frozen=True)
class Unknown:
    id: str
    seconds: float  # now, after creation
    synced: bool
    phase: str | None  # None: nothing written
    requeue: float | None


UNKNOWN = [
    Unknown("within-grace", 4, True, None, 6.0),
    Unknown("just-before-grace", 9.5, True, None, 0.5),
    Unknown("after-grace", 10, True, "Failed", 7 * 24 * 3600.0),
    Unknown("types-not-synced", 3600, False, None, 0.5),
]


@pytest.mark.parametrize("case", UNKNOWN, ids=[c.id for c in UNKNOWN])
def test_unknown_tasktype_waits_for_a_grace_period_then_fails(case: Unknown) -> None:
    obj = task("t").type("missing").build()
    decision = decide(observe(obj, now=at(case.seconds), tasktype=None, types_synced=case.synced), CONFIG)
    assert decision.create_job is None
    assert decision.requeue_after == pytest.approx(case.requeue)
    if case.phase is None:
        assert decision.status is None
        return
    assert decision.status is not None
    assert (decision.status.phase, decision.status.reason) == ("Failed", "UnknownTaskType")
    assert decision.status.error is not None and decision.status.error.code == "UnknownTaskType"
    assert "TaskType 'missing' does not exist in namespace media" in decision.status.error.message


SCHEMA = {"type": "object", "properties": {"input": {"type": "string"}}, "required": ["input"]}


@pytest.mark.parametrize(
    ("type_", "payload", "reason", "says"),
    [
        (tasktype("echo").payload_schema(SCHEMA).build(), {"input": 3}, "InvalidPayload", "spec.payload.input"),
        (tasktype("echo").payload_schema(SCHEMA).build(), {}, "InvalidPayload", "'input' is a required property"),
        (tasktype("echo").build(), {"blob": "x" * 2000}, "PayloadTooLarge", "over the limit of 1024"),
        (
            tasktype("echo").payload_schema({"type": "strnig"}).build(),
            {"input": "a"},
            "InvalidTaskType",
            "payloadSchema",
        ),
    ],
    ids=["invalid-payload", "missing-field", "payload-too-large", "invalid-tasktype"],
)
def test_a_task_that_cannot_run_fails_without_a_job(type_: TaskType, payload: Any, reason: str, says: str) -> None:
    config = dataclasses.replace(CONFIG, payload_limit_bytes=1024)
    decision = decide(observe(task("t").payload(payload).build(), now=at(5), tasktype=type_), config)
    assert decision.create_job is None
    status = decision.status
    assert status is not None
    assert (status.phase, status.reason, status.attempt) == ("Failed", reason, None)
    assert status.error is not None and status.error.code == reason
    assert says in status.error.message
    assert status.effective is not None  # what was in force is visible even for a refused task
    failed = get_condition(status.conditions, "Failed")
    assert failed is not None and (failed.status, failed.reason) == ("True", reason)


def test_the_effective_spec_is_fixed_at_admission() -> None:
    story = Story(task("t").build(), tasktype=tasktype("echo").defaults(retry={"max_retries": 0}).build())
    story.step(5)
    story.tasktype = tasktype("echo").defaults(retry={"max_retries": 5}, queue="gpu").build()  # edited later
    decision = story.step(30, jobs=(job("t", 1).failed().view(),))
    assert decision.status is not None
    assert (decision.status.phase, decision.status.reason) == ("Failed", "PodFailed")
    assert decision.status.effective is not None and decision.status.effective.queue == "default"


def test_a_task_being_deleted_is_left_to_the_garbage_collector() -> None:
    obs = observe(task("t").deleting().build(), now=at(5), tasktype=ECHO)
    assert decide(obs, CONFIG) == Decision()


def test_decide_is_repeatable() -> None:
    obs: Observed = observe(task("t").build(), now=at(5), tasktype=ECHO, jobs=(job("t", 1).view(),))
    first, second = decide(obs, CONFIG), decide(obs, CONFIG)
    assert first == second
    assert isinstance(first.status, AsyncTaskStatus)


def test_a_job_created_for_the_next_attempt_before_a_crash_is_adopted() -> None:
    story = Story(task("t").retry(backoff="Fixed", base_seconds=10).build())
    story.step(5)
    story.step(30, jobs=(job("t", 1).failed().view(),))
    assert story.status.phase == "Retrying"
    decision = story.step(45, jobs=(job("t", 2).view(),))  # t-2 exists: its status write was lost
    assert decision.create_job is None
    assert (story.status.phase, story.status.attempt) == ("Running", 2)
