"""The operator as a process against a real cluster (the end-to-end tests, ``bench.throughput --kubeconfig``):
``python -m asynctask_operator run`` with its output in a log file, started until it logs "synced",
crashed (SIGKILL) and started again, stopped; and :func:`wait_for`, the blocking wait for a condition.

    operator = OperatorProcess(kubeconfig, "my-namespace", tmp_path / "operator.log", http_port=0)
    operator.start()
    ...
    operator.stop()
"""

from __future__ import annotations

import os
import pathlib
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import IO, TypeVar

T = TypeVar("T")


def wait_for(
    predicate: Callable[[], T | None],
    timeout: float,
    what: str,
    *,
    interval: float = 0.5,
    describe: Callable[[], str] | None = None,
) -> T:
    """Call ``predicate`` until it returns something other than ``None``/``False``; return that.

    On timeout, fail with ``what`` and, when given, ``describe()`` (the state that was
    waited on), so a failure report says what the cluster looked like.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value is not None and value is not False:
            return value
        if time.monotonic() >= deadline:
            detail = f"\n{describe()}" if describe is not None else ""
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}{detail}")
        time.sleep(interval)


class OperatorProcess:
    """``python -m asynctask_operator run`` as a subprocess, its output in a log file.

    ``http_port`` is the port of its HTTP server (on every address of this machine), and
    ``report_url`` the base URL pods were told to report to (None: no --report-url).
    """

    SYNCED = re.compile(r"\bsynced\b")

    def __init__(
        self,
        kubeconfig: str,
        namespace: str,
        log_path: pathlib.Path,
        *extra_args: str,
        http_port: int | None = None,
        report_url: str | None = None,
        cwd: pathlib.Path | None = None,
    ) -> None:
        self.command = [
            sys.executable,
            "-m",
            "asynctask_operator",
            "run",
            "--kubeconfig",
            kubeconfig,
            "--namespace",
            namespace,
            "--log-format",
            "text",
            "--default-ttl",
            "3600",
            *(["--http-port", str(http_port)] if http_port is not None else []),
            # The token key's Secret goes into the test namespace, deleted with it.
            *(["--report-url", report_url, "--report-key-namespace", namespace] if report_url else []),
            # The operator runs on this machine: the callback receiver of tests/e2e/test_callbacks.py
            # listens on its loopback, which the SSRF guard refuses unless allowed.
            "--callback-allowed-host",
            "127.0.0.1",
            *extra_args,
        ]
        self.http_port = http_port
        self.report_url = report_url
        self.kubeconfig = kubeconfig
        self.log_path = log_path
        self.cwd = cwd
        self.process: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None

    def start(self, timeout: float = 90.0) -> None:
        self._start("wb", 0, timeout)

    def crash(self) -> None:
        """SIGKILL: the operator stops at whatever line it was on."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def start_again(self, timeout: float = 90.0) -> None:
        """Start after :meth:`crash`, appending to the same log."""
        self._start("ab", len(self.log()), timeout)

    def _start(self, mode: str, offset: int, timeout: float) -> None:
        self._log_file = self.log_path.open(mode)
        # KUBECONFIG as well as --kubeconfig: kopf's login reads the kubernetes client's default kubeconfig
        # location, which that library fixes from $KUBECONFIG when it is imported.
        env = {**os.environ, "KUBECONFIG": self.kubeconfig, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            self.command,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=self.cwd,
            env=env,
        )
        wait_for(
            lambda: self._synced(offset), timeout, "the operator to log 'synced'", describe=lambda: self.log()[-8000:]
        )

    def _synced(self, offset: int) -> bool | None:
        self.assert_alive("before it synced")
        return True if self.SYNCED.search(self.log()[offset:]) else None

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def assert_alive(self, when: str = "") -> None:
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(
                f"the operator exited with code {self.process.returncode} {when}; its log:\n{self.log()[-15000:]}"
            )

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM (kopf stops gracefully), then SIGKILL after ``timeout``; the exit code."""
        code: int | None = None
        if self.process is not None:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
                try:
                    self.process.wait(timeout)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(10)
            code = self.process.returncode
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        return code
