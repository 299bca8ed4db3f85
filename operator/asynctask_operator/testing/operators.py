"""The operator under test: a child process (``python -m asynctask_operator run``) where the process
boundary is the point (a SIGKILL, leader election, the benchmarks), or the same command line run in
the test's own event loop (:class:`InProcessOperator`); and :func:`eventually`, the wait for a condition.

    operator = InProcessOperator(kubeconfig, tmp_path / "operator.log", "--resync-seconds", "5")
    await operator.start()   # until it logs "synced"
    ...
    await operator.stop()
"""

from __future__ import annotations

import asyncio
import logging
import os
import pathlib
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any


class Operator:
    """The operator as a child process: ``await start()``, ``kill()``, ``await stop()``.

    ``verbose=False`` runs it at its production log level (the benchmarks do: debug
    logging would be part of what they measure)."""

    def __init__(self, kubeconfig: pathlib.Path, logfile: pathlib.Path, *extra: str, verbose: bool = True) -> None:
        self.kubeconfig = kubeconfig
        self.logfile = logfile
        self.extra = extra
        self.verbose = verbose
        self.proc: asyncio.subprocess.Process | None = None
        self.starts = 0
        self.pythonpath = ""

    def argv(self) -> list[str]:
        """The command line of ``asynctask-operator``: the flags every test runs it with, then the test's own."""
        return [
            "run",
            "--kubeconfig",
            str(self.kubeconfig),
            "--log-format",
            "text",
            *(["--verbose"] if self.verbose else []),
            "--unknown-type-grace",
            "2",
            "--queue-status-seconds",
            "0.5",
            "--http-port",
            "0",
            *self.extra,
        ]

    @property
    def pid(self) -> int:
        assert self.proc is not None, "not started"
        return self.proc.pid

    async def start(self, timeout: float = 30, marker: str = "synced") -> None:
        self.starts += 1
        log = self.logfile.open("a")
        log.write(f"\n===== start {self.starts} =====\n")
        log.flush()
        offset = self.logfile.stat().st_size
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig), "PYTHONUNBUFFERED": "1"}
        if self.pythonpath:  # another version of the operator, first on the path (a benchmark's "before")
            env["PYTHONPATH"] = os.pathsep.join(p for p in (self.pythonpath, env.get("PYTHONPATH")) if p)
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "asynctask_operator", *self.argv(), stdout=log, stderr=log, env=env
        )
        try:
            await eventually(
                lambda: marker in self.logfile.read_text()[offset:] or self.proc.returncode is not None,  # type: ignore[union-attr]
                timeout,
                "operator to sync",
            )
            if self.proc.returncode is not None:
                raise AssertionError(f"exited with {self.proc.returncode}")
        except AssertionError:
            raise AssertionError("the operator did not sync:\n" + self.logfile.read_text()[offset:][-5000:]) from None

    def kill(self) -> None:
        """SIGKILL: the crash at any line."""
        if self.proc and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)

    async def stop(self) -> None:
        t0 = time.monotonic()
        try:
            await self._stop()
        finally:
            self.stop_seconds = time.monotonic() - t0

    async def _stop(self) -> None:
        if self.proc and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()

    def log(self) -> str:
        return self.logfile.read_text()


class InProcessOperator(Operator):
    """The operator in the test's own event loop, with the same command line: parsed by the CLI, run by
    ``process.run`` without kopf's frame (no signal handlers in the test process), its log in ``logfile``.

    For every test where the process boundary is not the point: a start costs no interpreter and no
    imports (~2 s of CPU each), a stop no signal. ``kill()`` is a SIGKILL only in :class:`Operator`;
    tests that crash the operator use that one."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._task: asyncio.Task[None] | None = None
        self._stop_event: asyncio.Event | None = None
        self._api: Any = None
        self._handler: logging.Handler | None = None
        self._root_level = logging.WARNING

    async def start(self, timeout: float = 30, marker: str = "synced") -> None:
        from asynctask_operator import cli
        from asynctask_operator.adapters.aiokube import AioKubeClient
        from asynctask_operator.adapters.kubeconfig import load_configuration
        from asynctask_operator.adapters.slimwire import CODECS
        from asynctask_operator.controllers import process

        self.starts += 1
        with self.logfile.open("a") as log:
            log.write(f"\n===== start {self.starts} (in process) =====\n")
        offset = self.logfile.stat().st_size
        args = cli._parser().parse_args(self.argv())
        settings = cli.settings_of(args)
        self._handler = logging.FileHandler(self.logfile)
        self._handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
        self._handler.setLevel(logging.DEBUG if self.verbose else logging.INFO)
        root = logging.getLogger()
        root.addHandler(self._handler)
        self._root_level = root.level
        root.setLevel(logging.DEBUG if self.verbose else logging.INFO)
        self._api = AioKubeClient(
            load_configuration(args.kubeconfig, None), concurrency=settings.api_concurrency, codecs=CODECS
        )
        self._stop_event = asyncio.Event()
        self._task = asyncio.create_task(process.run(self._api, settings, self._stop_event, frame=False))
        try:
            await eventually(
                lambda: marker in self.logfile.read_text()[offset:] or self._task.done(),  # type: ignore[union-attr]
                timeout,
                "operator to sync",
            )
            if self._task.done():
                raise AssertionError(f"ended: {self._task.exception() or self._task.result()}")
        except AssertionError as exc:
            await self._stop_now()
            raise AssertionError(
                f"the operator did not sync ({exc}):\n" + self.logfile.read_text()[offset:][-5000:]
            ) from None

    @property
    def pid(self) -> int:
        raise AssertionError("the in-process operator has no pid: use Operator for a process")

    def kill(self) -> None:
        raise AssertionError("the in-process operator cannot be SIGKILLed: use Operator for a crash")

    async def _stop(self) -> None:
        await self._stop_now()

    async def _stop_now(self) -> None:
        if self._task is not None:
            assert self._stop_event is not None
            self._stop_event.set()
            try:
                await asyncio.wait_for(asyncio.shield(self._task), 10)
            except TimeoutError:
                self._task.cancel()
            except (Exception, SystemExit):  # what it ended with is in its log
                pass
            self._task = None
        if self._api is not None:
            await self._api.aclose()
            self._api = None
        if self._handler is not None:
            root = logging.getLogger()
            root.removeHandler(self._handler)
            root.setLevel(self._root_level)
            self._handler.close()
            self._handler = None


async def eventually(
    check: Callable[[], bool | Awaitable[bool]], timeout: float = 15, what: str = "", interval: float = 0.05
) -> None:
    """Poll ``check`` every ``interval`` seconds until it is true (no fixed sleeps in tests: wait for a condition)."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or check}")
        await asyncio.sleep(interval)
