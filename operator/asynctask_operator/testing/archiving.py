"""The archiver against kmock's emulator: in the test's event loop, or as a child process to SIGKILL.

    archiver = InProcessArchiver(kubeconfig, dsn, logfile)   # or ArchiverProcess(...)
    await archiver.start(); ...; await archiver.stop()

Both run ``asynctask-archive`` with the same command line: small batches written at once
(``--batch-latency 0.05``), no HTTP port, short backoffs, so a test sees each step quickly.
"""

from __future__ import annotations

import asyncio
import logging
import os
import pathlib
import signal
import sys
from typing import Any

from asynctask_operator.testing.operators import eventually

MARKER = "recording AsyncTasks"


class ArchiverProcess:
    """``python -m asynctask_operator.archive`` as a child process."""

    def __init__(self, kubeconfig: pathlib.Path, dsn: str, logfile: pathlib.Path, *extra: str) -> None:
        self.kubeconfig = kubeconfig
        self.dsn = dsn
        self.logfile = logfile
        self.extra = extra
        self.proc: asyncio.subprocess.Process | None = None
        self.starts = 0

    def argv(self) -> list[str]:
        return [
            "--kubeconfig", str(self.kubeconfig), "--dsn", self.dsn, "--http-port", "0", "--log-format", "text",
            "--batch-latency", "0.05", "--max-backoff", "1", "--retention", "0", *self.extra,
        ]  # fmt: skip

    def offset(self) -> int:
        return self.logfile.stat().st_size if self.logfile.exists() else 0

    async def start(self, timeout: float = 30, marker: str = MARKER) -> None:
        self.starts += 1
        with self.logfile.open("a") as log:
            log.write(f"\n===== start {self.starts} =====\n")
        offset = self.offset()
        log = self.logfile.open("a")
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "asynctask_operator.archive", *self.argv(), stdout=log, stderr=log, env=env
        )
        await self._started(offset, timeout, marker)

    async def _started(self, offset: int, timeout: float, marker: str = MARKER) -> None:
        try:
            await eventually(lambda: marker in self.log()[offset:] or self.ended(), timeout, "the archiver to start")
        except AssertionError:
            raise AssertionError("the archiver did not start:\n" + self.log()[offset:][-5000:]) from None
        if self.ended():
            raise AssertionError("the archiver ended:\n" + self.log()[offset:][-5000:])

    def ended(self) -> bool:
        return self.proc is not None and self.proc.returncode is not None

    def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()

    def log(self) -> str:
        return self.logfile.read_text() if self.logfile.exists() else ""


class InProcessArchiver(ArchiverProcess):
    """The same command line, run in the test's event loop (no interpreter to start)."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self._task: asyncio.Task[None] | None = None
        self._stop: asyncio.Event | None = None
        self._handler: logging.Handler | None = None
        self._api: Any = None
        self.archiver: Any = None

    async def start(self, timeout: float = 30, marker: str = MARKER) -> None:
        from asynctask_operator.adapters.kubeclient import KubeClient
        from asynctask_operator.adapters.kubeconfig import load_configuration
        from asynctask_operator.archive import cli
        from asynctask_operator.archive.process import Archiver

        self.starts += 1
        with self.logfile.open("a") as log:
            log.write(f"\n===== start {self.starts} (in process) =====\n")
        offset = self.offset()
        settings = cli.settings_of(cli.parser().parse_args(self.argv()))
        self._handler = logging.FileHandler(self.logfile)
        self._handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
        logging.getLogger("asynctask_operator.archive").addHandler(self._handler)
        logging.getLogger("asynctask_operator.archive").setLevel(logging.INFO)
        logging.getLogger("aiosqlite").setLevel(logging.INFO)  # a DEBUG line per statement
        self._api = KubeClient(load_configuration(settings.kubeconfig, None), concurrency=8, user_agent=cli.USER_AGENT)
        self.archiver = Archiver(self._api, settings)
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(self.archiver.run(self._stop))
        await self._started(offset, timeout, marker)

    def ended(self) -> bool:
        return self._task is not None and self._task.done()

    def kill(self) -> None:
        raise AssertionError("the in-process archiver cannot be SIGKILLed: use ArchiverProcess")

    async def stop(self) -> None:
        if self._task is not None:
            assert self._stop is not None
            self._stop.set()
            try:
                await asyncio.wait_for(asyncio.shield(self._task), 10)
            except TimeoutError:
                self._task.cancel()
            except (Exception, SystemExit):
                pass
            self._task = None
        if self._api is not None:
            self._api.close()
            self._api = None
        if self._handler is not None:
            logging.getLogger("asynctask_operator.archive").removeHandler(self._handler)
            self._handler.close()
            self._handler = None
