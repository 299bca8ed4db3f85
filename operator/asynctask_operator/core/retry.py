"""Retry policy: whether a failed attempt is retried, and after how long (docs/design.md §3.3)."""

from __future__ import annotations

import dataclasses
import math
from typing import TypeVar

from asynctask_operator.core.models import RetryPolicy
from asynctask_operator.core.outcomes import AttemptResult

T = TypeVar("T")

BUILTIN_RETRY = RetryPolicy(
    max_retries=3,
    backoff="Exponential",
    base_seconds=10,
    max_seconds=600,
    jitter=True,
    retry_on=["Failed", "Timeout", "PodError"],
    non_retryable_exit_codes=[],
)
"""Every retry field neither the task nor its TaskType sets (``CoreConfig.default_retry``), and what
a field left unset anyway means here."""
JITTER = 0.2


def _or_builtin(value: T | None, builtin: T | None) -> T:
    assert builtin is not None  # BUILTIN_RETRY sets every field
    return value if value is not None else builtin


def retries_allowed(policy: RetryPolicy) -> int:
    """Retries after the first attempt of a round (its attempts: this + 1)."""
    return _or_builtin(policy.max_retries, BUILTIN_RETRY.max_retries)


def backoff(failures: int, base: float, cap: float) -> float:
    """Seconds to wait after the ``failures``-th failure in a row (1-based): ``base`` doubled each
    time, at most ``cap`` (``math.inf``: no cap). The exponent stops at 62: ``2 ** n`` of a key
    failing for days would not fit in a float (OverflowError in the loop that should be backing
    off), and ``2 ** 62`` seconds is longer than any delay that will ever be waited out."""
    return min(base * 2.0 ** min(max(failures - 1, 0), 62), cap)


def next_retry_delay(policy: RetryPolicy, attempt: int, jitter_sample: float = 0.5) -> float:
    """Seconds to wait after failed ``attempt`` (1-based) before the next one.

    ``jitter_sample`` is a number in [0, 1) (random in production, fixed in tests); with
    jitter on, the delay is spread uniformly over +/-20 %, never past ``maxSeconds``.

    >>> next_retry_delay(RetryPolicy(backoff="Exponential", base_seconds=10, max_seconds=600, jitter=False), 3)
    40.0
    """
    base = float(_or_builtin(policy.base_seconds, BUILTIN_RETRY.base_seconds))
    cap = float(_or_builtin(policy.max_seconds, BUILTIN_RETRY.max_seconds))
    limit = cap if cap > 0 else math.inf
    delay = min(base, limit) if policy.backoff == "Fixed" else backoff(attempt, base, limit)
    if policy.jitter is not False:
        delay = min(delay * (1.0 + JITTER * (2.0 * jitter_sample - 1.0)), limit)
    return max(delay, 0.0)


@dataclasses.dataclass(frozen=True)
class RetryVerdict:
    retry: bool
    reason: str  # the task's reason when it does not retry
    message: str


def retry_verdict(policy: RetryPolicy, attempt: int, result: AttemptResult) -> RetryVerdict:
    """Retry ``attempt``'s failure, or end the task with which reason."""
    max_retries = retries_allowed(policy)
    codes = set(policy.non_retryable_exit_codes or ())
    if result.exit_code is not None and result.exit_code in codes and result.outcome == "Failed":
        # The attempt's own words ("container main exited with code 2: ..."), as for every other exit:
        # the reason says why it was not retried; a prefix repeating the code said it twice.
        return RetryVerdict(False, "NonRetryableExitCode", result.message)
    retry_on = set(_or_builtin(policy.retry_on, BUILTIN_RETRY.retry_on))
    retryable = result.outcome in retry_on or result.outcome == "JobDeleted"
    if not retryable or max_retries == 0:
        return RetryVerdict(False, result.reason, result.message)
    if attempt >= max_retries + 1:
        return RetryVerdict(
            False, "RetriesExhausted", f"all {max_retries + 1} attempts failed; the last: {result.message}"
        )
    return RetryVerdict(True, result.reason, result.message)
