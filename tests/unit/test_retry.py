"""docs/design.md §3.3: which failed attempts are retried, and after how long."""

from __future__ import annotations

from typing import Any

import pytest

from asynctask_operator.core.models import RetryPolicy
from asynctask_operator.core.outcomes import AttemptResult
from asynctask_operator.core.retry import BUILTIN_RETRY, backoff, next_retry_delay, retries_allowed, retry_verdict


def policy(**fields: Any) -> RetryPolicy:
    return RetryPolicy(**{"base_seconds": 10, "max_seconds": 600, "jitter": False, **fields})


@pytest.mark.parametrize(
    ("fields", "attempt", "expected"),
    [
        ({"backoff": "Fixed"}, 1, 10.0),
        ({"backoff": "Fixed"}, 5, 10.0),
        ({"backoff": "Exponential"}, 1, 10.0),
        ({"backoff": "Exponential"}, 2, 20.0),
        ({"backoff": "Exponential"}, 3, 40.0),
        ({"backoff": "Exponential"}, 4, 80.0),
        ({"backoff": "Exponential"}, 7, 600.0),  # 640 capped
        ({"backoff": "Exponential"}, 200, 600.0),  # no overflow
        ({"backoff": "Exponential", "max_seconds": 25}, 2, 20.0),
        ({"backoff": "Exponential", "max_seconds": 25}, 3, 25.0),
        ({"backoff": None}, 3, 40.0),  # Exponential by default
        ({"backoff": "Fixed", "base_seconds": 0}, 2, 0.0),
        ({"backoff": "Fixed", "base_seconds": 900}, 1, 600.0),  # the cap bounds Fixed too
    ],
    ids=[
        "fixed-1",
        "fixed-5",
        "exp-attempt-1-is-base",
        "exp-2",
        "exp-3",
        "exp-4",
        "exp-capped",
        "exp-huge-attempt",
        "exp-under-small-cap",
        "exp-small-cap",
        "default-backoff",
        "zero-base",
        "fixed-over-cap",
    ],
)
def test_delay_without_jitter(fields: dict[str, Any], attempt: int, expected: float) -> None:
    assert next_retry_delay(policy(**fields), attempt) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("attempt", "sample", "expected"),
    [
        (1, 0.0, 8.0),  # -20 %
        (1, 0.5, 10.0),
        (1, 0.999999, 12.0),  # +20 %
        (3, 0.0, 32.0),
        (3, 0.999999, 48.0),
        (7, 0.999999, 600.0),  # 600 * 1.2 would pass the cap
        (7, 0.0, 480.0),
    ],
    ids=["low", "middle", "high", "exp-low", "exp-high", "high-capped", "low-under-cap"],
)
def test_jitter_spreads_by_20_percent_never_past_the_cap(attempt: int, sample: float, expected: float) -> None:
    delay = next_retry_delay(policy(backoff="Exponential", jitter=True), attempt, jitter_sample=sample)
    assert delay == pytest.approx(expected, abs=1e-3)
    assert delay <= 600.0


@pytest.mark.parametrize("sample", [0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 0.999999])
def test_jitter_is_on_by_default_and_bounded(sample: float) -> None:
    delay = next_retry_delay(RetryPolicy(base_seconds=100, max_seconds=1000), 1, sample)
    assert 80.0 <= delay <= 120.0
    assert delay == pytest.approx(100 * (0.8 + 0.4 * sample))


# --------------------------------------------------------------------------- retry or stop

FAILED_1 = AttemptResult("Failed", "PodFailed", "container main exited with code 1", exit_code=1)
FAILED_2 = AttemptResult("Failed", "PodFailed", "container main exited with code 2: input not found", exit_code=2)
TIMEOUT = AttemptResult("Timeout", "Timeout", "the attempt ran past its timeout")
OOM = AttemptResult("PodError", "PodError", "container main was OOMKilled", exit_code=137)
DELETED = AttemptResult("JobDeleted", "JobDeleted", "the Job of this attempt was deleted")


