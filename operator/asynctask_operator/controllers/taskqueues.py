"""The TaskQueue reconcile: write a queue's status when its figures changed, coalesced.

Looking at a queue also admits from it: the ledger asks for that when a rate-limited queue's
next token is due. The status is a pure function of the queue and the admission ledger's counts
(:func:`~asynctask_operator.core.taskqueues.taskqueue_status`); this module only decides *when*
to look and writes what differs. The rule:

- a change in the ledger (a task waits, is admitted, starts, stops) queues the queue's key on the
  operator's clock, at the earliest ``interval`` seconds after its last status write: a burst of
  a thousand admissions costs one write per ``interval``, not one each;
- while tasks wait, ``oldestPendingSeconds`` grows on its own: the reconcile asks to be looked at
  again ``interval`` seconds later;
- nothing is written when the computed status equals the stored one.

The answer to the write goes the way of a watch event (``took``), guarded like the other kinds':
an answer read after the watch event of a later change (the user pausing the queue while the
write was in flight) is dropped, or it would take the ledger back to the spec before it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from asynctask_operator.adapters.api import Kube
from asynctask_operator.adapters.kube import TASKQUEUES, NotFound
from asynctask_operator.controllers.admission import Admissions
from asynctask_operator.controllers.cache import Cache
from asynctask_operator.core.models.concurrency import BUSIEST_SHOWN
from asynctask_operator.core.taskqueues import taskqueue_status
from asynctask_operator.core.wire import Key, Obj


class TaskQueueReconciler:
    def __init__(
        self,
        cache: Cache,
        api: Kube,
        admissions: Admissions,
        took: Callable[[Obj, float], None],
        schedule: Callable[[Key, float], None],
        interval: float,
    ) -> None:
        """``took(answer, sent)``: the answer to a status write sent at monotonic time ``sent``;
        ``schedule(key, at)``: queue the queue's key at wall time ``at`` (the operator's clock);
        ``interval``: the least time between two status writes of one queue."""
        self.cache = cache
        self.api = api
        self.admissions = admissions
        self._took = took
        self._schedule = schedule
        self.interval = interval
        self._written: dict[Key, float] = {}  # wall time of each queue's last status write

    def changed(self, key: Key, now: float) -> None:
        """The ledger's figures of this queue moved: look at its status when the next write is allowed."""
        if key in self.admissions.objects:  # the implicit default queue has no object to write to
            self._schedule(key, max(now, self._written.get(key, float("-inf")) + self.interval))

    def forget(self, key: Key) -> None:
        self._written.pop(key, None)

    async def reconcile(self, key: Key, now: dt.datetime) -> float | None:
        """Admit what the queue can (a rate limit's next token may be due), then write the status if it
        differs; seconds until the next look while tasks wait, else None."""
        self.admissions.admit(key)
        queue = self.admissions.objects.get(key)
        if queue is None:
            return None
        wall = now.timestamp()
        counts = self.admissions.ledger.counts(key, wall)
        again = self.interval if counts.pending else None
        status = taskqueue_status(queue, counts, wall, self.admissions.ledger.busiest(key, BUSIEST_SHOWN))
        if status is None:
            return again
        if wall < self._written.get(key, float("-inf")) + self.interval:  # woken early (a resync): not yet
            return self._written[key] + self.interval - wall
        sent = self.cache.monotonic()
        try:
            updated = await self.api.patch(TASKQUEUES, key[0], key[1], {"status": status.dump()}, subresource="status")
        except NotFound:
            return None
        self._written[key] = wall
        self._took(updated, sent)
        return again
