"""The aggregated API in process, reached as the API server's front proxy reaches it.

uvicorn gives the application each connection's verified client certificate (the ASGI TLS extension,
``gateway.aggregation.VerifiedPeerProtocol``); in process there is no TLS, so :func:`verified` puts
what a verified certificate of ``common_name`` would put there. What the real handshake refuses is
tested over real TLS (tests/integration/test_aggregated_tls.py).

    async with front_proxy(gw) as proxy:                     # gw: tests.support.gateway.RunningGateway
        answer = await proxy.get(f"{BASE}/namespaces/media/archivedtasks", user="alice", groups=("dev",))
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx
from starlette.types import ASGIApp, Receive, Scope, Send

from asynctask_operator.gateway.aggregation import aggregated_app
from asynctask_operator.gateway.frontproxy import FrontProxy
from tests.support.gateway import RunningGateway

PROXY_NAME = "front-proxy-client"
FRONT_PROXY = FrontProxy(client_ca="(not read in process)", allowed_names=(PROXY_NAME,))
BASE = "/apis/archive.asynctask.dev/v1alpha1"


def verified(app: ASGIApp, common_name: str | None = PROXY_NAME) -> ASGIApp:
    """``app`` as reached over a connection whose client certificate (of ``common_name``) TLS verified;
    ``None``: over one without a certificate."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if common_name is not None:
            tls = {
                "client_common_names": (common_name,),
                "client_cert_name": f"CN={common_name}",
                "client_cert_error": None,
            }
            scope["extensions"] = {**(scope.get("extensions") or {}), "tls": tls}
        await app(scope, receive, send)

    return wrapped


def identity(
    user: str | None, groups: Sequence[str] = (), extra: dict[str, list[str]] | None = None
) -> list[tuple[str, str]]:
    """The headers the API server's front proxy sets for a user it authenticated."""
    headers = [("X-Remote-User", user)] if user else []
    headers += [("X-Remote-Group", g) for g in groups]
    headers += [(f"X-Remote-Extra-{key}", value) for key, values in (extra or {}).items() for value in values]
    return headers


@dataclasses.dataclass
class FrontProxyClient:
    client: httpx.AsyncClient

    async def get(
        self,
        path: str,
        *,
        user: str | None = "alice",
        groups: Sequence[str] = (),
        extra: dict[str, list[str]] | None = None,
        params: dict[str, Any] | None = None,
        accept: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        sent = [*identity(user, groups, extra), ("Accept", accept), *(headers or {}).items()]
        return await self.client.get(path, params=params, headers=sent)

    async def handler(
        self, path: str, query: list[tuple[str, str]], accept: str, user: str = "alice"
    ) -> tuple[int, bytes]:
        """Answer a raw GET as the API server proxying it for ``user`` (for FakeKube.serve_paths)."""
        answer = await self.client.get(path, params=query, headers=[*identity(user), ("Accept", accept)])
        return answer.status_code, answer.content


@contextlib.asynccontextmanager
async def front_proxy(
    gw: RunningGateway, *, common_name: str | None = PROXY_NAME, proxy: FrontProxy = FRONT_PROXY
) -> AsyncIterator[FrontProxyClient]:
    """A client of ``gw``'s aggregated API, as the front proxy (a certificate of ``common_name``)."""
    app = verified(aggregated_app(gw.gateway, proxy), common_name)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://aggregated") as client:
        yield FrontProxyClient(client)
