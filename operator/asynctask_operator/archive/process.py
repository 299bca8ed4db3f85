"""``asynctask-archive`` as a process: leader election, the schema, the watch, the recorder, retention.

A recorder beside the operator, not inside it (as Tekton Results is beside Tekton): the operator
keeps working when the archive's database is down, apart from the TTL hold. One replica records
(a Lease, as the operator's); the others wait, Ready. The leader:

1. brings the schema to this version's (retried until the database answers: never a crash loop);
2. lists and watches the AsyncTasks of its namespaces with the shared reflector
   (:func:`~asynctask_operator.adapters.reflector.reflect`) into its :class:`~.sink.TaskSink`;
   when the backlog overflowed, it lists again once the backlog has drained;
3. writes batches (:class:`~.recorder.Recorder`), and deletes what is past its retention.

Its port serves ``/healthz``, ``/readyz`` (the leader once migrated and listed; a standby at once)
and ``/metrics``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket

from sqlalchemy.ext.asyncio import AsyncEngine

from asynctask_operator.adapters.election import LeaderElector
from asynctask_operator.adapters.http import HttpServer
from asynctask_operator.adapters.kube import ASYNCTASKS
from asynctask_operator.adapters.reflector import reflect
from asynctask_operator.archive import retention
from asynctask_operator.archive.backlog import Backlog
from asynctask_operator.archive.capture import LogClient
from asynctask_operator.archive.database import engine_of, migrate, safe_dsn
from asynctask_operator.archive.metrics import ArchiveMetrics
from asynctask_operator.archive.recorder import Recorder
from asynctask_operator.archive.settings import ArchiveSettings
from asynctask_operator.archive.sink import TaskSink
from asynctask_operator.core.clocks import Clocks
from asynctask_operator.core.retry import backoff

logger = logging.getLogger(__name__)


class Archiver:
    """The parts of one archiver process, wired; :meth:`run` runs them."""

    def __init__(
        self, api: LogClient, settings: ArchiveSettings, engine: AsyncEngine | None = None, clocks: Clocks | None = None
    ) -> None:
        self.api = api
        self.settings = settings
        self.clocks = clocks or Clocks()
        self.engine = engine or engine_of(settings.dsn)
        self.metrics = ArchiveMetrics()
        self.backlog = Backlog(settings.max_waiting)
        self.sink = TaskSink(self.backlog, self.clocks.monotonic, record_phases=settings.record_phases)
        self.recorder = Recorder(self.engine, api, self.backlog, settings, self.metrics, wall=self.clocks.wall)
        self.metrics.watch_backlog(lambda: len(self.backlog), self.lag, lambda: self.backlog.lost)
        self.migrated = False
        self.elector: LeaderElector | None = None

    def lag(self) -> float:
        oldest = self.backlog.oldest()
        return max(self.clocks.monotonic() - oldest, 0.0) if oldest is not None else 0.0

    def ready(self) -> bool:
        if self.elector is not None and not self.elector.leading:
            return True  # a standby: nothing to wait for
        return self.migrated and self.sink.listings >= max(len(self.settings.namespaces), 1)

    async def migrate(self) -> None:
        """Bring the schema up to date, trying again (backing off) while the database does not answer."""
        if not self.settings.migrate:
            self.migrated = True
            return
        failures = 0
        while True:
            try:
                await migrate(self.engine)
                self.migrated = True
                logger.info("archive database %s is at this version's schema", safe_dsn(self.settings.dsn))
                return
            except Exception as exc:
                failures += 1
                self.metrics.db_errors.inc()
                delay = backoff(failures, 0.5, self.settings.max_backoff_seconds)
                logger.warning("archive database not ready (%s: %s); again in %.1fs", type(exc).__name__,
                               str(exc).splitlines()[0][:300] if str(exc) else "", delay)  # fmt: skip
                await asyncio.sleep(delay)

    async def follow(self) -> None:
        """Watch the AsyncTasks into the sink; list again when the backlog overflowed and has drained."""
        namespaces: list[str | None] = list(self.settings.namespaces) or [None]
        while True:
            self.backlog.relisted()
            watches = [asyncio.create_task(reflect(self.api, ASYNCTASKS, ns, None, self.sink)) for ns in namespaces]
            try:
                await self.backlog.drained.wait()
                logger.info("the backlog overflowed (%d tasks not held) and has drained: listing again",
                            self.backlog.dropped)  # fmt: skip
            finally:
                for watch in watches:
                    watch.cancel()
                await asyncio.gather(*watches, return_exceptions=True)

    async def prune(self) -> None:
        """Retention, every ``retention_interval_seconds``."""
        rule = retention.Retention(self.settings.retention_seconds, self.settings.retention_overrides)
        while True:
            try:
                deleted = await retention.apply(
                    self.engine, rule, self.clocks.wall(), batch=self.settings.retention_batch
                )
                if deleted:
                    self.metrics.retention_deleted.inc(deleted)
                    logger.info("retention: deleted %d archived tasks", deleted)
            except Exception as exc:
                self.metrics.db_errors.inc()
                logger.warning("retention did not run (%s: %s)", type(exc).__name__, str(exc).splitlines()[0][:300])
            await asyncio.sleep(self.settings.retention_interval_seconds)

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set (or the Lease is lost: then SystemExit, to come back as a standby)."""
        s = self.settings
        if s.leader_elect:
            identity = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
            self.elector = LeaderElector(
                self.api, s.lease_namespace, s.lease_name, identity, lease_seconds=s.lease_seconds,
                renew_deadline=s.renew_deadline, retry_period=s.retry_period, now=self.clocks.utcnow,
                monotonic=self.clocks.monotonic,
            )  # fmt: skip
        server = (
            HttpServer(s.http_port, None, ready=self.ready, metrics=self.metrics.exposition) if s.http_port else None
        )
        if server is not None:
            await server.start()
        lost = asyncio.Event()
        parts: list[asyncio.Task[None]] = []
        try:
            if self.elector is not None:
                acquiring = asyncio.create_task(self.elector.acquire())
                await _first(acquiring, stop)
                if stop.is_set():
                    return
                parts.append(asyncio.create_task(self.elector.keep(on_lost=lost.set), name="lease"))
            self.metrics.leader.set(1)
            migrating = asyncio.create_task(self.migrate())
            await _first(migrating, stop)
            if stop.is_set():
                return
            parts += [
                asyncio.create_task(self.follow(), name="follow"),
                asyncio.create_task(self.recorder.run(), name="record"),
            ]
            if s.retention_seconds > 0 or s.retention_overrides:
                parts.append(asyncio.create_task(self.prune(), name="retention"))
            logger.info("recording AsyncTasks of %s into %s", ", ".join(s.namespaces) or "every namespace",
                        safe_dsn(s.dsn))  # fmt: skip
            ended = asyncio.create_task(lost.wait())
            await asyncio.wait([*parts, ended, asyncio.create_task(stop.wait())], return_when=asyncio.FIRST_COMPLETED)
            for part in parts:
                if part.done() and not part.cancelled() and part.exception() is not None:
                    raise part.exception()  # type: ignore[misc]
        finally:
            self.metrics.leader.set(0)
            for part in parts:
                part.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*parts, return_exceptions=True)
            if self.elector is not None and self.elector.leading and not lost.is_set():
                await self.elector.release()
            if server is not None:
                await server.stop()
            await self.engine.dispose()
        if lost.is_set():
            raise SystemExit("lost the archive's Lease: exiting, to come back as a standby")


async def _first(work: asyncio.Task[None], stop: asyncio.Event) -> None:
    """Wait for ``work`` or ``stop``, whichever comes first; ``work`` is cancelled if ``stop`` came."""
    stopped = asyncio.create_task(stop.wait())
    await asyncio.wait([work, stopped], return_when=asyncio.FIRST_COMPLETED)
    if not work.done():
        work.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await work
    else:
        stopped.cancel()
        work.result()
