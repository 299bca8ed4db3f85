"""The listening sockets of the operator's and the gateway's HTTP ports, bound before serving.

Both servers (aiohttp's, uvicorn's) bind their port themselves, and fail differently when they
cannot: aiohttp with a raw ``OSError`` traceback, uvicorn with a log line and exit code 1. Bound
here first, a port that is taken (or not ours to take) is one :class:`PortUnavailable` that the
programs report as a bad setting, naming their flag.
"""

from __future__ import annotations

import errno
import os
import socket


class PortUnavailable(Exception):
    """``host:port`` cannot be listened on; ``reason`` is the system's word for why."""

    def __init__(self, host: str, port: int, reason: str, code: int | None = None) -> None:
        super().__init__(f"cannot listen on {host}:{port}: {reason}")
        self.host = host
        self.port = port
        self.reason = reason
        self.code = code

    @property
    def host_is_wrong(self) -> bool:
        """The address is not one of this machine's (the host setting is wrong, not the port)."""
        return self.code == errno.EADDRNOTAVAIL


def listen(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` (an IPv6 address when ``host`` has a colon), for the server to listen on.

    Raises :class:`PortUnavailable` when the address is in use, not ours to bind (a port below 1024
    without the capability) or not an address of this machine."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        sock = socket.create_server((host, port), family=family)
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise PortUnavailable(host, port, reason, exc.errno) from exc
    # Its connections inherit TCP_NODELAY. asyncio sets it only on sockets made with IPPROTO_TCP, and
    # create_server's are not: a small answer on a kept-alive connection (a status GET, an aggregated
    # list through the API server's proxy) then waited ~40 ms for the client's delayed ACK.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock
