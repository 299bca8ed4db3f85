"""docs/design.md §2.5, §3.5: a finished task — retried on request, cleaned up, deleted when its TTL runs out."""

from __future__ import annotations

import pytest

from asynctask_operator.core.lifecycle import RETRY_ANNOTATION
from tests.unit.builders import job, task, tasktype, with_annotation, with_cancel
from tests.unit.story import ECHO, Story, attempt_failed, attempt_succeeded


def failed(retry_annotation: str | None = None) -> Story:
    """A task whose only attempt failed at 30s (no retries)."""
    builder = task("t").retry(max_retries=0)
    if retry_annotation is not None:
        builder = builder.annotation(RETRY_ANNOTATION, retry_annotation)
    story = Story(builder.build())
    story.step(5)
    story.step(30, **attempt_failed("t", 1))
    assert (story.status.phase, story.status.attempt) == ("Failed", 1)
    return story


def test_retry_requested_on_a_failed_task_runs_the_next_attempt() -> None:
    story = failed()
    story.task = with_annotation(story.task, RETRY_ANNOTATION, "2025-03-01T13:00")
    decision = story.step(100)
    assert decision.create_job is not None and decision.create_job["metadata"]["name"] == "t-2"
    status = story.status
    assert (status.phase, status.reason, status.attempt) == ("Running", "JobCreated", 2)
    assert (status.completion_time, status.duration_seconds, status.error) == (None, None, None)
    assert status.round is not None
    assert (status.round.first_attempt, status.round.requested) == (2, "2025-03-01T13:00")
    assert status.queued_time == "2025-03-01T12:01:40Z"  # queued again
    assert [(a.attempt, a.outcome) for a in status.attempts or []] == [(1, "Failed"), (2, None)]
    assert {c.type: c.status for c in status.conditions or []} == {"Admitted": "True", "Running": "True"}
    assert status.message == "attempt 2 of 2 running as Job t-2"


def test_the_same_retry_value_is_honoured_once() -> None:
    story = failed()
    story.task = with_annotation(story.task, RETRY_ANNOTATION, "1")
    story.step(100)
    story.step(130, **attempt_failed("t", 2))
    assert (story.status.phase, story.status.attempt) == ("Failed", 2)
    again = story.step(200)
    assert not again.writes
    assert story.status.attempt == 2


def test_a_retry_annotation_present_at_creation_is_not_a_retry_request() -> None:
    story = failed(retry_annotation="from-the-manifest")
    decision = story.step(100)
    assert not decision.writes
    assert story.status.phase == "Failed"


def test_a_retry_annotation_present_at_creation_does_not_rerun_a_refused_task() -> None:
    story = Story(task("t").type("missing").annotation(RETRY_ANNOTATION, "from-the-manifest").build(), tasktype=None)
    story.step(30)
    assert (story.status.phase, story.status.reason) == ("Failed", "UnknownTaskType")
    story.tasktype = ECHO  # the type appears later: only a new retry value starts the task
    decision = story.step(60)
    assert (decision.create_job, decision.status) == (None, None)


def test_retry_requested_on_a_refused_task_starts_it() -> None:
    story = Story(task("t").type("missing").build(), tasktype=None)
    story.step(30)
    story.tasktype = ECHO
    story.task = with_annotation(story.task, RETRY_ANNOTATION, "now")
    decision = story.step(60)
    assert decision.create_job is not None and decision.create_job["metadata"]["name"] == "t-1"
    assert (story.status.phase, story.status.attempt) == ("Running", 1)


def test_retry_requested_on_a_cancelled_task_once_cancel_is_unset() -> None:
    story = Story(task("t").build())
    story.step(5)
    story.task = with_cancel(story.task)
    story.step(20)
    story.step(21, jobs=(job("t", 1).failed("DeadlineExceeded").deleting().view(),))
    assert story.status.phase == "Cancelled"

    story.task = with_annotation(story.task, RETRY_ANNOTATION, "1")
    assert not story.step(30).writes  # still cancelled: spec.cancel wins

    story.task = story.task.model_copy(update={"spec": story.task.spec.model_copy(update={"cancel": False})})
    decision = story.step(40)
    assert decision.create_job is not None and decision.create_job["metadata"]["name"] == "t-2"
    assert (story.status.phase, story.status.attempt) == ("Running", 2)


