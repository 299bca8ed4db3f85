"""ADR 0020 at the gateway: a submission joins the caller's trace (its ``traceparent``/``tracestate``
headers, or a CloudEvent's distributed-tracing extension) through the task's annotations."""

from __future__ import annotations

from typing import Any

import pytest

from asynctask_operator.core.tracing import ANNOTATION_TRACEPARENT, ANNOTATION_TRACESTATE
from tests.support.gateway import NS, running_gateway

TASKS = f"/v1/namespaces/{NS}/tasks"
EVENTS = f"/v1/namespaces/{NS}/cloudevents"
PARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
OTHER = "00-11111111111111111111111111111111-2222222222222222-01"
EVENT = {"specversion": "1.0", "id": "e-1", "source": "/shop", "type": "order.created", "data": {"order": 42}}


def trace_of(task: dict[str, Any] | None) -> dict[str, str]:
    annotations = ((task or {}).get("metadata") or {}).get("annotations") or {}
    return {k: v for k, v in annotations.items() if k in (ANNOTATION_TRACEPARENT, ANNOTATION_TRACESTATE)}


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"traceparent": PARENT}, {ANNOTATION_TRACEPARENT: PARENT}),
        (
            {"traceparent": PARENT, "tracestate": "vendor=x"},
            {ANNOTATION_TRACEPARENT: PARENT, ANNOTATION_TRACESTATE: "vendor=x"},
        ),
        ({"traceparent": "garbage", "tracestate": "vendor=x"}, {}),
        ({}, {}),
    ],
    ids=["traceparent", "with-tracestate", "malformed", "none"],
)
async def test_a_submission_joins_the_requests_trace(headers: dict[str, str], expected: dict[str, str]) -> None:
    async with running_gateway() as gw:
        answer = await gw.client.post(TASKS, json={"type": "echo"}, headers=gw.alice | headers)
        assert answer.status_code == 202, answer.text
        assert trace_of(gw.task(answer.json()["name"])) == expected


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        (EVENT | {"traceparent": PARENT}, {"Content-Type": "application/cloudevents+json", "traceparent": OTHER}),
        (
            EVENT["data"],
            {f"ce-{k}": str(v) for k, v in EVENT.items() if k != "data"}
            | {"Content-Type": "application/json", "ce-traceparent": PARENT, "traceparent": OTHER},
        ),
        (EVENT, {"Content-Type": "application/cloudevents+json", "traceparent": PARENT}),
    ],
    ids=["structured-extension", "binary-extension", "request-header"],
)
async def test_a_cloudevent_joins_its_events_trace_before_the_requests(body: Any, headers: dict[str, str]) -> None:
    async with running_gateway(cloudevent_types=(("order.created", "fulfil"),)) as gw:
        answer = await gw.client.post(EVENTS, json=body, headers=gw.alice | headers)
        assert answer.status_code == 202, answer.text
        assert trace_of(gw.task(answer.json()["name"])) == {ANNOTATION_TRACEPARENT: PARENT}
