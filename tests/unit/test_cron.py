"""docs/design.md §2.4: fire times of a schedule in a time zone — DST, month ends, macros, bad input.

Transitions used (2026): Europe/Berlin springs forward on 29 March at 02:00 CET
(01:00 UTC) to 03:00 CEST and falls back on 25 October at 03:00 CEST (01:00 UTC) to
02:00 CET. America/New_York springs forward on 8 March at 02:00 EST (07:00 UTC) and
falls back on 1 November at 02:00 EDT (06:00 UTC) to 01:00 EST.
"""

from __future__ import annotations

import datetime as dt

import pytest

from asynctask_operator.core import cron
from asynctask_operator.core.cron import ScheduleError, fires_between, next_fire, parse_schedule, unix_minute
from asynctask_operator.core.naming import manual_run_name, scheduled_run_name
from tests.unit.schedule_builders import utc

BERLIN = "Europe/Berlin"
NEW_YORK = "America/New_York"


def fires(schedule: str, tz: str, after: dt.datetime, count: int) -> list[dt.datetime]:
    parsed = parse_schedule(schedule, tz)
    out: list[dt.datetime] = []
    for _ in range(count):
        nxt = next_fire(parsed, after)
        assert nxt is not None
        out.append(nxt)
        after = nxt
    return out


# --------------------------------------------------------------------------- DST


@pytest.mark.parametrize(
    ("schedule", "tz", "after", "expected"),
    [
        # Berlin, spring: 02:30 does not exist on 29 March; it fires once, at 03:00 CEST (the end of the gap).
        ("30 2 * * *", BERLIN, utc(2026, 3, 28, 12), [utc(2026, 3, 29, 1, 0), utc(2026, 3, 30, 0, 30)]),
        # Two times in the gap fire once together, at the end of the gap.
        ("0,30 2 * * *", BERLIN, utc(2026, 3, 28, 12), [utc(2026, 3, 29, 1, 0), utc(2026, 3, 30, 0, 0)]),
        # A time after the gap is unaffected.
        ("30 3 * * *", BERLIN, utc(2026, 3, 28, 12), [utc(2026, 3, 29, 1, 30), utc(2026, 3, 30, 1, 30)]),
        # Berlin, autumn: 02:30 happens twice on 25 October; it fires once, at the first (CEST) one.
        ("30 2 * * *", BERLIN, utc(2026, 10, 24, 12), [utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)]),
        # 03:00 happens once (CET, after the repeated hour).
        ("0 3 * * *", BERLIN, utc(2026, 10, 24, 12), [utc(2026, 10, 25, 2, 0), utc(2026, 10, 26, 2, 0)]),
        # New York, spring: 02:30 does not exist on 8 March; fires at 03:00 EDT.
        ("30 2 * * *", NEW_YORK, utc(2026, 3, 7, 12), [utc(2026, 3, 8, 7, 0), utc(2026, 3, 9, 6, 30)]),
        # New York, autumn: 01:30 happens twice on 1 November; it fires once, at 01:30 EDT.
        ("30 1 * * *", NEW_YORK, utc(2026, 10, 31, 12), [utc(2026, 11, 1, 5, 30), utc(2026, 11, 2, 6, 30)]),
        # Weekdays at 09:00 in New York, across the spring change (Friday EST, Monday EDT).
        ("0 9 * * 1-5", NEW_YORK, utc(2026, 3, 6, 12), [utc(2026, 3, 6, 14, 0), utc(2026, 3, 9, 13, 0)]),
    ],
    ids=[
        "berlin-spring-gap",
        "berlin-spring-two-in-gap",
        "berlin-spring-after-gap",
        "berlin-autumn-repeat",
        "berlin-autumn-after-repeat",
        "new-york-spring-gap",
        "new-york-autumn-repeat",
        "new-york-weekdays",
    ],
)
def test_wall_clock_schedules_fire_once_across_dst(
    schedule: str, tz: str, after: dt.datetime, expected: list[dt.datetime]
) -> None:
    assert fires(schedule, tz, after, len(expected)) == expected


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        (utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)),  # right after the run at 02:30 CEST
        (utc(2026, 10, 25, 1, 15), utc(2026, 10, 26, 1, 30)),  # 02:15 CET, inside the repeated hour
        (utc(2026, 10, 25, 1, 45), utc(2026, 10, 26, 1, 30)),  # 02:45 CET
    ],
    ids=["after-the-run", "repeated-hour-before-0230", "repeated-hour-after-0230"],
)
def test_a_restart_inside_the_repeated_hour_does_not_fire_it_again(after: dt.datetime, expected: dt.datetime) -> None:
    assert next_fire(parse_schedule("30 2 * * *", BERLIN), after) == expected


