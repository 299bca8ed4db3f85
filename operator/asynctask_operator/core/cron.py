"""Fire times of a cron schedule in a time zone: :func:`next_fire` and friends.

The parsing and calendar arithmetic are cronsim's (docs/adr/0010-cron-library.md);
this module fixes what the operator needs around it: the macros, exactly five fields,
IANA zones, "strictly after", and a bound on how many fire times one call walks.

Daylight saving time follows cron (Debian's, which cronsim reproduces):

- A schedule that names a time of day (neither its minute nor its hour field starts
  with ``*``, e.g. ``30 2 * * *``, ``@daily``) is read on the wall clock. A wall-clock
  time that happens twice (autumn) fires once, at its first occurrence (still on
  summer time). A time that does not exist (spring) fires once, at the first instant
  after the gap: ``30 2 * * *`` in Europe/Berlin on 2026-03-29 fires at 03:00 CEST
  (01:00 UTC), and several skipped times (``0,30 2 * * *``) fire once together.
- A schedule whose minute or hour field starts with ``*`` (``*/5 * * * *``,
  ``30 * * * *``, ``@hourly``) runs on elapsed time: every real hour gets its runs,
  so the repeated autumn hour runs again and the skipped spring hour has none.

Every fire time is a whole minute, and an aware UTC datetime.

>>> schedule = parse_schedule("30 2 * * *", "Europe/Berlin")
>>> next_fire(schedule, dt.datetime(2026, 3, 28, 12, tzinfo=dt.UTC))
datetime.datetime(2026, 3, 29, 1, 0, tzinfo=datetime.timezone.utc)
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import zoneinfo

from cronsim import CronSim, CronSimError

from asynctask_operator.core.models import CRON_MACROS

MAX_FIRES_WALKED = 10_000
"""Most fire times one call enumerates (about 50 ms): an operator that was down for
weeks under a per-minute schedule counts at least this many missed runs, not more."""


class ScheduleError(ValueError):
    """A schedule or time zone the operator cannot use; ``reason`` is the condition reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclasses.dataclass(frozen=True)
class Schedule:
    """A parsed schedule: five cron fields read in ``zone``."""

    expression: str
    zone: zoneinfo.ZoneInfo

    @property
    def time_zone(self) -> str:
        return self.zone.key


def parse_schedule(schedule: str, time_zone: str = "UTC") -> Schedule:
    """Check ``schedule`` and ``time_zone``; raise :class:`ScheduleError` saying what is wrong."""
    expression = CRON_MACROS.get(schedule.strip().lower(), schedule.strip())
    fields = expression.split()
    if len(fields) != 5:
        raise ScheduleError(
            "InvalidSchedule",
            f"schedule {schedule!r} has {len(fields)} fields; want 5 (minute hour day-of-month month day-of-week) "
            f"or one of {', '.join(sorted(CRON_MACROS))}",
        )
    try:
        zone = zoneinfo.ZoneInfo(time_zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a folder, e.g. "America"
        raise ScheduleError("InvalidTimeZone", f"unknown time zone {time_zone!r}: want an IANA name") from None
    try:
        CronSim(expression, dt.datetime(2000, 1, 1, tzinfo=zone))
    except CronSimError as exc:
        raise ScheduleError("InvalidSchedule", f"schedule {schedule!r}: {str(exc).lower()}") from None
    return Schedule(" ".join(fields), zone)


def next_fire(schedule: Schedule, after: dt.datetime) -> dt.datetime | None:
    """The first fire time strictly after ``after``; None when there is none within 50 years."""
    # CronSim stops iterating when nothing matches within 50 years.
    for fire in CronSim(schedule.expression, after.astimezone(schedule.zone)):
        fire_utc = fire.astimezone(dt.UTC)
        # In the repeated autumn hour a wall-clock schedule may answer the first occurrence,
        # which is before ``after`` in real time: that one has fired already.
        if fire_utc > after:
            return fire_utc
    return None


def fires_between(schedule: Schedule, after: dt.datetime, until: dt.datetime) -> tuple[list[dt.datetime], bool]:
    """Fire times in ``(after, until]``, oldest first, at most :data:`MAX_FIRES_WALKED` + 1 of them.

    The flag says the walk stopped at the bound: the list then holds the oldest fire times
    and the latest one, and more passed between them."""
    fires, cut = _walk(schedule, after, until)
    if cut:
        latest = _latest_fire(schedule, until)
        if latest is not None and latest > fires[-1]:
            fires.append(latest)
    return fires, cut


def _walk(schedule: Schedule, after: dt.datetime, until: dt.datetime) -> tuple[list[dt.datetime], bool]:
    fires: list[dt.datetime] = []
    for fire in CronSim(schedule.expression, after.astimezone(schedule.zone)):
        fire_utc = fire.astimezone(dt.UTC)
        if fire_utc <= (fires[-1] if fires else after):
            continue  # the first occurrence of a repeated wall-clock time, already behind us
        if fire_utc > until:
            return fires, False
        if len(fires) == MAX_FIRES_WALKED:
            return fires, True
        fires.append(fire_utc)
    return fires, False


def _latest_fire(schedule: Schedule, until: dt.datetime) -> dt.datetime | None:
    """The latest fire time at or before ``until`` (asked only after a long walk, so fires are dense)."""
    for days in (1, 32, 366):  # five cron fields fire at most 1440 times a day: each look is bounded
        latest: dt.datetime | None = None
        for fire in CronSim(schedule.expression, (until - dt.timedelta(days=days)).astimezone(schedule.zone)):
            fire_utc = fire.astimezone(dt.UTC)
            if fire_utc > until:
                break
            latest = fire_utc
        if latest is not None:
            return latest
    return None


def unix_minute(moment: dt.datetime) -> int:
    return int(moment.timestamp()) // 60