def test_retry_requested_on_a_succeeded_task_does_nothing() -> None:
    story = Story(task("t").build())
    story.step(5)
    story.step(30, **attempt_succeeded("t", 1))
    story.task = with_annotation(story.task, RETRY_ANNOTATION, "1")
    assert not story.step(60).writes
    assert story.status.phase == "Succeeded"


@pytest.mark.parametrize(
    ("ttl", "seconds", "deleted", "requeue"),
    [
        (3600, 40 + 3599, False, 1.0),
        (3600, 40 + 3600, True, None),
        (3600, 40 + 99999, True, None),
        (0, 40, True, None),
    ],
    ids=["one-second-before", "at-expiry", "long-after", "ttl-zero"],
)
def test_a_finished_task_is_deleted_when_its_ttl_runs_out(
    ttl: int, seconds: int, deleted: bool, requeue: float | None
) -> None:
    story = Story(task("t").ttl(ttl).build())
    story.step(5)
    story.step(40, **attempt_succeeded("t", 1))
    decision = story.decide(seconds)
    assert (decision.delete_task, decision.requeue_after) == (deleted, requeue)
    assert decision.status is None


def test_the_ttl_comes_from_the_tasktype_when_the_task_leaves_it_out() -> None:
    story = Story(task("t").build(), tasktype=tasktype("echo").defaults(ttl_seconds_after_finished=60).build())
    story.step(5)
    story.step(40, **attempt_succeeded("t", 1))
    assert story.decide(99).requeue_after == 1.0
    assert story.decide(100).delete_task


@pytest.mark.parametrize(
    ("outcome", "kept"),
    [("Succeeded", 3600), ("Failed", 60), ("Cancelled", 5)],
)
def test_the_ttl_strategy_keeps_each_outcome_its_own_time(outcome: str, kept: int) -> None:
    """Keep the successful, clean up the failed: the type's ttlStrategy, by how the task ended."""
    strategy = {"seconds_after_failure": 60, "seconds_after_cancelled": 5}
    story = Story(
        task("t").retry(max_retries=0).build(),
        tasktype=tasktype("echo").defaults(ttl_seconds_after_finished=3600, ttl_strategy=strategy).build(),
    )
    story.step(5)
    if outcome == "Succeeded":
        story.step(40, **attempt_succeeded("t", 1))
    elif outcome == "Failed":
        story.step(40, **attempt_failed("t", 1))
    else:
        story.task = with_cancel(story.task)
        story.step(40)
    assert story.status.phase == outcome
    assert story.decide(40 + kept - 1).requeue_after == 1.0
    assert story.decide(40 + kept).delete_task


def test_a_job_left_running_by_a_finished_task_is_deleted() -> None:
    story = Story(task("t").retry(max_retries=0).build())
    story.step(5)
    story.step(30, **attempt_failed("t", 1))
    decision = story.step(60, jobs=(job("t", 1).failed().view(), job("t", 2).view()))  # a stray active Job
    assert decision.delete_job == "t-2"
    assert decision.status is None


def test_nothing_to_clean_up_writes_nothing() -> None:
    story = Story(task("t").build())
    story.step(5)
    story.step(30, **attempt_succeeded("t", 1))
    assert not story.step(60).writes


@pytest.mark.parametrize("synced", [True, False], ids=["type-known", "types-not-synced"])
def test_a_task_failed_before_admission_is_not_rerun_by_an_annotation_from_its_manifest(synced: bool) -> None:
    """The operator was down past the task's deadline; the manifest carried a retry annotation."""
    obj = task("t").deadline(60).annotation(RETRY_ANNOTATION, "from-the-manifest").build()
    story = Story(obj, tasktype=ECHO if synced else None)
    decision = story.step(120, types_synced=synced)
    assert decision.create_job is None
    assert (story.status.phase, story.status.reason) == ("Failed", "DeadlineExceeded")


def test_a_refused_task_retried_later_takes_the_types_defaults() -> None:
    """Effective values are fixed at admission; a task refused before admission was never admitted."""
    story = Story(task("t").type("echo").build(), tasktype=None)
    story.step(30)
    assert story.status.reason == "UnknownTaskType"
    story.tasktype = tasktype("echo").defaults(queue="gpu", timeout_seconds=60).build()
    story.task = with_annotation(story.task, RETRY_ANNOTATION, "1")
    decision = story.step(60)
    assert decision.create_job is not None and decision.create_job["spec"]["activeDeadlineSeconds"] == 60
    assert story.status.effective is not None and story.status.effective.queue == "gpu"
