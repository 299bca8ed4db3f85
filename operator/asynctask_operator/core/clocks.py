"""The operator's clocks, in one value passed to every part that reads the time.

Nothing in the operator reads ``time.time``, ``time.monotonic`` or ``datetime.now`` itself: a
part is given a :class:`Clocks` (the real ones by default). A test gives the parts clocks it
moves — :meth:`Clocks.of_loop` ties them to the event loop's clock, which ``looptime``
fast-forwards, so a 60 s backoff passes at once and in order with everything else.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import time
from collections.abc import Callable


@dataclasses.dataclass(frozen=True)
class Clocks:
    wall: Callable[[], float] = time.time
    """Epoch seconds: due times, status times."""
    monotonic: Callable[[], float] = time.monotonic
    """Seconds that never go back: when a request was sent, how fresh a cached entry is."""

    def utcnow(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.wall(), dt.UTC)

    @classmethod
    def of_loop(cls, loop: asyncio.AbstractEventLoop, epoch: float) -> Clocks:
        """Both clocks read the event loop's time; the wall clock starts at ``epoch``."""
        start = loop.time()
        return cls(wall=lambda: epoch + loop.time() - start, monotonic=loop.time)
