"""Leader election rounds: create, renew, take an expired Lease, or wait."""

from __future__ import annotations

import datetime as dt

import pytest

from asynctask_operator.core.leadership import LeaseRecord, Move, lease_spec, next_move

T0 = dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=dt.UTC)


def lease(holder: str | None, renewed_seconds_ago: float | None, duration: int = 15) -> LeaseRecord:
    renewed = None if renewed_seconds_ago is None else T0 - dt.timedelta(seconds=renewed_seconds_ago)
    return LeaseRecord(holder=holder, renew_time=renewed, duration_seconds=duration)


@pytest.mark.parametrize(
    ("record", "move"),
    [
        (None, "create"),
        (lease("me", 1), "renew"),
        (lease("me", 60), "renew"),  # ours even if late: renewing is safe, nobody took it
        (lease("other", 1), "wait"),
        (lease("other", 14.9), "wait"),
        (lease("other", 15), "take"),  # expired exactly now
        (lease("other", 16), "take"),
        (lease(None, None), "take"),  # released
        (lease("other", None), "take"),  # never renewed
    ],
    ids=[
        "no-lease",
        "mine",
        "mine-late",
        "held",
        "held-almost-expired",
        "expired-now",
        "expired",
        "released",
        "never-renewed",
    ],
)
def test_next_move(record: LeaseRecord | None, move: Move) -> None:
    assert next_move(record, "me", T0) == move


def test_lease_round_trip() -> None:
    spec = lease_spec("me", T0, 15, 3)
    record = LeaseRecord.from_lease({"metadata": {"resourceVersion": "42"}, "spec": spec})
    assert (record.holder, record.renew_time, record.duration_seconds, record.transitions) == ("me", T0, 15, 3)
    assert record.resource_version == "42"
    assert record.expires() == T0 + dt.timedelta(seconds=15)
