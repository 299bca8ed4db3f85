"""docs/design.md §3.3: an attempt ends; the task succeeds, retries after a backoff, or fails with a reason that says why."""

from __future__ import annotations

from typing import Any

import pytest

from asynctask_operator.core.conditions import get_condition
from tests.unit.builders import at, job, pod, stamp, task, terminated, waiting, with_annotation
from tests.unit.story import Story, attempt_failed, attempt_succeeded


def conditions(story: Story) -> dict[str, str]:
    return {c.type: c.status for c in story.status.conditions or []}


def test_a_completed_job_succeeds_the_task() -> None:
    story = Story(task("t").ttl(3600).build())
    story.step(5)
    done = story.step(40, jobs=(job("t", 1).complete(when=at(35)).view(),))
    status = story.status
    assert (status.phase, status.reason, status.message) == ("Succeeded", "Completed", "attempt 1 succeeded")
    assert conditions(story) == {"Admitted": "True", "Running": "False", "Succeeded": "True", "Failed": "False"}
    assert (status.completion_time, status.duration_seconds, status.error) == ("2025-03-01T12:00:40Z", 35.0, None)
    [attempt] = status.attempts or []
    assert (attempt.outcome, attempt.exit_code, attempt.reason) == ("Succeeded", 0, "Completed")
    assert attempt.finish_time == "2025-03-01T12:00:35Z"  # the Job's completionTime
    assert done.requeue_after == 3600.0  # the TTL
    assert (done.create_job, done.delete_job, done.delete_task) == (None, None, False)


def test_a_failure_with_no_retries_fails_with_the_attempts_reason() -> None:
    story = Story(task("t").retry(max_retries=0).build())
    story.step(5)
    story.step(30, **attempt_failed("t", 1, exit_code=1))
    status = story.status
    assert (status.phase, status.reason) == ("Failed", "PodFailed")
    assert status.error is not None
    assert (status.error.code, status.error.message) == ("PodFailed", "container main exited with code 1")
    [attempt] = status.attempts or []
    assert (attempt.outcome, attempt.exit_code, attempt.reason) == ("Failed", 1, "PodFailed")
    assert conditions(story) == {"Admitted": "True", "Running": "False", "Succeeded": "False", "Failed": "True"}


@pytest.mark.parametrize(
    ("retry", "jitter_sample", "delay"),
    [
        ({"backoff": "Fixed", "base_seconds": 7}, 0.5, 7.0),
        ({"base_seconds": 10, "jitter": False}, 0.0, 10.0),
        ({"base_seconds": 10}, 0.0, 8.0),
        ({"base_seconds": 10}, 0.75, 11.0),
    ],
    ids=["fixed", "exponential-first", "jitter-low", "jitter-high"],
)
def test_a_failure_with_retries_left_waits_in_retrying(
    retry: dict[str, Any], jitter_sample: float, delay: float
) -> None:
    story = Story(task("t").retry(max_retries=3, **retry).build())
    story.step(5)
    decision = story.step(30, jitter_sample=jitter_sample, **attempt_failed("t", 1))
    status = story.status
    assert (status.phase, status.reason, status.attempt) == ("Retrying", "PodFailed", 1)
    assert status.next_retry_time == stamp(at(30 + delay))
    assert decision.requeue_after == pytest.approx(delay)
    assert decision.create_job is None
    assert status.message is not None and status.message.startswith("attempt 1 of 4 failed (container main exited")
    assert conditions(story)["Running"] == "False"


def test_retrying_waits_until_the_retry_is_due_then_runs_attempt_2() -> None:
    story = Story(task("t").retry(backoff="Fixed", base_seconds=20).build())
    story.step(5)
    story.step(30, **attempt_failed("t", 1))  # due at 50

    early = story.step(45, **attempt_failed("t", 1))
    assert not early.writes
    assert early.requeue_after == pytest.approx(5.0)

    due = story.step(50, **attempt_failed("t", 1))
    assert due.create_job is not None
    assert due.create_job["metadata"]["name"] == "t-2"
    status = story.status
    assert (status.phase, status.reason, status.attempt, status.next_retry_time) == ("Running", "JobCreated", 2, None)
    assert [(a.attempt, a.job, a.outcome) for a in status.attempts or []] == [(1, "t-1", "Failed"), (2, "t-2", None)]
    assert status.message == "attempt 2 of 4 running as Job t-2"
    assert status.start_time == "2025-03-01T12:00:05Z"  # the task's start, not the attempt's


