"""The gateway over HTTP (uvicorn, in this event loop) against the API emulator, and the
TokenReview and SubjectAccessReview answers the emulator gives it: shared by the API's and the
console's integration tests."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import pathlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import uvicorn

from asynctask_operator.adapters.kubeclient import KubeClient, RetryPolicy
from asynctask_operator.adapters.kubeconfig import load_configuration
from asynctask_operator.core.clocks import Clocks
from asynctask_operator.gateway.access import Gateway
from asynctask_operator.gateway.app import create_app
from asynctask_operator.gateway.settings import GatewaySettings
from asynctask_operator.testing.cluster import NS
from asynctask_operator.testing.emulator import ApiServerEmulator
from asynctask_operator.testing.operators import eventually

Decide = Callable[[str, dict[str, Any]], bool]
"""Whether a user may do what a SubjectAccessReview's resourceAttributes say."""


def answer_reviews(k: ApiServerEmulator, users: dict[str, str], decide: Decide) -> None:
    """TokenReviews from ``users`` (token -> user name), SubjectAccessReviews by ``decide``: the API
    server's model answers them (and, as a real one, keeps none)."""
    k.model.reviews({token: (user, ()) for token, user in users.items()}, lambda user, _, a: decide(user, a))


@dataclasses.dataclass
class Served:
    client: httpx.AsyncClient
    gateway: Gateway

    @property
    def url(self) -> str:
        return str(self.client.base_url).rstrip("/")


@contextlib.asynccontextmanager
async def serve(kubeconfig: pathlib.Path, **settings: Any) -> AsyncIterator[Served]:
    api = KubeClient(load_configuration(str(kubeconfig)), retry=RetryPolicy(attempts=1))
    options: dict[str, Any] = {
        "rate_limit": 0.0,
        "auth_failure_limit": 0.0,
        "namespaces": (NS,),
        "keepalive_seconds": 0.2,
    } | settings
    gateway = Gateway.build(api, GatewaySettings(**options), Clocks())
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(gateway), host="127.0.0.1", port=0, log_config=None, lifespan="on", timeout_graceful_shutdown=2
        )
    )
    task = asyncio.create_task(server.serve())
    try:
        await eventually(lambda: server.started, timeout=10, what="uvicorn started")
        port = server.servers[0].sockets[0].getsockname()[1]
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            await eventually(lambda: ready(client), timeout=10, what="the gateway's cache synced")
            yield Served(client, gateway)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        api.close()


async def ready(client: httpx.AsyncClient) -> bool:
    return (await client.get("/readyz")).status_code == 200