@pytest.mark.parametrize(
    ("schedule", "tz", "after", "expected"),
    [
        # Hourly and finer schedules run on elapsed time, as cron does: each real hour gets its run.
        (
            "30 * * * *",
            BERLIN,
            utc(2026, 10, 25, 0, 0),
            [utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 1, 30), utc(2026, 10, 25, 2, 30)],
        ),
        ("30 * * * *", BERLIN, utc(2026, 3, 29, 0, 0), [utc(2026, 3, 29, 0, 30), utc(2026, 3, 29, 1, 30)]),
        (
            "*/20 * * * *",
            NEW_YORK,
            utc(2026, 3, 8, 6, 30),
            [utc(2026, 3, 8, 6, 40), utc(2026, 3, 8, 7, 0), utc(2026, 3, 8, 7, 20)],
        ),
    ],
    ids=["hourly-berlin-autumn", "hourly-berlin-spring", "every-20-new-york-spring"],
)
def test_frequent_schedules_follow_elapsed_time(
    schedule: str, tz: str, after: dt.datetime, expected: list[dt.datetime]
) -> None:
    assert fires(schedule, tz, after, len(expected)) == expected


# --------------------------------------------------------------------------- calendar


@pytest.mark.parametrize(
    ("schedule", "after", "expected"),
    [
        ("0 0 31 * *", utc(2026, 1, 31), [utc(2026, 3, 31), utc(2026, 5, 31), utc(2026, 7, 31)]),
        ("0 0 30 * *", utc(2026, 1, 30), [utc(2026, 3, 30), utc(2026, 4, 30)]),
        ("0 0 29 2 *", utc(2026, 1, 1), [utc(2028, 2, 29)]),
        ("0 0 L * *", utc(2026, 2, 1), [utc(2026, 2, 28), utc(2026, 3, 31)]),  # cronsim: L = last day
        ("0 12 * * SUN", utc(2026, 1, 1), [utc(2026, 1, 4, 12)]),
        ("0 0 1 JAN,JUL *", utc(2026, 1, 1), [utc(2026, 7, 1), utc(2027, 1, 1)]),
        # Day-of-month and day-of-week both restricted: either matches (cron's OR).
        ("0 0 13 * 5", utc(2026, 2, 1), [utc(2026, 2, 6), utc(2026, 2, 13), utc(2026, 2, 20)]),
        ("* * * * *", utc(2026, 1, 1, 0, 0, 30), [utc(2026, 1, 1, 0, 1), utc(2026, 1, 1, 0, 2)]),
    ],
    ids=["31st", "30th", "leap-day", "last-day", "day-name", "month-names", "dom-or-dow", "every-minute"],
)
def test_month_ends_and_names(schedule: str, after: dt.datetime, expected: list[dt.datetime]) -> None:
    assert fires(schedule, "UTC", after, len(expected)) == expected


@pytest.mark.parametrize(
    ("macro", "tz", "expected"),
    [
        ("@hourly", "UTC", utc(2026, 1, 1, 1)),
        ("@daily", "UTC", utc(2026, 1, 2)),
        ("@midnight", BERLIN, utc(2026, 1, 1, 23)),  # midnight in Berlin is 23:00 UTC in winter
        ("@weekly", "UTC", utc(2026, 1, 4)),  # 1 January 2026 is a Thursday; weeks start on Sunday
        ("@monthly", "UTC", utc(2026, 2, 1)),
        ("@yearly", "UTC", utc(2027, 1, 1)),
        ("@annually", "UTC", utc(2027, 1, 1)),
    ],
)
def test_macros(macro: str, tz: str, expected: dt.datetime) -> None:
    assert next_fire(parse_schedule(macro, tz), utc(2026, 1, 1, 0, 10)) == expected


