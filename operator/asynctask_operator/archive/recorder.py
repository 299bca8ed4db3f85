"""The recorder's loop: take a batch from the backlog, write it in one transaction, then mark each task.

The order is what makes a crash at any line harmless: the logs are read, the rows and logs are
committed, and only then is each still-present task marked ``asynctask.dev/archived`` (which lets
the operator delete it). Killed before the commit, nothing is written and the tasks, unmarked, are
offered again by the next listing; killed after it, the rows are there and the upsert of the next
run writes nothing new (the same revision), then marks. Never two rows, never a mark without a row.

The database down (or refusing): the batch goes back to the backlog and the loop backs off, up to
``max_backoff_seconds``; it never exits, so a long outage costs a growing backlog (bounded, see
:mod:`.backlog`) and an alert, not a crash loop. A row the database refuses for its content (not
for being down) is found by writing the batch's rows one at a time; it is stored as a minimal
record saying why, and the task is marked like any other.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence

from sqlalchemy import select, tuple_
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from asynctask_operator.adapters.kube import ASYNCTASKS, EVENTS, ApiError, Conflict, NotFound
from asynctask_operator.archive.backlog import Backlog, Pending
from asynctask_operator.archive.capture import LogClient, capture
from asynctask_operator.archive.marks import mark_patch, warning
from asynctask_operator.archive.metrics import ArchiveMetrics
from asynctask_operator.archive.records import TaskRow, Unkeyed, minimal, row_of
from asynctask_operator.archive.schema import attempt_logs
from asynctask_operator.archive.settings import ArchiveSettings
from asynctask_operator.archive.writes import insert_logs, upsert_tasks
from asynctask_operator.core.draft import MAX_ATTEMPTS_KEPT
from asynctask_operator.core.retry import backoff
from asynctask_operator.core.wire import Obj

logger = logging.getLogger(__name__)


class Recorder:
    def __init__(
        self,
        engine: AsyncEngine,
        api: LogClient,
        backlog: Backlog,
        settings: ArchiveSettings,
        metrics: ArchiveMetrics,
        *,
        wall: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        self.engine = engine
        self.api = api
        self.backlog = backlog
        self.settings = settings
        self.metrics = metrics
        self.wall = wall
        self.sleep = sleep
        self.failures = 0  # consecutive failed batches
        self._reads = asyncio.Semaphore(max(settings.log_concurrency, 1))

    async def run(self) -> None:
        """Write batches for as long as the caller runs."""
        while True:
            await self.backlog.wait()
            if len(self.backlog) < self.settings.batch_size:  # a full batch, or what came within the latency
                await self.sleep(self.settings.batch_latency_seconds)
            await self.once()

    async def once(self) -> bool:
        """Write one batch; False when it failed (it is back in the backlog, and the loop has backed off)."""
        batch = self.backlog.take(self.settings.batch_size)
        if not batch:
            return True
        started = time.monotonic()
        try:
            unmarked = await self.write(batch)
        except asyncio.CancelledError:
            self.backlog.give_back(batch)
            raise
        except Exception as exc:
            self.backlog.give_back(batch)
            self.failures += 1
            self.metrics.db_errors.inc()
            delay = backoff(self.failures, 0.5, self.settings.max_backoff_seconds)
            logger.warning("archive write of %d tasks failed (%s: %s); again in %.1fs", len(batch),
                           type(exc).__name__, str(exc).splitlines()[0][:300] if str(exc) else "", delay)  # fmt: skip
            await self.sleep(delay)
            return False
        self.metrics.batch_seconds.observe(time.monotonic() - started)
        if unmarked:  # the API server refused marks: they are back in the backlog, after a pause
            self.failures += 1
            await self.sleep(backoff(self.failures, 0.5, self.settings.max_backoff_seconds))
            return False
        self.failures = 0
        return True

    async def write(self, batch: list[Pending]) -> int:
        """Write a batch and mark its tasks; the number of marks refused (those tasks are back in the backlog)."""
        rows, pending = self._rows(batch)
        await self._read_logs(pending)
        logs = [log for p in pending for log in p.logs or ()]
        try:
            async with self.engine.begin() as conn:
                written = await upsert_tasks(conn, rows)
                await insert_logs(conn, logs)
        except (DataError, IntegrityError) as exc:
            logger.warning(
                "the database refused a batch of %d tasks (%s): writing them one by one", len(rows), exc.orig
            )
            written = await self._one_by_one(rows, logs)
        self.metrics.rows_written.labels("tasks").inc(written)
        self.metrics.rows_written.labels("attempt_logs").inc(len(logs))
        marked = await asyncio.gather(*(self._mark(p) for p in pending if p.mark))
        return marked.count(False)

    def _rows(self, batch: list[Pending]) -> tuple[list[TaskRow], list[Pending]]:
        now = self.wall()
        rows, pending = [], []
        for p in batch:
            try:
                row = row_of(p.obj, now)
            except Unkeyed as exc:
                logger.error("an AsyncTask cannot be archived: %s", exc)
                self.metrics.refused.inc()
                continue
            if row.note:
                logger.warning("AsyncTask %s/%s (%s): archived as far as it can be read: %s",
                               row.namespace, row.name, row.uid, row.note)  # fmt: skip
            rows.append(row)
            pending.append(p)
        return rows, pending

    async def _read_logs(self, pending: Sequence[Pending]) -> None:
        """Read the logs of the attempts the archive does not hold yet (once per task, kept on a retry)."""
        wanted = {(p.uid, n): p for p in pending if p.logs is None for n in _attempts(p.obj)}
        if not wanted:
            for p in pending:
                p.logs = p.logs or []
            return
        async with self.engine.connect() as conn:
            held: set[tuple[str, int]] = set()
            keys = list(wanted)
            for start in range(0, len(keys), 500):
                part = keys[start : start + 500]
                found = await conn.execute(
                    select(attempt_logs.c.uid, attempt_logs.c.attempt).where(
                        tuple_(attempt_logs.c.uid, attempt_logs.c.attempt).in_(part)
                    )
                )
                held.update((row.uid, row.attempt) for row in found)
        for p in pending:
            if p.logs is None:
                p.logs = []
        reads = [self._read(p, attempt) for (uid, attempt), p in wanted.items() if (uid, attempt) not in held]
        for p, log in await asyncio.gather(*reads):
            assert p.logs is not None
            p.logs.append(log)

    async def _read(self, p: Pending, attempt: int) -> tuple[Pending, Obj]:
        async with self._reads:
            log = await capture(self.api, p.obj, attempt, self.settings.log_limit_bytes, self.wall())
        self.metrics.logs.labels("missing" if log["error"] else "captured").inc()
        return p, log

    async def _one_by_one(self, rows: list[TaskRow], logs: list[Obj]) -> int:
        """Each row alone; one refused for its content is stored as a minimal record saying why."""
        written = 0
        for row in rows:
            try:
                async with self.engine.begin() as conn:
                    written += await upsert_tasks(conn, [row])
                continue
            except (DataError, IntegrityError) as exc:
                reason = f"{type(exc.orig).__name__}: {str(exc.orig)[:300]}"
            self.metrics.refused.inc()
            logger.error("AsyncTask %s/%s (%s): refused by the database (%s); stored as a minimal record",
                         row.namespace, row.name, row.uid, reason)  # fmt: skip
            async with self.engine.begin() as conn:
                written += await upsert_tasks(conn, [minimal(row, reason)])
            await self._warn(row, "ArchiveRefused", f"the archive's database refused this task's record ({reason}): "
                             "only its name, phase and times are archived")  # fmt: skip
        for log in logs:
            try:
                async with self.engine.begin() as conn:
                    await insert_logs(conn, [log])
            except (DataError, IntegrityError) as exc:
                logger.error("log of %s attempt %s refused by the database: %s", log["uid"], log["attempt"], exc.orig)
        return written

    async def _warn(self, row: TaskRow, reason: str, message: str) -> None:
        """A Warning Event on the task (for ``kubectl describe``); never worth failing a batch over."""
        try:
            await self.api.create(EVENTS, row.namespace, warning(row, reason, message, self.wall()))
        except ApiError as exc:
            logger.warning("Event %s on AsyncTask %s/%s not posted: %s", reason, row.namespace, row.name, exc)

    async def _mark(self, p: Pending) -> bool:
        """Mark the task archived in the state written (the operator may delete it now); False when refused."""
        patch = mark_patch(p.obj)
        meta = p.obj.get("metadata") or {}
        if patch is None:
            return True
        try:
            await self.api.patch(ASYNCTASKS, str(meta["namespace"]), str(meta["name"]), patch)
            self.metrics.marks.labels("ok").inc()
        except (NotFound, Conflict):  # deleted, or a new task of that name: its row is written, nothing to mark
            self.metrics.marks.labels("gone").inc()
        except ApiError as exc:
            self.metrics.marks.labels("error").inc()
            logger.warning(
                "AsyncTask %s/%s: archived, not marked (%s); again shortly", meta["namespace"], meta["name"], exc
            )
            p.logs = []  # written: the retry writes nothing new, only marks
            self.backlog.give_back([p])
            return False
        return True


def _attempts(obj: Obj) -> list[int]:
    """The attempts whose logs are read: the last :data:`MAX_ATTEMPTS_KEPT` (the status keeps as many)."""
    status: Obj = obj["status"] if isinstance(obj.get("status"), dict) else {}
    last = status.get("attempt")
    if not isinstance(last, int) or isinstance(last, bool) or last < 1:
        return []
    return list(range(max(1, last - MAX_ATTEMPTS_KEPT + 1), min(last, 10_000) + 1))
