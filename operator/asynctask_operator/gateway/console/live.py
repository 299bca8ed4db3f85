"""What the console's pages follow and download: rows as tasks change (SSE), one task's status
(the API's own stream), an attempt's pod log (tail, or followed), and the table as CSV or JSON.

The streams read the gateway's one cache (no watch of their own), as the API's do.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any, cast

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response, StreamingResponse

from asynctask_operator.adapters.api import PodLogs
from asynctask_operator.adapters.kube import ApiError
from asynctask_operator.core.views import TaskView
from asynctask_operator.core.wire import key_of
from asynctask_operator.gateway import logs
from asynctask_operator.gateway.console.exports import MAX_EXPORT, csv_lines, json_lines
from asynctask_operator.gateway.console.gate import served_namespaces
from asynctask_operator.gateway.console.pages import table
from asynctask_operator.gateway.console.routing import ConsoleRoute, viewer
from asynctask_operator.gateway.console.rows import Filter, live_cells
from asynctask_operator.gateway.console.state import SECURITY_HEADERS
from asynctask_operator.gateway.problems import Problem
from asynctask_operator.gateway.reads import view_of
from asynctask_operator.gateway.store import version_of
from asynctask_operator.gateway.streams import KEEPALIVE, STREAM_HEADERS, changes, frame, missed_since, task_stream

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
HEADERS = {**SECURITY_HEADERS, **STREAM_HEADERS}


@router.get("/ui/live/tasks")
async def live_rows(request: Request, drawn: str = "") -> StreamingResponse:
    """``event: row`` for each change of a task of the namespaces this user may watch (the page
    updates the rows it shows, and counts the new ones its filter admits); ``event: gone``.

    ``drawn`` is the newest resourceVersion the page was drawn from: what changed after it, before
    this stream began, is sent first, so nothing falls between the page and its stream. Each event's
    id is its task's resourceVersion, so a reconnecting browser (``Last-Event-ID``) resumes the same way."""
    who = await viewer(request)
    gateway = who.gateway
    flt = Filter.of(request.query_params, gateway.clocks.wall())
    visible = await who.namespaces("task_events", served_namespaces(gateway))
    shown = set(visible.shown) & ({flt.namespace} if flt.namespace else set(visible.shown))
    settings = gateway.settings
    resumed = request.headers.get("last-event-id") or drawn

    def event(type_: str, obj: dict[str, Any]) -> bytes:
        if type_ == "DELETED":
            return frame("gone", {"key": "/".join(key_of(obj))}, version_of(obj))
        row = view_of(gateway.tasks, obj)  # the store's one reading of the change, for every page that follows it
        data = live_cells(row, gateway.clocks.wall()) | {"added": type_ == "ADDED", "match": flt.admits(row)}
        return frame("row", data, row.resource_version)

    async def stream() -> AsyncIterator[bytes]:
        with gateway.tasks.subscribe(None, settings.subscriber_buffer) as subscription:
            yield b"retry: 3000\n\n"
            if resumed:
                missed = [change for ns in sorted(shown) for change in missed_since(gateway.tasks, ns, resumed)]
                for kind, obj in missed:
                    yield event("DELETED" if kind == "deleted" else "MODIFIED", obj)
            async for change in changes(subscription, settings.keepalive_seconds):
                if isinstance(change, bytes):
                    yield change
                    continue
                type_, obj = change
                if key_of(obj)[0] in shown:
                    yield event(type_, obj)

    return StreamingResponse(stream(), media_type="text/event-stream", headers=HEADERS)


@router.get("/ui/live/namespaces/{ns}/tasks/{name}")
async def live_task(request: Request, ns: str, name: str) -> StreamingResponse:
    """The task's status changes until its terminal event: the API's stream, for the session's user."""
    who = await viewer(request)
    await who.require("task_events", ns, name)
    gateway = who.gateway
    if gateway.tasks.get(ns, name) is None:
        raise Problem(404, f"task {name!r} not found in namespace {ns!r}")
    settings = gateway.settings
    now = gateway.clocks.wall

    def render(view: TaskView, obj: dict[str, Any]) -> dict[str, Any]:
        attempts = (obj.get("status") or {}).get("attempts")
        told = (view.progress or {}).get("message")
        return live_cells(view, now()) | {
            "message": view.message,  # the page shows the status message, the headline and what the task said
            "headline": view.headline,
            "progressMessage": told if isinstance(told, str) else "",
            "attempts": len(attempts) if isinstance(attempts, list) else 0,
        }

    stream = task_stream(
        gateway.tasks, ns, name, request.headers.get("last-event-id"), settings.keepalive_seconds,
        settings.subscriber_buffer, render,
    )  # fmt: skip
    return StreamingResponse(stream, media_type="text/event-stream", headers=HEADERS)


