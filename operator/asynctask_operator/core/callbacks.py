"""Callbacks (docs/design.md §3.4): which event to send, what it says, how a delivery went, when to try again.

Everything here is pure. The lifecycle (:mod:`~asynctask_operator.core.lifecycle`)
records a new event in ``status.callback`` in the same status write as the phase
change that caused it, so that an event is never lost between the two; the
controllers send it and hand back a :class:`DeliveryOutcome`, which the next
decision folds into the status. A restarted operator therefore resumes from the
status: ``Pending``/``Delivering`` are sent (again), ``Delivered``, ``Failed`` and
``Refused`` never are.

Delivery is at least once: an operator that dies between a delivery and the status
write that records it delivers again, with the same ``webhook-id``, so that the
receiver can de-duplicate.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import math
from typing import Any, Literal

from standardwebhooks.webhooks import Webhook

from asynctask_operator.core import tracing
from asynctask_operator.core.config import CoreConfig
from asynctask_operator.core.models import (
    AsyncTask,
    AsyncTaskStatus,
    CallbackSpec,
    CallbackStatus,
    SecretKeyRef,
    SecretRef,
)
from asynctask_operator.core.retry import backoff
from asynctask_operator.core.timestamps import ceil_second, stamp

DEFAULT_EVENTS: tuple[str, ...] = ("Succeeded", "Failed", "Cancelled")
OPEN_STATES = frozenset({"Pending", "Delivering"})
EVENT_TYPE_PREFIX = "dev.asynctask.task."
MAX_RETRY_AFTER = 3600.0
MAX_ERROR_TEXT = 512
RESERVED_HEADERS = frozenset(
    {
        "content-type",
        "content-length",
        "host",
        "transfer-encoding",
        "connection",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
    }
)

Verdict = Literal["delivered", "retry", "failed", "refused"]


# --------------------------------------------------------------------------- which event


def events_of(spec: CallbackSpec) -> tuple[str, ...]:
    return tuple(spec.events) if spec.events else DEFAULT_EVENTS


def event_id(uid: str, event: str, task_attempt: int, previous: CallbackStatus | None) -> str:
    """The event's id: the CloudEvents ``id`` and the ``webhook-id``, kept in the status so that every
    retry of one event carries the same one.

    ``<uid>.<event>.<attempt>``; a second event of the same phase and attempt (a task cancelled
    before it ever ran, retried by hand and cancelled again) gets a suffix, so that a receiver
    de-duplicating on it does not drop it."""
    base = f"{uid}.{event.lower()}.{task_attempt}"
    if previous is None or not (previous.id == base or previous.id.startswith(base + ".")):
        return base
    suffix = previous.id[len(base) + 1 :] if previous.id != base else "1"
    return f"{base}.{int(suffix) + 1 if suffix.isdigit() else 2}"


def new_event(
    spec: CallbackSpec,
    uid: str,
    phase: str,
    task_attempt: int,
    now: str,
    previous: CallbackStatus | None,
) -> CallbackStatus | None:
    """The record of a new event when the task just reached ``phase``; ``None`` when it is not selected."""
    if phase not in events_of(spec):
        return None
    return CallbackStatus(
        id=event_id(uid, phase, task_attempt, previous),
        event=phase,
        task_attempt=task_attempt,
        event_time=now,
        state="Pending",
        attempts=0,
    )


# --------------------------------------------------------------------------- what it says


def cloud_event(task: AsyncTask, status: AsyncTaskStatus, record: CallbackStatus) -> dict[str, Any]:
    """The CloudEvents 1.0 structured-mode event of ``record`` (the body of the POST) for its next delivery.

    ``data`` is the task as the status says at delivery, with the phase and attempt of the
    event (a Running event still being retried after the task moved on says Running).
    ``traceparent`` (the CloudEvents distributed-tracing extension) names that delivery's span."""
    meta = task.metadata
    data: dict[str, Any] = {
        "uid": meta.uid,
        "name": meta.name,
        "namespace": meta.namespace,
        "type": task.spec.type,
        "phase": record.event,
        "reason": status.reason,
        "message": status.message,
        "attempt": record.task_attempt,
        "result": status.result,
        "error": status.error.dump() if status.error else None,
        "queuedTime": status.queued_time,
        "startTime": status.start_time,
        "completionTime": status.completion_time,
        "durationSeconds": status.duration_seconds,
    }
    if record.event in ("Running", "Retrying"):
        attempt = next((a for a in status.attempts or () if a.attempt == record.task_attempt), None)
        if attempt is not None:
            data["attemptStatus"] = attempt.dump()
    return {
        "specversion": "1.0",
        "id": record.id,
        "source": f"/namespaces/{meta.namespace}/asynctasks/{meta.name}",
        "type": EVENT_TYPE_PREFIX + record.event.lower(),
        "subject": meta.name,
        "time": record.event_time,
        "datacontenttype": "application/json",
        **tracing.delivery_context(task, record.id, record.attempts + 1),
        "data": data,
    }


