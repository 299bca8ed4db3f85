"""docs/design.md §3.4: the pure core of callbacks — event ids and bodies, signatures, verdicts, retry schedule (the SSRF guard: test_destinations)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from typing import Any

import pytest
from cloudevents.core.bindings.http import HTTPMessage, from_structured
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from cloudevents.v1.http import from_json
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from asynctask_operator.core import callbacks as cb
from asynctask_operator.core.callbacks import (
    DEFAULT_EVENTS,
    MAX_ERROR_TEXT,
    DeliveryOutcome,
    after_delivery,
    cloud_event,
    custom_headers,
    event_id,
    new_event,
    parse_retry_after,
    retry_delay,
    verdict,
    webhook_headers,
)
from asynctask_operator.core.config import CoreConfig
from asynctask_operator.core.models import AsyncTask, CallbackSpec, CallbackStatus
from asynctask_operator.core.timestamps import parse_stamp, stamp
from tests.unit.builders import task
from tests.unit.story import Story, attempt_failed, attempt_succeeded

CONFIG = CoreConfig()
NOW = dt.datetime(2025, 3, 1, 12, 0, 30, tzinfo=dt.UTC)
WHSEC = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()


def record(id_: str = "uid-t.succeeded.1", **fields: Any) -> CallbackStatus:
    values: dict[str, Any] = {"id": id_, "event": "Succeeded", "task_attempt": 1, "state": "Pending", "attempts": 0}
    values.update(fields)
    return CallbackStatus(**values)


def outcome(
    delivery: int = 1, id_: str = "uid-t.succeeded.1", at_: dt.datetime = NOW, **fields: Any
) -> DeliveryOutcome:
    return DeliveryOutcome(id=id_, delivery=delivery, at=at_, **fields)


# --------------------------------------------------------------------------- event ids


@pytest.mark.parametrize(
    ("event", "attempt", "previous", "expected"),
    [
        ("Succeeded", 1, None, "uid-1.succeeded.1"),
        ("Failed", 3, None, "uid-1.failed.3"),
        ("Cancelled", 0, None, "uid-1.cancelled.0"),
        ("Running", 2, "uid-1.running.1", "uid-1.running.2"),  # another attempt: no suffix
        ("Failed", 1, "uid-1.retrying.1", "uid-1.failed.1"),  # another event: no suffix
        ("Failed", 1, "uid-1.failed.12", "uid-1.failed.1"),  # attempt 12 is not a repeat of attempt 1
        ("Cancelled", 0, "uid-1.cancelled.0", "uid-1.cancelled.0.2"),  # the same phase+attempt again
        ("Cancelled", 0, "uid-1.cancelled.0.2", "uid-1.cancelled.0.3"),
        ("Cancelled", 0, "uid-1.cancelled.0.9", "uid-1.cancelled.0.10"),
        ("Cancelled", 0, "uid-1.cancelled.0.x", "uid-1.cancelled.0.2"),  # a hand-edited suffix
    ],
)
def test_event_id(event: str, attempt: int, previous: str | None, expected: str) -> None:
    prev = None if previous is None else record(previous, event="Cancelled", state="Delivered")
    assert event_id("uid-1", event, attempt, prev) == expected


def test_every_repeat_gets_a_new_id() -> None:
    seen: set[str] = set()
    previous = None
    for _ in range(5):
        ident = event_id("uid-1", "Cancelled", 0, previous)
        assert ident not in seen
        seen.add(ident)
        previous = record(ident, event="Cancelled", state="Delivered")


@pytest.mark.parametrize(
    ("events", "phase", "selected"),
    [
        (None, "Succeeded", True),
        (None, "Failed", True),
        (None, "Cancelled", True),
        (None, "Running", False),
        (None, "Retrying", False),
        (None, "Pending", False),
        (["Running"], "Running", True),
        (["Running"], "Succeeded", False),  # a selection replaces the default
        (["Retrying", "Failed"], "Retrying", True),
        (["Retrying", "Failed"], "Cancelled", False),
    ],
)
def test_new_event_only_for_selected_phases(events: list[str] | None, phase: str, selected: bool) -> None:
    spec = CallbackSpec(url="https://hooks.example.com/x", events=events)
    made = new_event(spec, "uid-1", phase, 2, "2025-03-01T12:00:30Z", None)
    if not selected:
        assert made is None
        return
    assert made is not None
    assert made.model_dump(exclude_none=True) == {
        "id": f"uid-1.{phase.lower()}.2",
        "event": phase,
        "task_attempt": 2,
        "event_time": "2025-03-01T12:00:30Z",
        "state": "Pending",
        "attempts": 0,
    }


def test_default_events_are_the_terminal_phases() -> None:
    assert set(DEFAULT_EVENTS) == {"Succeeded", "Failed", "Cancelled"}


# --------------------------------------------------------------------------- the body


def finished(succeed: bool) -> tuple[AsyncTask, CallbackStatus]:
    story = Story(task("t").retry(max_retries=0).callback().build())
    story.step(5)
    story.step(30, **(attempt_succeeded("t", 1) if succeed else attempt_failed("t", 1, exit_code=3)))
    assert story.status.callback is not None
    return story.task, story.status.callback


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_cloud_event_of_a_success() -> None:
    obj, rec = finished(succeed=True)
    event = cloud_event(obj, obj.status, rec)
    assert {k: v for k, v in event.items() if k != "data"} == {
        "specversion": "1.0",
        "id": "uid-t.succeeded.1",
        "source": "/namespaces/media/asynctasks/t",
        "type": "dev.asynctask.task.succeeded",
        "subject": "t",
        "time": "2025-03-01T12:00:30Z",
        "datacontenttype": "application/json",
        # the distributed-tracing extension: the span of this event's first delivery, in the task's trace
        "traceparent": f"00-{sha('uid-t')[:32]}-{sha('uid-t/1/callback/uid-t.succeeded.1')[:16]}-01",
    }
    assert event["data"] == {
        "uid": "uid-t",
        "name": "t",
        "namespace": "media",
        "type": "echo",
        "phase": "Succeeded",
        "reason": "Completed",
        "message": "attempt 1 succeeded",
        "attempt": 1,
        "result": None,
        "error": None,
        "queuedTime": "2025-03-01T12:00:00Z",
        "startTime": "2025-03-01T12:00:05Z",
        "completionTime": "2025-03-01T12:00:30Z",
        "durationSeconds": 25.0,
    }


def test_cloud_event_of_a_failure_carries_the_error() -> None:
    obj, rec = finished(succeed=False)
    event = cloud_event(obj, obj.status, rec)
    assert event["type"] == "dev.asynctask.task.failed"
    assert event["id"] == "uid-t.failed.1"
    data = event["data"]
    assert data["phase"] == "Failed"
    assert obj.status.error is not None
    assert data["error"] == obj.status.error.dump()
    assert data["error"]["code"] == obj.status.reason


def test_cloud_event_of_a_running_event_says_running_and_carries_the_attempt() -> None:
    story = Story(task("t").callback(events=["Running"]).build())
    story.step(5)
    rec = story.status.callback
    assert rec is not None
    story.step(30, **attempt_succeeded("t", 1))  # the task moved on while the Running event is delivered
    event = cloud_event(story.task, story.status, rec)
    assert event["type"] == "dev.asynctask.task.running"
    assert event["data"]["phase"] == "Running"
    assert event["data"]["attempt"] == 1
    assert event["data"]["attemptStatus"]["attempt"] == 1
    assert event["data"]["attemptStatus"]["job"] == "t-1"


@pytest.mark.parametrize("succeed", [True, False])
def test_the_body_is_a_valid_structured_cloudevent_1_0(succeed: bool) -> None:
    obj, rec = finished(succeed)
    event = cloud_event(obj, obj.status, rec)
    body = json.dumps(event, separators=(",", ":")).encode()  # as the dispatcher sends it
    headers = webhook_headers(rec.id, NOW, body, None)
    # the SDK's own validation of a v1.0 event (raises CloudEventValidationError when not conformant)
    parsed = from_structured(HTTPMessage(headers=headers, body=body), JSONFormat(), CloudEvent)
    assert parsed.get_specversion() == "1.0"
    assert parsed.get_id() == rec.id
    assert parsed.get_type() == f"dev.asynctask.task.{rec.event.lower()}"
    assert parsed.get_source() == "/namespaces/media/asynctasks/t"
    assert parsed.get_time() == dt.datetime(2025, 3, 1, 12, 0, 30, tzinfo=dt.UTC)
    assert parsed.get_data() == event["data"]
    # and the structured content type of the HTTP binding
    assert JSONFormat.JSON_CONTENT_TYPE_PATTERN.match(headers["content-type"])
    assert headers["content-type"].startswith(JSONFormat.CONTENT_TYPE)
    # the v1 SDK reads it too
    legacy = from_json(body)
    assert (legacy["specversion"], legacy["id"], legacy["source"]) == ("1.0", rec.id, event["source"])


# --------------------------------------------------------------------------- signatures


def body_of(text: str = '{"specversion":"1.0","id":"x"}') -> bytes:
    return text.encode()


@pytest.mark.parametrize(
    ("stored", "verifier"),
    [
        (WHSEC.encode(), WHSEC),
        ((WHSEC + "\n").encode(), WHSEC),  # a Secret made from a file keeps its trailing newline
        (b"a raw signing key, not whsec", b"a raw signing key, not whsec"),
        (b"\xff\xfe\x00binary", b"\xff\xfe\x00binary"),  # not UTF-8: the raw key
    ],
    ids=["whsec", "whsec-with-newline", "raw-text", "raw-binary"],
)
def test_signature_verifies_with_standardwebhooks(stored: bytes, verifier: str | bytes) -> None:
    now = dt.datetime.now(dt.UTC)
    body = body_of()
    headers = webhook_headers("uid-t.succeeded.1", now, body, stored)
    assert headers["webhook-signature"].startswith("v1,")
    assert Webhook(verifier).verify(body, headers) == json.loads(body)


def test_a_signature_does_not_verify_with_another_key_or_body() -> None:
    now = dt.datetime.now(dt.UTC)
    headers = webhook_headers("id-1", now, body_of(), WHSEC.encode())
    other = "whsec_" + base64.b64encode(b"another key of 32 bytes, really.").decode()
    with pytest.raises(WebhookVerificationError):
        Webhook(other).verify(body_of(), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(WHSEC).verify(body_of('{"tampered":true}'), headers)


def test_headers_without_a_secret_are_unsigned() -> None:
    for secret in (None, b""):
        headers = webhook_headers("id-1", NOW, body_of(), secret)
        assert headers == {
            "content-type": "application/cloudevents+json; charset=utf-8",
            "webhook-id": "id-1",
            "webhook-timestamp": str(int(NOW.timestamp())),
        }


def test_webhook_id_and_timestamp() -> None:
    moment = dt.datetime(2025, 3, 1, 12, 0, 30, 900000, tzinfo=dt.UTC)
    headers = webhook_headers("uid-t.failed.2", moment, body_of(), WHSEC.encode())
    assert headers["webhook-id"] == "uid-t.failed.2"
    assert headers["webhook-timestamp"] == "1740830430"  # whole seconds, rounded down


def test_signature_verifies_for_a_time_given_in_another_zone() -> None:
    now = dt.datetime.now(dt.UTC).astimezone(dt.timezone(dt.timedelta(hours=2)))
    headers = webhook_headers("id-1", now, body_of(), WHSEC.encode())
    Webhook(WHSEC).verify(body_of(), headers)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({}, {}),
        ({"X-Api-Key": b" secret-1 \n"}, {"x-api-key": "secret-1"}),
        ({"Authorization": b"Bearer abc", "x-b": b"2"}, {"authorization": "Bearer abc", "x-b": "2"}),
    ],
)
def test_custom_headers(data: dict[str, bytes], expected: dict[str, str]) -> None:
    assert custom_headers("media/hook-headers", data) == expected


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({"Content-Type": b"text/plain"}, ["'Content-Type'", "sets itself"]),
        ({"webhook-signature": b"v1,forged"}, ["'webhook-signature'"]),
        ({"WEBHOOK-ID": b"x"}, ["'WEBHOOK-ID'"]),
        ({"webhook-timestamp": b"1"}, ["'webhook-timestamp'"]),
        ({"host": b"metadata.google.internal"}, ["'host'"]),
        ({"content-length": b"1"}, ["'content-length'"]),
        ({"transfer-encoding": b"chunked"}, ["'transfer-encoding'"]),
        ({"x-api-key": b"a\nb"}, ["'x-api-key'", "line break"]),
        ({"x-api-key": b"a\r\nX-Injected: 1"}, ["'x-api-key'", "line break"]),
        ({"x-api-key": b"a\rb"}, ["line break"]),
        ({"x-api-key": b"\xff\xfe"}, ["not UTF-8"]),
    ],
)
def test_custom_headers_refuses(data: dict[str, bytes], words: list[str]) -> None:
    with pytest.raises(ValueError) as caught:
        custom_headers("media/hook-headers", data)
    assert "media/hook-headers" in str(caught.value)
    for word in words:
        assert word in str(caught.value)


# --------------------------------------------------------------------------- verdicts


@pytest.mark.parametrize(
    ("fields", "kind", "words"),
    [
        ({"status_code": 200}, "delivered", []),
        ({"status_code": 204}, "delivered", []),
        ({"status_code": 299}, "delivered", []),
        ({"status_code": 301, "location": "https://b.example.com/"}, "failed", ["redirects", "https://b.example.com/"]),
        ({"status_code": 302}, "failed", ["redirects", "HTTP 302"]),
        ({"status_code": 307}, "failed", ["redirects"]),
        ({"status_code": 400, "body_excerpt": "bad event"}, "failed", ["HTTP 400", "bad event"]),
        ({"status_code": 401}, "failed", ["HTTP 401"]),
        ({"status_code": 404}, "failed", ["HTTP 404"]),
        ({"status_code": 410}, "failed", ["HTTP 410"]),
        ({"status_code": 408}, "retry", ["HTTP 408"]),
        ({"status_code": 429}, "retry", ["HTTP 429"]),
        ({"status_code": 500, "body_excerpt": "oops"}, "retry", ["HTTP 500", "oops"]),
        ({"status_code": 502}, "retry", ["HTTP 502"]),
        ({"status_code": 503}, "retry", ["HTTP 503"]),
        ({"error": "ConnectError: connection refused"}, "retry", ["connection refused"]),
        ({}, "retry", ["no answer"]),
        ({"refused": "callback to x refused"}, "refused", ["callback to x refused"]),
        ({"refused": "nope", "status_code": 200}, "refused", ["nope"]),  # a refusal wins
        ({"fatal": "Secret media/h: key 'host' ..."}, "failed", ["key 'host'"]),
    ],
)
def test_verdict(fields: dict[str, Any], kind: str, words: list[str]) -> None:
    got, message = verdict(outcome(**fields))
    assert got == kind
    if kind == "delivered":
        assert message == ""
    for word in words:
        assert word in message


# --------------------------------------------------------------------------- retry schedule


@pytest.mark.parametrize(("failed", "base"), [(1, 20.0), (2, 40.0), (3, 80.0), (4, 160.0), (5, 320.0)])
def test_retry_delay_schedule_with_jitter(failed: int, base: float) -> None:
    delays = [retry_delay(CONFIG, failed, f"uid-{i}.failed.1", None) for i in range(200)]
    assert all(base * 0.8 <= d <= base * 1.2 for d in delays)
    assert min(delays) < base * 0.9 and max(delays) > base * 1.1  # jitter does spread them
    assert len(set(delays)) > 100


def test_the_default_schedule_lasts_about_ten_minutes() -> None:
    total = sum(retry_delay(CONFIG, n, "uid-1.succeeded.1", None) for n in range(1, CONFIG.callback_max_attempts))
    assert 0.8 * 620 <= total <= 1.2 * 620


def test_retry_delay_is_deterministic() -> None:
    assert retry_delay(CONFIG, 3, "uid-1.failed.1", None) == retry_delay(CONFIG, 3, "uid-1.failed.1", None)
    assert retry_delay(CONFIG, 3, "uid-1.failed.1", None) != retry_delay(CONFIG, 3, "uid-2.failed.1", None)


@pytest.mark.parametrize("failed", [6, 10, 31, 1000])
def test_retry_delay_is_capped_before_jitter(failed: int) -> None:
    delays = [retry_delay(CONFIG, failed, f"uid-{i}.failed.1", None) for i in range(50)]
    assert all(600 * 0.8 <= d <= 600 * 1.2 for d in delays)


def test_retry_delay_never_exceeds_the_cap() -> None:
    config = CoreConfig(callback_base_seconds=20, callback_max_delay_seconds=100)
    assert all(retry_delay(config, 5, f"uid-{i}.failed.1", None) <= 100 for i in range(50))


@pytest.mark.parametrize(
    ("retry_after", "low", "high"),
    [
        (None, 16.0, 24.0),
        (0.0, 16.0, 24.0),  # zero: ignored
        (-5.0, 16.0, 24.0),
        (5.0, 16.0, 24.0),  # shorter than the schedule: the schedule
        (120.0, 120.0, 120.0),  # longer: honoured
        (3600.0, 3600.0, 3600.0),
        (86400.0, 3600.0, 3600.0),  # at most an hour
    ],
)
def test_retry_after_is_honoured_and_capped(retry_after: float | None, low: float, high: float) -> None:
    delay = retry_delay(CONFIG, 1, "uid-1.succeeded.1", retry_after)
    assert low <= delay <= high


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("120", 120.0),
        (" 7 ", 7.0),
        ("0", 0.0),
        ("Sat, 01 Mar 2025 12:02:30 GMT", 120.0),
        ("Sat, 01 Mar 2025 12:00:00 GMT", 0.0),  # in the past: now
        ("soon", None),
        ("-5", None),
        ("1.5", None),
        ("Mon, 99 Foo 2025 99:99:99 GMT", None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, NOW) == expected


def test_parse_retry_after_never_raises_on_unicode_digits() -> None:
    assert parse_retry_after("²", NOW) is None


# --------------------------------------------------------------------------- after a delivery


def test_after_delivery_delivered() -> None:
    rec = after_delivery(record(), outcome(status_code=204), None, CONFIG)
    assert rec.model_dump(exclude_none=True) == {
        **record().model_dump(exclude_none=True),
        "state": "Delivered",
        "attempts": 1,
        "last_status_code": 204,
        "last_attempt_time": "2025-03-01T12:00:30Z",
    }


def test_after_delivery_retry_waits_until_a_whole_second() -> None:
    moment = NOW + dt.timedelta(microseconds=250000)
    rec = after_delivery(record(), outcome(at_=moment, status_code=503, body_excerpt="busy"), None, CONFIG)
    assert (rec.state, rec.attempts, rec.last_status_code) == ("Delivering", 1, 503)
    assert rec.last_error == "HTTP 503: busy"
    due = parse_stamp(rec.next_attempt_time)
    assert due is not None and due.microsecond == 0
    exact = moment + dt.timedelta(seconds=retry_delay(CONFIG, 1, rec.id, None))
    assert exact <= due < exact + dt.timedelta(seconds=1)


def test_after_delivery_honours_retry_after() -> None:
    rec = after_delivery(record(), outcome(status_code=429, retry_after=300.0), None, CONFIG)
    assert rec.next_attempt_time == stamp(NOW + dt.timedelta(seconds=300))


def test_after_delivery_counts_on_from_the_record() -> None:
    rec = after_delivery(record(attempts=2, state="Delivering"), outcome(3, error="timed out"), None, CONFIG)
    assert (rec.state, rec.attempts, rec.last_error) == ("Delivering", 3, "timed out")
    due = parse_stamp(rec.next_attempt_time)
    assert due is not None
    assert 80 * 0.8 <= (due - NOW).total_seconds() <= 80 * 1.2 + 1


def test_after_delivery_gives_up_after_max_attempts() -> None:
    last = record(attempts=5, state="Delivering", next_attempt_time="2025-03-01T12:00:30Z")
    rec = after_delivery(last, outcome(6, status_code=503), None, CONFIG)
    assert (rec.state, rec.attempts, rec.next_attempt_time) == ("Failed", 6, None)
    assert rec.last_error == "gave up after 6 deliveries; the last: HTTP 503"


@pytest.mark.parametrize(
    ("max_attempts", "attempts_before", "state"),
    [
        (2, 1, "Failed"),  # fewer than the operator's 6
        (1, 0, "Failed"),
        (10, 5, "Delivering"),  # more than the operator's 6
        (10, 9, "Failed"),
        (None, 4, "Delivering"),
        (None, 5, "Failed"),
    ],
)
def test_spec_max_attempts_overrides_the_config(max_attempts: int | None, attempts_before: int, state: str) -> None:
    spec = CallbackSpec(url="https://hooks.example.com/x", max_attempts=max_attempts)
    rec = after_delivery(record(attempts=attempts_before), outcome(attempts_before + 1, error="boom"), spec, CONFIG)
    assert rec.state == state


@pytest.mark.parametrize(
    ("fields", "state", "words"),
    [
        ({"status_code": 400}, "Failed", ["HTTP 400"]),
        ({"status_code": 302, "location": "http://169.254.169.254/"}, "Failed", ["redirects"]),
        ({"refused": "callback to x refused: loopback"}, "Refused", ["loopback"]),
        ({"fatal": "reserved header"}, "Failed", ["reserved header"]),
    ],
)
def test_after_delivery_final_at_once(fields: dict[str, Any], state: str, words: list[str]) -> None:
    rec = after_delivery(record(), outcome(**fields), None, CONFIG)
    assert (rec.state, rec.attempts, rec.next_attempt_time) == (state, 1, None)
    assert rec.last_error is not None
    for word in words:
        assert word in rec.last_error


def test_after_delivery_clips_the_error() -> None:
    rec = after_delivery(record(), outcome(status_code=500, body_excerpt="x" * 2000), None, CONFIG)
    assert rec.last_error is not None
    assert len(rec.last_error) == MAX_ERROR_TEXT
    assert rec.last_error.endswith("…")


def test_reserved_headers_are_the_ones_the_operator_sets() -> None:
    assert {"webhook-id", "webhook-timestamp", "webhook-signature", "content-type", "host"} <= cb.RESERVED_HEADERS
