"""The one way the operator writes a time into an object, and reads one back.

Kubernetes ``Time`` fields (conditions, Events, the task's status) hold RFC 3339 in UTC to
the second: ``2025-03-01T12:00:00Z``. A Lease's ``MicroTime`` fields hold microseconds.
"""

from __future__ import annotations

import datetime as dt

SECONDS = "%Y-%m-%dT%H:%M:%SZ"
MICROSECONDS = "%Y-%m-%dT%H:%M:%S.%fZ"


def stamp(moment: dt.datetime, *, micro: bool = False) -> str:
    """``moment`` as a status writes it: UTC, whole seconds (a fraction is cut, not rounded);
    with ``micro``, to the microsecond (a Lease's MicroTime)."""
    return moment.astimezone(dt.UTC).strftime(MICROSECONDS if micro else SECONDS)


def ceil_second(moment: dt.datetime) -> dt.datetime:
    """``moment`` rounded up to a whole second: a due time written with :func:`stamp` (which cuts
    the fraction) then never reads as earlier than it was meant."""
    whole = moment.replace(microsecond=0)
    return whole if whole == moment else whole + dt.timedelta(seconds=1)


def parse_stamp(text: str | None) -> dt.datetime | None:
    """A time an object holds; ``None`` for none, or for one that cannot be read (the operator writes
    only what :func:`stamp` makes, but a hand with the status subresource can write anything)."""
    if not text:
        return None
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
