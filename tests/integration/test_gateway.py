"""The gateway over HTTP (uvicorn, in this event loop) against kmock's API emulator over HTTP.

The whole curl flow of docs/gateway.md, as a client sees it on the wire: submit with an
Idempotency-Key, replay, poll, stream (real chunked SSE), cancel; 401/403/413/422/429; and many
concurrent event streams served from one watch. kmock answers the TokenReviews and
SubjectAccessReviews through reactions (``ALLOWED`` says who may do what).
"""

from __future__ import annotations

import asyncio
import json
import pathlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import kmock
import pytest

from asynctask_operator.testing.cluster import NS, Cluster
from asynctask_operator.testing.operators import eventually
from tests.integration.served import Served, answer_reviews, serve

TASKS = f"/v1/namespaces/{NS}/tasks"
USERS = {"alice-token": "alice", "carol-token": "carol"}
ALLOWED = {("alice", verb) for verb in ("create", "get", "list", "watch", "patch", "delete")} | {
    ("carol", "create"),
    ("carol", "get"),
}
ALICE = {"Authorization": "Bearer alice-token"}
CAROL = {"Authorization": "Bearer carol-token"}


def answer(k: kmock.KubernetesEmulator) -> None:
    answer_reviews(k, USERS, lambda user, a: (user, a.get("verb")) in ALLOWED and a.get("namespace") == NS)


@pytest.fixture()
async def gw(cluster: Cluster, kmock: kmock.KubernetesEmulator, kubeconfig: pathlib.Path) -> AsyncIterator[Served]:
    answer(kmock)
    for name in ("echo", "video-transcode"):
        await cluster.create_tasktype(name)
    async with serve(kubeconfig) as served:
        yield served


async def test_the_curl_flow(gw: Served, cluster: Cluster) -> None:
    body = {"type": "video-transcode", "payload": {"src": "a.mp4"}}
    submitted = await gw.client.post(TASKS, json=body, headers=ALICE | {"Idempotency-Key": "order-42"})
    assert submitted.status_code == 202, submitted.text
    location, name = submitted.headers["Location"], submitted.json()["name"]
    assert location == f"{TASKS}/{name}" and "Retry-After" in submitted.headers
    stored = cluster.task(name)
    assert stored["metadata"]["annotations"]["asynctask.dev/submitted-by"] == "alice"

    replay = await gw.client.post(TASKS, json=body, headers=ALICE | {"Idempotency-Key": "order-42"})
    assert replay.status_code == 200, replay.text
    assert replay.headers["Location"] == location
    other = await gw.client.post(TASKS, json={**body, "priority": 1}, headers=ALICE | {"Idempotency-Key": "order-42"})
    assert other.status_code == 422 and other.headers["content-type"] == "application/problem+json"

    polled = await gw.client.get(location, headers=ALICE)
    assert polled.status_code == 200 and polled.json()["phase"] == "Pending" and "Retry-After" in polled.headers
    listed = await gw.client.get(TASKS, headers=ALICE)
    assert [t["name"] for t in listed.json()["items"]] == [name]

    cancelled = await gw.client.post(f"{location}:cancel", headers=ALICE)
    assert cancelled.status_code == 202
    assert cluster.task(name)["spec"]["cancel"] is True


async def test_sse_delivers_running_then_succeeded_and_ends(gw: Served, cluster: Cluster) -> None:
    name = (await gw.client.post(TASKS, json={"type": "echo"}, headers=ALICE | {"Idempotency-Key": "sse"})).json()[
        "name"
    ]
    events: list[dict[str, Any]] = []
    comments = 0

    async def follow() -> None:
        nonlocal comments
        async with gw.client.stream("GET", f"{location(name)}/events", headers=ALICE) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            async for line in stream.aiter_lines():
                if line.startswith("data: "):
                    events.append(json.loads(line[6:]))
                elif line.startswith(":"):
                    comments += 1

    reader = asyncio.create_task(follow())
    await eventually(lambda: len(events) == 1, what="the current state first")
    await eventually(lambda: comments >= 1, what="a keep-alive comment (every 0.2 s here)")
    await cluster.patch("/apis/asynctask.dev/v1alpha1", f"asynctasks/{name}/status", {"status": {"phase": "Running"}})
    await eventually(lambda: len(events) == 2, what="Running")
    await cluster.patch("/apis/asynctask.dev/v1alpha1", f"asynctasks/{name}/status", {"status": {"phase": "Succeeded"}})
    await asyncio.wait_for(reader, 10)  # the stream ends after the terminal event
    assert [e["phase"] for e in events] == ["Pending", "Running", "Succeeded"]


