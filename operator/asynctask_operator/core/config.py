"""Operator-level settings the pure core needs (the rest live in ``settings.py``)."""

from __future__ import annotations

import dataclasses

from asynctask_operator.core.models import RetryPolicy
from asynctask_operator.core.retry import BUILTIN_RETRY


@dataclasses.dataclass(frozen=True)
class CoreConfig:
    payload_limit_bytes: int = 64 * 1024
    """A payload whose compact JSON is larger ends the task Failed/PayloadTooLarge."""

    default_ttl_seconds: int = 7 * 24 * 3600
    """How long a finished task is kept when neither it nor its TaskType says."""

    default_queue: str = "default"
    """The queue of a task when neither it nor its TaskType names one."""

    unknown_type_grace_seconds: float = 10.0
    """How long a new task waits for its TaskType to appear before it fails UnknownTaskType.

    ``kubectl apply -f dir/`` and GitOps tools create objects in any order; a task
    created a moment before its TaskType must not fail."""

    default_retry: RetryPolicy = BUILTIN_RETRY
    """Retry fields neither the task nor its TaskType sets."""

    report_url: str | None = None
    """Base URL at which task pods reach the operator's report endpoint, e.g.
    http://asynctask-operator.asynctask-system.svc:8080. Unset: pods get no ASYNCTASK_REPORT_URL/TOKEN (results can still come from the termination message)."""

    report_key: bytes | None = dataclasses.field(default=None, repr=False)
    """HMAC key of report tokens, loaded from (or stored in) a Secret at start-up. Never logged."""

    progress_interval_seconds: float = 2.0
    """At most one status write per task per interval for progress; the latest report wins."""

    result_limit_bytes: int = 16 * 1024
    """Largest result accepted (HTTP 413 above it; never truncated)."""

    archive_required: bool = False
    """Delete a finished task at its TTL (and a ScheduledTask's run beyond its history limits) only once the
    archive holds it: once the archiver's ``asynctask.dev/archived`` annotation names its finished state.
    Set by the chart with ``archive.enabled``; while the archiver is down, finished tasks stay."""

    short_attempt_seconds: float = 0.0
    """The short-attempt window (docs/adr/0029-short-attempt-window.md): an attempt whose Job has existed
    for less than this is not written ``Running`` yet; if its Job ends within it, one status write
    records the attempt and its end (2 writes per successful task, not 3). 0: off, ``Running`` is
    written with the Job's creation. Not applied to a task whose callback asks for the Running event."""

    callback_max_attempts: int = 6
    """Deliveries of one callback event before it is given up (a callback's maxAttempts overrides it)."""

    callback_base_seconds: float = 20.0
    """Delay after the first failed delivery; doubled after each (20, 40, 80, 160, 320 s: about 10 minutes)."""

    callback_max_delay_seconds: float = 600.0
    """Cap on one delay between deliveries (a longer Retry-After is capped at an hour)."""

    callback_timeout_seconds: float = 10.0
    """Per-request timeout of a delivery (a callback's timeoutSeconds overrides it)."""
