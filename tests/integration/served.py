"""The gateway over HTTP (uvicorn, in this event loop) against kmock's API emulator, and the
TokenReview and SubjectAccessReview answers kmock gives it: shared by the API's and the
console's integration tests."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import pathlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import kmock
import uvicorn

from asynctask_operator.adapters.kubeclient import KubeClient, RetryPolicy
from asynctask_operator.adapters.kubeconfig import load_configuration
from asynctask_operator.core.clocks import Clocks
from asynctask_operator.gateway.access import Gateway
from asynctask_operator.gateway.app import create_app
from asynctask_operator.gateway.settings import GatewaySettings
from tests.integration.harness import NS, eventually

REVIEWS = (
    kmock.resource("authentication.k8s.io", "v1", "tokenreviews"),
    kmock.resource("authorization.k8s.io", "v1", "subjectaccessreviews"),
)
Decide = Callable[[str, dict[str, Any]], bool]
"""Whether a user may do what a SubjectAccessReview's resourceAttributes say."""


def answer_reviews(k: kmock.KubernetesEmulator, users: dict[str, str], decide: Decide) -> None:
    """TokenReviews from ``users`` (token -> user name), SubjectAccessReviews by ``decide``.

    kmock stores every object POSTed, reviews too (nameless: the second would be a 409); a real API
    server keeps none. The reactions forget them and answer."""

    def forgetting(review: Callable[[kmock.Request], dict[str, Any]]) -> Callable[[kmock.Request], dict[str, Any]]:
        def react(request: kmock.Request) -> dict[str, Any]:
            for key in [key for key in k.objects if key[0] in REVIEWS]:
                del k.objects[key]
            return review(request)

        return react

    def token_review(request: kmock.Request) -> dict[str, Any]:
        user = users.get(str((request.data or {}).get("spec", {}).get("token")))
        status = {"authenticated": True, "user": {"username": user, "groups": []}} if user else {"authenticated": False}
        return {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "status": status}

    def access_review(request: kmock.Request) -> dict[str, Any]:
        spec = (request.data or {}).get("spec", {})
        allowed = decide(str(spec.get("user")), spec.get("resourceAttributes", {}))
        return {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "status": {"allowed": allowed}}

    k["post", "/apis/authentication.k8s.io/v1/tokenreviews"] << forgetting(token_review)
    k["post", "/apis/authorization.k8s.io/v1/subjectaccessreviews"] << forgetting(access_review)


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
