"""Retry policy: whether a failed attempt is retried, and after how long (SPEC 3.3)."""

from __future__ import annotations

import dataclasses
import math

from asynctask_operator.core.models import RetryPolicy
from asynctask_operator.core.outcomes import AttemptResult

JITTER = 0.2


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
    base = float(policy.base_seconds if policy.base_seconds is not None else 10)
    cap = float(policy.max_seconds if policy.max_seconds is not None else 600)
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
    max_retries = policy.max_retries if policy.max_retries is not None else 3
    codes = set(policy.non_retryable_exit_codes or ())
    if result.exit_code is not None and result.exit_code in codes and result.outcome == "Failed":
        return RetryVerdict(False, "NonRetryableExitCode", f"exit code {result.exit_code}: {result.message}")
    retry_on = set(policy.retry_on if policy.retry_on is not None else ("Failed", "Timeout", "PodError"))
    retryable = result.outcome in retry_on or result.outcome == "JobDeleted"
    if not retryable or max_retries == 0:
        return RetryVerdict(False, result.reason, result.message)
    if attempt >= max_retries + 1:
        return RetryVerdict(
            False, "RetriesExhausted", f"all {max_retries + 1} attempts failed; the last: {result.message}"
        )
    return RetryVerdict(True, result.reason, result.message)
