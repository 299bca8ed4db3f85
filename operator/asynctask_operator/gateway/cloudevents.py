"""``POST /v1/namespaces/{ns}/cloudevents``: a CloudEvent (structured or binary mode) becomes a task.

Argo Events, KEDA, Knative Eventing or any webhook source can submit work: the event's ``type``
names the TaskType through the gateway's mapping (``--cloudevent-type order.created=fulfil``),
its ``data`` is the payload, and its ``source`` and ``id`` — unique together, by the CloudEvents
spec — are its idempotency key, so a redelivered event is the same task (200), never a second.

- structured mode: ``Content-Type: application/cloudevents+json``, the event as the JSON body;
- binary mode: ``ce-specversion``, ``ce-id``, ``ce-source``, ``ce-type`` headers, the data as
  the body (JSON; no body: no payload).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import ValidationError

from asynctask_operator.core.idempotency import canonical_json
from asynctask_operator.core.tracing import trace_annotations
from asynctask_operator.gateway.access import caller, gateway_of
from asynctask_operator.gateway.answers import TaskSubmission, TaskSummary
from asynctask_operator.gateway.auth import User
from asynctask_operator.gateway.problems import Problem, documented
from asynctask_operator.gateway.submissions import create

router = APIRouter(tags=["cloudevents"])

STRUCTURED = "application/cloudevents+json"
REQUIRED = ("specversion", "id", "source", "type")
ANNOTATION_SOURCE = "asynctask.dev/cloudevent-source"
ANNOTATION_ID = "asynctask.dev/cloudevent-id"
ANNOTATION_VALUE_MAX = 1024

EVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": list(REQUIRED),
    "properties": {
        "specversion": {"const": "1.0"},
        "id": {"type": "string", "minLength": 1},
        "source": {"type": "string", "minLength": 1},
        "type": {"type": "string", "minLength": 1},
        "data": {},
    },
}


def read_event(content_type: str, headers: dict[str, str], body: bytes) -> dict[str, Any]:
    """The event's attributes and ``data``, from either mode; 400 for what is not a CloudEvent 1.0."""
    try:
        decoded = json.loads(body) if body else None
    except ValueError:
        raise Problem(400, "the body is not valid JSON") from None
    if content_type.split(";", 1)[0].strip().lower() == STRUCTURED:
        if not isinstance(decoded, dict):
            raise Problem(400, "a structured CloudEvent is a JSON object")
        event = decoded
        if "data_base64" in event:
            raise Problem(415, "data_base64 is not taken: the payload must be JSON")
    else:
        event = {name: headers[f"ce-{name}"] for name in REQUIRED if f"ce-{name}" in headers}
        event["data"] = decoded
    missing = [name for name in REQUIRED if not isinstance(event.get(name), str) or not event[name]]
    if missing:
        raise Problem(400, "not a CloudEvent: missing " + ", ".join(missing), missing=missing)
    if event["specversion"] != "1.0":
        raise Problem(400, f"CloudEvents specversion {event['specversion']!r} is not 1.0")
    return event


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


@router.post(
    "/v1/namespaces/{ns}/cloudevents",
    status_code=202,
    response_model=TaskSummary,
    responses=documented(
        400,
        409,
        413,
        415,
        422,
        also={200: {"model": TaskSummary, "description": "The same event again (source and id): its task"}},
    ),
    openapi_extra={
        "requestBody": {
            "content": {STRUCTURED: {"schema": EVENT_SCHEMA}, "application/json": {"schema": {}}},
            "description": "Structured mode (application/cloudevents+json), or binary mode: the data as the "
            "body, the attributes in ce-specversion, ce-id, ce-source and ce-type headers.",
        }
    },
)
async def ingest_cloudevent(
    ns: str, request: Request, user: Annotated[User, Depends(caller("ingest_cloudevent"))]
) -> Response:
    """Create the task a CloudEvent maps to (its ``type`` through the gateway's mapping), once per source and id."""
    gateway = gateway_of(request)
    headers = {k.lower(): v for k, v in request.headers.items()}
    event = read_event(headers.get("content-type", ""), headers, await request.body())
    mapping = dict(gateway.settings.cloudevent_types)
    task_type = mapping.get(event["type"])
    if task_type is None:
        raise Problem(422, f"no TaskType is mapped to CloudEvent type {event['type']!r}", ceType=event["type"])
    try:
        submission = TaskSubmission(type=task_type, payload=event.get("data"))
    except ValidationError as error:
        raise Problem(422, f"the mapped TaskType {task_type!r}: {error.errors()[0].get('msg', '')}") from None
    key = canonical_json([event["source"], event["id"]])
    annotations = {
        ANNOTATION_SOURCE: event["source"][:ANNOTATION_VALUE_MAX],
        ANNOTATION_ID: event["id"][:ANNOTATION_VALUE_MAX],
        # The event's distributed-tracing extension (structured: an attribute; binary: ce-traceparent),
        # else the request's own traceparent header.
        **trace_annotations(
            _text(event.get("traceparent")) or headers.get("ce-traceparent") or headers.get("traceparent"),
            _text(event.get("tracestate")) or headers.get("ce-tracestate") or headers.get("tracestate"),
        ),
    }
    return await create(gateway, ns, user, submission, key, **annotations)
