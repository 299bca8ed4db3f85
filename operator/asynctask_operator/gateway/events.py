"""Server-Sent Events: a task's status changes, or every task change of a namespace, as they happen.

Both streams read the one cache: a subscriber gets each change the reflector brings, through a
bounded queue (:class:`~asynctask_operator.gateway.store.Subscription`), so a thousand streams
open no watch of their own. Each event's ``id`` is the task's resourceVersion; a client that
reconnects with ``Last-Event-ID`` is sent the current state first unless it already had it. A
comment is sent when a stream has been idle for ``keepalive`` seconds (ingress proxies close
silent connections), and a task's stream ends after its terminal event.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import StreamingResponse

from asynctask_operator.core.models import TERMINAL_PHASES, AsyncTask
from asynctask_operator.gateway.access import caller, gateway_of
from asynctask_operator.gateway.auth import User
from asynctask_operator.gateway.problems import Problem, documented
from asynctask_operator.gateway.store import Change, Obj, Store, Subscription, version_of
from asynctask_operator.gateway.tasks import cached_task, parsed, synced
from asynctask_operator.gateway.views import summary, task_queue

router = APIRouter(tags=["events"])

KEEPALIVE = b": keep-alive\n\n"
STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
SSE_RESPONSES = documented(
    401,
    403,
    404,
    429,
    503,
    also={
        200: {
            "description": "An event stream: `event: status` or `event: task` (data: a task summary), "
            "`event: deleted`; a namespace's stream also `event: bookmark` once its initial events are sent",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        }
    },
)


def frame(event: str, data: Any, id_: str | None = None) -> bytes:
    lines = [f"event: {event}"]
    if id_:
        lines.append(f"id: {id_}")
    lines.append("data: " + json.dumps(data, separators=(",", ":")))
    return ("\n".join(lines) + "\n\n").encode()


def status_frame(task: AsyncTask, event: str = "status") -> bytes:
    return frame(event, summary(task).dump(), task.metadata.resource_version)


def watched(task: AsyncTask) -> tuple[Any, ...]:
    """What a status event is about: a change elsewhere (a label, the callback record) sends none."""
    status = task.status
    progress = status.progress.dump() if status.progress else None
    return (task.phase, status.reason, status.attempt, progress, status.message)


async def changes(subscription: Subscription, keepalive: float) -> AsyncIterator[Change | bytes]:
    """The subscription's changes, with :data:`KEEPALIVE` after each ``keepalive`` seconds without
    one (ingress idle timeouts end silent streams); ends when the store drops a too slow reader."""
    while True:
        try:
            change = await asyncio.wait_for(subscription.next(), keepalive)
        except TimeoutError:
            yield KEEPALIVE
            continue
        if change is None:
            return
        yield change


async def task_stream(
    store: Store, ns: str, name: str, last_id: str | None, keepalive: float, size: int
) -> AsyncIterator[bytes]:
    with store.subscribe(ns, size) as subscription:
        current = store.get(ns, name)
        if current is None:
            yield frame("deleted", {"name": name, "namespace": ns})
            return
        task = parsed(current)
        sent = watched(task)
        if last_id != task.metadata.resource_version:
            yield status_frame(task)
        if task.finished:
            return
        async for change in changes(subscription, keepalive):
            if isinstance(change, bytes):
                yield change
                continue
            type_, obj = change
            if (obj.get("metadata") or {}).get("name") != name:
                continue
            if type_ == "DELETED":
                yield frame("deleted", {"name": name, "namespace": ns}, version_of(obj))
                return
            task = parsed(obj)
            now = watched(task)
            if now == sent:
                continue
            sent = now
            yield status_frame(task)
            if task.phase in TERMINAL_PHASES:
                return


@router.get("/v1/namespaces/{ns}/tasks/{name}/events", responses=SSE_RESPONSES, response_model=None)
async def task_events(
    ns: str,
    name: str,
    request: Request,
    user: Annotated[User, Depends(caller("task_events"))],
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> StreamingResponse:
    """A task's status changes (phase, progress, attempt) until its terminal event."""
    gateway = gateway_of(request)
    cached_task(gateway, ns, name)  # 404 before the stream starts
    settings = gateway.settings
    stream = task_stream(gateway.tasks, ns, name, last_event_id, settings.keepalive_seconds, settings.subscriber_buffer)
    return StreamingResponse(stream, media_type="text/event-stream", headers=STREAM_HEADERS)


