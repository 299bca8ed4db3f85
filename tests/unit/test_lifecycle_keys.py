"""A task's concurrency key in its lifecycle (core/lifecycle.py): waiting for it, getting it, losing it to a
newer task, ending at once when busy, and refusals that name what is wrong. Pure: decide() over builders."""

from __future__ import annotations

from typing import Any

import pytest

from asynctask_operator.core import conditions as cond
from asynctask_operator.core.effects import EventNote
from asynctask_operator.core.lifecycle import Admission, decide
from asynctask_operator.core.models import FairTurn, KeyWait
from tests.unit.builders import at, job, observe, task, tasktype
from tests.unit.story import CONFIG, ECHO, Story, attempt_failed, attempt_running

BUSY = Admission(
    granted=False,
    reason="WaitingForKey",
    message="waiting for concurrency key 'video-42' (limit 1), held by older",
    key_wait=KeyWait(key="video-42", limit=1, holders=["older"]),
)
BUSY_LATER = Admission(
    granted=False,
    reason="WaitingForKey",
    message="waiting for concurrency key 'video-42' (limit 1), held by other",
    key_wait=KeyWait(key="video-42", limit=1, holders=["other"]),
)
QUEUED = Admission(
    granted=False, reason="Queued", message="waiting for a free slot in TaskQueue 'default' (concurrency 2)"
)
REFUSED = Admission(
    granted=False,
    reason="KeyBusy",
    message="concurrency key 'video-42' is held by older (limit 1); policy CancelNewest ends this task",
    refused=True,
)


def conditions(story: Story) -> dict[str, tuple[str, str]]:
    return {c.type: (c.status, c.reason) for c in story.status.conditions or []}


def test_a_task_whose_key_is_busy_waits_naming_the_key_and_its_holders_once() -> None:
    story = Story(task("t").concurrency("video-42").build())
    first = story.step(5, admission=BUSY)
    assert first.wants_admission and first.create_job is None
    status = story.status
    assert (status.phase, status.reason, status.message) == ("Pending", BUSY.reason, BUSY.message)
    assert status.waiting_for_key == KeyWait(key="video-42", limit=1, holders=["older"])
    assert status.effective is not None and status.effective.concurrency is not None
    assert (status.effective.concurrency.key, status.effective.concurrency.limit) == ("video-42", 1)
    assert conditions(story)[cond.KEY_ACQUIRED] == ("False", "WaitingForKey")
    assert first.events == (EventNote("Normal", "WaitingForKey", BUSY.message),)
    # Other holders since: the reason is the same, nothing is written (the holders are those when it began).
    assert story.step(20, admission=BUSY_LATER).status is None


def test_the_key_granted_clears_the_wait_and_holds_the_key() -> None:
    story = Story(task("t").concurrency("video-42").build())
    story.step(5, admission=BUSY)
    granted = Admission(granted=True, fairness=FairTurn(group="video-42", turn=7))
    decision = story.step(9, admission=granted)
    assert decision.create_job is not None
    assert decision.create_job["metadata"]["annotations"]["asynctask.dev/concurrency-key"] == "video-42"
    status = story.status
    assert (status.phase, status.waiting_for_key, status.fairness) == (
        "Running",
        None,
        FairTurn(group="video-42", turn=7),
    )
    assert conditions(story)[cond.KEY_ACQUIRED] == ("True", "KeyAcquired")
    assert decision.events == ()


def test_a_wait_for_a_slot_then_for_the_key_is_written_each_time_the_reason_changes() -> None:
    story = Story(task("t").concurrency("video-42").build())
    assert story.step(5, admission=QUEUED).status is not None
    assert story.status.waiting_for_key is None
    assert story.step(6, admission=BUSY).status is not None
    assert story.status.waiting_for_key is not None
    assert story.step(7, admission=QUEUED).status is not None
    assert story.status.waiting_for_key is None


def test_cancel_newest_ends_the_newcomer_at_once() -> None:
    story = Story(task("t").concurrency("video-42", policy="CancelNewest").build())
    decision = story.step(5, admission=REFUSED)
    status = story.status
    assert (status.phase, status.reason, status.message) == ("Cancelled", "KeyBusy", REFUSED.message)
    assert decision.create_job is None and not decision.wants_admission
    assert status.error is not None and status.error.code == "KeyBusy"


@pytest.mark.parametrize("phase_seconds", [5, 40], ids=["while-waiting", "while-running"])
def test_a_task_superseded_by_a_newer_one_is_cancelled_naming_it(phase_seconds: int) -> None:
    story = Story(task("t").concurrency("video-42", policy="CancelInProgress").build())
    if phase_seconds == 40:
        story.step(5)  # admitted: Running as t-1
    else:
        story.step(5, admission=BUSY)
    jobs = attempt_running("t", 1) if phase_seconds == 40 else {}
    decision = story.step(phase_seconds + 1, superseded_by="t-newer", **jobs)
    status = story.status
    assert (status.phase, status.reason) == ("Cancelled", "Superseded")
    assert (
        status.message
        == "superseded by the newer task t-newer with concurrency key 'video-42' (policy CancelInProgress)"
    )
    assert decision.events == (EventNote("Normal", "Superseded", status.message),)
    assert decision.delete_job == ("t-1" if phase_seconds == 40 else None)  # the Job stops: the key goes on


def test_an_attempt_that_ended_before_the_newer_task_was_seen_keeps_its_outcome() -> None:
    story = Story(task("t").concurrency("k", policy="CancelInProgress").build())
    story.step(5)
    story.step(9, superseded_by="newer", jobs=(job("t", 1).complete().view(),))
    assert (story.status.phase, story.status.reason) == ("Succeeded", "Completed")


