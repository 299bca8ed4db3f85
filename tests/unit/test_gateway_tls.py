"""The gateway serving HTTPS itself (``--tls-cert``/``--tls-key``): uvicorn in this test's loop, on
127.0.0.1, with a certificate from a test CA (trustme), against FakeKube; clients trust that CA only.
"""

from __future__ import annotations

import asyncio
import contextlib
import pathlib
import ssl
from collections.abc import AsyncIterator

import httpx
import pytest
import trustme
import uvicorn

from asynctask_operator.gateway.access import Gateway
from asynctask_operator.gateway.app import create_app
from asynctask_operator.gateway.cli import server_config
from asynctask_operator.gateway.console.sessions import COOKIE
from asynctask_operator.gateway.settings import GatewaySettings
from asynctask_operator.testing.fakekube import FakeKube
from tests.support.gateway import TOKENS, running_gateway

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture()
def cert_files(ca: trustme.CA, tmp_path: pathlib.Path) -> tuple[str, str]:
    cert = ca.issue_cert("127.0.0.1")
    cert_file, key_file = tmp_path / "tls.crt", tmp_path / "tls.key"
    cert_file.write_bytes(b"".join(pem.bytes() for pem in cert.cert_chain_pems))
    cert.private_key_pem.write_to_path(str(key_file))
    return str(cert_file), str(key_file)


def trusting(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


@contextlib.asynccontextmanager
async def served(cert_files: tuple[str, str]) -> AsyncIterator[str]:
    """The gateway on https://127.0.0.1:<port> for as long as the block runs; yields that base URL."""
    fake = FakeKube()
    fake.reviews(TOKENS)
    cert, key = cert_files
    settings = GatewaySettings(host="127.0.0.1", port=0, tls_cert=cert, tls_key=key, rate_limit=0.0)
    server = uvicorn.Server(server_config(create_app(Gateway.build(fake, settings)), settings))
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(10):
            while not server.started:  # noqa: ASYNC110 (uvicorn has no event for it)
                await asyncio.sleep(0.01)
        yield f"https://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


async def test_healthz_is_served_over_https_with_the_given_certificate(
    ca: trustme.CA, cert_files: tuple[str, str]
) -> None:
    async with served(cert_files) as url:
        async with httpx.AsyncClient(base_url=url, verify=trusting(ca)) as client:
            answer = await client.get("/healthz")
        assert answer.status_code == 200 and answer.json() == {"ok": True}
        async with httpx.AsyncClient(base_url=url) as client:  # the system's roots do not know the test CA
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await client.get("/healthz")


async def test_a_console_sign_in_over_https_gets_a_secure_cookie(ca: trustme.CA, cert_files: tuple[str, str]) -> None:
    async with served(cert_files) as url, httpx.AsyncClient(base_url=url, verify=trusting(ca)) as client:
        answer = await client.post("/ui/login", content="token=alice-token&next=/ui/", headers=FORM)
    assert answer.status_code == 303, answer.text
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    assert "secure" in [part.strip().lower() for part in cookie.split(";")]


async def test_over_plain_http_the_cookie_is_not_secure() -> None:
    """The other side of the rule above: a browser would not send a Secure cookie back over HTTP."""
    async with running_gateway() as gw:
        answer = await gw.client.post("/ui/login", content="token=alice-token&next=/ui/", headers=FORM)
    assert answer.status_code == 303, answer.text
    assert "secure" not in [part.strip().lower() for part in answer.headers["set-cookie"].split(";")]
