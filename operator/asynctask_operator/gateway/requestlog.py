"""The gateway's access log: one line per request, in the process's log format, without the probes.

uvicorn's own access log is plain text (``"GET /readyz HTTP/1.1" 200``) and logs every probe and
scrape: a line every few seconds per replica, where the requests of people drown. This one logs
each request once, when its answer starts (an event stream's headers, not its end), with fields
a log search can filter on (``logs.JsonFormatter`` writes them)::

    {"level": "info", "logger": "asynctask_operator.gateway.requestlog",
     "message": "POST /v1/namespaces/media/tasks 202 3.1ms", "method": "POST",
     "path": "/v1/namespaces/media/tasks", "status": 202, "duration_ms": 3.1, "client": "10.0.3.7"}

``/healthz``, ``/readyz`` and ``/metrics`` are left out unless ``--log-probes``. The query string
is left out too (a listing's filters say little; nothing secret travels there, but nothing
needs to be logged that is not needed), and so are headers: never a token.
"""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Receive, Scope, Send

from asynctask_operator.gateway.asgi import seeing_status
from asynctask_operator.gateway.failures import client_address

logger = logging.getLogger(__name__)

QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
"""Paths asked every few seconds by kubelets and scrapers: logged only with ``--log-probes``."""


class RequestLog:
    """Log each request's method, path, status, time to its answer's start and client address.
    Plain ASGI, like every middleware of the gateway."""

    def __init__(self, app: ASGIApp, *, probes: bool = False, proxy_header: str | None = None) -> None:
        self.app = app
        self.probes = probes
        self.proxy_header = proxy_header

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (not self.probes and scope["path"] in QUIET_PATHS):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        def log(status: int) -> None:
            method, path = scope["method"], scope["path"]
            ms = round((time.perf_counter() - started) * 1000, 1)
            fields = {"method": method, "path": path, "status": status, "duration_ms": ms}
            fields["client"] = client_address(scope, self.proxy_header)
            logger.info("%s %s %d %.1fms", method, path, status, ms, extra={"http": fields})

        await seeing_status(self.app, scope, receive, send, log)