def selected(task: AsyncTask, type_: str | None, queue: str | None) -> bool:
    return (not type_ or task.spec.type == type_) and (not queue or task_queue(task) == queue)


def missed_since(store: Store, ns: str, last_id: str) -> list[tuple[str, Obj]]:
    """What a namespace stream resumed after event ``last_id`` missed, oldest first: the tasks changed
    since, and those deleted since (kept for :data:`~asynctask_operator.gateway.store.TOMBSTONE_SECONDS`).

    resourceVersions are opaque to clients; the API server's (etcd's) are integers, and only those
    compare. With one that is not, every task is sent again (``task``: the client takes each as the
    current state), deletions too, rather than some silently skipped."""
    changed = [("task", o) for o in store.in_namespace(ns)]
    deleted = [("deleted", o) for k, o in store.deleted.items() if k[0] == ns]
    if not last_id.isdigit():
        return changed + deleted
    after = int(last_id)
    newer = [(e, o) for e, o in changed + deleted if version_of(o).isdigit() and int(version_of(o)) > after]
    return sorted(newer, key=lambda item: int(version_of(item[1])))


def initial_events(store: Store, ns: str) -> list[tuple[str, Obj]]:
    """The namespace's tasks as a stream starts: each as ``task``, oldest change first where resourceVersions
    are numbers (so the last event's id is the snapshot's version), else by name."""
    current = list(store.in_namespace(ns))
    if all(version_of(o).isdigit() for o in current):
        current.sort(key=lambda o: int(version_of(o)))
    return [("task", o) for o in current]


def bookmark(store: Store, ns: str) -> bytes:
    """The end of a stream's initial events (Kubernetes' ``sendInitialEvents`` marks it with a BOOKMARK
    annotated ``k8s.io/initial-events-end``): every task sent so far is the namespace's state; changes follow.
    Its id is the newest resourceVersion of the namespace, so a stream resumed from it sends nothing twice."""
    versions = [int(v) for o in store.in_namespace(ns) if (v := version_of(o)).isdigit()]
    newest = str(max(versions)) if versions else None
    return frame("bookmark", {"initialEventsEnd": True, "resourceVersion": newest}, newest)


async def namespace_stream(
    store: Store,
    ns: str,
    type_: str | None,
    queue: str | None,
    last_id: str | None,
    keepalive: float,
    size: int,
    initial: bool = True,
) -> AsyncIterator[bytes]:
    with store.subscribe(ns, size) as subscription:
        if last_id:
            first = missed_since(store, ns, last_id)
        else:
            first = initial_events(store, ns) if initial else []
        for event, obj in first:
            try:
                task = parsed(obj)
            except Problem:
                continue
            if selected(task, type_, queue):
                yield status_frame(task, event)
        if last_id or initial:
            yield bookmark(store, ns)
        async for change in changes(subscription, keepalive):
            if isinstance(change, bytes):
                yield change
                continue
            type_of_change, obj = change
            try:
                task = parsed(obj)
            except Problem:  # an object the model cannot read: not worth ending everyone's stream for
                continue
            if not selected(task, type_, queue):
                continue
            yield status_frame(task, "deleted" if type_of_change == "DELETED" else "task")


@router.get("/v1/namespaces/{ns}/events", responses=SSE_RESPONSES, response_model=None)
async def namespace_events(
    ns: str,
    request: Request,
    user: Annotated[User, Depends(caller("namespace_events"))],
    type: Annotated[str | None, Query(max_length=253)] = None,
    queue: Annotated[str | None, Query(max_length=63)] = None,
    send_initial_events: Annotated[
        bool,
        Query(
            alias="sendInitialEvents",
            description="First every current task (event: task), then event: bookmark with initialEventsEnd; "
            "false: changes only. A stream resumed with Last-Event-ID sends what it missed instead, then the bookmark.",
        ),
    ] = True,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> StreamingResponse:
    """Every task of a namespace, then every change (``event: task`` or ``event: deleted``), optionally of one type
    or queue: the current tasks first, then ``event: bookmark`` (``initialEventsEnd``), as a Kubernetes watch with
    ``sendInitialEvents`` does, so a client needs no listing of its own and misses nothing between the two."""
    gateway = gateway_of(request)
    synced(gateway)
    settings = gateway.settings
    stream = namespace_stream(
        gateway.tasks, ns, type, queue, last_event_id, settings.keepalive_seconds, settings.subscriber_buffer,
        send_initial_events,
    )  # fmt: skip
    return StreamingResponse(stream, media_type="text/event-stream", headers=STREAM_HEADERS)
