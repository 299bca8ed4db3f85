"""adapters/listening.py: the ports the operator and the gateway listen on."""

from __future__ import annotations

import asyncio
import socket

from asynctask_operator.adapters.listening import listen


async def test_accepted_connections_send_at_once() -> None:
    """A socket that says it is TCP gets TCP_NODELAY from asyncio on every accepted connection: without it an
    answer written in two parts waits for the client's delayed ACK (~40 ms a request, bench.gateway)."""
    sock = listen("127.0.0.1", 0)
    assert sock.proto == socket.IPPROTO_TCP
    accepted: list[int] = []

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        writer.close()

    server = await asyncio.start_server(on_client, sock=sock)
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", sock.getsockname()[1])
        for _ in range(100):
            if accepted:
                break
            await asyncio.sleep(0.01)
        writer.close()
        assert accepted and accepted[0] != 0
    finally:
        server.close()
        await server.wait_closed()
