"""docs/design.md §3.3: cancel works in every unfinished phase; deadlineSeconds bounds the whole task."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.unit.builders import at, job, task, with_cancel
from tests.unit.story import Story, attempt_failed, attempt_running, attempt_succeeded

WEEK = 7 * 24 * 3600.0


def pending() -> Story:
    return Story(task("t").build())


def running() -> Story:
    story = Story(task("t").build())
    story.step(5)
    return story


def retrying() -> Story:
    story = Story(task("t").retry(backoff="Fixed", base_seconds=600).build())
    story.step(5)
    story.step(30, **attempt_failed("t", 1))
    assert story.status.phase == "Retrying"
    return story


@pytest.mark.parametrize(
    ("start", "deletes", "attempt_outcomes"),
    [(pending, None, []), (running, "t-1", ["Cancelled"]), (retrying, None, ["Failed"])],
    ids=["pending", "running", "retrying"],
)
def test_cancel_an_unfinished_task(
    start: Callable[[], Story], deletes: str | None, attempt_outcomes: list[str]
) -> None:
    story = start()
    story.task = with_cancel(story.task)
    decision = story.step(60)
    status = story.status
    assert (status.phase, status.reason, status.message) == ("Cancelled", "Cancelled", "cancelled by spec.cancel")
    assert (decision.create_job, decision.delete_job) == (None, deletes)
    assert [a.outcome for a in status.attempts or []] == attempt_outcomes
    assert (status.next_retry_time, status.completion_time) == (None, "2025-03-01T12:01:00Z")
    assert decision.requeue_after == WEEK
    assert {c.type: c.status for c in status.conditions or []}.get("Running", "False") == "False"


def test_cancelling_a_finished_task_does_nothing() -> None:
    story = running()
    story.step(40, **attempt_succeeded("t", 1))
    story.task = with_cancel(story.task)
    decision = story.step(100, **attempt_succeeded("t", 1))
    assert not decision.writes
    assert story.status.phase == "Succeeded"
    assert decision.requeue_after == WEEK - 60


def test_deadline_while_running_deletes_the_job_and_fails() -> None:
    story = Story(task("t").deadline(100).build())
    story.step(5)
    waiting_for_it = story.step(50)
    assert waiting_for_it.requeue_after == 50.0  # the clock wakes the task at its deadline
    decision = story.step(100)
    status = story.status
    assert (status.phase, status.reason) == ("Failed", "DeadlineExceeded")
    assert status.error is not None and status.error.message == "the task did not finish within deadlineSeconds=100"
    assert decision.delete_job == "t-1"
    [attempt] = status.attempts or []
    assert attempt.finish_time == "2025-03-01T12:01:40Z"


def test_deadline_while_retrying_fails_without_waiting_for_the_retry() -> None:
    story = Story(task("t").deadline(300).retry(backoff="Fixed", base_seconds=600).build())
    story.step(5)
    retry = story.step(30, **attempt_failed("t", 1))
    assert retry.requeue_after == 270.0  # the deadline comes before the retry
    decision = story.step(300, **attempt_failed("t", 1))
    assert (story.status.phase, story.status.reason, story.status.next_retry_time) == (
        "Failed",
        "DeadlineExceeded",
        None,
    )
    assert (decision.create_job, decision.delete_job) == (None, None)


def test_deadline_while_pending_fails_a_task_that_never_ran() -> None:
    story = Story(task("t").type("missing").deadline(60).build(), tasktype=None)
    assert not story.step(5, types_synced=False).writes
    story.step(60, types_synced=False)
    assert (story.status.phase, story.status.reason, story.status.attempt) == ("Failed", "DeadlineExceeded", None)


def test_the_deadline_counts_from_creation_across_retries() -> None:
    story = Story(task("t").deadline(1000).retry(backoff="Fixed", base_seconds=10).build())
    story.step(5)
    story.step(30, **attempt_failed("t", 1))
    story.step(40)
    assert story.status.attempt == 2
    assert story.step(999).requeue_after == 1.0
    story.step(1000)
    assert story.status.reason == "DeadlineExceeded"


def test_a_job_that_finished_before_the_deadline_keeps_its_outcome() -> None:
    """The operator may see a finished Job late (a restart): the Job's own result stands."""
    story = Story(task("t").deadline(100).build())
    story.step(5)
    story.step(500, jobs=(job("t", 1).complete(when=at(60)).view(),))
    status = story.status
    assert (status.phase, status.reason) == ("Succeeded", "Completed")
    assert [a.outcome for a in status.attempts or []] == ["Succeeded"]


def test_a_running_job_past_the_deadline_is_not_mistaken_for_finished() -> None:
    story = Story(task("t").deadline(100).build())
    story.step(5)
    decision = story.step(500, **attempt_running("t", 1))
    assert (story.status.phase, story.status.reason, decision.delete_job) == ("Failed", "DeadlineExceeded", "t-1")


def test_a_failure_seen_past_the_deadline_is_recorded_then_not_retried() -> None:
    story = Story(task("t").deadline(100).build())
    story.step(5)
    seen = story.step(500, **attempt_failed("t", 1))
    assert [(a.outcome, a.exit_code) for a in story.status.attempts or []] == [("Failed", 1)]
    assert seen.requeue_after == 0.0  # look again at once
    story.step(500)
    assert (story.status.phase, story.status.reason) == ("Failed", "DeadlineExceeded")


def test_a_job_still_running_after_cancel_is_deleted_on_the_next_look() -> None:
    story = running()
    story.task = with_cancel(story.task)
    story.step(60)  # the status was written; the delete was lost (a crash)
    decision = story.step(70)
    assert (decision.status, decision.delete_job) == (None, "t-1")


def test_a_job_that_completed_before_the_cancel_was_seen_ends_succeeded() -> None:
    """The Job finished first; a cancel noticed afterwards cannot undo that."""
    story = running()
    story.task = with_cancel(story.task)
    decision = story.step(60, **attempt_succeeded("t", 1))
    assert (story.status.phase, story.status.reason, decision.delete_job) == ("Succeeded", "Completed", None)


def test_a_failure_seen_with_a_cancel_is_recorded_then_cancelled() -> None:
    story = running()
    story.task = with_cancel(story.task)
    story.step(60, **attempt_failed("t", 1))
    assert [(a.outcome, a.exit_code) for a in story.status.attempts or []] == [("Failed", 1)]
    story.step(61)
    assert (story.status.phase, story.status.reason) == ("Cancelled", "Cancelled")
    assert len(story.status.attempts or []) == 1, "no further attempt starts"
