"""A submission is refused at once when its TaskType does not exist or its payload breaks the type's
schema (issue 25, item 2): the operator's own check (``core.validation.check_payload``), made by the
gateway before the task exists, answering 422 with the JSON pointer of the field at fault.

Where the gateway cannot tell (its cache still loading, the API server failing), the task is created
and the operator decides, as it does for ``kubectl apply``.
"""

from __future__ import annotations

from typing import Any

import pytest

from asynctask_operator.adapters.kube import ASYNCTASKS, TASKTYPES, ApiError
from tests.support.gateway import NS, RunningGateway, running_gateway, tasktype
from tests.support.rbac import grant

TASKS = f"/v1/namespaces/{NS}/tasks"
SCHEMA = {
    "type": "object",
    "required": ["input"],
    "properties": {"input": {"type": "string"}, "items": {"type": "array", "items": {"type": "integer"}}},
}


async def submit(gw: RunningGateway, body: dict[str, Any], key: str | None = None) -> Any:
    headers = gw.alice | ({"Idempotency-Key": key} if key else {})
    return await gw.client.post(TASKS, json=body, headers=headers)


async def with_type(gw: RunningGateway, name: str, schema: Any = None) -> None:
    await gw.fake.create(TASKTYPES, NS, tasktype(name, schema))
    await gw.settle()


async def test_a_type_that_does_not_exist_is_refused_naming_the_types_there() -> None:
    async with running_gateway(tasktypes=("report", "transcode")) as gw:
        gw.rules.append(grant("alice", "list", "tasktypes", NS))
        answer = await submit(gw, {"type": "transcdoe"})
        assert answer.status_code == 422 and answer.headers["content-type"] == "application/problem+json"
        body = answer.json()
        assert body["reason"] == "UnknownTaskType" and body["types"] == ["report", "transcode"]
        assert body["detail"] == (
            f"type: no TaskType 'transcdoe' in namespace '{NS}'; the TaskTypes there are report, transcode"
        )
        assert body["errors"][0]["pointer"] == "/type"
        assert gw.fake.of(ASYNCTASKS, NS) == []  # nothing was created


async def test_the_types_there_are_named_only_to_a_caller_who_may_list_them() -> None:
    async with running_gateway(tasktypes=("report",)) as gw:
        answer = await submit(gw, {"type": "nope"})
        assert answer.status_code == 422
        assert answer.json()["types"] == [] and "you may not list the TaskTypes there" in answer.json()["detail"]


async def test_a_type_created_a_moment_ago_is_looked_up_before_refusing() -> None:
    async with running_gateway(tasktypes=()) as gw:
        await with_type(gw, "fresh")
        gw.gateway.tasktypes.objects.pop((NS, "fresh"))  # its watch event has not arrived yet
        answer = await submit(gw, {"type": "fresh"})
        assert answer.status_code == 202
        assert gw.gateway.tasktypes.get(NS, "fresh") is not None  # the lookup's answer is cached


@pytest.mark.parametrize(
    ("payload", "pointer", "reason"),
    [
        ({}, "/payload/input", "InvalidPayload"),  # the field to add
        ({"input": 7}, "/payload/input", "InvalidPayload"),
        ({"input": "a", "items": [1, "two"]}, "/payload/items/1", "InvalidPayload"),
        ({"input": "x" * 70_000}, "/payload", "PayloadTooLarge"),  # over the operator's 64 KiB
    ],
)
async def test_a_payload_the_type_refuses_is_refused_with_the_pointer_of_the_field(
    payload: Any, pointer: str, reason: str
) -> None:
    async with running_gateway(tasktypes=()) as gw:
        await with_type(gw, "typed", SCHEMA)
        answer = await submit(gw, {"type": "typed", "payload": payload})
        assert answer.status_code == 422
        body = answer.json()
        assert body["reason"] == reason and body["errors"][0]["pointer"] == pointer
        assert body["detail"].startswith("payload")
        assert gw.fake.of(ASYNCTASKS, NS) == []


async def test_a_payload_the_type_takes_is_accepted() -> None:
    async with running_gateway(tasktypes=()) as gw:
        await with_type(gw, "typed", SCHEMA)
        assert (await submit(gw, {"type": "typed", "payload": {"input": "a", "items": [1]}})).status_code == 202


async def test_when_the_gateway_cannot_tell_the_operator_decides() -> None:
    async with running_gateway(tasktypes=()) as gw:
        gw.fake.fail("get", "tasktypes", ApiError(500, "InternalError", "etcd is away"))
        assert (await submit(gw, {"type": "unknown-yet"})).status_code == 202  # the lookup failed
        gw.gateway.tasktypes.synced.clear()  # the cache is loading again
        assert (await submit(gw, {"type": "unknown-yet-too"})).status_code == 202


async def test_a_broken_type_is_the_operators_to_report_not_the_callers() -> None:
    async with running_gateway(tasktypes=()) as gw:
        await with_type(gw, "broken", {"type": "no-such-json-type"})
        assert (await submit(gw, {"type": "broken", "payload": {"a": 1}})).status_code == 202


async def test_a_replay_answers_with_its_task_even_once_its_type_is_gone() -> None:
    async with running_gateway(tasktypes=()) as gw:
        await with_type(gw, "once")
        first = await submit(gw, {"type": "once"}, key="k-1")
        assert first.status_code == 202
        await gw.fake.delete(TASKTYPES, NS, "once")
        await gw.settle()
        replay = await submit(gw, {"type": "once"}, key="k-1")
        assert replay.status_code == 200 and replay.json()["name"] == first.json()["name"]
        assert (await submit(gw, {"type": "once"}, key="k-2")).status_code == 422


async def test_a_cloudevent_of_an_unknown_type_is_refused_too() -> None:
    mapping = (("order.created", "fulfil-typo"),)
    async with running_gateway(tasktypes=("fulfil",), cloudevent_types=mapping) as gw:
        event = {"specversion": "1.0", "id": "e-1", "source": "/shop", "type": "order.created", "data": {}}
        answer = await gw.client.post(
            f"/v1/namespaces/{NS}/cloudevents",
            json=event,
            headers=gw.alice | {"Content-Type": "application/cloudevents+json"},
        )
        assert answer.status_code == 422 and answer.json()["reason"] == "UnknownTaskType"
