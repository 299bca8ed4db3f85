"""A program of the package as a child process of the test: started, awaited until it logs that it
is ready, SIGKILLed (the crash at any line), or stopped (SIGTERM, then SIGKILL after 10 s). Its
output goes to ``logfile``, each start under a line of its own; :class:`~.operators.Operator` and
:class:`~.archiving.ArchiverProcess` are the two there are.
"""

from __future__ import annotations

import asyncio
import os
import pathlib
import signal
import sys
import time
from collections.abc import Awaitable, Callable


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


async def stop_in_loop(task: asyncio.Task[None], stop: asyncio.Event) -> None:
    """Stop a program run in the test's event loop: its stop event set, 10 s to end, then cancelled.
    What it ended with is in its log, not raised here."""
    stop.set()
    try:
        await asyncio.wait_for(asyncio.shield(task), 10)
    except TimeoutError:
        task.cancel()
    except (Exception, SystemExit):
        pass


class Child:
    """``python -m MODULE ARGV…``; subclasses give the module, the command line and what "ready" looks like."""

    module = ""
    what = "the program"
    """Its name in a failure: "the operator did not start"."""

    def __init__(self, logfile: pathlib.Path) -> None:
        self.logfile = logfile
        self.proc: asyncio.subprocess.Process | None = None
        self.starts = 0

    def argv(self) -> list[str]:
        raise NotImplementedError

    def env(self) -> dict[str, str]:
        return {**os.environ, "PYTHONUNBUFFERED": "1"}

    @property
    def pid(self) -> int:
        assert self.proc is not None, "not started"
        return self.proc.pid

    def offset(self) -> int:
        return self.logfile.stat().st_size if self.logfile.exists() else 0

    def mark_start(self, how: str = "") -> int:
        """Write the start's line into the log; where the start's own lines begin."""
        self.starts += 1
        with self.logfile.open("a") as log:
            log.write(f"\n===== start {self.starts}{how} =====\n")
        return self.offset()

    async def start(self, timeout: float = 30, marker: str = "") -> None:
        offset = self.mark_start()
        log = self.logfile.open("a")
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", self.module, *self.argv(), stdout=log, stderr=log, env=self.env()
        )
        await self.started(offset, timeout, marker)

    async def started(self, offset: int, timeout: float, marker: str) -> None:
        """Until ``marker`` is in its log since ``offset``; it failing to start, or ending, is an AssertionError."""
        try:
            await eventually(lambda: marker in self.log()[offset:] or self.ended(), timeout, f"{self.what} to start")
        except AssertionError:
            raise AssertionError(f"{self.what} did not start:\n" + self.log()[offset:][-5000:]) from None
        if self.ended():
            raise AssertionError(f"{self.what} ended:\n" + self.log()[offset:][-5000:])

    def ended(self) -> bool:
        return self.proc is not None and self.proc.returncode is not None

    def kill(self) -> None:
        """SIGKILL: the crash at any line."""
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
