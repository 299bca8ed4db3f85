"""``…/tasks/{name}/events`` and ``…/events``: a task's status changes, or a namespace's tasks, as they happen.

The streams themselves are :mod:`~asynctask_operator.gateway.streams`: a task's ends after its
terminal event; a namespace's starts with the tasks there and a bookmark, then every change.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import StreamingResponse

from asynctask_operator.gateway.access import caller, gateway_of
from asynctask_operator.gateway.auth import User
from asynctask_operator.gateway.problems import documented
from asynctask_operator.gateway.reads import synced, task_view
from asynctask_operator.gateway.streams import STREAM_HEADERS, namespace_stream, task_stream

router = APIRouter(tags=["events"])

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
    task_view(gateway, ns, name)  # 404 before the stream starts
    settings = gateway.settings
    stream = task_stream(gateway.tasks, ns, name, last_event_id, settings.keepalive_seconds, settings.subscriber_buffer)
    return StreamingResponse(stream, media_type="text/event-stream", headers=STREAM_HEADERS)


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
