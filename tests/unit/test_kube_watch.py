"""KubeClient's paged listings, watch streams and retries (through the official client in threads, and
through aiohttp, the operator's), over HTTP against a small local server.

The server answers like an API server where it matters here: ``limit``/``continue``
pages, a watch as JSON lines in chunks that split lines anywhere, 410 for an expired
resourceVersion.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp.web
import kubernetes.client
import pytest

from asynctask_operator.adapters.aiokube import AioKubeClient
from asynctask_operator.adapters.kube import ASYNCTASKS, Conflict, Gone
from asynctask_operator.adapters.kubeclient import MERGE_PATCH, KubeClient, RetryPolicy

PATH = "/apis/asynctask.dev/v1alpha1/namespaces/ns/asynctasks"


def obj(name: str, version: str) -> dict[str, Any]:
    return {"metadata": {"namespace": "ns", "name": name, "resourceVersion": version}}


class Server:
    def __init__(self) -> None:
        self.requests: list[dict[str, str]] = []
        self.events: list[dict[str, Any]] = []
        self.watch_status = 200
        self.hold_open = False
        self.disconnected = asyncio.Event()

    async def handle(self, request: aiohttp.web.Request) -> aiohttp.web.StreamResponse:
        query = dict(request.query)
        self.requests.append(query)
        if query.get("watch") != "true":
            names = ["a", "b", "c", "d", "e"]
            start = names.index(query["continue"]) if "continue" in query else 0
            limit = int(query.get("limit", "100"))
            page = names[start : start + limit]
            meta: dict[str, Any] = {"resourceVersion": "10"}
            if start + limit < len(names):
                meta["continue"] = names[start + limit]
            return aiohttp.web.json_response({"metadata": meta, "items": [obj(n, "5") for n in page]})
        if self.watch_status != 200:
            body = {"kind": "Status", "code": self.watch_status, "reason": "Expired", "message": "too old"}
            return aiohttp.web.json_response(body, status=self.watch_status)
        response = aiohttp.web.StreamResponse()
        await response.prepare(request)
        data = b"".join(json.dumps(e).encode() + b"\n" for e in self.events)
        try:
            for i in range(0, len(data), 7):  # chunks of 7 bytes: lines split anywhere
                await response.write(data[i : i + 7])
                await asyncio.sleep(0)
            while self.hold_open:
                await response.write(b"\n")  # a keep-alive blank line (skipped by the reader)
                await asyncio.sleep(0.05)
        except (ConnectionResetError, aiohttp.ClientConnectionResetError):
            self.disconnected.set()
            raise
        finally:
            if request.transport is None or request.transport.is_closing():
                self.disconnected.set()
        await response.write_eof()
        return response


CLIENTS = {"threads": KubeClient, "aiohttp": AioKubeClient}


async def closed(client: KubeClient) -> None:
    if isinstance(client, AioKubeClient):
        await client.aclose()
    else:
        client.close()


@pytest.fixture(params=sorted(CLIENTS))
async def server(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Server, KubeClient]]:
    srv = Server()
    app = aiohttp.web.Application()
    app.router.add_route("GET", PATH, srv.handle)
    runner = aiohttp.web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = aiohttp.web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    config = kubernetes.client.Configuration()
    config.host = f"http://127.0.0.1:{port}"
    client = CLIENTS[request.param](config, retry=RetryPolicy(attempts=1))
    try:
        yield srv, client
    finally:
        await closed(client)
        await runner.cleanup()


async def test_a_listing_comes_in_pages_following_the_continue_token(server: tuple[Server, KubeClient]) -> None:
    srv, client = server
    pages = [
        ([o["metadata"]["name"] for o in items], rv) async for items, rv in client.list_pages(ASYNCTASKS, "ns", limit=2)
    ]
    assert pages == [(["a", "b"], "10"), (["c", "d"], "10"), (["e"], "10")]
    assert [r.get("continue") for r in srv.requests] == [None, "c", "e"]
    assert {r["limit"] for r in srv.requests} == {"2"}
    assert client.counter.counts["list", "asynctasks", 200] == 3


async def test_a_watch_yields_each_event_whole_and_ends_with_the_stream(server: tuple[Server, KubeClient]) -> None:
    srv, client = server
    srv.events = [
        {"type": "ADDED", "object": obj("a", "11")},
        {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "12"}}},
        {"type": "MODIFIED", "object": obj("a", "13") | {"status": {"phase": "Running", "message": "é ✓"}}},
    ]
    got = [e async for e in client.watch(ASYNCTASKS, "ns", "app=x", "10", timeout_seconds=5)]
    assert got == srv.events
    query = srv.requests[-1]
    assert query["resourceVersion"] == "10"
    assert query["allowWatchBookmarks"] == "true"
    assert query["labelSelector"] == "app=x"
    assert query["timeoutSeconds"] == "5"
    assert client.counter.counts["watch", "asynctasks", 200] == 1


async def test_an_expired_version_raises_gone(server: tuple[Server, KubeClient]) -> None:
    srv, client = server
    srv.watch_status = 410
    with pytest.raises(Gone, match="too old"):
        async for _ in client.watch(ASYNCTASKS, "ns", None, "1"):
            pass
    assert client.counter.counts["watch", "asynctasks", 410] == 1


async def test_closing_the_iterator_closes_the_connection(server: tuple[Server, KubeClient]) -> None:
    srv, client = server
    srv.events = [{"type": "ADDED", "object": obj("a", "11")}]
    srv.hold_open = True
    stream = client.watch(ASYNCTASKS, "ns", None, "10")
    assert (await anext(stream))["type"] == "ADDED"
    await stream.aclose()
    await asyncio.wait_for(srv.disconnected.wait(), 5)


@pytest.mark.parametrize("kind", sorted(CLIENTS))
async def test_events_of_a_body_without_chunked_encoding_arrive_before_it_ends(kind: str) -> None:
    """Some proxies stream a watch as a plain body that ends with the connection: each event
    must still come as it arrives, not when the stream ends."""
    first_seen = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n")
        writer.write(json.dumps({"type": "ADDED", "object": obj("a", "11")}).encode() + b"\n")
        await writer.drain()
        await asyncio.wait_for(first_seen.wait(), 5)  # the client has the first before the second is sent
        writer.write(json.dumps({"type": "ADDED", "object": obj("b", "12")}).encode() + b"\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    config = kubernetes.client.Configuration()
    config.host = f"http://127.0.0.1:{port}"
    client = CLIENTS[kind](config, retry=RetryPolicy(attempts=1))
    names = []
    try:
        async with asyncio.timeout(10):
            async for event in client.watch(ASYNCTASKS, "ns", None, "10"):
                names.append(event["object"]["metadata"]["name"])
                first_seen.set()
    finally:
        await closed(client)
        server.close()
    assert names == ["a", "b"]


@pytest.mark.parametrize("kind", sorted(CLIENTS))
async def test_a_busy_server_is_asked_again_after_its_retry_after_and_a_conflict_is_not(kind: str) -> None:
    answers = [(429, {"reason": "TooManyRequests", "message": "slow down"}), (200, {"metadata": {"name": "a"}})]
    seen: list[tuple[str, bytes, str]] = []

    async def handle(request: aiohttp.web.Request) -> aiohttp.web.Response:
        seen.append((request.method, await request.read(), request.headers.get("Content-Type", "")))
        status, body = answers.pop(0) if answers else (409, {"reason": "Conflict", "message": "stale"})
        return aiohttp.web.json_response(body, status=status, headers={"Retry-After": "0"} if status == 429 else {})

    app = aiohttp.web.Application()
    app.router.add_route("PATCH", PATH + "/a/status", handle)
    runner = aiohttp.web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = aiohttp.web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    config = kubernetes.client.Configuration()
    config.host = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
    client = CLIENTS[kind](config, retry=RetryPolicy(attempts=3, base_seconds=0.01))
    try:
        patched = await client.patch(ASYNCTASKS, "ns", "a", {"status": {"phase": "Running"}}, subresource="status")
        assert patched == {"metadata": {"name": "a"}}
        with pytest.raises(Conflict, match="stale"):
            await client.patch(ASYNCTASKS, "ns", "a", {"status": {"phase": "Failed"}}, subresource="status")
    finally:
        await closed(client)
        await runner.cleanup()
    assert [(m, json.loads(b), t) for m, b, t in seen][:2] == [
        ("PATCH", {"status": {"phase": "Running"}}, MERGE_PATCH)
    ] * 2
    assert len(seen) == 3  # the conflict was not retried
    assert (
        client.counter.counts["patch", "asynctasks", 429] == 1
        and client.counter.counts["patch", "asynctasks", 409] == 1
    )