@router.get("/ui/namespaces/{ns}/tasks/{name}/log")
async def attempt_log(
    request: Request, ns: str, name: str, attempt: int = 0, follow: bool = False, uid: str = ""
) -> Response:
    """The last lines of an attempt's log as text (its pod's, else the archive's copy once the pod is
    gone); with ``follow``, an event stream of the pod's lines as they are written (``event: line``),
    ending with ``event: end``."""
    who = await viewer(request)
    await who.require("get_task", ns, name)
    gateway = who.gateway

    async def allowed(pod: str) -> bool:  # kubectl logs asks about the pod by name
        return await who.may("pod_log", ns, pod)

    if not follow:
        found = await logs.attempt_log(gateway, ns, name, attempt, allowed, uid=uid or None)
        headers = {**SECURITY_HEADERS, "X-Log-Source": found.source}
        if found.truncated:
            headers["X-Log-Truncated"] = "true"
        return PlainTextResponse(found.text, headers=headers)
    obj = gateway.tasks.get(ns, name)
    if obj is None:
        raise Problem(404, f"task {name!r} not found in namespace {ns!r}: only a live task's log can be followed")
    attempt = logs.attempt_of(obj, attempt)
    if attempt < 1:
        raise Problem(409, f"task {name!r} has not started an attempt yet")
    if not hasattr(gateway.api, "pod_log"):
        raise Problem(501, "this gateway's API client cannot read pod logs")
    reader = cast(PodLogs, gateway.api)
    pod = await logs.attempt_pod(gateway, ns, obj, attempt)
    if pod is None:
        raise Problem(404, f"no pod of attempt {attempt} (its Job's pods may have been deleted)")
    pod_name = str(pod["metadata"]["name"])
    await who.require("pod_log", ns, pod_name)
    lines = reader.pod_log(ns, pod_name, follow=True, tail_lines=logs.TAIL_LINES)
    keepalive = gateway.settings.keepalive_seconds

    async def stream() -> AsyncIterator[bytes]:
        yield frame("pod", {"pod": pod_name, "attempt": attempt})
        iterator = aiter(lines)
        try:
            while True:
                try:
                    line = await asyncio.wait_for(anext(iterator), keepalive)
                except TimeoutError:
                    yield KEEPALIVE
                    continue
                except StopAsyncIteration:
                    break
                yield frame("line", line)
        except ApiError as error:
            yield frame("failed", error.message)
        finally:
            with contextlib.suppress(Exception):
                await cast(Any, iterator).aclose()
        yield frame("end", {"attempt": attempt})

    return StreamingResponse(stream(), media_type="text/event-stream", headers=HEADERS)


@router.get("/ui/export/tasks.{fmt}")
async def export(request: Request, fmt: str) -> Response:
    """Every task the table's filter admits (not only its page), as CSV or a JSON array."""
    if fmt not in ("csv", "json"):
        raise Problem(404, "export as tasks.csv or tasks.json")
    found = await table(request)
    rows, visible = found.rows[:MAX_EXPORT], found.visible
    lines: Iterator[str] = csv_lines(rows) if fmt == "csv" else json_lines(rows)
    headers = {
        **SECURITY_HEADERS,
        "Content-Disposition": f'attachment; filename="asynctasks.{fmt}"',
        "X-Total-Count": str(len(rows)),
    }
    if visible.hidden:
        headers["X-Hidden-Namespaces"] = str(visible.hidden)
    media = "text/csv; charset=utf-8" if fmt == "csv" else "application/json"
    return StreamingResponse(iter(lines), media_type=media, headers=headers)
