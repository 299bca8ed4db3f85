"""docs/design.md §2.4: what a ScheduledTask does — fires, downtime, concurrency, suspend, run-now, history.

Every case is :func:`decide_schedule` on built objects at a chosen ``now``. The default
schedule is ``0 2 * * *`` (UTC) created at 2026-01-05 00:00, so it first fires at
2026-01-05 02:00.
"""

from __future__ import annotations

import datetime as dt

import pytest

from asynctask_operator.core.conditions import get_condition
from asynctask_operator.core.models import AsyncTask, ScheduleCounts, ScheduledTaskStatus
from asynctask_operator.core.naming import manual_run_name
from asynctask_operator.core.schedule import ScheduleDecision, decide_schedule, render_run
from tests.unit.builders import stamp
from tests.unit.schedule_builders import (
    ScheduledTaskBuilder,
    World,
    minutes,
    observe,
    run,
    run_name,
    scheduled,
    utc,
)

FIRST = utc(2026, 1, 5, 2)  # the first fire time of the default schedule
DAY = dt.timedelta(days=1)


def created_names(decision: ScheduleDecision) -> list[str]:
    return [m["metadata"]["name"] for m in decision.create]


def ready_of(status: ScheduledTaskStatus | None) -> tuple[str, str, str]:
    assert status is not None
    condition = get_condition(status.conditions, "Ready")
    assert condition is not None
    return condition.status, condition.reason, condition.message


# --------------------------------------------------------------------------- firing


def test_before_the_first_fire_nothing_runs_and_the_next_fire_is_shown() -> None:
    decision = decide_schedule(observe(scheduled().build(), utc(2026, 1, 5, 1)))
    assert decision.create == ()
    assert decision.status is not None
    assert decision.status.next_schedule_time == stamp(FIRST)
    assert decision.status.last_schedule_time is None
    assert decision.status.missed_runs == 0
    assert decision.status.counts == ScheduleCounts()
    assert ready_of(decision.status)[:2] == ("True", "Scheduled")
    assert decision.wake_at == FIRST


def test_at_the_fire_time_one_run_is_created_and_recorded() -> None:
    world = World(scheduled().build())
    world.step(utc(2026, 1, 5, 1))
    decision = world.step(FIRST + dt.timedelta(milliseconds=3))
    assert created_names(decision) == [run_name(FIRST)]
    assert run_name(FIRST) == f"nightly-{int(FIRST.timestamp()) // 60}"
    assert world.status.last_schedule_time == stamp(FIRST)
    assert world.status.next_schedule_time == stamp(FIRST + DAY)
    assert world.status.active == [run_name(FIRST)]
    assert decision.wake_at == FIRST + DAY


