"""The gateway's FastAPI application: its routers, its error handlers, and its caches' follow loops.

>>> app = create_app(Gateway.build(api, GatewaySettings()))  # doctest: +SKIP

The lifespan follows AsyncTasks, TaskQueues, ScheduledTasks and TaskTypes (one list/watch loop per kind
and namespace, :func:`~asynctask_operator.adapters.reflector.reflect`) for as long as the
application runs; ``follow=False`` leaves that to the caller (a test feeding the stores).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator, Callable

from fastapi import FastAPI, Response
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from asynctask_operator import __version__
from asynctask_operator.adapters.kube import ASYNCTASKS, SCHEDULEDTASKS, TASKQUEUES, TASKTYPES
from asynctask_operator.adapters.reflector import reflect
from asynctask_operator.gateway import (
    cloudevents,
    console,
    events,
    history,
    problems,
    queues,
    schedules,
    statistics,
    tasks,
)
from asynctask_operator.gateway.access import Gateway
from asynctask_operator.gateway.failures import LimitFailedAuthentications
from asynctask_operator.gateway.metrics import CountRequests, GatewayMetrics
from asynctask_operator.gateway.problems import Problem
from asynctask_operator.gateway.requestlog import RequestLog
from asynctask_operator.gateway.settings import GatewaySettings

JSON_TYPES = ("application/json",)
Lifespan = Callable[[FastAPI], contextlib.AbstractAsyncContextManager[None]]


def freeze_cache() -> None:
    """Take what the caches hold now out of the cyclic collector's walks (:func:`gc.freeze`).

    A full collection walks every tracked object: with 10,000 cached tasks that is a pause of
    85-100 ms in whichever request it falls on (bench/console.py, "page" p99). The cached objects are
    plain JSON, which holds no cycles: they are still freed by reference counting when replaced."""
    gc.collect()
    gc.freeze()


async def freeze_once_loaded(gateway: Gateway) -> None:
    """:func:`freeze_cache` once every cache is loaded. The process's own choice (``asynctask-gateway``
    makes it): a test running the gateway in its own process does not freeze the test's objects."""
    for store in gateway.stores:
        await store.synced.wait()
    freeze_cache()


async def follow(gateway: Gateway) -> None:
    """List and watch every kind the gateway reads into its store, until cancelled."""
    namespaces: list[str | None] = list(gateway.settings.namespaces) or [None]
    api = gateway.api
    async with asyncio.TaskGroup() as group:
        for namespace in namespaces:
            group.create_task(reflect(api, ASYNCTASKS, namespace, None, gateway.tasks))
            group.create_task(reflect(api, TASKQUEUES, namespace, None, gateway.queues))
            group.create_task(reflect(api, SCHEDULEDTASKS, namespace, None, gateway.schedules))
            group.create_task(reflect(api, TASKTYPES, namespace, None, gateway.tasktypes))


def is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media in JSON_TYPES or (media.startswith("application/") and media.endswith("+json"))


class BodyLimit:
    """413 for a body larger than ``max_bytes``: at once when its Content-Length says so, else when
    the bytes read pass it (a chunked body); answered as a problem by the app's handlers."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        detail = f"the body is larger than {self.max_bytes} bytes"
        length = dict(scope.get("headers") or ()).get(b"content-length", b"")
        if length.isdigit() and int(length) > self.max_bytes:
            await problems.response(Problem(413, detail))(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise HTTPException(413, detail)
            return message

        await self.app(scope, counted, send)


class JsonBodiesOnly:
    """415 for a body that is not JSON: the only bodies the gateway reads are JSON documents.

    Plain ASGI, as every middleware here: Starlette's ``BaseHTTPMiddleware`` (``@app.middleware``)
    runs each request through a task group and a memory stream, most of a cached GET's cost."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] in ("POST", "PUT", "PATCH")
            and not scope["path"].startswith("/ui/")  # the console's forms: it reads and checks them itself
        ):
            headers = Headers(scope=scope)
            has_body = headers.get("content-length", "") not in ("", "0") or "transfer-encoding" in headers
            if has_body and not is_json(headers.get("content-type", "")):
                response = problems.response(Problem(415, "the body must be application/json"))
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def application(settings: GatewaySettings, lifespan: Lifespan | None = None) -> FastAPI:
    """The routes, handlers and middleware, without state (the OpenAPI document is made from this alone)."""
    app = FastAPI(
        title="asynctask gateway",
        version=__version__,
        summary="Submit, follow and manage AsyncTasks over HTTP (Async Request-Reply).",
        description="Every /v1 request carries a Kubernetes bearer token; it may do what the token's RBAC allows "
        "(TokenReview + SubjectAccessReview). Errors are application/problem+json (RFC 9457).",
        lifespan=lifespan,
    )
    problems.install(app)
    app.add_middleware(JsonBodiesOnly)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "If-None-Match", "Last-Event-ID"],
            expose_headers=["Location", "Retry-After", "ETag", "Idempotent-Replayed"],
        )
    for module in (tasks, cloudevents, events, queues, schedules, statistics, history):
        app.include_router(module.router)
    return app


def create_app(gateway: Gateway, *, follow_api: bool = True) -> FastAPI:
    """The gateway's application; with ``follow_api``, its lifespan runs :func:`follow`."""

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        runner = asyncio.create_task(follow(gateway), name="gateway-follow") if follow_api else None
        try:
            yield
        finally:
            if runner is not None:
                runner.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await runner

    app = application(gateway.settings, lifespan)
    app.state.gateway = gateway
    if gateway.settings.console:
        console.install(app, gateway)
    app.add_middleware(LimitFailedAuthentications, gateway=gateway)  # inside CountRequests: its 429s are counted
    metrics = GatewayMetrics(gateway)
    app.add_middleware(CountRequests, metrics=metrics)
    settings = gateway.settings  # outermost: it logs the status the client gets, whoever answered
    app.add_middleware(RequestLog, probes=settings.log_probes, proxy_header=settings.trusted_proxy_header)

    @app.get("/metrics", include_in_schema=False)
    async def metrics_endpoint() -> Response:
        return metrics.answer()

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> JSONResponse:
        return JSONResponse({"ok": True})

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        ready = all(s.synced.is_set() for s in gateway.stores)
        return JSONResponse({"ready": ready}, status_code=200 if ready else 503)

    return app
