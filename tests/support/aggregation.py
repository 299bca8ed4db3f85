"""The gateway's aggregation port over real mutual TLS, in the test's event loop, and a stand-in for the
kube-apiserver in front of it.

Three test CAs (trustme): the front proxy's (it signs the API server's client certificate,
``front-proxy-client``, and one of another name), another CA with a ``front-proxy-client`` certificate
of its own (a forger's), and the one that signs the aggregation port's serving certificate (the
APIService's ``caBundle``). The gateway runs over FakeKube, which holds the API server's ConfigMap
``kube-system/extension-apiserver-authentication`` naming the front proxy's CA and allowed name, and
answers its reviews; the aggregation port is served exactly as ``asynctask-gateway --aggregation-port``
serves it (:func:`read_front_proxy`, :func:`client_ca_file`, the port's ``server_config``).

:class:`StandInApiServer` plays the API server's part for the kubectl plugin: it authenticates a bearer
token (a table of them), drops it, and proxies ``/apis/archive.asynctask.dev/…`` to the aggregation port
with the front proxy's certificate and ``X-Remote-User``/``X-Remote-Group``, as the aggregator does;
a live AsyncTask is NotFound (the task is gone), anything else 404. The real API server also checks
``get``/``list archivedtasks`` first (RBAC; the chart gives it to view, edit and admin): the stand-in lets
every known token through, so the gateway's own check is the one these tests see.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import pathlib
import socket
import ssl
from collections.abc import AsyncIterator
from typing import Any

import httpx
import trustme
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from asynctask_operator.adapters.kube import CONFIGMAPS
from asynctask_operator.core.clocks import Clocks
from asynctask_operator.gateway.access import Gateway
from asynctask_operator.gateway.aggregation import aggregated_app, client_ca_file, server_config
from asynctask_operator.gateway.frontproxy import read_front_proxy
from asynctask_operator.gateway.settings import GatewaySettings
from asynctask_operator.testing.fakekube import FakeKube

PROXY_NAME = "front-proxy-client"
NOT_FOUND = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404,
             "message": "the server could not find the requested resource", "details": {}}  # fmt: skip


@dataclasses.dataclass
class Pem:
    cert: str
    key: str

    @classmethod
    def of(cls, leaf: trustme.LeafCert, folder: pathlib.Path, name: str) -> Pem:
        cert, key = folder / f"{name}.crt", folder / f"{name}.key"
        cert.write_bytes(b"".join(pem.bytes() for pem in leaf.cert_chain_pems))
        leaf.private_key_pem.write_to_path(str(key))
        return cls(str(cert), str(key))


@dataclasses.dataclass
class Certificates:
    front_proxy_ca: trustme.CA
    serving_ca: trustme.CA
    proxy: Pem
    """The API server's front-proxy client certificate (CN front-proxy-client, the front proxy's CA)."""
    other_name: Pem
    """Signed by the front proxy's CA, for another name (not in requestheader-allowed-names)."""
    forged: Pem
    """CN front-proxy-client, signed by another CA."""
    serving: Pem

    @classmethod
    def made(cls, folder: pathlib.Path) -> Certificates:
        front, other, serving = trustme.CA(), trustme.CA(), trustme.CA()
        return cls(
            front_proxy_ca=front,
            serving_ca=serving,
            proxy=Pem.of(front.issue_cert(PROXY_NAME, common_name=PROXY_NAME), folder, "proxy"),
            other_name=Pem.of(front.issue_cert("someone", common_name="someone"), folder, "someone"),
            forged=Pem.of(other.issue_cert(PROXY_NAME, common_name=PROXY_NAME), folder, "forged"),
            serving=Pem.of(serving.issue_cert("127.0.0.1", "localhost"), folder, "serving"),
        )

    def client(self, pem: Pem | None) -> ssl.SSLContext:
        """A client context trusting the serving CA, presenting ``pem`` (None: no certificate)."""
        context = ssl.create_default_context()
        self.serving_ca.configure_trust(context)
        if pem is not None:
            context.load_cert_chain(pem.cert, pem.key)
        return context


def configmap(certs: Certificates) -> dict[str, Any]:
    data = {
        "requestheader-client-ca-file": certs.front_proxy_ca.cert_pem.bytes().decode(),
        "requestheader-allowed-names": f'["{PROXY_NAME}"]',
        "requestheader-username-headers": '["X-Remote-User"]',
        "requestheader-group-headers": '["X-Remote-Group"]',
        "requestheader-extra-headers-prefix": '["X-Remote-Extra-"]',
    }
    return {"metadata": {"name": "extension-apiserver-authentication"}, "data": data}


