"""Report progress and results from inside a task container.

With nothing but the environment the operator gives every container::

    from asynctask_operator.report import Reporter

    reporter = Reporter.from_env()
    reporter.progress(40, "encoding", step="encode", steps=(2, 5))
    reporter.result({"url": "s3://out/a.mp4"})

or from a shell::

    asynctask-report progress 40 "encoding" --step encode --steps 2/5
    asynctask-report result '{"url": "s3://out/a.mp4"}'

Standard library only, so it works in any image with Python 3.9+; images without
Python can use curl (see docs/task-authors.md). When the operator gave no report URL
(``ASYNCTASK_REPORT_URL`` unset), every call is a no-op that returns False, so the
same code runs outside the operator.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

RETRIED_STATUSES = frozenset({502, 503, 504})
RESULT_ATTEMPTS = 7  # 1+2+4+8+16+30 s: a result outlives a leader handover
PROGRESS_ATTEMPTS = 2  # progress is superseded by the next report anyway


class ReportError(Exception):
    """The operator refused a report; ``status`` is the HTTP status, ``message`` its reason."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


class Reporter:
    def __init__(self, url: str | None, token: str | None, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/") if url else None
        self.token = token
        self.timeout = timeout

    @classmethod
    def from_env(cls) -> Reporter:
        return cls(os.environ.get("ASYNCTASK_REPORT_URL"), os.environ.get("ASYNCTASK_REPORT_TOKEN"))

    @property
    def enabled(self) -> bool:
        return bool(self.url and self.token)

    def progress(
        self,
        percent: int | None = None,
        message: str | None = None,
        *,
        step: str | None = None,
        steps: tuple[int, int] | None = None,
    ) -> bool:
        body: dict[str, Any] = {}
        if percent is not None:
            body["percent"] = percent
        if message is not None:
            body["message"] = message
        if step is not None:
            body["step"] = step
        if steps is not None:
            body["stepsDone"], body["stepsTotal"] = steps
        return self._post("progress", json.dumps(body).encode())

    def result(self, value: Any) -> bool:
        return self._post("result", json.dumps(value).encode(), attempts=RESULT_ATTEMPTS)

    def _post(self, kind: str, body: bytes, attempts: int = PROGRESS_ATTEMPTS) -> bool:
        """POST once, again after 1, 2, 4… s while the operator cannot be reached or answers 502/503/504
        (a leader handing over to a standby has no endpoint for a few seconds). Other refusals raise."""
        if not self.enabled:
            return False
        for attempt in range(1, attempts + 1):
            request = urllib.request.Request(
                f"{self.url}/{kind}",
                data=body,
                method="POST",
                headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
            )
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    response.read()
                return True
            except urllib.error.HTTPError as exc:
                try:
                    message = json.loads(exc.read()).get("message", "")
                except ValueError:
                    message = exc.reason
                if exc.code not in RETRIED_STATUSES or attempt == attempts:
                    raise ReportError(exc.code, str(message)) from None
            except (urllib.error.URLError, OSError) as exc:
                if attempt == attempts:
                    raise ReportError(0, f"the operator cannot be reached: {exc}") from None
            # core.retry.backoff(attempt, 1.0, 30.0), written out: this file imports nothing of the
            # operator (tests/unit/test_report_client.py holds the two to the same delays).
            self._sleep(min(2.0 ** (attempt - 1), 30.0))
        return False  # not reached

    @staticmethod
    def _sleep(seconds: float) -> None:
        time.sleep(seconds)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="asynctask-report", description="Report progress or a result.")
    sub = parser.add_subparsers(dest="command", required=True)
    progress = sub.add_parser("progress", help="report how far the task is")
    progress.add_argument("percent", type=int, help="0..100")
    progress.add_argument("message", nargs="?", help="what it is doing")
    progress.add_argument("--step", help="name of the current step")
    progress.add_argument("--steps", help="DONE/TOTAL, e.g. 2/5")
    result = sub.add_parser("result", help="report the task's result (JSON)")
    result.add_argument("json", help="the result as JSON, or - to read it from stdin")
    args = parser.parse_args(argv)

    reporter = Reporter.from_env()
    if not reporter.enabled:
        print("asynctask-report: ASYNCTASK_REPORT_URL/TOKEN not set; nothing reported", file=sys.stderr)
        return 0
    try:
        if args.command == "progress":
            steps = None
            if args.steps:
                done, _, total = args.steps.partition("/")
                steps = (int(done), int(total))
            reporter.progress(args.percent, args.message, step=args.step, steps=steps)
        else:
            text = sys.stdin.read() if args.json == "-" else args.json
            reporter.result(json.loads(text))
    except ReportError as exc:
        print(f"asynctask-report: refused: {exc}", file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"asynctask-report: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