@pytest.mark.parametrize(
    ("defaults", "payload", "labels", "message"),
    [
        ({"keyFrom": {"payload": "/videoId"}}, {"other": 1}, {},
         "the TaskType's defaults.concurrency.keyFrom.payload '/videoId' is absent from spec.payload; "
         "add it, or set spec.concurrency"),
        ({"keyFrom": {"payload": "/video"}}, {"video": {"id": 1}}, {},
         "the TaskType's defaults.concurrency.keyFrom.payload '/video' points at an object in spec.payload; "
         "it must point at a string or an integer"),
        ({"keyFrom": {"payload": "/ids"}}, {"ids": [1, 2]}, {},
         "the TaskType's defaults.concurrency.keyFrom.payload '/ids' points at a list in spec.payload; "
         "it must point at a string or an integer"),
        ({"keyFrom": {"payload": "/id"}}, {"id": None}, {},
         "the TaskType's defaults.concurrency.keyFrom.payload '/id' points at null in spec.payload; "
         "it must point at a string or an integer"),
        ({"keyFrom": {"payload": "/id"}}, {"id": "has space"}, {},
         "the TaskType's defaults.concurrency.keyFrom.payload '/id' gives 'has space', not a key: 1 to 128 "
         "letters, digits and - _ . : / (starting and ending with a letter or digit)"),
        ({"keyFrom": {"label": "tenant"}}, None, {},
         "the TaskType's defaults.concurrency.keyFrom.label 'tenant': the task has no label tenant; "
         "give it one, or set spec.concurrency"),
    ],
    ids=["pointer-absent", "pointer-at-object", "pointer-at-list", "pointer-at-null", "not-a-key", "label-absent"],
)  # fmt: skip
def test_a_key_that_cannot_be_taken_from_the_task_refuses_it_naming_the_field(
    defaults: dict[str, Any], payload: Any, labels: dict[str, str], message: str
) -> None:
    keyed = tasktype("echo").defaults(concurrency=defaults).build()
    built = task("t").payload(payload).labels(**labels).build()
    decision = decide(observe(built, now=at(5), tasktype=keyed), CONFIG)
    status = decision.status
    assert status is not None
    assert (status.phase, status.reason, status.message) == ("Failed", "InvalidConcurrencyKey", message)
    assert decision.create_job is None and not decision.wants_admission


@pytest.mark.parametrize(
    ("defaults", "payload", "labels", "key"),
    [
        ({"keyFrom": {"payload": "/videoId"}}, {"videoId": "v-42"}, {}, "v-42"),
        ({"keyFrom": {"payload": "/video/id"}, "limit": 2}, {"video": {"id": 42}}, {}, "42"),
        ({"keyFrom": {"payload": "/a~1b/0"}}, {"a/b": ["x"]}, {}, "x"),
        ({"keyFrom": {"label": "tenant"}}, None, {"tenant": "acme"}, "acme"),
        ({"keyFrom": {"value": "nightly-report"}}, None, {}, "nightly-report"),
    ],
    ids=["payload", "nested-integer", "escaped-pointer-into-list", "label", "constant"],
)
def test_a_types_key_is_taken_from_the_task_and_kept_in_effective(
    defaults: dict[str, Any], payload: Any, labels: dict[str, str], key: str
) -> None:
    keyed = tasktype("echo").defaults(concurrency=defaults).build()
    story = Story(task("t").payload(payload).labels(**labels).build(), tasktype=keyed)
    story.step(5)
    effective = story.status.effective
    assert effective is not None and effective.concurrency is not None
    assert (effective.concurrency.key, effective.concurrency.limit) == (key, defaults.get("limit", 1))
    assert effective.concurrency.policy == "Queue"


def test_the_tasks_own_key_wins_over_its_types() -> None:
    keyed = tasktype("echo").defaults(concurrency={"keyFrom": {"value": "shared"}}).build()
    story = Story(task("t").concurrency("mine", limit=3, policy="CancelNewest").build(), tasktype=keyed)
    story.step(5)
    concurrency = story.status.effective.concurrency if story.status.effective else None
    assert concurrency is not None and (concurrency.key, concurrency.limit, concurrency.policy) == (
        "mine",
        3,
        "CancelNewest",
    )


def test_a_task_without_a_key_records_none() -> None:
    story = Story(task("t").build(), tasktype=ECHO)
    decision = story.step(5)
    assert story.status.effective is not None and story.status.effective.concurrency is None
    assert (
        decision.create_job is not None
        and "asynctask.dev/concurrency-key" not in decision.create_job["metadata"]["annotations"]
    )
    assert cond.KEY_ACQUIRED not in conditions(story)


def test_an_adopted_job_keeps_the_turn_its_status_records() -> None:
    """t's next attempt's Job exists but its Running write did not land (a crash, a 409): the decision adopts
    the Job without asking the queue; an answer that knows only the group must not take the recorded turn away."""
    story = Story(task("t").retry(backoff="Fixed", base_seconds=10, jitter=False).build())
    story.step(5, admission=Admission(granted=True, fairness=FairTurn(group="a", turn=4)))
    story.step(30, **attempt_failed("t", 1))
    assert story.status.phase == "Retrying"
    group_only = Admission(granted=False, reason="Queued", message="full", fairness=FairTurn(group="a"))
    story.step(45, admission=group_only, jobs=(job("t", 2).view(),))  # t-2 exists: adopted
    assert (story.status.phase, story.status.attempt) == ("Running", 2)
    assert story.status.fairness == FairTurn(group="a", turn=4)
