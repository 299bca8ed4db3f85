"""docs/design.md §3.4 through decide(): events recorded with the phase change, deliveries asked for, outcomes folded in."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from pydantic import ValidationError

from asynctask_operator.core import conditions as cond
from asynctask_operator.core.callbacks import DeliveryOutcome, retry_delay
from asynctask_operator.core.destinations import url_refusal
from asynctask_operator.core.lifecycle import RETRY_ANNOTATION, Admission, Decision
from asynctask_operator.core.models import AsyncTask, AsyncTaskStatus, CallbackStatus
from asynctask_operator.core.timestamps import parse_stamp
from tests.unit.builders import GRANTED, at, task, tasktype, with_annotation, with_cancel
from tests.unit.story import CONFIG, Story, attempt_failed, attempt_succeeded

URL = "https://hooks.example.com/tasks"


def outcome(rec: CallbackStatus, seconds: float, delivery: int | None = None, **fields: Any) -> DeliveryOutcome:
    return DeliveryOutcome(
        id=rec.id, delivery=rec.attempts + 1 if delivery is None else delivery, at=at(seconds), **fields
    )


def succeeded(builder: Any = None, ttl: int | None = None) -> tuple[Story, Decision]:
    """A task with a callback whose only attempt succeeded at 30s."""
    b = builder or task("t").callback()
    if ttl is not None:
        b = b.ttl(ttl)
    story = Story(b.build())
    story.step(5)
    decision = story.step(30, **attempt_succeeded("t", 1))
    assert story.status.phase == "Succeeded"
    return story, decision


def callback_of(story: Story) -> CallbackStatus:
    rec = story.status.callback
    assert rec is not None
    return rec


def condition(status: AsyncTaskStatus, type_: str) -> tuple[str, str, str] | None:
    for c in status.conditions or ():
        if c.type == type_:
            return c.status, c.reason, c.message
    return None


# --------------------------------------------------------------------------- which events


def test_default_events_are_terminal_only() -> None:
    story = Story(task("t").callback().build())
    running = story.step(5)
    assert story.status.phase == "Running"
    assert story.status.callback is None
    assert running.send_callback is None
    done = story.step(30, **attempt_succeeded("t", 1))
    assert done.status is not None and done.status.callback is not None
    assert (done.status.callback.event, done.status.callback.state) == ("Succeeded", "Pending")


def test_running_and_succeeded_each_get_their_own_event() -> None:
    story = Story(task("t").callback(events=["Running", "Succeeded"]).build())
    running = story.step(5)
    assert running.status is not None and running.create_job is not None
    first = callback_of(story)
    assert (first.id, first.event, first.task_attempt, first.state) == ("uid-t.running.1", "Running", 1, "Pending")
    assert running.send_callback is not None and running.send_callback.id == "uid-t.running.1"
    assert running.send_callback.event["type"] == "dev.asynctask.task.running"
    story.step(6, callback_outcome=outcome(first, 6, status_code=200))
    assert callback_of(story).state == "Delivered"
    done = story.step(30, **attempt_succeeded("t", 1))
    second = callback_of(story)
    assert (second.id, second.event, second.state, second.attempts) == (
        "uid-t.succeeded.1",
        "Succeeded",
        "Pending",
        0,
    )
    assert done.send_callback is not None and done.send_callback.id == "uid-t.succeeded.1"


def test_the_event_is_in_the_same_status_write_as_the_phase_change() -> None:
    _, decision = succeeded()
    assert decision.status is not None
    assert decision.status.phase == "Succeeded"
    assert decision.status.callback == CallbackStatus(
        id="uid-t.succeeded.1",
        event="Succeeded",
        task_attempt=1,
        event_time="2025-03-01T12:00:30Z",
        state="Pending",
        attempts=0,
    )


def test_a_pending_event_is_sent_at_once_with_delivery_1_and_its_body() -> None:
    _, decision = succeeded(task("t").callback(URL, timeoutSeconds=3))
    send = decision.send_callback
    assert send is not None
    assert (send.namespace, send.id, send.delivery, send.url, send.timeout_seconds) == (
        "media",
        "uid-t.succeeded.1",
        1,
        URL,
        3.0,
    )
    assert (send.secret_ref, send.headers_secret_ref) == (None, None)
    assert send.event["id"] == "uid-t.succeeded.1"
    assert send.event["type"] == "dev.asynctask.task.succeeded"
    assert send.event["source"] == "/namespaces/media/asynctasks/t"
    assert send.event["data"]["phase"] == "Succeeded"
    assert send.event["data"]["completionTime"] == "2025-03-01T12:00:30Z"


def test_the_send_carries_the_secret_refs_and_the_operator_timeout() -> None:
    builder = task("t").callback(URL, secretRef={"name": "hook", "key": "signing"}, headersSecretRef={"name": "hh"})
    _, decision = succeeded(builder)
    send = decision.send_callback
    assert send is not None
    assert send.secret_ref is not None and (send.secret_ref.name, send.secret_ref.key) == ("hook", "signing")
    assert send.headers_secret_ref is not None and send.headers_secret_ref.name == "hh"
    assert send.timeout_seconds == CONFIG.callback_timeout_seconds


def test_a_pending_event_is_asked_for_again_until_an_outcome_comes() -> None:
    story, _ = succeeded()
    again = story.step(31)  # e.g. after a restart: the status still says Pending
    assert not again.writes
    assert again.send_callback is not None and again.send_callback.delivery == 1


# --------------------------------------------------------------------------- outcomes


def test_a_delivered_outcome() -> None:
    story, _ = succeeded()
    rec = callback_of(story)
    decision = story.step(32, callback_outcome=outcome(rec, 31, status_code=204))
    assert decision.status is not None
    assert decision.send_callback is None
    got = callback_of(story)
    assert (got.state, got.attempts, got.last_status_code, got.last_error) == ("Delivered", 1, 204, None)
    assert got.last_attempt_time == "2025-03-01T12:00:31Z"
    assert condition(story.status, cond.CALLBACK_DELIVERED) == ("True", "Delivered", "Succeeded event delivered")
    assert story.status.phase == "Succeeded"  # nothing else moves
    later = story.step(40)
    assert not later.writes and later.send_callback is None


def test_a_retried_outcome_waits_then_sends_delivery_2() -> None:
    story, _ = succeeded()
    rec = callback_of(story)
    decision = story.step(31, callback_outcome=outcome(rec, 31, status_code=503))
    assert decision.send_callback is None
    got = callback_of(story)
    assert (got.state, got.attempts, got.last_status_code, got.last_error) == ("Delivering", 1, 503, "HTTP 503")
    due = parse_stamp(got.next_attempt_time)
    assert due is not None
    delay = retry_delay(CONFIG, 1, rec.id, None)
    assert at(31) + dt.timedelta(seconds=delay) <= due < at(32) + dt.timedelta(seconds=delay)
    assert decision.requeue_after == pytest.approx((due - at(31)).total_seconds())
    # not decided yet: still the condition the event's recording set
    assert condition(story.status, cond.CALLBACK_DELIVERED) == ("False", "Pending", "Succeeded event not delivered yet")

    before = (due - at(0)).total_seconds() - 1
    waiting = story.step(before)
    assert not waiting.writes and waiting.send_callback is None
    assert waiting.requeue_after == pytest.approx(1.0)

    now_due = story.step((due - at(0)).total_seconds())
    assert now_due.send_callback is not None
    assert (now_due.send_callback.id, now_due.send_callback.delivery) == (rec.id, 2)

    story.step((due - at(0)).total_seconds() + 1, callback_outcome=outcome(got, due.timestamp() - at(0).timestamp()))
    assert callback_of(story).state == "Delivering"  # no status code, no error: "no answer", retried
    assert callback_of(story).attempts == 2


def test_retry_after_sets_the_next_attempt() -> None:
    story, _ = succeeded()
    rec = callback_of(story)
    decision = story.step(31, callback_outcome=outcome(rec, 31, status_code=429, retry_after=600.0))
    assert callback_of(story).next_attempt_time == "2025-03-01T12:10:31Z"
    assert decision.requeue_after == pytest.approx(600.0)


def test_giving_up_fails_the_callback_with_a_condition() -> None:
    story, _ = succeeded(task("t").callback(URL, maxAttempts=2))
    rec = callback_of(story)
    story.step(31, callback_outcome=outcome(rec, 31, error="ConnectError: refused"))
    rec = callback_of(story)
    due = parse_stamp(rec.next_attempt_time)
    assert due is not None
    seconds = (due - at(0)).total_seconds()
    assert story.step(seconds).send_callback is not None
    decision = story.step(seconds + 1, callback_outcome=outcome(rec, seconds, error="ConnectError: refused"))
    got = callback_of(story)
    assert (got.state, got.attempts, got.next_attempt_time) == ("Failed", 2, None)
    assert got.last_error == "gave up after 2 deliveries; the last: ConnectError: refused"
    status, reason, message = condition(story.status, cond.CALLBACK_DELIVERED) or ("", "", "")
    assert (status, reason) == ("False", "CallbackFailed")
    assert "gave up after 2" in message
    assert decision.send_callback is None


def test_a_4xx_fails_at_once() -> None:
    story, _ = succeeded()
    rec = callback_of(story)
    story.step(31, callback_outcome=outcome(rec, 31, status_code=410, body_excerpt="gone"))
    got = callback_of(story)
    assert (got.state, got.attempts, got.last_error) == ("Failed", 1, "HTTP 410: gone")
    assert story.step(100).send_callback is None


@pytest.mark.parametrize(
    ("mismatch"),
    [
        {"id": "uid-t.failed.1"},  # another event
        {"delivery": 2},  # a later delivery than the status expects
        {"delivery": 0},  # an older one
    ],
)
def test_an_outcome_for_another_event_or_delivery_is_ignored(mismatch: dict[str, Any]) -> None:
    story, _ = succeeded()
    rec = callback_of(story)
    fields: dict[str, Any] = {"id": rec.id, "delivery": 1, "at": at(31), "status_code": 200, **mismatch}
    decision = story.step(32, callback_outcome=DeliveryOutcome(**fields))
    assert not decision.writes
    assert callback_of(story) == rec
    assert decision.send_callback is not None and decision.send_callback.delivery == 1


def test_an_outcome_already_written_is_not_counted_twice() -> None:
    story, _ = succeeded()
    rec = callback_of(story)
    first = outcome(rec, 31, status_code=503)
    story.step(31, callback_outcome=first)
    after = callback_of(story)
    again = story.step(33, callback_outcome=first)  # the dispatcher has not dropped it yet
    assert not again.writes
    assert callback_of(story) == after


def test_an_outcome_for_a_delivered_record_is_ignored() -> None:
    story, _ = succeeded()
    rec = callback_of(story)
    story.step(31, callback_outcome=outcome(rec, 31, status_code=200))
    delivered = callback_of(story)
    decision = story.step(32, callback_outcome=outcome(rec, 32, delivery=2, status_code=500))
    assert not decision.writes
    assert callback_of(story) == delivered


def test_a_new_event_replaces_an_undelivered_older_one() -> None:
    story = Story(task("t").callback(events=["Running", "Succeeded"]).build())
    story.step(5)
    running = callback_of(story)
    story.step(6, callback_outcome=outcome(running, 6, status_code=503))
    assert callback_of(story).state == "Delivering"
    decision = story.step(
        30, callback_outcome=outcome(running, 29, delivery=2, status_code=200), **attempt_succeeded("t", 1)
    )
    got = callback_of(story)
    assert (got.id, got.state, got.attempts, got.next_attempt_time) == ("uid-t.succeeded.1", "Pending", 0, None)
    assert decision.send_callback is not None and decision.send_callback.id == "uid-t.succeeded.1"
    assert decision.send_callback.delivery == 1


# --------------------------------------------------------------------------- TTL


@pytest.mark.parametrize("state_after", ["Pending", "Delivering"])
def test_ttl_waits_for_an_open_callback(state_after: str) -> None:
    story, _ = succeeded(ttl=60)  # expires at 90s
    if state_after == "Delivering":
        rec = callback_of(story)
        story.step(85, callback_outcome=outcome(rec, 85, status_code=503))
    assert callback_of(story).state == state_after
    decision = story.step(95)
    assert not decision.delete_task
    if state_after == "Pending":
        assert decision.send_callback is not None
    else:
        assert decision.send_callback is None
        assert decision.requeue_after is not None and decision.requeue_after > 0


@pytest.mark.parametrize(("fields", "state"), [({"status_code": 200}, "Delivered"), ({"status_code": 400}, "Failed")])
def test_ttl_deletes_once_the_callback_ends(fields: dict[str, Any], state: str) -> None:
    story, _ = succeeded(ttl=60)
    assert not story.step(95).delete_task
    rec = callback_of(story)
    decision = story.step(96, callback_outcome=outcome(rec, 96, **fields))
    assert decision.delete_task
    assert decision.status is not None and decision.status.callback is not None
    assert decision.status.callback.state == state  # written in the same decision


def test_ttl_is_not_delayed_by_a_delivered_callback() -> None:
    story, _ = succeeded(ttl=60)
    story.step(31, callback_outcome=outcome(callback_of(story), 31, status_code=200))
    assert not story.step(89).delete_task
    assert story.step(90).delete_task


# --------------------------------------------------------------------------- refusal


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("https://hooks.example.com:0/x", "port 0"),
        ("https://hooks.example.com:70000/x", "cannot be parsed"),
    ],
)
def test_a_refused_url_ends_refused(url: str, words: str) -> None:
    """The dispatcher refuses such a URL without a request (test_webhooks); its outcome ends the callback."""
    story, decision = succeeded(task("t").callback(url).ttl(60))
    assert decision.send_callback is not None
    refusal = url_refusal(url)
    assert refusal is not None
    story.step(31, callback_outcome=outcome(callback_of(story), 31, refused=refusal))
    got = callback_of(story)
    assert (got.state, got.attempts) == ("Refused", 1)
    assert got.last_error is not None and words in got.last_error
    status, reason, _ = condition(story.status, cond.CALLBACK_DELIVERED) or ("", "", "")
    assert (status, reason) == ("False", "CallbackRefused")
    assert story.status.phase == "Succeeded"
    assert story.step(95).delete_task  # the TTL does not wait for a refused callback


@pytest.mark.parametrize("url", ["https://user:pw@hooks.example.com/x", "https://user@hooks.example.com/x"])
def test_a_url_with_credentials_never_reaches_a_send(url: str) -> None:
    """The schema keeps '@' out of the host part, so such a task is refused at admission by the API server;
    url_refusal (test_callbacks) refuses it again should one get past."""
    with pytest.raises(ValidationError):
        task("t").callback(url).build()


# --------------------------------------------------------------------------- where the callback comes from


def test_the_tasktypes_default_callback_applies() -> None:
    typed = tasktype("echo").defaults(callback={"url": "https://types.example.com/hook"}).build()
    story = Story(task("t").build(), tasktype=typed)
    story.step(5)
    decision = story.step(30, **attempt_succeeded("t", 1))
    assert decision.send_callback is not None
    assert decision.send_callback.url == "https://types.example.com/hook"
    assert callback_of(story).id == "uid-t.succeeded.1"


def test_the_tasks_own_callback_wins() -> None:
    typed = tasktype("echo").defaults(callback={"url": "https://types.example.com/hook", "events": ["Running"]}).build()
    story = Story(task("t").callback(URL).build(), tasktype=typed)
    assert story.step(5).send_callback is None  # the type's Running selection does not apply
    decision = story.step(30, **attempt_succeeded("t", 1))
    assert decision.send_callback is not None and decision.send_callback.url == URL


# --------------------------------------------------------------------------- failures and retries


def failing(events: list[str] | None) -> Story:
    fields = {"events": events} if events else {}
    return Story(task("t").retry(max_retries=1, jitter=False, base_seconds=10).callback(URL, **fields).build())


def test_retrying_events_only_when_selected() -> None:
    story = failing(["Retrying", "Failed"])
    story.step(5)
    assert story.status.callback is None
    retrying = story.step(30, **attempt_failed("t", 1))
    assert story.status.phase == "Retrying"
    rec = callback_of(story)
    assert (rec.id, rec.event, rec.task_attempt) == ("uid-t.retrying.1", "Retrying", 1)
    assert retrying.send_callback is not None
    assert retrying.send_callback.event["type"] == "dev.asynctask.task.retrying"
    assert retrying.send_callback.event["data"]["attemptStatus"]["outcome"] == "Failed"
    story.step(31, callback_outcome=outcome(rec, 31, status_code=200))
    story.step(41)  # attempt 2 starts: Running is not selected
    assert story.status.phase == "Running"
    assert callback_of(story).id == "uid-t.retrying.1"
    story.step(60, **attempt_failed("t", 2))
    assert story.status.phase == "Failed"
    final = callback_of(story)
    assert (final.id, final.event, final.task_attempt, final.state) == ("uid-t.failed.2", "Failed", 2, "Pending")


def test_no_retrying_event_by_default() -> None:
    story = failing(None)
    story.step(5)
    decision = story.step(30, **attempt_failed("t", 1))
    assert story.status.phase == "Retrying"
    assert story.status.callback is None and decision.send_callback is None
    story.step(41)
    story.step(60, **attempt_failed("t", 2))
    assert callback_of(story).id == "uid-t.failed.2"


def test_cancelled_twice_at_the_same_attempt_gets_a_new_id() -> None:
    held = Admission(granted=False, reason="QueueFull", message="queue default is full")
    story = Story(task("t").callback().build())
    story.step(5, admission=held)
    assert story.status.phase == "Pending"
    story.task = with_cancel(story.task)
    story.step(6, admission=held)
    first = callback_of(story)
    assert (story.status.phase, first.id) == ("Cancelled", "uid-t.cancelled.0")
    story.step(7, callback_outcome=outcome(first, 7, status_code=200))
    # un-cancel and ask for a retry: back in the queue, then cancelled again before it ever ran
    uncancelled = story.task.model_copy(update={"spec": story.task.spec.model_copy(update={"cancel": False})})
    story.task = with_annotation(uncancelled, RETRY_ANNOTATION, "again")
    story.step(8, admission=held)
    assert story.status.phase == "Pending"
    story.task = with_cancel(story.task)
    decision = story.step(9, admission=held)
    second = callback_of(story)
    assert story.status.phase == "Cancelled"
    assert second.id == "uid-t.cancelled.0.2"
    assert second.state == "Pending"
    assert decision.send_callback is not None and decision.send_callback.id == "uid-t.cancelled.0.2"


# --------------------------------------------------------------------------- without a callback


def walk(obj: AsyncTask) -> list[AsyncTaskStatus]:
    story = Story(obj)
    statuses = []
    for seconds, observed in ((5, {}), (10, {}), (30, attempt_succeeded("t", 1)), (40, {})):
        decision = story.step(seconds, admission=GRANTED, **observed)
        assert decision.send_callback is None or obj.spec.callback is not None
        statuses.append(story.status)
    return statuses


def without_callback_fields(status: AsyncTaskStatus) -> dict[str, Any]:
    dumped = status.dump()
    dumped.pop("callback", None)
    dumped.get("effective", {}).pop("callback", None)
    dumped["conditions"] = [c for c in dumped.get("conditions", []) if c["type"] != cond.CALLBACK_DELIVERED]
    return dumped


def test_a_task_without_callback_never_has_status_callback() -> None:
    for status in walk(task("t").build()):
        assert status.callback is None
        assert "callback" not in status.dump()
        assert status.effective is not None and status.effective.callback is None
        assert condition(status, cond.CALLBACK_DELIVERED) is None


def test_a_failing_task_without_callback_never_asks_for_one() -> None:
    story = Story(task("t").retry(max_retries=0).build())
    story.step(5)
    decision = story.step(30, **attempt_failed("t", 1))
    assert story.status.phase == "Failed"
    assert decision.send_callback is None and story.status.callback is None


def test_the_success_path_is_unchanged_by_a_callback() -> None:
    plain = walk(task("t").build())
    with_hook = walk(task("t").callback().build())
    assert [without_callback_fields(s) for s in plain] == [without_callback_fields(s) for s in with_hook]
    assert [s.phase for s in plain] == ["Running", "Running", "Succeeded", "Succeeded"]
    final = plain[-1].dump()
    assert set(final) == {
        "phase",
        "reason",
        "message",
        "attempt",
        "attempts",
        "queuedTime",
        "startTime",
        "completionTime",
        "durationSeconds",
        "effective",
        "round",
        "conditions",
        "observedGeneration",
    }
