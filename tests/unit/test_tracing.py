"""ADR 0020: a task's spans, ids and times from its status; each span ended by exactly one status write."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from asynctask_operator.core.callbacks import DeliveryOutcome
from asynctask_operator.core.lifecycle import RETRY_ANNOTATION, Decision
from asynctask_operator.core.models import AsyncTask
from asynctask_operator.core.tracing import (
    ANNOTATION_TRACEPARENT,
    ANNOTATION_TRACESTATE,
    SpanRecord,
    attempt_env,
    ended_spans,
    parse_traceparent,
    spans_of,
    trace_annotations,
)
from tests.unit.builders import at, job, task, with_annotation, with_cancel
from tests.unit.story import Story, attempt_failed, attempt_succeeded

UID = "uid-t"
PARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def sha(text: str, n: int) -> str:
    return hashlib.sha256(text.encode()).digest()[:n].hex()


TRACE = sha(UID, 16)  # the task's own trace when no annotation names one
ROOT = sha(f"{UID}/1/task", 8)


def sid(kind: str, n: int | str = 1) -> str:
    return sha(f"{UID}/{n}/{kind}", 8)


class TracedStory(Story):
    """A story that keeps what the reconciler would export: the spans each accepted status write ends."""

    def __init__(self, obj: AsyncTask, **kwargs: Any) -> None:
        super().__init__(obj, **kwargs)
        self.exported: list[SpanRecord] = []

    def step(self, seconds: float, **observed: Any) -> Decision:
        before = self.task
        decision = super().step(seconds, **observed)
        if decision.status is not None:
            self.exported.extend(ended_spans(before, decision.status))
        return decision

    def tree(self) -> list[tuple[str, str, str | None, int, int]]:
        """(name, span id, parent id, start, end) of every exported span, times in seconds since at(0)."""
        return [
            (
                s.name,
                s.span_id,
                s.parent_id,
                int((s.start - at(0)).total_seconds()),
                int((s.end - at(0)).total_seconds()),
            )
            for s in self.exported
        ]


def succeeded_at(name: str, attempt: int, seconds: int) -> dict[str, Any]:
    """Attempt ``attempt`` succeeded, its Job completed at ``at(seconds)``."""
    return {**attempt_succeeded(name, attempt), "jobs": (job(name, attempt).complete(at(seconds)).view(),)}


def by_name(spans: list[SpanRecord], name: str) -> list[SpanRecord]:
    return [s for s in spans if s.name == name]


# --------------------------------------------------------------------------- trees


def test_success_is_a_root_with_queue_wait_and_one_attempt() -> None:
    story = TracedStory(task("t").queue("q").build())
    story.step(5)
    story.step(30, **attempt_succeeded("t", 1))
    assert story.tree() == [
        ("queue wait", sid("queue"), ROOT, 0, 5),
        ("attempt", sid("attempt"), ROOT, 5, 30),
        ("task", ROOT, None, 0, 30),
    ]
    assert {s.trace_id for s in story.exported} == {TRACE}
    root = by_name(story.exported, "task")[0]
    assert (root.status, root.remote_parent) == ("ok", False)
    assert root.attributes == {
        "asynctask.namespace": "media",
        "asynctask.task": "t",
        "asynctask.type": "echo",
        "asynctask.queue": "q",
        "asynctask.uid": UID,
        "asynctask.attempt": 1,
        "asynctask.outcome": "Succeeded",
        "asynctask.reason": "Completed",
    }
    attempt = by_name(story.exported, "attempt")[0]
    assert attempt.attributes["asynctask.outcome"] == "Succeeded"
    assert attempt.attributes["asynctask.exit_code"] == 0
    assert attempt.attributes["k8s.job.name"] == "t-1"


def test_no_span_carries_the_payload_or_the_result() -> None:
    story = TracedStory(task("t").payload({"secret": "s3cr3t"}).build())
    story.step(5)
    story.step(30, **attempt_succeeded("t", 1))
    assert story.exported
    assert "s3cr3t" not in repr([s.attributes for s in story.exported])


def test_retry_then_success_has_a_retry_delay_between_the_attempts() -> None:
    story = TracedStory(task("t").retry(max_retries=2, base_seconds=10, jitter=False).build())
    story.step(5)
    story.step(30, **attempt_failed("t", 1, exit_code=3))
    assert story.status.phase == "Retrying"
    story.step(40)
    story.step(60, **succeeded_at("t", 2, 60))
    assert story.tree() == [
        ("queue wait", sid("queue"), ROOT, 0, 5),
        ("attempt", sid("attempt"), ROOT, 5, 30),
        ("retry delay", sid("retry"), ROOT, 30, 40),
        ("attempt", sid("attempt", 2), ROOT, 40, 60),
        ("task", ROOT, None, 0, 60),
    ]
    failed = by_name(story.exported, "attempt")[0]
    assert (failed.status, failed.description) == ("error", "PodFailed")
    assert (failed.attributes["asynctask.exit_code"], failed.attributes["asynctask.outcome"]) == (3, "Failed")


def test_cancel_while_running_ends_the_attempt_cancelled() -> None:
    story = TracedStory(task("t").build())
    story.step(5)
    story.task = with_cancel(story.task)
    story.step(20)
    assert story.status.phase == "Cancelled"
    assert story.tree() == [
        ("queue wait", sid("queue"), ROOT, 0, 5),
        ("attempt", sid("attempt"), ROOT, 5, 20),
        ("task", ROOT, None, 0, 20),
    ]
    assert by_name(story.exported, "attempt")[0].attributes["asynctask.outcome"] == "Cancelled"
    assert by_name(story.exported, "task")[0].status == "unset"


def test_cancel_during_a_retry_delay_ends_the_delay_with_the_task() -> None:
    story = TracedStory(task("t").retry(max_retries=2, base_seconds=100, jitter=False).build())
    story.step(5)
    story.step(30, **attempt_failed("t", 1))
    story.task = with_cancel(story.task)
    story.step(50)
    assert story.status.phase == "Cancelled"
    assert [(n, st, en) for n, _, _, st, en in story.tree()] == [
        ("queue wait", 0, 5),
        ("attempt", 5, 30),
        ("retry delay", 30, 50),
        ("task", 0, 50),
    ]


def test_deadline_fails_the_root_and_cancels_the_attempt() -> None:
    story = TracedStory(task("t").deadline(60).build())
    story.step(5)
    story.step(61)
    assert (story.status.phase, story.status.reason) == ("Failed", "DeadlineExceeded")
    root = by_name(story.exported, "task")[0]
    assert (root.status, root.description, root.end) == ("error", "DeadlineExceeded", at(61))
    attempt = by_name(story.exported, "attempt")[0]
    assert (attempt.attributes["asynctask.outcome"], attempt.end) == ("Cancelled", at(61))


def test_callback_retries_are_one_delivery_span_each() -> None:
    story = TracedStory(task("t").callback().build())
    story.step(5)
    story.step(30, **attempt_succeeded("t", 1))
    record = story.status.callback
    assert record is not None
    story.step(31, callback_outcome=DeliveryOutcome(id=record.id, delivery=1, at=at(31), status_code=503))
    record = story.status.callback
    assert record is not None and record.state == "Delivering" and record.next_attempt_time is not None
    due = int((at(0).fromisoformat(record.next_attempt_time.replace("Z", "+00:00")) - at(0)).total_seconds())
    story.step(due + 1, callback_outcome=DeliveryOutcome(id=record.id, delivery=2, at=at(due + 1), status_code=200))
    assert story.status.callback is not None and story.status.callback.state == "Delivered"
    deliveries = by_name(story.exported, "callback delivery")
    event = "uid-t.succeeded.1"
    assert [(s.span_id, s.parent_id, s.start, s.end) for s in deliveries] == [
        (sha(f"{UID}/1/callback/{event}", 8), ROOT, at(30), at(31)),
        (sha(f"{UID}/2/callback/{event}", 8), ROOT, at(due), at(due + 1)),
    ]
    assert [(s.attributes["http.response.status_code"], s.status, s.kind) for s in deliveries] == [
        (503, "error", "client"),
        (200, "ok", "client"),
    ]
    assert [s.attributes["asynctask.callback.delivery"] for s in deliveries] == [1, 2]


def test_the_cloud_event_names_the_delivery_span_that_records_it() -> None:
    story = TracedStory(task("t").callback().build())
    story.step(5)
    done = story.step(30, **attempt_succeeded("t", 1))
    assert done.send_callback is not None
    record = story.status.callback
    assert record is not None
    story.step(31, callback_outcome=DeliveryOutcome(id=record.id, delivery=1, at=at(31), status_code=200))
    [delivery] = by_name(story.exported, "callback delivery")
    assert done.send_callback.event["traceparent"] == f"00-{TRACE}-{delivery.span_id}-01"


# --------------------------------------------------------------------------- once, and the same after a restart


def run(restart_at: int | None) -> tuple[list[SpanRecord], AsyncTask]:
    """A task that fails once, succeeds, and calls back; ``restart_at``: a new operator takes over after that
    step, from nothing but the task as the API server holds it."""
    story = TracedStory(task("t").retry(max_retries=1, base_seconds=10, jitter=False).callback().build())
    steps: list[tuple[int, dict[str, Any]]] = [
        (5, {}),
        (30, attempt_failed("t", 1)),
        (40, {}),
        (60, succeeded_at("t", 2, 60)),
    ]
    for n, (seconds, observed) in enumerate(steps):
        story.step(seconds, **observed)
        if n == restart_at:
            stored = story.task.model_dump(by_alias=True, mode="json")
            story = _restarted(story, AsyncTask.model_validate(stored))
    record = story.status.callback
    assert record is not None
    story.step(61, callback_outcome=DeliveryOutcome(id=record.id, delivery=1, at=at(61), status_code=204))
    return story.exported, story.task


def _restarted(old: TracedStory, obj: AsyncTask) -> TracedStory:
    new = TracedStory(obj)
    new.jobs = dict(old.jobs)  # the cluster's Jobs outlive the operator
    new.exported = old.exported  # what the first operator exported stays exported
    return new


@pytest.mark.parametrize("restart_at", [0, 1, 2, 3])
def test_a_restart_anywhere_yields_the_same_whole_trace_each_span_once(restart_at: int) -> None:
    reference, final = run(None)
    restarted, _ = run(restart_at)
    assert restarted == reference
    ids = [s.span_id for s in reference]
    assert len(ids) == len(set(ids)) == 6  # queue wait, 2 attempts, a retry delay, the root, one delivery
    assert {s.span_id for s in spans_of(final)} | {sid("callback/uid-t.succeeded.2")} == set(ids)
    assert all(s.parent_id == ROOT for s in reference if s.name != "task")


def test_a_repeated_write_of_the_same_status_ends_nothing_more() -> None:
    story = TracedStory(task("t").build())
    story.step(5)
    decision = story.decide(30, **attempt_succeeded("t", 1))
    assert decision.status is not None
    done = story.task.model_copy(update={"status": decision.status})
    assert ended_spans(done, decision.status) == []


def test_a_manual_retry_starts_a_new_root_and_exports_nothing_twice() -> None:
    story = TracedStory(task("t").retry(max_retries=0).build())
    story.step(5)
    story.step(30, **attempt_failed("t", 1))
    story.task = with_annotation(story.task, RETRY_ANNOTATION, "again")
    story.step(100)
    story.step(130, **succeeded_at("t", 2, 130))
    second_root = sha(f"{UID}/2/task", 8)
    assert [(n, i, p) for n, i, p, _, _ in story.tree()] == [
        ("queue wait", sid("queue"), ROOT),
        ("attempt", sid("attempt"), ROOT),
        ("task", ROOT, None),
        ("queue wait", sid("queue", 2), second_root),
        ("attempt", sid("attempt", 2), second_root),
        ("task", second_root, None),
    ]
    assert by_name(story.exported, "task")[1].start == at(100)  # the new round counts from its retry


def test_the_job_of_an_attempt_points_at_its_span() -> None:
    story = TracedStory(task("t").build())
    decision = story.step(5)
    assert decision.create_job is not None
    env = {e["name"]: e["value"] for e in decision.create_job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["TRACEPARENT"] == f"00-{TRACE}-{sid('attempt')}-01"
    assert "TRACESTATE" not in env
    story.step(30, **attempt_succeeded("t", 1))
    assert by_name(story.exported, "attempt")[0].span_id == sid("attempt")


# --------------------------------------------------------------------------- joining a trace


def test_an_annotated_task_joins_that_trace_under_its_span() -> None:
    obj = task("t").annotation(ANNOTATION_TRACEPARENT, PARENT).annotation(ANNOTATION_TRACESTATE, "vendor=x").build()
    story = TracedStory(obj)
    story.step(5)
    story.step(30, **attempt_succeeded("t", 1))
    assert {s.trace_id for s in story.exported} == {"4bf92f3577b34da6a3ce929d0e0e4736"}
    root = by_name(story.exported, "task")[0]
    assert (root.parent_id, root.remote_parent, root.tracestate) == ("00f067aa0ba902b7", True, "vendor=x")
    assert attempt_env(obj, 1) == {
        "TRACEPARENT": f"00-4bf92f3577b34da6a3ce929d0e0e4736-{sid('attempt')}-01",
        "TRACESTATE": "vendor=x",
    }


def test_an_unsampled_parent_stays_unsampled() -> None:
    obj = task("t").annotation(ANNOTATION_TRACEPARENT, PARENT[:-2] + "00").build()
    assert attempt_env(obj, 1)["TRACEPARENT"].endswith("-00")
    story = TracedStory(obj)
    story.step(5)
    story.step(30, **attempt_succeeded("t", 1))
    assert story.exported and not any(s.sampled for s in story.exported)


def test_a_malformed_annotation_is_ignored() -> None:
    obj = task("t").annotation(ANNOTATION_TRACEPARENT, "not-a-traceparent").build()
    assert attempt_env(obj, 1)["TRACEPARENT"] == f"00-{TRACE}-{sid('attempt')}-01"


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        (PARENT, True),
        (PARENT[:-2] + "00", True),
        (" " + PARENT + " ", True),
        ("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-future", True),  # a later version's extra field
        (PARENT + "-extra", False),  # version 00 has exactly four fields
        ("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", False),
        ("00-00000000000000000000000000000000-00f067aa0ba902b7-01", False),
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", False),
        ("00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01", False),  # upper case
        ("00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01", False),  # short trace id
        ("", False),
        (None, False),
    ],
)
def test_traceparent_parsing_follows_w3c(value: str | None, valid: bool) -> None:
    assert (parse_traceparent(value) is not None) is valid


def test_trace_annotations_of_the_front_doors() -> None:
    assert trace_annotations(PARENT, "a=1") == {ANNOTATION_TRACEPARENT: PARENT, ANNOTATION_TRACESTATE: "a=1"}
    assert trace_annotations(PARENT, "bad\nstate") == {ANNOTATION_TRACEPARENT: PARENT}
    assert trace_annotations("garbage", "a=1") == {}
    assert trace_annotations(None) == {}


def test_a_task_still_running_has_ended_only_its_queue_wait() -> None:
    story = TracedStory(task("t").build())
    story.step(5)
    story.step(20, jobs=(job("t", 1).view(),))
    assert [s.name for s in spans_of(story.task)] == ["queue wait"]