def location(name: str) -> str:
    return f"{TASKS}/{name}"


async def test_many_concurrent_streams_cost_no_extra_watch(
    cluster: Cluster, kmock: kmock.KubernetesEmulator, kubeconfig: pathlib.Path
) -> None:
    answer(kmock)
    await cluster.create_tasktype("echo")
    async with serve(kubeconfig, keepalive_seconds=15.0) as gw:
        submitted = await gw.client.post(TASKS, json={"type": "echo"}, headers=ALICE | {"Idempotency-Key": "fan"})
        name = submitted.json()["name"]
        watches_before = gw.gateway.api.counter.counts["watch", "asynctasks", 200]
        clients = 500
        seen: list[str] = []
        # clients of 50 connections each: httpcore's pool costs O(connections) per closed stream
        pools = [httpx.AsyncClient(base_url=gw.client.base_url, timeout=30) for _ in range(clients // 50)]

        async def one(pool: httpx.AsyncClient) -> None:
            async with pool.stream("GET", f"{location(name)}/events", headers=ALICE) as stream:
                async for line in stream.aiter_lines():
                    if line.startswith("data: ") and '"phase":"Succeeded"' in line:
                        seen.append(line)

        readers = [asyncio.create_task(one(pools[i % len(pools)])) for i in range(clients)]
        await eventually(lambda: len(gw.gateway.tasks.subscriptions) == clients, timeout=30, what="all subscribed")
        await cluster.patch(
            "/apis/asynctask.dev/v1alpha1", f"asynctasks/{name}/status", {"status": {"phase": "Succeeded"}}
        )
        await asyncio.wait_for(asyncio.gather(*readers), 30)
        for pool in pools:
            await pool.aclose()
        assert len(seen) == clients  # every client saw the terminal event, and its stream ended
        assert gw.gateway.api.counter.counts["watch", "asynctasks", 200] == watches_before  # no watch of their own


@pytest.mark.parametrize(
    ("headers", "body", "status"),
    [
        ({}, {"type": "echo"}, 401),
        ({"Authorization": "Bearer nobody"}, {"type": "echo"}, 401),
        (ALICE, {"type": "echo", "priority": 99999}, 422),
        (ALICE, {"type": "echo", "payload": "x" * 300_000}, 413),
    ],
)
async def test_refusals_on_the_wire(gw: Served, headers: dict[str, str], body: dict[str, Any], status: int) -> None:
    answer = await gw.client.post(TASKS, json=body, headers=headers)
    assert answer.status_code == status
    assert answer.headers["content-type"] == "application/problem+json"


async def test_a_caller_allowed_only_create_and_get_cannot_cancel(gw: Served, cluster: Cluster) -> None:
    submitted = await gw.client.post(TASKS, json={"type": "echo"}, headers=CAROL | {"Idempotency-Key": "c"})
    assert submitted.status_code == 202
    assert (await gw.client.get(submitted.headers["Location"], headers=CAROL)).status_code == 200
    refused = await gw.client.post(f"{submitted.headers['Location']}:cancel", headers=CAROL)
    assert refused.status_code == 403
    name = submitted.json()["name"]
    assert refused.json()["detail"] == f"you may not patch asynctasks {name!r} in namespace '{NS}'"
    assert "cancel" not in cluster.task(submitted.json()["name"])["spec"]


async def test_the_rate_limit_on_the_wire(
    cluster: Cluster, kmock: kmock.KubernetesEmulator, kubeconfig: pathlib.Path
) -> None:
    answer(kmock)
    async with serve(kubeconfig, rate_limit=0.5, rate_burst=2) as served:
        codes = [(await served.client.get(TASKS, headers=ALICE)).status_code for _ in range(3)]
        assert codes[:2] == [200, 200] and codes[2] == 429
        limited = await served.client.get(TASKS, headers=ALICE)
        assert int(limited.headers["Retry-After"]) >= 1
