"""The gateway serving HTTPS itself (``--tls-cert``/``--tls-key``): uvicorn in this test's loop, on
127.0.0.1, with a certificate from a test CA (trustme), against FakeKube; clients trust that CA only.
A renewed certificate is served without a restart (gateway/tlsreload.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import pathlib
import ssl
from collections.abc import AsyncIterator, Sequence

import httpx
import pytest
import trustme
import uvicorn

from asynctask_operator.gateway.access import Gateway
from asynctask_operator.gateway.aggregation import server_config as aggregation_config
from asynctask_operator.gateway.app import create_app
from asynctask_operator.gateway.cli import server_config
from asynctask_operator.gateway.console.sessions import COOKIE
from asynctask_operator.gateway.settings import GatewaySettings
from asynctask_operator.gateway.tlsreload import CertificateReloader
from asynctask_operator.testing.fakekube import FakeKube
from tests.support.gateway import TOKENS, running_gateway

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def trusting(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


def write_pair(cert: trustme.LeafCert, files: tuple[str, str]) -> None:
    cert_file, key_file = files
    pathlib.Path(cert_file).write_bytes(b"".join(pem.bytes() for pem in cert.cert_chain_pems))
    cert.private_key_pem.write_to_path(key_file)


def write_files(files: tuple[str, str], contents: Sequence[bytes | None]) -> None:
    """Each file's new bytes (None: the file removed)."""
    for name, data in zip(files, contents, strict=True):
        if data is None:
            pathlib.Path(name).unlink()
        else:
            pathlib.Path(name).write_bytes(data)


@pytest.fixture()
def cert_files(ca: trustme.CA, tmp_path: pathlib.Path) -> tuple[str, str]:
    files = str(tmp_path / "tls.crt"), str(tmp_path / "tls.key")
    write_pair(ca.issue_cert("127.0.0.1"), files)
    return files


@contextlib.asynccontextmanager
async def served(cert_files: tuple[str, str], reloader: CertificateReloader | None = None) -> AsyncIterator[str]:
    """The gateway on https://127.0.0.1:<port> for as long as the block runs; yields that base URL."""
    fake = FakeKube()
    fake.reviews(TOKENS)
    cert, key = cert_files
    settings = GatewaySettings(host="127.0.0.1", port=0, tls_cert=cert, tls_key=key, rate_limit=0.0)
    server = uvicorn.Server(server_config(create_app(Gateway.build(fake, settings)), settings, reloader))
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


async def served_certificate(url: str, ca: trustme.CA) -> bytes:
    """The certificate a new connection to ``url`` is served (DER)."""
    host, port = url.removeprefix("https://").split(":")
    _, writer = await asyncio.open_connection(host, int(port), ssl=trusting(ca))
    try:
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    finally:
        writer.close()
        await writer.wait_closed()
    assert isinstance(der, bytes)
    return der


def der_of(cert: trustme.LeafCert) -> bytes:
    return ssl.PEM_cert_to_DER_cert(cert.cert_chain_pems[0].bytes().decode())


async def test_a_renewed_certificate_is_served_without_a_restart(
    ca: trustme.CA, cert_files: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    """cert-manager renews into the Secret, the kubelet updates the files: new connections get the new one."""
    reloader = CertificateReloader()
    async with served(cert_files, reloader) as url, httpx.AsyncClient(base_url=url, verify=trusting(ca)) as open_:
        first = await served_certificate(url, ca)
        assert reloader.check() == 0  # nothing changed
        assert (await open_.get("/healthz")).status_code == 200  # a connection kept alive across the renewal
        renewed = ca.issue_cert("127.0.0.1")
        write_pair(renewed, cert_files)
        with caplog.at_level(logging.INFO, logger="asynctask_operator.gateway.tlsreload"):
            assert reloader.check() == 1
        assert await served_certificate(url, ca) == der_of(renewed) != first
        assert (await open_.get("/healthz")).status_code == 200
        assert reloader.check() == 0  # loaded once
    assert [r.getMessage() for r in caplog.records] == [
        f"--tls-cert: loaded the changed certificate from {cert_files[0]}; new connections get it"
    ]


async def test_a_certificate_with_the_key_of_another_is_refused_once_and_the_previous_served_on(
    ca: trustme.CA, cert_files: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    reloader = CertificateReloader()
    async with served(cert_files, reloader) as url:
        first = await served_certificate(url, ca)
        one, other = ca.issue_cert("127.0.0.1"), ca.issue_cert("127.0.0.1")
        write_files(cert_files, [one.cert_chain_pems[0].bytes(), other.private_key_pem.bytes()])  # another's key
        with caplog.at_level(logging.WARNING, logger="asynctask_operator.gateway.tlsreload"):
            assert reloader.check() == 0
            assert reloader.check() == 0  # the same files: not tried, nor said, again
        assert await served_certificate(url, ca) == first  # the serving context kept its certificate and key
        warnings = [r.getMessage() for r in caplog.records]
        assert len(warnings) == 1 and warnings[0].startswith("--tls-cert: the changed certificate was not loaded")
        write_pair(one, cert_files)  # the pair completed: loaded
        assert reloader.check() == 1
        assert await served_certificate(url, ca) == der_of(one)


async def test_files_gone_for_a_moment_change_nothing(ca: trustme.CA, cert_files: tuple[str, str]) -> None:
    reloader = CertificateReloader()
    async with served(cert_files, reloader) as url:
        first = await served_certificate(url, ca)
        saved = [pathlib.Path(f).read_bytes() for f in cert_files]  # noqa: ASYNC240 (a test's few bytes)
        write_files(cert_files, [None, None])
        assert reloader.check() == 0
        assert await served_certificate(url, ca) == first
        write_files(cert_files, saved)
        assert reloader.check() == 0  # the same bytes as served


@pytest.mark.looptime
async def test_the_reloader_checks_every_30_seconds(ca: trustme.CA, cert_files: tuple[str, str]) -> None:
    reloader = CertificateReloader()
    checks: list[float] = []
    reloader.check = lambda: checks.append(asyncio.get_running_loop().time()) or 0  # type: ignore[method-assign]
    task = asyncio.create_task(reloader.run())
    start = asyncio.get_running_loop().time()
    await asyncio.sleep(95)
    task.cancel()
    assert [round(t - start) for t in checks] == [30, 60, 90]


def test_the_aggregation_port_is_reloaded_too_and_still_requires_the_front_proxys_certificate(
    ca: trustme.CA, cert_files: tuple[str, str], tmp_path: pathlib.Path
) -> None:
    front_proxy_ca = tmp_path / "front-proxy-ca.crt"
    front_proxy_ca.write_bytes(trustme.CA().cert_pem.bytes())
    cert, key = cert_files
    settings = GatewaySettings(aggregation_port=8443, aggregation_tls_cert=cert, aggregation_tls_key=key)
    reloader = CertificateReloader()
    config = aggregation_config(
        create_app(Gateway.build(FakeKube(), settings)), settings, str(front_proxy_ca), reloader
    )
    config.load()
    assert [(s.flag, s.certfile, s.context) for s in reloader.served] == [("--aggregation-tls-cert", cert, config.ssl)]
    assert config.ssl is not None and config.ssl.verify_mode == ssl.CERT_REQUIRED
    write_pair(ca.issue_cert("127.0.0.1"), cert_files)
    assert reloader.check() == 1
    assert config.ssl.verify_mode == ssl.CERT_REQUIRED and len(config.ssl.get_ca_certs()) == 1