def test_the_run_is_the_template_owned_and_labelled_by_the_scheduled_task() -> None:
    obj = (
        scheduled("nightly")
        .template(
            {"labels": {"report": "nightly", "asynctask.dev/task": "spoof"}, "annotations": {"team": "data"}},
            type="report",
            payload={"kind": "daily"},
            queue="batch",
        )
        .build()
    )
    manifest = render_run(obj, "nightly-29384720", FIRST)
    meta = manifest["metadata"]
    assert manifest["apiVersion"] == "asynctask.dev/v1alpha1" and manifest["kind"] == "AsyncTask"
    assert meta["name"] == "nightly-29384720" and meta["namespace"] == obj.metadata.namespace
    assert meta["labels"] == {"report": "nightly", "asynctask.dev/scheduled-task": "nightly"}
    assert meta["annotations"] == {"team": "data", "asynctask.dev/scheduled-time": stamp(FIRST)}
    assert meta["ownerReferences"] == [
        {
            "apiVersion": "asynctask.dev/v1alpha1",
            "kind": "ScheduledTask",
            "name": "nightly",
            "uid": "uid-nightly",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    assert manifest["spec"] == {"type": "report", "payload": {"kind": "daily"}, "queue": "batch"}


def test_a_replayed_reconcile_creates_nothing_and_writes_nothing() -> None:
    world = World(scheduled().build())
    world.step(FIRST)
    again = world.step(FIRST + dt.timedelta(seconds=1))
    assert again.create == () and again.status is None


def test_a_run_created_before_a_crash_is_adopted_not_created_again() -> None:
    # The operator created the run, then died before writing the status: the status still says
    # the fire is next, and the run exists (its name is the lock).
    obj = scheduled().status(next_schedule_time=FIRST, observed_generation=1).build()
    decision = decide_schedule(observe(obj, FIRST + minutes(5), run(run_name(FIRST), "Running")))
    assert decision.create == ()
    assert decision.status is not None
    assert decision.status.active == [run_name(FIRST)]
    assert decision.status.last_schedule_time == stamp(FIRST)
    assert decision.status.missed_runs == 0


def test_a_run_that_finished_before_it_was_recorded_is_counted_once() -> None:
    obj = scheduled().status(next_schedule_time=FIRST, observed_generation=1).build()
    done = run(run_name(FIRST), "Succeeded", finished=FIRST + minutes(1))
    world = World(obj, done)
    world.step(FIRST + minutes(30))
    assert world.status.counts == ScheduleCounts(succeeded=1)
    assert world.status.active is None
    assert world.status.last_successful_time == stamp(FIRST + minutes(1))
    world.step(FIRST + minutes(31))
    assert world.status.counts == ScheduleCounts(succeeded=1)


def test_an_early_wake_up_waits_for_the_fire_time() -> None:
    world = World(scheduled().build())
    world.step(utc(2026, 1, 5, 1))
    decision = world.step(FIRST - dt.timedelta(milliseconds=20))
    assert decision.create == () and decision.wake_at == FIRST


def test_a_new_scheduled_task_catches_up_fire_times_since_its_creation() -> None:
    # Created at 00:00 with "0 * * * *", first seen at 02:10: 01:00 and 02:00 passed unseen.
    obj = scheduled().schedule("0 * * * *").build()
    decision = decide_schedule(observe(obj, utc(2026, 1, 5, 2, 10)))
    assert created_names(decision) == [run_name(utc(2026, 1, 5, 2))]
    assert decision.status is not None and decision.status.missed_runs == 1


# --------------------------------------------------------------------------- downtime

HOURLY = "0 * * * *"
LAST = utc(2026, 1, 5, 10)  # the last run before the operator went down


@pytest.mark.parametrize(
    ("deadline", "now", "starts", "missed"),
    [
        # Down across 11:00, 12:00 and 13:00; back at 13:05.
        (None, utc(2026, 1, 5, 13, 5), utc(2026, 1, 5, 13), 2),
        (600, utc(2026, 1, 5, 13, 5), utc(2026, 1, 5, 13), 2),
        (60, utc(2026, 1, 5, 13, 5), None, 3),
        # Back at 13:00:30: the latest is within even a short deadline.
        (60, utc(2026, 1, 5, 13, 0, 30), utc(2026, 1, 5, 13), 2),
        # Back at 13:59: without a deadline the latest still starts, however late.
        (None, utc(2026, 1, 5, 13, 59), utc(2026, 1, 5, 13), 2),
    ],
    ids=["no-deadline", "within-deadline", "past-deadline", "just-in-time", "late-no-deadline"],
)
def test_after_downtime_at_most_the_latest_missed_run_starts(
    deadline: int | None, now: dt.datetime, starts: dt.datetime | None, missed: int
) -> None:
    builder = scheduled().schedule(HOURLY).status(last_schedule_time=LAST, missed_runs=4)
    if deadline is not None:
        builder = builder.deadline(deadline)
    decision = decide_schedule(observe(builder.build(), now, run(run_name(LAST), "Succeeded", finished=LAST)))
    assert created_names(decision) == ([run_name(starts)] if starts else [])
    assert decision.status is not None
    assert decision.status.missed_runs == 4 + missed
    assert decision.status.last_schedule_time == stamp(starts or LAST)
    assert decision.status.next_schedule_time == stamp(utc(2026, 1, 5, 14))
    assert any("missed" in note for note in decision.notes)


def test_downtime_is_measured_from_next_schedule_time_when_recorded() -> None:
    obj = (
        scheduled()
        .schedule(HOURLY)
        .status(last_schedule_time=LAST, next_schedule_time=utc(2026, 1, 5, 11), observed_generation=1)
        .build()
    )
    decision = decide_schedule(observe(obj, utc(2026, 1, 5, 12, 1)))
    assert created_names(decision) == [run_name(utc(2026, 1, 5, 12))]
    assert decision.status is not None and decision.status.missed_runs == 1


def test_a_crash_between_create_and_status_after_downtime_is_not_counted_missed() -> None:
    # 11:00 was started (its run exists) but not recorded; 12:00 passed while down.
    obj = scheduled().schedule(HOURLY).status(last_schedule_time=LAST).build()
    started = run(run_name(utc(2026, 1, 5, 11)), "Running")
    decision = decide_schedule(observe(obj, utc(2026, 1, 5, 12, 1), started))
    assert created_names(decision) == [run_name(utc(2026, 1, 5, 12))]
    assert decision.status is not None
    assert decision.status.missed_runs == 0
    assert decision.status.active == sorted([started.metadata.name, run_name(utc(2026, 1, 5, 12))])


def test_when_the_latest_run_exists_the_older_missing_ones_are_missed() -> None:
    obj = scheduled().schedule(HOURLY).status(last_schedule_time=LAST).build()
    latest = run(run_name(utc(2026, 1, 5, 12)), "Running")
    decision = decide_schedule(observe(obj, utc(2026, 1, 5, 12, 1), latest))
    assert decision.create == ()
    assert decision.status is not None and decision.status.missed_runs == 1


# --------------------------------------------------------------------------- concurrency


@pytest.mark.parametrize(
    ("policy", "creates", "cancels", "skipped"),
    [
        ("Allow", True, [], 0),
        ("Forbid", False, [], 1),
        ("Replace", True, ["nightly-old"], 0),
    ],
)
def test_concurrency_policy_while_a_run_is_unfinished(
    policy: str, creates: bool, cancels: list[str], skipped: int
) -> None:
    obj = scheduled().policy(policy).status(next_schedule_time=FIRST, observed_generation=1).build()
    decision = decide_schedule(observe(obj, FIRST, run("nightly-old", "Running")))
    assert created_names(decision) == ([run_name(FIRST)] if creates else [])
    assert list(decision.cancel) == cancels
    assert decision.status is not None
    assert (decision.status.counts or ScheduleCounts()).skipped == skipped
    assert decision.status.next_schedule_time == stamp(FIRST + DAY)
    assert decision.status.last_schedule_time == (stamp(FIRST) if creates else None)
    expected_active = ["nightly-old", run_name(FIRST)] if creates else ["nightly-old"]
    assert decision.status.active == sorted(expected_active)


@pytest.mark.parametrize("policy", ["Allow", "Forbid", "Replace"])
def test_finished_runs_do_not_hold_a_fire(policy: str) -> None:
    obj = scheduled().policy(policy).status(next_schedule_time=FIRST, observed_generation=1).build()
    decision = decide_schedule(observe(obj, FIRST, run("nightly-old", "Failed", finished=FIRST - minutes(5))))
    assert created_names(decision) == [run_name(FIRST)]
    assert decision.cancel == ()


def test_replace_does_not_cancel_a_run_twice() -> None:
    obj = scheduled().policy("Replace").status(next_schedule_time=FIRST, observed_generation=1).build()
    decision = decide_schedule(observe(obj, FIRST, run("nightly-old", "Running", cancel=True)))
    assert decision.cancel == ()
    assert created_names(decision) == [run_name(FIRST)]


def test_forbid_runs_again_once_the_run_finishes() -> None:
    world = World(scheduled().policy("Forbid").build())
    world.step(FIRST)
    first = run_name(FIRST)
    world.step(FIRST + DAY)  # still running: skipped
    assert world.created == [first]
    assert world.status.counts == ScheduleCounts(skipped=1)
    world.finish(first, "Succeeded", FIRST + DAY + minutes(10))
    world.step(FIRST + DAY + minutes(10))
    assert world.status.active is None
    assert world.status.counts == ScheduleCounts(succeeded=1, skipped=1)
    world.step(FIRST + 2 * DAY)
    assert world.created == [first, run_name(FIRST + 2 * DAY)]


# --------------------------------------------------------------------------- suspend, spec changes


def test_suspended_nothing_runs_but_the_next_fire_is_shown() -> None:
    world = World(scheduled().suspend().build())
    decision = world.step(FIRST + minutes(1))
    assert decision.create == ()
    assert world.status.next_schedule_time == stamp(FIRST + DAY)
    assert ready_of(world.status)[:2] == ("True", "Suspended")
    assert decision.wake_at == FIRST + DAY


def test_resume_continues_from_now_without_a_burst_of_old_runs() -> None:
    world = World(scheduled().schedule(HOURLY).build())
    world.step(utc(2026, 1, 5, 0, 30))
    world.change_spec(suspend=True)
    world.step(utc(2026, 1, 5, 0, 31))
    for hour in (1, 2, 3):  # the clock still wakes it at each fire time, to refresh nextScheduleTime
        world.step(utc(2026, 1, 5, hour))
    assert world.created == []
    world.change_spec(suspend=False)
    decision = world.step(utc(2026, 1, 5, 3, 20))
    assert decision.create == ()
    assert world.status.missed_runs == 0
    assert world.status.next_schedule_time == stamp(utc(2026, 1, 5, 4))
    world.step(utc(2026, 1, 5, 4))
    assert world.created == [run_name(utc(2026, 1, 5, 4))]


def test_a_schedule_change_takes_effect_for_the_next_fire() -> None:
    world = World(scheduled().build())  # daily at 02:00
    world.step(FIRST)
    world.change_spec(schedule="*/15 * * * *")
    decision = world.step(utc(2026, 1, 5, 14, 7))
    assert decision.create == ()  # no catch-up of quarter hours since 02:00
    assert world.status.missed_runs == 0
    assert world.status.next_schedule_time == stamp(utc(2026, 1, 5, 14, 15))
    world.step(utc(2026, 1, 5, 14, 15))
    assert world.created == [run_name(FIRST), run_name(utc(2026, 1, 5, 14, 15))]


def test_a_time_zone_change_moves_the_next_fire() -> None:
    world = World(scheduled().build())
    world.step(utc(2026, 1, 5, 1))
    world.change_spec(time_zone="America/New_York")
    world.step(utc(2026, 1, 5, 1, 30))
    assert world.status.next_schedule_time == stamp(utc(2026, 1, 5, 7))  # 02:00 EST


# --------------------------------------------------------------------------- run now


def test_run_now_creates_one_manual_run_at_once_and_the_same_value_does_nothing() -> None:
    world = World(scheduled().build())
    world.step(utc(2026, 1, 5, 1))
    world.annotate("asynctask.dev/run-now", "1767578400")
    decision = world.step(utc(2026, 1, 5, 1, 5))
    manual = manual_run_name("nightly", "1767578400")
    assert created_names(decision) == [manual]
    manifest = decision.create[0]
    assert manifest["metadata"]["annotations"]["asynctask.dev/run-now"] == "1767578400"
    assert world.status.last_run_now == "1767578400"
    assert world.status.active == [manual]
    assert world.status.last_schedule_time is None  # a manual run is not a scheduled one
    again = world.step(utc(2026, 1, 5, 1, 6))
    assert again.create == () and again.status is None
    world.annotate("asynctask.dev/run-now", "1767578500")
    world.step(utc(2026, 1, 5, 1, 7))
    assert world.created == [manual, manual_run_name("nightly", "1767578500")]


def test_run_now_whose_run_exists_is_adopted() -> None:
    obj = scheduled().run_now("v1").status(next_schedule_time=FIRST, observed_generation=1).build()
    decision = decide_schedule(observe(obj, utc(2026, 1, 5, 1), run(manual_run_name("nightly", "v1"), "Running")))
    assert decision.create == ()
    assert decision.status is not None and decision.status.last_run_now == "v1"


@pytest.mark.parametrize(
    "builder",
    [
        scheduled().suspend(),
        scheduled().policy("Forbid"),
    ],
    ids=["while-suspended", "ignores-forbid"],
)
def test_run_now_is_an_explicit_request(builder: ScheduledTaskBuilder) -> None:
    obj = builder.run_now("now").status(next_schedule_time=FIRST, observed_generation=1).build()
    decision = decide_schedule(observe(obj, utc(2026, 1, 5, 1), run("nightly-old", "Running")))
    assert created_names(decision) == [manual_run_name("nightly", "now")]
    assert decision.cancel == ()


# --------------------------------------------------------------------------- counts, history


@pytest.mark.parametrize(
    ("phase", "counts"),
    [
        ("Succeeded", ScheduleCounts(succeeded=1)),
        ("Failed", ScheduleCounts(failed=1)),
        ("Cancelled", ScheduleCounts(failed=1)),
    ],
)
def test_a_finished_run_leaves_active_and_is_counted(phase: str, counts: ScheduleCounts) -> None:
    world = World(scheduled().build())
    world.step(FIRST)
    world.finish(run_name(FIRST), phase, FIRST + minutes(3))
    world.step(FIRST + minutes(3))
    assert world.status.active is None
    assert world.status.counts == counts
    assert world.status.last_successful_time == (stamp(FIRST + minutes(3)) if phase == "Succeeded" else None)


def test_an_active_run_deleted_by_someone_leaves_active_uncounted() -> None:
    world = World(scheduled().build())
    world.step(FIRST)
    world.runs.clear()
    world.step(FIRST + minutes(1))
    assert world.status.active is None
    assert world.status.counts == ScheduleCounts()


def finished_runs(phase: str, count: int) -> list[AsyncTask]:
    return [run(f"{phase.lower()}-{i}", phase, finished=FIRST + minutes(i)) for i in range(count)]


@pytest.mark.parametrize(
    ("succeeded_limit", "failed_limit", "deleted"),
    [
        (3, 1, ["succeeded-0", "succeeded-1", "failed-0", "failed-1"]),
        (5, 3, []),
        (0, 0, [f"succeeded-{i}" for i in range(5)] + [f"failed-{i}" for i in range(3)]),
        (1, 2, [f"succeeded-{i}" for i in range(4)] + ["failed-0"]),
    ],
    ids=["defaults", "within-limits", "keep-none", "mixed"],
)
def test_history_limits_delete_the_oldest_finished_runs(
    succeeded_limit: int, failed_limit: int, deleted: list[str]
) -> None:
    runs = [
        *finished_runs("Succeeded", 5),
        *finished_runs("Failed", 2),
        run("failed-2", "Cancelled", finished=FIRST + minutes(2)),
        run("nightly-running", "Running"),
    ]
    obj = scheduled().history(succeeded_limit, failed_limit).build()
    decision = decide_schedule(observe(obj, FIRST - minutes(30), *runs))
    assert [name for name, _ in decision.delete] == deleted
    assert all(uid == f"uid-{name}" for name, uid in decision.delete)


def test_history_defaults_are_three_succeeded_and_one_failed() -> None:
    spec = scheduled().build().spec
    assert (spec.successful_tasks_history_limit, spec.failed_tasks_history_limit) == (3, 1)
    assert spec.concurrency_policy == "Allow" and spec.time_zone == "UTC" and spec.suspend is False


def test_runs_being_deleted_are_not_deleted_again() -> None:
    runs = [run("old", "Succeeded", finished=FIRST, deleting=True), *finished_runs("Succeeded", 3)]
    decision = decide_schedule(observe(scheduled().build(), FIRST - minutes(30), *runs))
    assert decision.delete == ()


# --------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("schedule", "tz", "reason", "words"),
    [
        ("61 * * * *", "UTC", "InvalidSchedule", "bad minute"),
        ("0 0 30 2 *", "UTC", "InvalidSchedule", "bad day-of-month"),
        ("0 2 * * *", "Mars/Olympus", "InvalidTimeZone", "Mars/Olympus"),
    ],
)
def test_an_invalid_schedule_or_time_zone_is_not_ready_and_creates_nothing(
    schedule: str, tz: str, reason: str, words: str
) -> None:
    obj = scheduled().schedule(schedule, tz).run_now("v1").status(last_schedule_time=LAST).build()
    decision = decide_schedule(observe(obj, utc(2026, 2, 1)))
    assert decision.create == () and decision.wake_at is None
    status, got_reason, message = ready_of(decision.status)
    assert (status, got_reason) == ("False", reason)
    assert words in message
    assert decision.status is not None
    assert decision.status.next_schedule_time is None
    assert decision.status.last_run_now is None  # honoured once the schedule is fixed


def test_a_refused_template_is_not_ready_and_is_not_retried_until_the_next_fire() -> None:
    obj = scheduled().status(next_schedule_time=FIRST, observed_generation=1).build()
    refused = decide_schedule(observe(obj, FIRST, template_refused='metadata.labels: Invalid value: "a b"'))
    assert refused.create == ()
    assert ready_of(refused.status)[:2] == ("False", "InvalidTaskTemplate")
    assert refused.status is not None
    assert refused.status.next_schedule_time == stamp(FIRST + DAY)
    assert refused.status.active is None and refused.status.last_schedule_time is None
    world = World(obj.model_copy(update={"status": refused.status}))
    world.step(FIRST + minutes(5))  # any later look before the next fire keeps saying so
    assert ready_of(world.status)[:2] == ("False", "InvalidTaskTemplate")
    world.step(FIRST + DAY)  # the next fire tries again
    assert world.created == [run_name(FIRST + DAY)]
    assert ready_of(world.status)[:2] == ("True", "Scheduled")


def test_a_scheduled_task_being_deleted_starts_nothing() -> None:
    obj = scheduled().deleting().run_now("v1").status(next_schedule_time=FIRST, observed_generation=1).build()
    decision = decide_schedule(observe(obj, FIRST))
    assert decision.create == () and decision.wake_at is None


def test_the_status_is_written_only_when_it_changes() -> None:
    world = World(scheduled().build())
    assert world.step(utc(2026, 1, 5, 1)).status is not None
    assert world.step(utc(2026, 1, 5, 1, 1)).status is None
    assert world.step(utc(2026, 1, 5, 1, 2)).status is None
