"""The gateway's and the operator's listening sockets (adapters/listening.py)."""

from __future__ import annotations

import socket

from asynctask_operator.adapters.listening import listen


def test_its_connections_send_small_answers_at_once() -> None:
    """TCP_NODELAY on every accepted connection: without it a small answer on a kept-alive connection waits
    for the client's delayed ACK (~40 ms on Linux; ``python -m bench.aggregated`` showed it on every GET)."""
    with listen("127.0.0.1", 0) as server, socket.create_connection(server.getsockname()) as client:
        accepted, _ = server.accept()
        with accepted:
            assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
        assert client.fileno() >= 0
