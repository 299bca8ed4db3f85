"""Callbacks over TLS through the SSRF guard: the connection goes to the checked address,
and the certificate is still verified against the URL's host name.

A local HTTPS receiver on 127.0.0.1 with a certificate from a test CA (trustme); the
resolver maps the URL's host to it, and the policy allows loopback, as the integration
tests' ``--callback-allowed-cidr`` does.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator

import aiohttp.web
import pytest
import trustme

from asynctask_operator.adapters.webhooks import GuardedBackend, GuardedTransport, HttpxSender
from asynctask_operator.core.destinations import DestinationPolicy

HOST = "hooks.example.com"
LOOPBACK = DestinationPolicy.of(cidrs=["127.0.0.0/8"])


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


async def serve(ca: trustme.CA, cert_host: str) -> tuple[aiohttp.web.AppRunner, int, list[bytes]]:
    received: list[bytes] = []

    async def hook(request: aiohttp.web.Request) -> aiohttp.web.Response:
        received.append(await request.read())
        return aiohttp.web.Response(status=204)

    app = aiohttp.web.Application()
    app.router.add_post("/hook", hook)
    runner = aiohttp.web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(cert_host).configure_cert(server_context)
    site = aiohttp.web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_context)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, port, received


async def resolve_to_loopback(host: str, port: int) -> list[str]:
    return ["127.0.0.1"] if host == HOST else []


def sender(trusted: ssl.SSLContext | None) -> HttpxSender:
    backend = GuardedBackend(LOOPBACK, resolve_to_loopback)
    return HttpxSender(LOOPBACK, transport=GuardedTransport(backend, ssl_context=trusted))


def trusting(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


@pytest.fixture()
async def receiver(ca: trustme.CA, request: pytest.FixtureRequest) -> AsyncIterator[tuple[int, list[bytes]]]:
    runner, port, received = await serve(ca, getattr(request, "param", HOST))
    try:
        yield port, received
    finally:
        await runner.cleanup()


async def test_a_delivery_over_tls_reaches_the_checked_address(
    ca: trustme.CA, receiver: tuple[int, list[bytes]]
) -> None:
    port, received = receiver
    client = sender(trusting(ca))
    answer = await client.send(f"https://{HOST}:{port}/hook", b'{"n": 1}', {}, 5)
    await client.aclose()
    assert answer.status_code == 204, answer
    assert received == [b'{"n": 1}']


@pytest.mark.parametrize("receiver", ["other.example.com"], indirect=True)
async def test_a_certificate_for_another_name_is_refused(ca: trustme.CA, receiver: tuple[int, list[bytes]]) -> None:
    port, received = receiver
    client = sender(trusting(ca))
    answer = await client.send(f"https://{HOST}:{port}/hook", b"{}", {}, 5)
    await client.aclose()
    assert answer.status_code is None
    assert answer.error is not None and "CERTIFICATE_VERIFY_FAILED" in answer.error
    assert received == []


async def test_a_certificate_from_an_unknown_ca_is_refused(receiver: tuple[int, list[bytes]]) -> None:
    port, received = receiver
    client = sender(None)  # the default trust store: the test CA is not in it
    answer = await client.send(f"https://{HOST}:{port}/hook", b"{}", {}, 5)
    await client.aclose()
    assert answer.status_code is None
    assert answer.error is not None and "CERTIFICATE_VERIFY_FAILED" in answer.error
    assert received == []