def signing_key(value: bytes) -> str | bytes:
    """A signing secret as a Secret holds it: ``whsec_<base64>`` (Standard Webhooks' form) is used as
    such; anything else is the raw HMAC key. Raises ValueError for a ``whsec_`` value that is not base64."""
    try:
        text = value.decode().strip()
    except UnicodeDecodeError:
        return value
    if not text.startswith("whsec_"):
        return value
    try:
        Webhook(text)
    except Exception:
        raise ValueError(
            "the signing secret starts with whsec_ but the rest is not base64 (or is empty): "
            "use whsec_ + base64 of random bytes, e.g. whsec_$(head -c 24 /dev/urandom | base64)"
        ) from None
    return text


def webhook_headers(msg_id: str, at: dt.datetime, body: bytes, secret: bytes | None) -> dict[str, str]:
    """The Standard Webhooks headers of one delivery (signed when there is a secret)."""
    headers = {
        "content-type": "application/cloudevents+json; charset=utf-8",
        "webhook-id": msg_id,
        "webhook-timestamp": str(math.floor(at.timestamp())),
    }
    if secret:
        headers["webhook-signature"] = Webhook(signing_key(secret)).sign(msg_id, at.astimezone(dt.UTC), body.decode())
    return headers


def custom_headers(secret_name: str, data: dict[str, bytes]) -> dict[str, str]:
    """Headers from a Secret: each key is a header name; a reserved or malformed one is refused."""
    headers: dict[str, str] = {}
    for name, value in sorted(data.items()):
        lowered = name.lower()
        if lowered in RESERVED_HEADERS:
            raise ValueError(f"Secret {secret_name}: key {name!r} is a header the operator sets itself; remove it")
        try:
            text = value.decode().strip()
        except UnicodeDecodeError:
            raise ValueError(f"Secret {secret_name}: the value of {name!r} is not UTF-8 text") from None
        if "\n" in text or "\r" in text:
            raise ValueError(f"Secret {secret_name}: the value of {name!r} holds a line break")
        if not text.isascii() or not name.isascii():
            raise ValueError(f"Secret {secret_name}: header {name!r} must be ASCII (HTTP headers are)")
        headers[lowered] = text
    return headers


# --------------------------------------------------------------------------- how it went


@dataclasses.dataclass(frozen=True)
class CallbackSend:
    """A delivery the controllers are asked to make now."""

    namespace: str
    id: str
    delivery: int  # 1-based number of this delivery of the event
    url: str
    event: dict[str, Any]
    secret_ref: SecretKeyRef | None
    headers_secret_ref: SecretRef | None
    timeout_seconds: float
    max_attempts: int = 6  # this is the last delivery when ``delivery`` reaches it


