"""The archiver against kmock's emulator: in the test's event loop, or as a child process to SIGKILL.

    archiver = InProcessArchiver(kubeconfig, dsn, logfile)   # or ArchiverProcess(...)
    await archiver.start(); ...; await archiver.stop()

Both run ``asynctask-archive`` with the same command line: small batches written at once
(``--batch-latency 0.05``), no HTTP port, short backoffs, so a test sees each step quickly.
"""

from __future__ import annotations

import asyncio
import logging
import pathlib
from typing import Any

from asynctask_operator.testing.children import Child, stop_in_loop

MARKER = "recording AsyncTasks"


class ArchiverProcess(Child):
    """``python -m asynctask_operator.archive`` as a child process."""

    module = "asynctask_operator.archive"
    what = "the archiver"

    def __init__(self, kubeconfig: pathlib.Path, dsn: str, logfile: pathlib.Path, *extra: str) -> None:
        super().__init__(logfile)
        self.kubeconfig = kubeconfig
        self.dsn = dsn
        self.extra = extra

    def argv(self) -> list[str]:
        return [
            "--kubeconfig", str(self.kubeconfig), "--dsn", self.dsn, "--http-port", "0", "--log-format", "text",
            "--batch-latency", "0.05", "--max-backoff", "1", "--retention", "0", *self.extra,
        ]  # fmt: skip

    async def start(self, timeout: float = 30, marker: str = MARKER) -> None:
        await super().start(timeout, marker)


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

        offset = self.mark_start(" (in process)")
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
        await self.started(offset, timeout, marker)

    def ended(self) -> bool:
        return self._task is not None and self._task.done()

    def kill(self) -> None:
        raise AssertionError("the in-process archiver cannot be SIGKILLed: use ArchiverProcess")

    async def stop(self) -> None:
        if self._task is not None:
            assert self._stop is not None
            await stop_in_loop(self._task, self._stop)
            self._task = None
        if self._api is not None:
            self._api.close()
            self._api = None
        if self._handler is not None:
            logging.getLogger("asynctask_operator.archive").removeHandler(self._handler)
            self._handler.close()
            self._handler = None