def run_until_done(story: Story, exit_code: int = 1) -> None:
    """Fail every attempt until the task stops retrying."""
    seconds = 5.0
    story.step(seconds)
    while story.status.phase in ("Running", "Retrying"):
        seconds += 1000
        attempt = story.status.attempt or 1
        story.step(seconds, **attempt_failed("t", attempt, exit_code))


@pytest.mark.parametrize(
    ("retry", "exit_code", "reason", "attempts"),
    [
        ({"max_retries": 2}, 1, "RetriesExhausted", 3),
        ({"max_retries": 0}, 1, "PodFailed", 1),
        ({"max_retries": 3, "non_retryable_exit_codes": [2]}, 2, "NonRetryableExitCode", 1),
        ({"max_retries": 3, "retry_on": ["Timeout"]}, 1, "PodFailed", 1),
    ],
    ids=["exhausted", "no-retries", "non-retryable-exit-code", "outcome-not-in-retry-on"],
)
def test_the_reason_a_task_stops_retrying(retry: dict[str, Any], exit_code: int, reason: str, attempts: int) -> None:
    story = Story(task("t").retry(**retry).build())
    run_until_done(story, exit_code)
    status = story.status
    assert (status.phase, status.reason, status.attempt) == ("Failed", reason, attempts)
    assert status.error is not None and status.error.code == reason
    assert [a.outcome for a in status.attempts or []] == ["Failed"] * attempts


def test_retries_exhausted_message_quotes_the_last_failure() -> None:
    story = Story(task("t").retry(max_retries=1).build())
    run_until_done(story)
    assert story.status.message == "all 2 attempts failed; the last: container main exited with code 1"


def test_only_the_last_ten_attempts_are_kept() -> None:
    story = Story(task("t").retry(max_retries=14, backoff="Fixed", base_seconds=1).build())
    run_until_done(story)
    status = story.status
    assert (status.phase, status.reason, status.attempt) == ("Failed", "RetriesExhausted", 15)
    assert [a.attempt for a in status.attempts or []] == list(range(6, 16))


@pytest.mark.parametrize(
    ("observed", "reason", "deletes"),
    [
        ({"jobs": ()}, "JobDeleted", None),
        ({"jobs": (job("t", 1).deleting().view(),)}, "JobDeleted", None),
        ({"jobs": (job("t", 1).failed("DeadlineExceeded").view(),)}, "Timeout", None),
        (
            {
                "jobs": (job("t", 1).view(),),
                "pods": (pod("t-1").phase("Pending").container("main", waiting("ImagePullBackOff")).view(),),
            },
            "PodError",
            "t-1",  # the Job would never end by itself
        ),
        (
            {
                "jobs": (job("t", 1).failed().view(),),
                "pods": (pod("t-1").phase("Failed").container("main", terminated(137, "OOMKilled")).view(),),
            },
            "PodError",
            None,
        ),
    ],
    ids=["job-deleted", "job-being-deleted", "timeout", "image-pull-backoff", "oom-killed"],
)
def test_attempt_failures_are_retried_with_their_reason(
    observed: dict[str, Any], reason: str, deletes: str | None
) -> None:
    story = Story(task("t").build())
    story.step(5)
    story.jobs.clear()  # from here on the test says exactly which Jobs exist
    decision = story.step(30, **observed)
    assert (story.status.phase, story.status.reason) == ("Retrying", reason)
    assert decision.delete_job == deletes
    [attempt] = story.status.attempts or []
    assert attempt.reason == reason


def test_a_new_retry_round_does_not_count_the_old_attempts() -> None:
    story = Story(task("t").retry(max_retries=1, backoff="Fixed", base_seconds=1).build())
    run_until_done(story)
    assert story.status.attempt == 2
    story.task = with_annotation(story.task, "asynctask.dev/retry-requested", "1")
    story.step(5000)
    assert (story.status.phase, story.status.attempt) == ("Running", 3)
    assert story.status.message == "attempt 3 of 4 running as Job t-3"
    story.step(5010, **attempt_failed("t", 3))
    assert story.status.phase == "Retrying"  # the first failure of the new round, not RetriesExhausted


def test_success_after_a_retry() -> None:
    story = Story(task("t").retry(backoff="Fixed", base_seconds=10).build())
    story.step(5)
    story.step(30, **attempt_failed("t", 1))
    story.step(40)
    story.step(90, **attempt_succeeded("t", 2))
    status = story.status
    assert (status.phase, status.attempt) == ("Succeeded", 2)
    assert [a.outcome for a in status.attempts or []] == ["Failed", "Succeeded"]
    succeeded = get_condition(status.conditions, "Succeeded")
    assert succeeded is not None and succeeded.status == "True"
    assert status.duration_seconds == 85.0
