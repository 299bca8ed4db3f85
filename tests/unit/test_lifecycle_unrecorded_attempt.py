"""A Job created for an attempt the status does not record yet: the attempt is adopted first.

Found by the chaos test: the Job is created, then the status write that records the
attempt does not happen (the operator is killed in between, or the write conflicts because
a user cancelled the task at that very moment). The next look sees a Pending (or Retrying)
task whose next attempt's Job exists. Whatever that look decides (cancel, deadline, the
Job's own end), the attempt ran and is recorded, so attempts stay numbered as they ran and
a manual retry never reuses the Job name of an attempt that is not in the status.
"""

from __future__ import annotations

from asynctask_operator.core.lifecycle import RETRY_ANNOTATION
from tests.unit.builders import job, task, with_annotation, with_cancel
from tests.unit.story import Story, attempt_failed, attempt_running, attempt_succeeded


def test_cancel_of_a_pending_task_whose_job_exists_records_the_attempt() -> None:
    story = Story(task("t").cancel().build())  # the status never said Running
    decision = story.step(5, **attempt_running("t", 1))
    status = story.status
    assert (status.phase, status.reason, status.attempt) == ("Cancelled", "Cancelled", 1)
    assert [(a.attempt, a.job, a.outcome) for a in status.attempts or []] == [(1, "t-1", "Cancelled")]
    assert (decision.create_job, decision.delete_job) == (None, "t-1")


def test_an_unrecorded_attempt_that_already_ended_keeps_its_outcome_over_a_cancel() -> None:
    story = Story(task("t").cancel().build())
    decision = story.step(40, **attempt_succeeded("t", 1))
    status = story.status
    assert (status.phase, status.reason) == ("Succeeded", "Completed")
    assert [(a.attempt, a.outcome) for a in status.attempts or []] == [(1, "Succeeded")]
    assert (decision.create_job, decision.delete_job) == (None, None)


def test_cancel_while_retrying_with_the_next_job_created_records_both_attempts() -> None:
    story = Story(task("t").retry(backoff="Fixed", base_seconds=10, jitter=False).build())
    story.step(5)
    story.step(30, **attempt_failed("t", 1))
    assert story.status.phase == "Retrying"
    story.task = with_cancel(story.task)
    decision = story.step(45, **attempt_running("t", 2))  # t-2 was created; its status write did not happen
    status = story.status
    assert (status.phase, status.attempt) == ("Cancelled", 2)
    assert [(a.attempt, a.outcome) for a in status.attempts or []] == [(1, "Failed"), (2, "Cancelled")]
    assert decision.delete_job == "t-2"


def test_deadline_of_a_pending_task_whose_job_exists_records_the_attempt() -> None:
    story = Story(task("t").deadline(60).build())
    decision = story.step(61, **attempt_running("t", 1))
    status = story.status
    assert (status.phase, status.reason) == ("Failed", "DeadlineExceeded")
    assert [(a.attempt, a.outcome) for a in status.attempts or []] == [(1, "Cancelled")]
    assert decision.delete_job == "t-1"


def test_a_manual_retry_after_such_a_cancel_does_not_reuse_the_job_name() -> None:
    story = Story(task("t").cancel().build())
    story.step(5, **attempt_running("t", 1))
    uncancelled = story.task.spec.model_copy(update={"cancel": False})
    story.task = with_annotation(story.task.model_copy(update={"spec": uncancelled}), RETRY_ANNOTATION, "1")
    decision = story.step(20, jobs=(job("t", 1).deleting().view(),))
    assert decision.create_job is not None
    assert decision.create_job["metadata"]["name"] == "t-2"
    assert story.status.phase == "Running"