@pytest.mark.parametrize(
    ("fields", "attempt", "result", "retry", "reason"),
    [
        ({"max_retries": 3}, 1, FAILED_1, True, "PodFailed"),
        ({"max_retries": 3}, 3, TIMEOUT, True, "Timeout"),
        ({"max_retries": 3}, 4, FAILED_1, False, "RetriesExhausted"),
        ({"max_retries": 1}, 2, OOM, False, "RetriesExhausted"),
        ({"max_retries": 0}, 1, FAILED_1, False, "PodFailed"),
        ({"max_retries": 0}, 1, TIMEOUT, False, "Timeout"),
        ({"max_retries": 3, "non_retryable_exit_codes": [2]}, 1, FAILED_2, False, "NonRetryableExitCode"),
        ({"max_retries": 0, "non_retryable_exit_codes": [2]}, 1, FAILED_2, False, "NonRetryableExitCode"),
        ({"max_retries": 3, "non_retryable_exit_codes": [2]}, 1, FAILED_1, True, "PodFailed"),
        ({"max_retries": 3, "non_retryable_exit_codes": [137]}, 1, OOM, True, "PodError"),  # codes are for Failed
        ({"max_retries": 3, "retry_on": ["Failed"]}, 1, TIMEOUT, False, "Timeout"),
        ({"max_retries": 3, "retry_on": ["Timeout"]}, 1, FAILED_1, False, "PodFailed"),
        ({"max_retries": 3, "retry_on": []}, 1, OOM, False, "PodError"),
        ({"max_retries": 3, "retry_on": []}, 1, DELETED, True, "JobDeleted"),
        ({"max_retries": 2}, 3, DELETED, False, "RetriesExhausted"),
        ({}, 3, FAILED_1, True, "PodFailed"),  # defaults: 3 retries
        ({}, 4, FAILED_1, False, "RetriesExhausted"),
    ],
    ids=[
        "first-failure-retried",
        "timeout-retried",
        "last-attempt-exhausted",
        "pod-error-exhausted",
        "no-retries-keeps-attempt-reason",
        "no-retries-timeout",
        "non-retryable-exit-code",
        "non-retryable-beats-no-retries",
        "other-exit-code-retried",
        "exit-codes-ignore-pod-errors",
        "timeout-not-in-retry-on",
        "failed-not-in-retry-on",
        "retry-on-empty",
        "job-deleted-always-retried",
        "job-deleted-exhausted",
        "default-retried",
        "default-exhausted",
    ],
)
def test_retry_verdict(fields: dict[str, Any], attempt: int, result: AttemptResult, retry: bool, reason: str) -> None:
    verdict = retry_verdict(RetryPolicy(**fields), attempt, result)
    assert (verdict.retry, verdict.reason) == (retry, reason)


def test_verdict_messages_say_why() -> None:
    exhausted = retry_verdict(RetryPolicy(max_retries=2), 3, FAILED_1)
    assert exhausted.message == "all 3 attempts failed; the last: container main exited with code 1"
    permanent = retry_verdict(RetryPolicy(non_retryable_exit_codes=[2]), 1, FAILED_2)
    assert permanent.message == "container main exited with code 2: input not found"  # as any exit reads


@pytest.mark.parametrize(
    ("failures", "expected"),
    [(1, 0.5), (2, 1.0), (3, 2.0), (8, 60.0), (1025, 60.0), (100_000, 60.0), (0, 0.5)],
)
def test_backoff_doubles_up_to_its_cap_however_many_failures(failures: int, expected: float) -> None:
    """A key failing every 60 s for 17 hours reaches its 1,025th failure: ``0.5 * 2 ** 1024`` does not
    fit in a float, and the OverflowError would have ended the worker that was backing off."""
    assert backoff(failures, 0.5, 60.0) == expected


@pytest.mark.parametrize("attempt", [1, 2, 4, 8])
@pytest.mark.parametrize("sample", [0.0, 0.5, 0.99])
def test_a_field_left_unset_means_the_builtin_default(attempt: int, sample: float) -> None:
    """The built-in policy is written once: an empty policy behaves as BUILTIN_RETRY does."""
    assert next_retry_delay(RetryPolicy(), attempt, sample) == next_retry_delay(BUILTIN_RETRY, attempt, sample)
    assert retries_allowed(RetryPolicy()) == retries_allowed(BUILTIN_RETRY) == 3
    for result in (FAILED_2, TIMEOUT, OOM, DELETED):
        assert retry_verdict(RetryPolicy(), attempt, result) == retry_verdict(BUILTIN_RETRY, attempt, result)
