"""The one format of a time in an object: UTC, whole seconds, ``Z`` (a Lease's MicroTime: microseconds)."""

from __future__ import annotations

import datetime as dt

import pytest

from asynctask_operator.core.timestamps import ceil_second, parse_stamp, stamp

MOMENT = dt.datetime(2025, 3, 1, 12, 0, 59, 999_999, tzinfo=dt.UTC)


def test_a_stamp_is_utc_and_cuts_the_fraction() -> None:
    assert stamp(MOMENT) == "2025-03-01T12:00:59Z"
    assert stamp(MOMENT.astimezone(dt.timezone(dt.timedelta(hours=2)))) == "2025-03-01T12:00:59Z"


def test_a_micro_stamp_keeps_the_microseconds() -> None:
    assert stamp(MOMENT, micro=True) == "2025-03-01T12:00:59.999999Z"


def test_ceil_second_rounds_a_fraction_up_and_keeps_a_whole_second() -> None:
    assert ceil_second(MOMENT) == dt.datetime(2025, 3, 1, 12, 1, 0, tzinfo=dt.UTC)
    assert ceil_second(MOMENT.replace(microsecond=1)) == dt.datetime(2025, 3, 1, 12, 1, 0, tzinfo=dt.UTC)
    assert ceil_second(MOMENT.replace(microsecond=0)) == MOMENT.replace(microsecond=0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-03-01T12:00:59Z", MOMENT.replace(microsecond=0)),
        ("2025-03-01T12:00:59.999999Z", MOMENT),
        ("2025-03-01T12:00:59", MOMENT.replace(microsecond=0)),  # no zone: UTC
        ("yesterday", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_reads_what_stamp_writes_and_nothing_else_raises(text: str | None, expected: dt.datetime | None) -> None:
    assert parse_stamp(text) == expected
