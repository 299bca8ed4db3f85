"""The aggregation port: the aggregated API (:mod:`.aggregated`) over mutual TLS with the API server's front proxy.

>>> app = aggregated_app(gateway, await read_front_proxy(api))                       # doctest: +SKIP
>>> with client_ca_file(proxy) as ca: uvicorn.Server(server_config(app, settings, ca))  # doctest: +SKIP

A port of its own, apart from the main one: only here are the identity headers believed, and only
from a client whose certificate TLS verified against the front proxy's CA (``CERT_REQUIRED``: a
connection without one, or with another CA's, fails in the handshake, before any HTTP). uvicorn's
h11 protocol is given each connection's verified certificate as the ASGI TLS extension
(:class:`VerifiedPeerProtocol`), which :class:`~.frontproxy.FrontProxyOnly` reads. The app shares
the gateway (its caches, its reviews, the archive's reader) with the main one.
"""

from __future__ import annotations

import contextlib
import pathlib
import ssl
import tempfile
from collections.abc import Iterator
from typing import Any

import uvicorn
from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from asynctask_operator import __version__
from asynctask_operator.gateway import aggregated
from asynctask_operator.gateway.access import Gateway
from asynctask_operator.gateway.frontproxy import FrontProxy, FrontProxyOnly
from asynctask_operator.gateway.requestlog import RequestLog
from asynctask_operator.gateway.settings import GatewaySettings
from asynctask_operator.gateway.tlsreload import CertificateReloader


def aggregated_app(gateway: Gateway, proxy: FrontProxy) -> ASGIApp:
    """The aggregated API's application: its routes behind :class:`FrontProxyOnly`, each request logged."""
    app = FastAPI(title="archive.asynctask.dev", version=__version__, openapi_url=None, docs_url=None, redoc_url=None)
    app.state.gateway = gateway
    aggregated.install(app)
    settings = gateway.settings
    return RequestLog(FrontProxyOnly(app, proxy), probes=settings.log_probes)


def peer_extension(ssl_object: Any) -> dict[str, Any] | None:
    """The ASGI TLS extension of a connection whose client certificate TLS verified; None without one.
    ``client_common_names`` (its subject's CNs) is what the front proxy's allowed names are matched against."""
    if ssl_object is None:
        return None
    cert = ssl_object.getpeercert()
    der = ssl_object.getpeercert(binary_form=True)
    if not cert or not der:
        return None
    subject = [(str(k), str(v)) for rdn in cert.get("subject", ()) for k, v in rdn]
    return {
        "client_cert_chain": [ssl.DER_cert_to_PEM_cert(der)],
        "client_cert_name": ",".join(f"{k}={v}" for k, v in reversed(subject)),
        "client_cert_error": None,
        "client_common_names": tuple(v for k, v in subject if k == "commonName"),
        "tls_version": ssl_object.version(),
    }


class VerifiedPeerProtocol(H11Protocol):
    """uvicorn's h11 protocol, giving the application each connection's verified client certificate
    (``scope["extensions"]["tls"]``). asyncio completes the TLS handshake before ``connection_made``."""

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        tls = peer_extension(transport.get_extra_info("ssl_object"))
        inner = self.app

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            if tls is not None:
                scope["extensions"] = {**(scope.get("extensions") or {}), "tls": tls}
            await inner(scope, receive, send)

        self.app = app


@contextlib.contextmanager
def client_ca_file(proxy: FrontProxy) -> Iterator[str]:
    """The front proxy's CA in a file only this process reads, for as long as the server loads it (uvicorn
    takes a path), removed after."""
    with tempfile.TemporaryDirectory(prefix="asynctask-gateway-") as folder:
        path = pathlib.Path(folder) / "requestheader-client-ca.crt"  # the folder is the process's alone (0700)
        path.write_text(proxy.client_ca)
        yield str(path)


def server_config(
    app: ASGIApp, settings: GatewaySettings, client_ca: str, reloader: CertificateReloader | None = None
) -> uvicorn.Config:
    """uvicorn on the aggregation port: TLS with the gateway's aggregation certificate (loaded again
    when its files change, with ``reloader``: :mod:`.tlsreload`), and a client certificate signed by
    ``client_ca`` required of every connection."""
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.aggregation_port,
        log_config=None,
        access_log=False,
        proxy_headers=False,
        lifespan="off",  # the main app's lifespan fills the caches both read
        http=VerifiedPeerProtocol,
        ssl_certfile=settings.aggregation_tls_cert,
        ssl_keyfile=settings.aggregation_tls_key,
        ssl_cert_reqs=ssl.CERT_REQUIRED,
        ssl_ca_certs=client_ca,
        ssl_context_factory=reloader.factory("--aggregation-tls-cert") if reloader else None,
    )
