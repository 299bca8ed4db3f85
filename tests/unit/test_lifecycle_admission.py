"""docs/design.md §2.3, §3.6: a new task is admitted once — its Job created, its status Running — and never twice."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from asynctask_operator.core.conditions import get_condition
from asynctask_operator.core.jobs import render_job
from asynctask_operator.core.lifecycle import RETRY_ANNOTATION, Admission, Decision, Observed, decide
from asynctask_operator.core.models import AsyncTaskStatus, TaskType
from asynctask_operator.core.retry import BUILTIN_RETRY
from tests.unit.builders import GRANTED, at, job, observe, pod, running, task, tasktype, with_annotation, with_cancel
from tests.unit.story import CONFIG, ECHO, Story, attempt_failed, attempt_running, attempt_succeeded


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


# --------------------------------------------------------------------------- waiting for a queue (docs/design.md §2.2)

QUEUED = Admission(
    granted=False, reason="Queued", message="waiting in TaskQueue 'default' (3 of 3 slots in use, 5 waiting)"
)
QUEUED_LATER = Admission(False, "Queued", "waiting in TaskQueue 'default' (3 of 3 slots in use, 2 waiting)")
PAUSED = Admission(False, "QueuePaused", "TaskQueue 'default' is paused")
NOT_FOUND = Admission(False, "QueueNotFound", "TaskQueue 'gpu' does not exist in namespace media")


@pytest.mark.parametrize("admission", [QUEUED, PAUSED, NOT_FOUND], ids=["queued", "paused", "not-found"])
def test_a_new_task_without_a_slot_waits_pending_with_the_queues_reason(admission: Admission) -> None:
    decision = decide(observe(task("t").build(), now=at(5), tasktype=ECHO, admission=admission), CONFIG)
    assert decision.wants_admission
    assert (decision.create_job, decision.delete_job, decision.delete_task, decision.requeue_after) == (
        None,
        None,
        False,
        None,  # the queue wakes it, not the clock
    )
    status = decision.status
    assert status is not None
    assert (status.phase, status.reason, status.message) == ("Pending", admission.reason, admission.message)
    assert (status.attempt, status.attempts, status.start_time) == (None, None, None)
    # What is in force is fixed when the task enters its queue, so `kubectl get at` shows the queue.
    assert status.effective is not None and status.effective.queue == "default"
    assert {c.type: (c.status, c.reason) for c in status.conditions or []} == {"Running": ("False", admission.reason)}


@dataclasses.dataclass(frozen=True)
class Wait:
    seconds: float
    admission: Admission
    writes: bool  # a status write in this step
    phase: str
    reason: str


WAITS = {
    "same-reason-again-writes-nothing": [
        Wait(5, QUEUED, True, "Pending", "Queued"),
        Wait(6, QUEUED, False, "Pending", "Queued"),
        Wait(60, QUEUED_LATER, False, "Pending", "Queued"),  # only the counts in the message moved
    ],
    "reason-changes-are-written": [
        Wait(5, NOT_FOUND, True, "Pending", "QueueNotFound"),
        Wait(6, NOT_FOUND, False, "Pending", "QueueNotFound"),
        Wait(7, QUEUED, True, "Pending", "Queued"),  # the queue was created, but is full
        Wait(8, PAUSED, True, "Pending", "QueuePaused"),
        Wait(9, PAUSED, False, "Pending", "QueuePaused"),
        Wait(10, QUEUED, True, "Pending", "Queued"),
        Wait(11, GRANTED, True, "Running", "JobCreated"),
    ],
    "granted-at-once": [Wait(5, GRANTED, True, "Running", "JobCreated")],
}


@pytest.mark.parametrize("steps", list(WAITS.values()), ids=list(WAITS))
def test_a_waiting_task_writes_only_when_its_reason_changes(steps: list[Wait]) -> None:
    story = Story(task("t").build())
    for step in steps:
        decision = story.step(step.seconds, admission=step.admission)
        assert (decision.status is not None, story.status.phase, story.status.reason) == (
            step.writes,
            step.phase,
            step.reason,
        ), step
        assert decision.wants_admission == (not step.admission.granted)
        assert (decision.create_job is not None) == step.admission.granted
        if not step.admission.granted and step.writes:
            assert story.status.message == step.admission.message


def test_a_granted_task_after_waiting_runs_as_a_new_task_would() -> None:
    story = Story(task("t").build())
    story.step(5, admission=QUEUED)
    decision = story.step(20, admission=GRANTED)
    assert not decision.wants_admission
    assert decision.create_job is not None and decision.create_job["metadata"]["name"] == "t-1"
    status = story.status
    assert (status.phase, status.reason, status.attempt) == ("Running", "JobCreated", 1)
    assert status.message == "attempt 1 of 4 running as Job t-1"
    assert (status.queued_time, status.start_time) == ("2025-03-01T12:00:00Z", "2025-03-01T12:00:20Z")
    assert status.effective is not None and status.effective.queue == "default"
    conditions = {c.type: (c.status, c.reason) for c in status.conditions or []}
    assert conditions == {"Admitted": ("True", "Admitted"), "Running": ("True", "JobCreated")}


def retrying() -> Story:
    """Attempt 1 failed at 30s; attempt 2 is due at 40s."""
    story = Story(task("t").retry(backoff="Fixed", base_seconds=10).build())
    story.step(5)
    story.step(30, **attempt_failed("t", 1))
    assert (story.status.phase, story.status.next_retry_time) == ("Retrying", "2025-03-01T12:00:40Z")
    return story


def test_a_retry_not_yet_due_does_not_ask_for_a_slot() -> None:
    story = retrying()
    decision = story.step(35, admission=QUEUED)
    assert decision == Decision(requeue_after=5.0)


def test_a_due_retry_without_a_slot_waits_in_its_queue_for_the_next_attempt() -> None:
    story = retrying()
    decision = story.step(41, admission=QUEUED)
    assert decision.wants_admission and decision.create_job is None
    status = story.status
    assert (status.phase, status.reason, status.message) == ("Pending", "Queued", QUEUED.message)
    assert (status.next_retry_time, status.attempt) == (None, 1)
    assert [(a.attempt, a.outcome) for a in status.attempts or []] == [(1, "Failed")]

    again = story.step(50, admission=QUEUED)
    assert (again.status, again.wants_admission) == (None, True)

    granted = story.step(60, admission=GRANTED)
    assert granted.create_job is not None and granted.create_job["metadata"]["name"] == "t-2"
    assert (story.status.phase, story.status.attempt) == ("Running", 2)
    assert story.status.message == "attempt 2 of 4 running as Job t-2"
    assert [(a.attempt, a.outcome) for a in story.status.attempts or []] == [(1, "Failed"), (2, None)]


@pytest.mark.parametrize("admission", [QUEUED, PAUSED, NOT_FOUND], ids=["queued", "paused", "not-found"])
def test_a_job_that_exists_for_the_next_attempt_is_adopted_whatever_the_queue_says(admission: Admission) -> None:
    """It was admitted before a crash: the Job is there, so the slot was already taken."""
    new = decide(
        observe(task("t").build(), now=at(8), tasktype=ECHO, admission=admission, **attempt_running("t", 1)), CONFIG
    )
    assert (new.create_job, new.wants_admission) == (None, False)
    assert new.status is not None and (new.status.phase, new.status.attempt) == ("Running", 1)

    story = retrying()
    decision = story.step(45, jobs=(job("t", 2).view(),), admission=admission)
    assert (decision.create_job, decision.wants_admission) == (None, False)
    assert (story.status.phase, story.status.attempt, story.status.next_retry_time) == ("Running", 2, None)


@pytest.mark.parametrize("admission", [QUEUED, PAUSED, NOT_FOUND], ids=["queued", "paused", "not-found"])
def test_cancel_while_queued_cancels_without_a_job(admission: Admission) -> None:
    story = Story(task("t").build())
    story.step(5, admission=admission)
    story.task = with_cancel(story.task)
    decision = story.step(10, admission=admission)
    assert (decision.create_job, decision.delete_job, decision.wants_admission) == (None, None, False)
    assert (story.status.phase, story.status.reason, story.status.attempt) == ("Cancelled", "Cancelled", None)
    assert not story.step(20, admission=admission).writes  # and it stays so


def test_cancel_while_a_retry_waits_in_its_queue() -> None:
    story = retrying()
    story.step(41, admission=QUEUED)
    story.task = with_cancel(story.task)
    decision = story.step(45, admission=QUEUED)
    assert (decision.create_job, decision.wants_admission) == (None, False)
    assert (story.status.phase, story.status.attempt) == ("Cancelled", 1)


def test_the_deadline_counts_while_queued() -> None:
    story = Story(task("t").deadline(60).build())
    waiting = story.step(5, admission=QUEUED)
    assert (waiting.wants_admission, waiting.requeue_after) == (True, 55.0)
    decision = story.step(60, admission=QUEUED)
    assert (decision.wants_admission, decision.create_job) == (False, None)
    assert (story.status.phase, story.status.reason, story.status.attempt) == ("Failed", "DeadlineExceeded", None)


def test_a_task_that_cannot_run_is_refused_without_asking_for_a_slot() -> None:
    refused = decide(
        observe(task("t").payload({"blob": "x" * 2000}).build(), now=at(5), tasktype=ECHO, admission=QUEUED),
        dataclasses.replace(CONFIG, payload_limit_bytes=1024),
    )
    assert not refused.wants_admission
    assert refused.status is not None and (refused.status.phase, refused.status.reason) == ("Failed", "PayloadTooLarge")

    no_type = decide(observe(task("t").type("missing").build(), now=at(5), tasktype=None, admission=QUEUED), CONFIG)
    assert (no_type.wants_admission, no_type.status) == (False, None)  # waits for its type, not a slot


def test_a_manual_retry_waits_in_the_queue_like_a_new_task() -> None:
    story = Story(task("t").retry(max_retries=0).build())
    story.step(5)
    story.step(30, **attempt_failed("t", 1))
    story.task = with_annotation(story.task, RETRY_ANNOTATION, "again")
    decision = story.step(100, admission=PAUSED)
    assert decision.wants_admission and decision.create_job is None
    assert (story.status.phase, story.status.reason, story.status.attempt) == ("Pending", "QueuePaused", 1)
    assert story.status.round is not None and story.status.round.requested == "again"
    assert story.status.completion_time is None

    assert not story.step(110, admission=PAUSED).writes
    granted = story.step(120, admission=GRANTED)
    assert granted.create_job is not None and granted.create_job["metadata"]["name"] == "t-2"
    assert (story.status.phase, story.status.attempt, story.status.message) == (
        "Running",
        2,
        "attempt 2 of 2 running as Job t-2",
    )
