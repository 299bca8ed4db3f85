"""KubeClient's paged listings and watch streams, over HTTP against a small local server.

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

from asynctask_operator.adapters.kube import ASYNCTASKS, Gone
from asynctask_operator.adapters.kubeclient import KubeClient, RetryPolicy

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


@pytest.fixture()
async def server() -> AsyncIterator[tuple[Server, KubeClient]]:
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
    client = KubeClient(config, retry=RetryPolicy(attempts=1))
    try:
        yield srv, client
    finally:
        client.close()
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


async def test_events_of_a_body_without_chunked_encoding_arrive_before_it_ends() -> None:
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
    client = KubeClient(config, retry=RetryPolicy(attempts=1))
    names = []
    try:
        async with asyncio.timeout(10):
            async for event in client.watch(ASYNCTASKS, "ns", None, "10"):
                names.append(event["object"]["metadata"]["name"])
                first_seen.set()
    finally:
        client.close()
        server.close()
    assert names == ["a", "b"]
