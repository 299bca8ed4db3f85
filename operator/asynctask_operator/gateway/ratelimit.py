"""A token bucket per key (a user; a client address): ``rate`` a second on average, bursts of ``burst``.

>>> from asynctask_operator.core.clocks import Clocks
>>> limiter = RateLimiter(rate=1.0, burst=2, clocks=Clocks(monotonic=lambda: 0.0))
>>> limiter.take("alice"), limiter.take("alice"), limiter.take("alice")
(0.0, 0.0, 1.0)
"""

from __future__ import annotations

import collections

from asynctask_operator.core.clocks import Clocks

MAX_USERS = 10_000  # buckets kept; the least recently used go first (a full bucket is no state)


class RateLimiter:
    def __init__(self, rate: float, burst: int, clocks: Clocks) -> None:
        self.rate = rate
        self.burst = max(burst, 1)
        self.clocks = clocks
        self._buckets: collections.OrderedDict[str, tuple[float, float]] = collections.OrderedDict()

    def take(self, user: str) -> float:
        """Take one token: 0 when there was one, else the seconds until there will be (nothing taken)."""
        now = self.clocks.monotonic()
        tokens, last = self._buckets.pop(user, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate)
        wait = 0.0
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            wait = (1.0 - tokens) / self.rate
        self._buckets[user] = (tokens, now)
        while len(self._buckets) > MAX_USERS:
            self._buckets.popitem(last=False)
        return wait

    def give_back(self, key: str) -> None:
        """Return the token :meth:`take` took for ``key``: what it was taken for did not count after all.

        >>> from asynctask_operator.core.clocks import Clocks
        >>> limiter = RateLimiter(rate=1.0, burst=1, clocks=Clocks(monotonic=lambda: 0.0))
        >>> limiter.take("10.0.0.1"), limiter.give_back("10.0.0.1"), limiter.take("10.0.0.1")
        (0.0, None, 0.0)
        """
        entry = self._buckets.get(key)
        if entry is not None:
            tokens, last = entry
            self._buckets[key] = (min(float(self.burst), tokens + 1.0), last)

    def __len__(self) -> int:
        return len(self._buckets)
