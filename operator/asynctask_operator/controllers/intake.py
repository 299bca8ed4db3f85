"""The one way an AsyncTask enters or leaves the cache, and everything that follows from it.

A watch event, a page of a listing, the answer to a write — whichever brings a copy of a
task the cache did not hold, the same things follow, here and nowhere else:

- the admission ledger learns what the task is now (running, waiting, finished, gone), what key it
  holds or waits for, and its fairness turn (:meth:`TaskIntake.seen`, from this copy alone);
- the ScheduledTask whose run it is is woken when the run appears, changes phase or goes
  (that moves its ``status.active`` and ``counts``, and lets a Forbid schedule run again);
- the task itself is queued for reconciling — unless the copy is the answer to a write of
  that task's own reconcile, which has acted on what it wrote.

The watch skips an event whose object the cache already holds as it is (a listing replayed,
the echo of a write). That is right only because whatever put that copy in the cache queued
the key then: a run a ScheduledTask created, whose create answer was stored and whose ADDED
event was then skipped, sat Pending until the next resync (issue #10). So every path that
stores a task goes through :meth:`TaskIntake.take`, the answers to the operator's own writes
included.
"""

from __future__ import annotations

from collections.abc import Callable

from asynctask_operator.controllers.admission import Admissions
from asynctask_operator.controllers.cache import Cache, scheduled_owner
from asynctask_operator.core.archiving import archived_in
from asynctask_operator.core.observed import JobView
from asynctask_operator.core.queueing import Seen
from asynctask_operator.core.wire import Key, Obj, key_of, phase_in, seen_in


class TaskIntake:
    def __init__(
        self,
        cache: Cache,
        admissions: Admissions,
        wake_task: Callable[[Key], None],
        wake_schedule: Callable[[Key], None],
        default_queue: Callable[[], str],
    ) -> None:
        self.cache = cache
        self.admissions = admissions
        self._wake_task = wake_task
        self._wake_schedule = wake_schedule
        self._default_queue = default_queue

    def take(
        self, obj: Obj, *, answer_sent_at: float | None = None, own: bool = False, blob: bytes | None = None
    ) -> bool:
        """Store this copy of a task; False when the cache keeps what it has (the same copy, or a newer one).

        ``answer_sent_at``: the copy is the answer to a write sent at that monotonic time (see
        :meth:`Cache.put_task`). ``own``: the write was the task's own reconcile's. ``blob``: the copy
        encoded already (:meth:`Cache.task_blob`)."""
        key = key_of(obj)
        before = self.cache.tasks.phase(key)
        if not self.cache.put_task(obj, answer_sent_at, blob):
            return False
        self.admissions.observe_task(key, self.seen(key, obj))
        owner = scheduled_owner(obj)
        if owner is not None and (before != phase_in(obj) or archived_in(obj)):
            # A finished run's archive mark may let its schedule delete it (beyond its history limits).
            self._wake_schedule((key[0], owner[1]))
        if not own:
            self._wake_task(key)
        return True

    def reobserve(self, key: Key) -> None:
        """A Job of the task started or stopped running: what it holds may have changed with it."""
        if key in self.cache.tasks:
            self.admissions.observe_task(key, self.seen(key, self.cache.tasks[key]))

    def gone(self, key: Key) -> None:
        """The task is deleted (a DELETED event, a listing without it, a 404, its own TTL delete).

        A Job of it still running keeps holding the task's key (until it ends or the garbage
        collector takes it): the task is gone, its work is not."""
        owner = self.cache.run_owner(key)
        uid = self.cache.tasks.uid(key)
        for job in self.cache.jobs_of(uid).values() if uid else ():
            self.orphan(job)  # first: the key passes from the task to its Job, never free in between
        self.cache.drop_task(key)
        self.admissions.task_gone(key)
        if owner is not None:
            self._wake_schedule((key[0], owner[1]))

    def orphan(self, job: JobView, dropped: bool = False) -> None:
        """A Job whose task is not in the cache (deleted under it): it holds its key while it runs."""
        if not job.concurrency_key:
            return
        holder = (job.namespace, f"job/{job.name}")
        self.admissions.hold_key(holder, (job.namespace, job.concurrency_key), job.live and not dropped)

    def seen(self, key: Key, obj: Obj) -> Seen:
        """A copy of a task as the admission ledger reads it (:func:`~asynctask_operator.core.wire.seen_in`)."""
        spec = obj.get("spec") or {}
        tasktype = self.cache.tasktypes.get((key[0], str(spec.get("type") or "")))
        uid = str((obj.get("metadata") or {}).get("uid") or "")
        live = bool(uid) and any(job.live for job in self.cache.jobs_of(uid).values())
        return seen_in(obj, tasktype, self._default_queue(), live)
