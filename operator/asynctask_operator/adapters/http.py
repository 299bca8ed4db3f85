"""The operator's HTTP port: health probes and the task report endpoint.

Routes::

    GET  /healthz                                            liveness: the event loop answers
    GET  /readyz                                             readiness: the cache is synced
    GET  /metrics                                            Prometheus text format
    POST /v1/namespaces/{namespace}/asynctasks/{name}/progress   a task's progress (JSON object)
    POST /v1/namespaces/{namespace}/asynctasks/{name}/result     a task's result (any JSON)

The handlers only translate HTTP; what a report means is decided by the ``Reports``
object the controllers pass in.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Protocol

from aiohttp import web

from asynctask_operator.adapters.listening import listen

logger = logging.getLogger(__name__)

MAX_BODY = 1024 * 1024  # hard cap on any request body; the result limit is checked by the handler


class Reports(Protocol):
    async def report(self, namespace: str, name: str, kind: str, token: str, body: bytes) -> tuple[int, str]:
        """Handle one report; return (HTTP status, message)."""
        ...


class HttpServer:
    def __init__(
        self,
        port: int,
        reports: Reports | None,
        ready: Callable[[], bool],
        metrics: Callable[[], bytes] | None = None,
        host: str = "0.0.0.0",
    ) -> None:
        self.port = port
        self.host = host
        self._reports = reports
        self._ready = ready
        self._metrics = metrics
        self._runner: web.AppRunner | None = None

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._serve_metrics)
        if self._reports is not None:  # None: the probes and metrics only (the archiver's port)
            app.router.add_post("/v1/namespaces/{namespace}/asynctasks/{name}/{kind:progress|result}", self._report)
        return app

    async def start(self) -> None:
        """Listen and serve; :class:`~asynctask_operator.adapters.listening.PortUnavailable` when the port is taken."""
        sock = listen(self.host, self.port)  # before the runner: a taken port leaves nothing to clean up
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        await web.SockSite(self._runner, sock).start()
        self.port = sock.getsockname()[1]  # the port chosen, when asked for port 0
        served = "/healthz, /readyz and /v1/ reports" if self._reports is not None else "/healthz, /readyz and /metrics"
        logger.info("serving %s on port %d", served, self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def _readyz(self, request: web.Request) -> web.Response:
        return web.Response(text="ready\n") if self._ready() else web.Response(status=503, text="not synced yet\n")

    async def _serve_metrics(self, request: web.Request) -> web.Response:
        if self._metrics is None:
            return web.Response(status=404, text="metrics are off\n")
        return web.Response(
            body=self._metrics(),
            content_type="text/plain",
            charset="utf-8",
            headers={"X-Content-Type-Options": "nosniff"},
        )

    async def _report(self, request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization", "")
        token = auth[len("Bearer ") :].strip() if auth.startswith("Bearer ") else ""
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return _answer(413, f"the body is over {MAX_BODY} bytes")
        assert self._reports is not None  # the route exists only with them
        status, message = await self._reports.report(
            request.match_info["namespace"], request.match_info["name"], request.match_info["kind"], token, body
        )
        return _answer(status, message)


def _answer(status: int, message: str) -> web.Response:
    return web.Response(
        status=status, text=json.dumps({"status": status, "message": message}) + "\n", content_type="application/json"
    )
