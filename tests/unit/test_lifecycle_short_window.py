"""The short-attempt window (docs/adr/0029-short-attempt-window.md): an attempt whose Job ends within
``short_attempt_seconds`` of its creation is written once, Pending -> Succeeded (or Failed, Retrying),
its attempt recorded whole; a longer one is written Running when the window ends. Off (0), Running is
written with the Job's creation, as before. What the status says is decided from the objects alone:
the Job's creationTimestamp and the time."""

from __future__ import annotations

import dataclasses

from asynctask_operator.core.timestamps import parse_stamp
from tests.unit.builders import at, job, pod, task, terminated
from tests.unit.story import CONFIG, Story

WINDOW = dataclasses.replace(CONFIG, short_attempt_seconds=5)


def test_off_the_admission_writes_running_with_the_job() -> None:
    story = Story(task("t").build())
    decision = story.step(5)
    assert decision.create_job is not None and decision.status is not None
    assert story.status.phase == "Running"


def test_on_the_job_is_created_and_the_status_waits_for_the_window() -> None:
    story = Story(task("t").build(), config=WINDOW)
    decision = story.step(5)
    assert decision.create_job is not None and decision.create_job["metadata"]["name"] == "t-1"
    assert decision.status is None and decision.held
    assert decision.requeue_after == 5  # the window, from now
    assert story.status.phase is None  # never written: Pending by default


def test_within_the_window_a_running_job_changes_nothing() -> None:
    story = Story(task("t").build(), config=WINDOW)
    story.step(5)
    decision = story.step(6, jobs=(job("t", 1).created(at(5)).view(),))
    assert decision.status is None and decision.create_job is None and decision.held
    assert decision.requeue_after == 5  # created at 5, whole seconds: from 6, five more: 11


def test_a_job_that_ends_within_the_window_is_one_write_with_the_whole_attempt() -> None:
    story = Story(task("t").build(), config=WINDOW)
    first = story.step(5)
    done = job("t", 1).created(at(5)).complete(at(8)).view()
    last = story.step(8.5, jobs=(done,), pods=(pod("t-1").phase("Succeeded").container("main", terminated(0)).view(),))
    status = story.status
    assert (status.phase, status.reason, status.attempt) == ("Succeeded", "Completed", 1)
    (attempt,) = status.attempts or []
    assert (attempt.job, attempt.outcome, attempt.exit_code) == ("t-1", "Succeeded", 0)
    assert parse_stamp(attempt.start_time) == at(5) and parse_stamp(attempt.finish_time) == at(8)
    assert parse_stamp(status.start_time) == at(5)
    writes = [bool(first.create_job), first.status is not None, bool(last.create_job), last.status is not None]
    assert sum(writes) == 2  # the Job, and one status write (3 with the window off)
    assert [c.type for c in status.conditions or [] if c.status == "True"] == ["Admitted", "Succeeded"]


def test_a_longer_attempt_is_written_running_when_the_window_ends_with_its_jobs_start() -> None:
    story = Story(task("t").build(), config=WINDOW)
    story.step(5)
    decision = story.step(11, jobs=(job("t", 1).created(at(5)).view(),))
    status = story.status
    assert decision.status is not None and status.phase == "Running" and status.attempt == 1
    assert parse_stamp((status.attempts or [])[0].start_time) == at(5)  # when it began, not when written


def test_a_failure_within_the_window_goes_straight_to_retrying() -> None:
    story = Story(task("t").retry(max_retries=1, backoff="Fixed", base_seconds=10, jitter=False).build(), config=WINDOW)
    story.step(5)
    failed = job("t", 1).created(at(5)).failed().view()
    story.step(7, jobs=(failed,), pods=(pod("t-1").phase("Failed").container("main", terminated(3)).view(),))
    status = story.status
    assert (status.phase, status.attempt) == ("Retrying", 1)
    assert [(a.attempt, a.outcome, a.exit_code) for a in status.attempts or []] == [(1, "Failed", 3)]


def test_a_cancel_within_the_window_is_written_at_once() -> None:
    story = Story(task("t").cancel().build(), config=WINDOW)
    decision = story.step(6, jobs=(job("t", 1).created(at(5)).view(),))
    assert (story.status.phase, decision.delete_job) == ("Cancelled", "t-1")
    assert [(a.attempt, a.outcome) for a in story.status.attempts or []] == [(1, "Cancelled")]


def test_a_callback_of_the_running_event_is_never_held() -> None:
    story = Story(task("t").callback(events=["Running", "Succeeded"]).build(), config=WINDOW)
    decision = story.step(5)
    assert decision.status is not None and story.status.phase == "Running"


def test_the_window_ends_at_the_deadline() -> None:
    story = Story(task("t").deadline(8).build(), config=WINDOW)  # created at 0: due at 8
    decision = story.step(5)
    assert decision.held and decision.requeue_after == 3
    story.step(8, jobs=(job("t", 1).created(at(5)).view(),))
    assert (story.status.phase, story.status.reason) == ("Failed", "DeadlineExceeded")
    assert [(a.attempt, a.outcome) for a in story.status.attempts or []] == [(1, "Cancelled")]


def test_a_restart_within_the_window_decides_the_same() -> None:
    """Nothing of the window is in memory: a new operator seeing the same objects holds the same."""
    seen = job("t", 1).created(at(5)).view()
    one, two = Story(task("t").build(), config=WINDOW), Story(task("t").build(), config=WINDOW)
    assert one.decide(7, jobs=(seen,)) == two.decide(7, jobs=(seen,))
    assert one.decide(7, jobs=(seen,)).held