@dataclasses.dataclass(frozen=True)
class DeliveryOutcome:
    """What one delivery got: a status code, an error before any answer, or a refusal of the address."""

    id: str
    delivery: int
    at: dt.datetime
    status_code: int | None = None
    error: str | None = None  # network error, timeout, missing Secret: retried
    refused: str | None = None  # the SSRF guard refused the address: final
    fatal: str | None = None  # a configuration error no retry can fix (a reserved header): final
    retry_after: float | None = None  # seconds, from a Retry-After header
    location: str | None = None  # a redirect's target (never followed)
    body_excerpt: str = ""


def verdict(outcome: DeliveryOutcome) -> tuple[Verdict, str]:
    """Classify one delivery, with the message ``status.callback.lastError`` shows."""
    if outcome.refused is not None:
        return "refused", outcome.refused
    if outcome.fatal is not None:
        return "failed", outcome.fatal
    code = outcome.status_code
    if code is None:
        return "retry", outcome.error or "no answer"
    excerpt = f": {outcome.body_excerpt}" if outcome.body_excerpt else ""
    if 200 <= code < 300:
        return "delivered", ""
    if code in (408, 429) or code >= 500:
        return "retry", f"HTTP {code}{excerpt}"
    if 300 <= code < 400:
        return "failed", f"HTTP {code}: redirects are not followed (to {outcome.location or '?'}); use the final URL"
    return "failed", f"HTTP {code}{excerpt}"


def retry_delay(config: CoreConfig, failed: int, msg_id: str, retry_after: float | None) -> float:
    """Seconds before the next delivery after ``failed`` failed ones: exponential with +/-20 % jitter
    (taken from the event id, so a restarted operator computes the same), at least the receiver's
    ``Retry-After`` (at most an hour of it)."""
    delay = backoff(failed, config.callback_base_seconds, config.callback_max_delay_seconds)
    digest = hashlib.sha256(f"{msg_id}/{failed}".encode()).digest()
    sample = int.from_bytes(digest[:4], "big") / 2**32
    delay = min(delay * (1.0 + 0.2 * (2.0 * sample - 1.0)), config.callback_max_delay_seconds)
    if retry_after is not None and retry_after > 0:
        delay = max(delay, min(retry_after, MAX_RETRY_AFTER))
    return max(delay, 0.0)


def after_delivery(
    record: CallbackStatus,
    outcome: DeliveryOutcome,
    spec: CallbackSpec | None,
    config: CoreConfig,
) -> CallbackStatus:
    """``record`` once ``outcome`` is known."""
    kind, message = verdict(outcome)
    attempts = record.attempts + 1
    allowed = (spec.max_attempts if spec and spec.max_attempts else None) or config.callback_max_attempts
    update: dict[str, Any] = {
        "attempts": attempts,
        "last_status_code": outcome.status_code,
        "last_error": _clip(message) or None,
        "last_attempt_time": stamp(outcome.at),
        "next_attempt_time": None,
    }
    if kind == "delivered":
        update["state"] = "Delivered"
    elif kind == "refused":
        update["state"] = "Refused"
    elif kind == "failed":
        update["state"] = "Failed"
    elif attempts >= allowed:
        update["state"] = "Failed"
        update["last_error"] = _clip(f"gave up after {attempts} deliveries; the last: {message}")
    else:
        due = outcome.at + dt.timedelta(seconds=retry_delay(config, attempts, record.id, outcome.retry_after))
        update["state"] = "Delivering"
        update["next_attempt_time"] = stamp(ceil_second(due))
    return record.model_copy(update=update)


def _clip(text: str) -> str:
    return text if len(text) <= MAX_ERROR_TEXT else text[: MAX_ERROR_TEXT - 1] + "…"


def parse_retry_after(value: str | None, now: dt.datetime) -> float | None:
    """A Retry-After header (delta-seconds or an HTTP date) as seconds from ``now``."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        from email.utils import parsedate_to_datetime

        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max((when - now).total_seconds(), 0.0)
