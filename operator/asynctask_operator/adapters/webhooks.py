"""The webhook sender: one POST per delivery, over httpx, with the SSRF guard at connect time.

The guard sits in the connection layer (an httpcore network backend), not in front of
it: the host is resolved there, every address it resolves to is checked, and the
connection goes to the address that was checked. A name that resolves to a public
address for the check and to 169.254.169.254 for the connection (DNS rebinding)
therefore cannot get through; TLS still verifies the certificate against the host
name. Redirects are never followed and proxies from the environment are not used.

Tests inject a transport (``httpx.MockTransport``) through :class:`HttpxSender`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol

import httpcore
import httpx

from asynctask_operator.core.callbacks import DeliveryOutcome, parse_retry_after
from asynctask_operator.core.destinations import DestinationPolicy, address_refusal

Resolver = Callable[[str, int], Awaitable[list[str]]]
USER_AGENT = "asynctask-operator-webhooks"
EXCERPT_BYTES = 200


class DestinationRefused(Exception):
    """The SSRF guard refused every address of the callback's host."""


@dataclasses.dataclass(frozen=True)
class Answer:
    """What one POST got back (or why it got nothing)."""

    status_code: int | None = None
    error: str | None = None
    refused: str | None = None
    retry_after: float | None = None
    location: str | None = None
    body_excerpt: str = ""

    def outcome(self, msg_id: str, delivery: int, at: dt.datetime) -> DeliveryOutcome:
        """This answer as the outcome of delivery ``delivery`` of event ``msg_id``."""
        return DeliveryOutcome(
            id=msg_id,
            delivery=delivery,
            at=at,
            status_code=self.status_code,
            error=self.error,
            refused=self.refused,
            retry_after=self.retry_after,
            location=self.location,
            body_excerpt=self.body_excerpt,
        )


class Sender(Protocol):
    async def send(self, url: str, body: bytes, headers: dict[str, str], timeout: float) -> Answer: ...

    async def aclose(self) -> None: ...


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves, checks every address against the policy, and connects to a checked one."""

    def __init__(
        self,
        policy: DestinationPolicy,
        resolver: Resolver = system_resolver,
        backend: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self.policy = policy
        self.resolver = resolver
        self.backend = backend or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await asyncio.wait_for(self.resolver(host, port), timeout)
        except (OSError, TimeoutError) as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc or type(exc).__name__}") from exc
        if not addresses:
            raise httpcore.ConnectError(f"{host} resolves to no address")
        for address in addresses:  # all must pass: one private answer among public ones is refused too
            refusal = address_refusal(host, address, self.policy)
            if refusal is not None:
                raise DestinationRefused(refusal)
        error: Exception | None = None
        for address in addresses:
            try:
                return await self.backend.connect_tcp(
                    address, port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        assert error is not None
        raise error

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise DestinationRefused("callbacks do not go to unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self.backend.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport, its connection pool built on :class:`GuardedBackend`."""

    def __init__(
        self, backend: GuardedBackend, max_connections: int = 64, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        """``ssl_context``: the CAs to trust (default: httpx's, the certifi bundle)."""
        super().__init__(trust_env=False)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context or httpx.create_ssl_context(),
            max_connections=max_connections,
            max_keepalive_connections=min(max_connections, 20),
            keepalive_expiry=5.0,
            network_backend=backend,
        )


class HttpxSender:
    def __init__(
        self,
        policy: DestinationPolicy,
        transport: httpx.AsyncBaseTransport | None = None,
        resolver: Resolver = system_resolver,
        max_connections: int = 64,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self._now = now
        if transport is None:
            transport = GuardedTransport(GuardedBackend(policy, resolver), max_connections)
        self.client = httpx.AsyncClient(
            transport=transport,
            follow_redirects=False,
            trust_env=False,
            headers={"user-agent": USER_AGENT},
        )

    async def send(self, url: str, body: bytes, headers: dict[str, str], timeout: float) -> Answer:
        try:
            # httpx's timeouts bound each read; the deadline bounds the whole exchange (a receiver
            # dribbling a byte every few seconds is cut too).
            async with (
                asyncio.timeout(timeout),
                self.client.stream(
                    "POST", url, content=body, headers=headers, timeout=httpx.Timeout(timeout)
                ) as response,
            ):
                excerpt = b""
                async for chunk in response.aiter_bytes():
                    excerpt += chunk
                    if len(excerpt) >= EXCERPT_BYTES:
                        break
        except DestinationRefused as refused:
            return Answer(refused=str(refused))
        except (httpx.TimeoutException, TimeoutError) as exc:
            return Answer(error=f"timed out after {timeout:g}s ({type(exc).__name__})")
        except httpx.HTTPError as exc:
            return Answer(error=f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
        return Answer(
            status_code=response.status_code,
            retry_after=parse_retry_after(response.headers.get("retry-after"), self._now()),
            location=response.headers.get("location"),
            body_excerpt=_excerpt(excerpt) if not 200 <= response.status_code < 300 else "",
        )

    async def aclose(self) -> None:
        await self.client.aclose()


def _excerpt(data: bytes) -> str:
    text = data[:EXCERPT_BYTES].decode("utf-8", "replace")
    return " ".join(text.split())
