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
import time
from typing import Any

from asynctask_operator.testing.children import Child, eventually, stop_in_loop

__all__ = ["InProcessOperator", "Operator", "eventually"]


class Operator(Child):
    """The operator as a child process: ``await start()``, ``kill()``, ``await stop()``.

    ``verbose=False`` runs it at its production log level (the benchmarks do: debug
    logging would be part of what they measure)."""

    module = "asynctask_operator"
    what = "the operator"

    def __init__(self, kubeconfig: pathlib.Path, logfile: pathlib.Path, *extra: str, verbose: bool = True) -> None:
        super().__init__(logfile)
        self.kubeconfig = kubeconfig
        self.extra = extra
        self.verbose = verbose
        self.stop_seconds = 0.0
        self.pythonpath = ""
        """Another version of the operator, first on the path (a benchmark's "before")."""

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

    def env(self) -> dict[str, str]:
        env = {**super().env(), "KUBECONFIG": str(self.kubeconfig)}
        if self.pythonpath:
            env["PYTHONPATH"] = os.pathsep.join(p for p in (self.pythonpath, env.get("PYTHONPATH")) if p)
        return env

    async def start(self, timeout: float = 30, marker: str = "synced") -> None:
        await super().start(timeout, marker)

    async def stop(self) -> None:
        t0 = time.monotonic()
        try:
            await self._stop()
        finally:
            self.stop_seconds = time.monotonic() - t0

    async def _stop(self) -> None:
        await Child.stop(self)


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

        offset = self.mark_start(" (in process)")
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
            await stop_in_loop(self._task, self._stop_event)
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
