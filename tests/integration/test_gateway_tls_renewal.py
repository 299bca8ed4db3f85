"""The gateway as ``asynctask-gateway --tls-cert … --tls-key …`` runs it (``gateway.cli.serve``, in this
test's loop, against the fake API server): a certificate renewed on disk is served to new connections
without a restart, while an open connection goes on (gateway/tlsreload.py; the check comes every
30 s in the product, every 0.1 s here)."""

from __future__ import annotations

import asyncio
import gc
import pathlib
import ssl

import httpx
import pytest
import trustme

from asynctask_operator.adapters.listening import listen
from asynctask_operator.gateway import tlsreload
from asynctask_operator.gateway.cli import serve
from asynctask_operator.gateway.settings import GatewaySettings
from asynctask_operator.testing.cluster import Cluster

NS = "default"


def write_pair(cert: trustme.LeafCert, folder: pathlib.Path) -> tuple[str, str]:
    cert_file, key_file = folder / "tls.crt", folder / "tls.key"
    cert_file.write_bytes(b"".join(pem.bytes() for pem in cert.cert_chain_pems))
    cert.private_key_pem.write_to_path(str(key_file))
    return str(cert_file), str(key_file)


async def served_certificate(port: int, trust: ssl.SSLContext) -> bytes:
    _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=trust)
    der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    writer.close()
    await writer.wait_closed()
    assert isinstance(der, bytes)
    return der


async def test_a_renewed_certificate_reaches_new_connections_and_the_open_one_goes_on(
    cluster: Cluster, kubeconfig: pathlib.Path, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tlsreload, "CHECK_SECONDS", 0.1)
    ca = trustme.CA()
    trust = ssl.create_default_context()
    ca.configure_trust(trust)
    cert, key = write_pair(ca.issue_cert("127.0.0.1"), tmp_path)
    sock = listen("127.0.0.1", 0)
    port = sock.getsockname()[1]
    settings = GatewaySettings(
        host="127.0.0.1", port=port, kubeconfig=str(kubeconfig), namespaces=(NS,), tls_cert=cert, tls_key=key
    )
    server = asyncio.create_task(serve(settings, sock))
    try:
        async with httpx.AsyncClient(base_url=f"https://127.0.0.1:{port}", verify=trust) as client:
            async with asyncio.timeout(20):
                while True:
                    try:
                        if (await client.get("/healthz")).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    await asyncio.sleep(0.05)
            first = await served_certificate(port, trust)
            renewed = ca.issue_cert("127.0.0.1")
            write_pair(renewed, tmp_path)
            expected = ssl.PEM_cert_to_DER_cert(renewed.cert_chain_pems[0].bytes().decode())
            for _ in range(200):  # ~10 s: a new TLS connection each time, there is no event to wait on
                now = await served_certificate(port, trust)
                if now != first:
                    break
                await asyncio.sleep(0.05)
            assert now == expected
            assert (await client.get("/healthz")).status_code == 200  # the connection opened before, kept alive
    finally:
        server.cancel()
        with pytest.raises(asyncio.CancelledError):
            await server
        gc.unfreeze()  # serve() froze the collector once its caches loaded: this process runs other tests
