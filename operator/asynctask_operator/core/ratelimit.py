"""A TaskQueue's ``maxStartsPerMinute``: admissions spaced evenly, without bursts. Pure: the time is an argument."""

from __future__ import annotations

import dataclasses
import math


@dataclasses.dataclass
class TokenBucket:
    """Evenly spaced admissions: one every ``60 / per_minute`` seconds, no bursts.

    A burst of 1,000 tasks against 60/min starts one per second.
    """

    per_minute: int
    last_start: float | None = None  # when the last token was taken

    @property
    def interval(self) -> float:
        return 60.0 / self.per_minute

    @property
    def next_time(self) -> float:
        """One interval (at the current rate) after the last start, so a new rate applies at once."""
        return -math.inf if self.last_start is None else self.last_start + self.interval

    def ready_at(self, now: float) -> float:
        return max(now, self.next_time)

    def take(self, now: float) -> bool:
        if now < self.next_time:
            return False
        self.last_start = now
        return True