async def started(server: uvicorn.Server, sock: socket.socket) -> asyncio.Task[None]:
    task = asyncio.create_task(server.serve(sockets=[sock]))
    async with asyncio.timeout(10):
        while not server.started:
            if task.done():
                await task
            await asyncio.sleep(0.01)
    return task


@contextlib.asynccontextmanager
async def serving(server: uvicorn.Server, sock: socket.socket) -> AsyncIterator[None]:
    task = await started(server, sock)
    try:
        yield
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


@dataclasses.dataclass
class AggregationPort:
    url: str
    fake: FakeKube
    gateway: Gateway
    seen: list[str]
    """The path of every request that reached the application (past TLS)."""


@contextlib.asynccontextmanager
async def aggregation_port(
    certs: Certificates, fake: FakeKube, archive_dsn: str, clocks: Clocks | None = None
) -> AsyncIterator[AggregationPort]:
    """The gateway over ``fake`` reading ``archive_dsn``, its aggregation port on https://127.0.0.1:<port>."""
    await fake.create(CONFIGMAPS, "kube-system", configmap(certs))
    settings = GatewaySettings(
        host="127.0.0.1", rate_limit=0.0, archive_dsn=archive_dsn, aggregation_port=1,
        aggregation_tls_cert=certs.serving.cert, aggregation_tls_key=certs.serving.key,
    )  # fmt: skip
    gateway = Gateway.build(fake, settings, clocks)
    proxy = await read_front_proxy(fake)
    app = aggregated_app(gateway, proxy)
    seen: list[str] = []

    async def spy(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            seen.append(scope["path"])
        await app(scope, receive, send)

    sock = socket.create_server(("127.0.0.1", 0))
    with client_ca_file(proxy) as ca:
        server = uvicorn.Server(server_config(spy, settings, ca))
        async with serving(server, sock):
            yield AggregationPort(f"https://127.0.0.1:{sock.getsockname()[1]}", fake, gateway, seen)


class StandInApiServer:
    """The kube-apiserver's part, for the plugin: bearer tokens in, the front proxy's identity out."""

    def __init__(
        self, port: AggregationPort, certs: Certificates, tokens: dict[str, tuple[str, tuple[str, ...]]]
    ) -> None:
        self.port = port
        self.tokens = tokens
        self.upstream = httpx.AsyncClient(base_url=port.url, verify=certs.client(certs.proxy), timeout=10)
        self.app = Starlette(routes=[Route("/{path:path}", self.handle)])

    async def handle(self, request: Request) -> Response:
        scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
        user = self.tokens.get(token) if scheme.lower() == "bearer" else None
        if user is None:
            return JSONResponse(NOT_FOUND | {"reason": "Unauthorized", "code": 401, "message": "Unauthorized"}, 401)
        path = request.url.path
        if not path.startswith("/apis/archive.asynctask.dev"):
            return JSONResponse(NOT_FOUND, 404)  # no live AsyncTask here: every task is gone
        headers = [("X-Remote-User", user[0]), *(("X-Remote-Group", g) for g in user[1])]
        headers.append(("Accept", request.headers.get("accept", "application/json")))
        answer = await self.upstream.get(path, params=list(request.query_params.multi_items()), headers=headers)
        kept = {
            k: v for k, v in answer.headers.items() if k.lower() in ("content-type", "x-log-source", "x-log-truncated")
        }
        return Response(answer.content, answer.status_code, headers=kept)


@contextlib.asynccontextmanager
async def stand_in_api_server(
    port: AggregationPort, certs: Certificates, tokens: dict[str, tuple[str, tuple[str, ...]]]
) -> AsyncIterator[str]:
    """The stand-in on http://127.0.0.1:<port> (its URL yielded) for as long as the block runs."""
    stand_in = StandInApiServer(port, certs, tokens)
    sock = socket.create_server(("127.0.0.1", 0))
    config = uvicorn.Config(stand_in.app, log_config=None, access_log=False, lifespan="off")
    try:
        async with serving(uvicorn.Server(config), sock):
            yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        await stand_in.upstream.aclose()
