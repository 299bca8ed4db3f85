"""The TTL hold: with the archive required, a finished task is deleted only once the archiver's mark
names the finished state it is in (core/archiving.py); without it, at its TTL as before."""

from __future__ import annotations

import dataclasses

import pytest

from asynctask_operator.core.archiving import ANNOTATION_ARCHIVED, archived_in, mark, mark_in
from asynctask_operator.core.lifecycle import RETRY_ANNOTATION
from tests.unit.builders import task, with_annotation
from tests.unit.story import CONFIG, Story, attempt_failed, attempt_succeeded

REQUIRED = dataclasses.replace(CONFIG, archive_required=True)


def finished(config: object = REQUIRED) -> Story:
    story = Story(task("t").ttl(60).build(), config=config)  # type: ignore[arg-type]
    story.step(5)
    story.step(40, **attempt_succeeded("t", 1))
    assert story.status.phase == "Succeeded"
    return story


def wire(story: Story) -> dict[str, object]:
    return story.task.dump()


def test_without_the_archive_the_ttl_deletes_as_before() -> None:
    story = finished(CONFIG)
    assert story.decide(100).delete_task


def test_with_the_archive_required_an_unarchived_task_is_held_past_its_ttl() -> None:
    story = finished()
    decision = story.decide(100)
    assert not decision.delete_task
    assert not decision.writes
    assert decision.requeue_after is None  # the mark's watch event brings it back, not a timer


def test_the_mark_of_its_finished_state_lets_the_deletion_go() -> None:
    story = finished()
    value = mark_in(wire(story))
    assert value == f"1/{story.status.completion_time}"
    story.task = with_annotation(story.task, ANNOTATION_ARCHIVED, value)
    assert archived_in(wire(story))
    assert story.decide(100).delete_task
    assert not story.decide(99).delete_task  # and never before its TTL


@pytest.mark.parametrize("value", ["", "1/2020-01-01T00:00:00Z", "yes", "0/" + "x" * 40])
def test_any_other_value_holds_it(value: str) -> None:
    story = finished()
    story.task = with_annotation(story.task, ANNOTATION_ARCHIVED, value)
    assert not archived_in(wire(story))
    assert not story.decide(100).delete_task


def test_a_task_retried_by_hand_needs_a_new_mark_once_it_finishes_again() -> None:
    story = Story(task("t").ttl(60).retry(max_retries=0).build(), config=REQUIRED)
    story.step(5)
    story.step(30, **attempt_failed("t", 1))
    first = mark_in(wire(story))
    story.task = with_annotation(story.task, ANNOTATION_ARCHIVED, first or "")
    story.task = with_annotation(story.task, RETRY_ANNOTATION, "again")
    story.step(40)  # the retry: attempt 2 runs
    story.step(50, **attempt_succeeded("t", 2))
    assert (story.status.phase, story.status.attempt) == ("Succeeded", 2)
    second = mark_in(wire(story))
    assert second is not None and second != first and second.endswith("/r-" + second.rsplit("r-", 1)[1])
    assert not story.decide(200).delete_task  # the old mark names the Failed state
    story.task = with_annotation(story.task, ANNOTATION_ARCHIVED, second)
    assert story.decide(200).delete_task


def test_an_unfinished_task_has_no_mark() -> None:
    story = Story(task("t").build(), config=REQUIRED)
    story.step(5)
    assert story.status.phase == "Running"
    assert mark_in(wire(story)) is None and not archived_in(wire(story))


@pytest.mark.parametrize(
    "status",
    [
        None,
        "Succeeded",
        [],
        {"phase": 3},
        {"phase": "Failed", "completionTime": 7},
        {"phase": "Failed", "attempt": "x"},
    ],
)
def test_a_malformed_status_has_no_mark_or_a_safe_one(status: object) -> None:
    value = mark_in({"status": status})
    assert value is None or value.startswith("0/")


def test_the_mark_differs_between_rounds_that_end_in_the_same_second() -> None:
    stamp = "2026-03-01T12:00:05Z"
    assert len({mark("Failed", 0, stamp, None), mark("Failed", 0, stamp, "a"), mark("Failed", 0, stamp, "b")}) == 3


# --------------------------------------------------------------------------- a ScheduledTask's history limits


def test_runs_beyond_the_history_limits_wait_for_the_archive() -> None:
    from asynctask_operator.core.archiving import archived
    from asynctask_operator.core.schedule import decide_schedule
    from tests.unit.schedule_builders import minutes, observe, run, scheduled, utc

    first = utc(2026, 1, 5, 2)

    runs = [run(f"succeeded-{i}", "Succeeded", finished=first + minutes(i)) for i in range(4)]
    runs[0] = with_annotation(runs[0], ANNOTATION_ARCHIVED, mark_in(runs[0].dump()) or "")
    runs[1] = with_annotation(runs[1], ANNOTATION_ARCHIVED, "0/stale")
    assert [archived(r) for r in runs] == [True, False, False, False]
    obj = scheduled().history(1, 1).build()
    held = dataclasses.replace(observe(obj, first - minutes(30), *runs), archive_required=True)
    assert [name for name, _ in decide_schedule(held).delete] == ["succeeded-0"]
    free = observe(obj, first - minutes(30), *runs)
    assert [name for name, _ in decide_schedule(free).delete] == ["succeeded-0", "succeeded-1", "succeeded-2"]
