"""CloudEvents ingest (issue 16, item 9): structured and binary mode, the type mapping, redeliveries."""

from __future__ import annotations

from typing import Any

import pytest

from asynctask_operator.adapters.kube import ASYNCTASKS
from asynctask_operator.gateway.cloudevents import ANNOTATION_ID, ANNOTATION_SOURCE
from tests.support.gateway import NS, running_gateway

URL = f"/v1/namespaces/{NS}/cloudevents"
MAPPING = (("order.created", "fulfil"),)
EVENT = {"specversion": "1.0", "id": "e-1", "source": "/shop", "type": "order.created", "data": {"order": 42}}
STRUCTURED = {"Content-Type": "application/cloudevents+json"}


def binary(event: dict[str, Any]) -> dict[str, str]:
    return {f"ce-{k}": v for k, v in event.items() if k != "data"} | {"Content-Type": "application/json"}


async def test_a_structured_event_becomes_a_task_once() -> None:
    async with running_gateway(cloudevent_types=MAPPING) as gw:
        first = await gw.client.post(URL, json=EVENT, headers=gw.alice | STRUCTURED)
        assert first.status_code == 202, first.text
        task = gw.task(first.json()["name"]) or {}
        assert task["spec"] == {"type": "fulfil", "payload": {"order": 42}}
        assert task["metadata"]["annotations"][ANNOTATION_SOURCE] == "/shop"
        assert task["metadata"]["annotations"][ANNOTATION_ID] == "e-1"
        again = await gw.client.post(URL, json=EVENT, headers=gw.alice | STRUCTURED)  # redelivered
        assert again.status_code == 200 and again.headers["Location"] == first.headers["Location"]
        other_source = await gw.client.post(URL, json=EVENT | {"source": "/other"}, headers=gw.alice | STRUCTURED)
        assert other_source.status_code == 202  # ids are unique per source only
        assert len(gw.fake.of(ASYNCTASKS, NS)) == 2


async def test_a_binary_event_is_the_same_task_as_its_structured_twin() -> None:
    async with running_gateway(cloudevent_types=MAPPING) as gw:
        first = await gw.client.post(URL, json=EVENT["data"], headers=gw.alice | binary(EVENT))
        assert first.status_code == 202, first.text
        twin = await gw.client.post(URL, json=EVENT, headers=gw.alice | STRUCTURED)
        assert twin.status_code == 200 and twin.json()["name"] == first.json()["name"]


@pytest.mark.parametrize(
    ("body", "headers", "status", "detail"),
    [
        (EVENT | {"type": "order.shipped"}, STRUCTURED, 422, "no TaskType is mapped"),
        ({k: v for k, v in EVENT.items() if k != "id"}, STRUCTURED, 400, "missing id"),
        (EVENT | {"specversion": "0.3"}, STRUCTURED, 400, "0.3"),
        ([1, 2], STRUCTURED, 400, "JSON object"),
        (EVENT | {"data_base64": "AA=="}, STRUCTURED, 415, "data_base64"),
        ({"order": 1}, {"Content-Type": "application/json"}, 400, "missing specversion, id, source, type"),
    ],
)
async def test_what_is_not_a_mapped_cloudevent_is_refused(
    body: Any, headers: dict[str, str], status: int, detail: str
) -> None:
    async with running_gateway(cloudevent_types=MAPPING) as gw:
        answer = await gw.client.post(URL, json=body, headers=gw.alice | headers)
        assert answer.status_code == status and detail in answer.json()["detail"], answer.text
        assert gw.fake.of(ASYNCTASKS, NS) == []


async def test_ingest_needs_create_on_asynctasks() -> None:
    async with running_gateway(cloudevent_types=MAPPING) as gw:
        answer = await gw.client.post(URL, json=EVENT, headers=gw.bob | STRUCTURED)
        assert answer.status_code == 403 and "create asynctasks" in answer.json()["detail"]