def test_next_fire_is_strictly_after() -> None:
    schedule = parse_schedule("0 2 * * *")
    assert next_fire(schedule, utc(2026, 1, 5, 2)) == utc(2026, 1, 6, 2)
    assert next_fire(schedule, utc(2026, 1, 5, 1, 59, 59)) == utc(2026, 1, 5, 2)


def test_default_time_zone_is_utc() -> None:
    assert parse_schedule("0 2 * * *").time_zone == "UTC"


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("schedule", "tz", "reason", "words"),
    [
        ("61 * * * *", "UTC", "InvalidSchedule", "bad minute"),
        ("0 25 * * *", "UTC", "InvalidSchedule", "bad hour"),
        ("0 0 30 2 *", "UTC", "InvalidSchedule", "bad day-of-month"),
        ("0 0 * 13 *", "UTC", "InvalidSchedule", "bad month"),
        ("0 0 * * 8", "UTC", "InvalidSchedule", "bad day-of-week"),
        ("* * * *", "UTC", "InvalidSchedule", "4 fields"),
        ("0 0 0 * * *", "UTC", "InvalidSchedule", "6 fields"),  # cronsim's seconds field is not ours
        ("@every 5m", "UTC", "InvalidSchedule", "2 fields"),
        ("@reboot", "UTC", "InvalidSchedule", "1 fields"),
        ("0 2 * * *", "Mars/Olympus", "InvalidTimeZone", "unknown time zone 'Mars/Olympus'"),
        ("0 2 * * *", "America", "InvalidTimeZone", "unknown time zone"),
        ("0 2 * * *", "../etc/passwd", "InvalidTimeZone", "unknown time zone"),
        ("0 2 * * *", "utc", "InvalidTimeZone", "unknown time zone"),
    ],
)
def test_invalid_schedules_and_time_zones_say_what_is_wrong(schedule: str, tz: str, reason: str, words: str) -> None:
    with pytest.raises(ScheduleError) as refused:
        parse_schedule(schedule, tz)
    assert refused.value.reason == reason
    assert words in refused.value.message


# --------------------------------------------------------------------------- windows


def test_fires_between_is_after_exclusive_and_until_inclusive() -> None:
    schedule = parse_schedule("*/10 * * * *")
    got, cut = fires_between(schedule, utc(2026, 1, 1, 0, 0), utc(2026, 1, 1, 0, 30))
    assert got == [utc(2026, 1, 1, 0, 10), utc(2026, 1, 1, 0, 20), utc(2026, 1, 1, 0, 30)]
    assert not cut


def test_fires_between_stops_at_its_bound_and_still_knows_the_latest(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cron, "MAX_FIRES_WALKED", 5)
    got, cut = fires_between(parse_schedule("* * * * *"), utc(2026, 1, 1), utc(2026, 1, 2, 3, 4))
    assert cut
    assert got[:5] == [utc(2026, 1, 1, 0, m) for m in range(1, 6)]
    assert got[-1] == utc(2026, 1, 2, 3, 4)


def test_fires_between_with_the_repeated_hour_counts_each_fire_once() -> None:
    got, _ = fires_between(parse_schedule("30 2 * * *", BERLIN), utc(2026, 10, 24, 12), utc(2026, 10, 26, 12))
    assert got == [utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)]


# --------------------------------------------------------------------------- names


def test_run_names_are_the_owner_and_the_unix_minute() -> None:
    assert unix_minute(utc(2025, 11, 14, 1, 20)) == 29384720
    assert scheduled_run_name("nightly-report", 29384720) == "nightly-report-29384720"


def test_long_names_are_shortened_and_keep_their_suffix() -> None:
    name = scheduled_run_name("x" * 250, 29384720)
    assert len(name) <= 253 and name.endswith("-29384720")
    assert scheduled_run_name("x" * 250, 29384721) != name


def test_manual_run_names_hash_the_run_now_value() -> None:
    assert manual_run_name("nightly", "1767225600") == manual_run_name("nightly", "1767225600")
    assert manual_run_name("nightly", "1767225600") != manual_run_name("nightly", "1767225601")
    assert manual_run_name("nightly", "a").startswith("nightly-manual-")
    assert len(manual_run_name("nightly", "a")) == len("nightly-manual-") + 8
