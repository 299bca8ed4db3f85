"""Reports from running tasks: checked, kept in memory, and handed to the reconciler.

Progress is coalesced: the store keeps only the latest report per task and the
reconciler writes it at most once per interval. A result is written on the next
reconcile (queued at once). Nothing here writes to the API itself.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Callable

from asynctask_operator.controllers.cache import Cache
from asynctask_operator.core.config import CoreConfig
from asynctask_operator.core.reporting import (
    BadReport,
    Reported,
    TokenRefused,
    parse_progress,
    parse_result,
    progress_status,
    verify_token,
)
from asynctask_operator.core.wire import Key

logger = logging.getLogger(__name__)


class ReportStore:
    def __init__(
        self,
        cache: Cache,
        config: Callable[[], CoreConfig],
        wake: Callable[[Key], None],
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.cache = cache
        self._now = now
        self._config = config
        self._wake = wake
        self._reported: dict[Key, Reported] = {}

    def get(self, key: Key) -> Reported | None:
        return self._reported.get(key)

    def written(self, key: Key, attempt: int, progress_written: bool, now: dt.datetime) -> None:
        """The reconciler wrote the status; remember when progress last went out."""
        current = self._reported.get(key)
        if current is not None and current.attempt == attempt and progress_written:
            self._reported[key] = dataclasses.replace(current, progress_written_at=now)

    def forget(self, key: Key) -> None:
        self._reported.pop(key, None)

    async def report(self, namespace: str, name: str, kind: str, token: str, body: bytes) -> tuple[int, str]:
        config = self._config()
        key = (namespace, name)
        raw = self.cache.tasks.get(key)
        if raw is None or config.report_key is None:
            return 404, f"no AsyncTask {namespace}/{name} is known to this operator"
        meta, status = raw.get("metadata") or {}, raw.get("status") or {}
        running = status.get("attempt") if status.get("phase") == "Running" else None
        try:
            attempt = verify_token(config.report_key, token, namespace, name, str(meta.get("uid")), running)
            now = self._now()
            current = self._reported.get(key)
            if current is None or current.attempt != attempt:
                current = Reported(attempt=attempt)
            if kind == "progress":
                report = parse_progress(body)
                current = dataclasses.replace(current, progress=progress_status(report, now))
            else:
                value = parse_result(body, config.result_limit_bytes)
                current = dataclasses.replace(current, result=value, has_result=True)
        except (TokenRefused, BadReport) as refused:
            logger.info("report %s for %s/%s refused: %s %s", kind, namespace, name, refused.status, refused.message)
            return refused.status, refused.message
        self._reported[key] = current
        self._wake(key)
        return 202, f"{kind} accepted"
