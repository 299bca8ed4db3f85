"""The gateway in process against FakeKube: its app, its follow loops, and a client with a token.

    async with running_gateway() as gw:
        answer = await gw.client.post("/v1/namespaces/media/tasks", json={"type": "echo"}, headers=gw.alice)

``gw.allow`` holds what each user may do, as ``(user, verb, resource, namespace)``: namespace-wide
grants, each as a Role rule without ``resourceNames``; ``gw.rules`` holds more rules
(:class:`~tests.support.rbac.Rule`, with ``resourceNames`` too). The fake's SubjectAccessReviews
answer from both as RBAC does (:mod:`tests.support.rbac`). The clock is the test's: ``gw.now[0] += 31`` expires
every cached review.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import httpx

from asynctask_operator.adapters.kube import ASYNCTASKS, TASKTYPES
from asynctask_operator.core.clocks import Clocks
from asynctask_operator.gateway.access import Gateway
from asynctask_operator.gateway.app import create_app, follow
from asynctask_operator.gateway.settings import GatewaySettings
from asynctask_operator.testing.fakekube import FakeKube
from tests.support.rbac import Rule, allowed, grant

NS = "media"
EPOCH = 1_780_000_000.0  # 2026-05-28: the wall clock of every gateway test
EVERY_ACT = [
    (verb, resource)
    for resource, verbs in (
        ("asynctasks", ("create", "get", "list", "watch", "patch", "delete")),
        ("taskqueues", ("get", "list", "patch")),
        ("scheduledtasks", ("get", "list", "patch")),
    )
    for verb in verbs
]
TASKTYPES_HERE = ("a", "b", "echo", "fulfil", "report", "t", "transcode", "video", "video-transcode", "x")
"""The TaskTypes of a new fake's namespace: a submission of another type is refused (422)."""
TOKENS = {"alice-token": ("alice", ("team-media",)), "bob-token": ("bob", ())}


def tasktype(name: str, payload_schema: dict[str, Any] | None = None) -> dict[str, Any]:
    """A TaskType of one container, with ``payload_schema`` if given."""
    pod = {"restartPolicy": "Never", "containers": [{"name": "main", "image": "busybox:1.36"}]}
    spec: dict[str, Any] = {"jobTemplate": {"spec": {"template": {"spec": pod}}}}
    if payload_schema is not None:
        spec["payloadSchema"] = payload_schema
    return {"metadata": {"name": name, "namespace": NS}, "spec": spec}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclasses.dataclass
class RunningGateway:
    fake: FakeKube
    gateway: Gateway
    client: httpx.AsyncClient
    now: list[float]
    allow: set[tuple[str, str, str, str]]
    rules: list[Rule]
    alice: dict[str, str] = dataclasses.field(default_factory=lambda: bearer("alice-token"))
    bob: dict[str, str] = dataclasses.field(default_factory=lambda: bearer("bob-token"))

    def task(self, name: str, ns: str = NS) -> dict[str, Any] | None:
        return self.fake.get_object(ASYNCTASKS, ns, name)

    async def subscribed(self, count: int = 1) -> None:
        """Wait until ``count`` event streams listen to the task cache."""
        async with asyncio.timeout(5):
            while len(self.gateway.tasks.subscriptions) < count:  # noqa: ASYNC110 (the store has no hook for it)
                await asyncio.sleep(0)

    async def settle(self) -> None:
        """Let the follow loops take in what the fake published."""
        for _ in range(5):
            await asyncio.sleep(0)


@contextlib.asynccontextmanager
async def running_gateway(
    fake: FakeKube | None = None, *, tasktypes: tuple[str, ...] = TASKTYPES_HERE, **settings: Any
) -> AsyncIterator[RunningGateway]:
    """The gateway over ``fake`` (a new one by default, holding the TaskTypes ``tasktypes`` in :data:`NS`)."""
    now = [EPOCH]
    if fake is None:
        fake = FakeKube(now=lambda: dt.datetime.fromtimestamp(now[0], dt.UTC))  # the same clock
        for name in tasktypes:
            await fake.create(TASKTYPES, NS, tasktype(name))
    clocks = Clocks(wall=lambda: now[0], monotonic=lambda: now[0])
    allow = {(user, verb, resource, NS) for user in ("alice",) for verb, resource in EVERY_ACT}
    rules: list[Rule] = []

    def decide(user: str, groups: tuple[str, ...], attributes: dict[str, str]) -> bool:
        wide = [grant(u, verb, resource, ns) for u, verb, resource, ns in allow if u == user]
        return allowed([*wide, *rules], user, attributes)

    fake.reviews(TOKENS, decide)
    options: dict[str, Any] = {"rate_limit": 0.0, "auth_failure_limit": 0.0, "keepalive_seconds": 3600.0} | settings
    gateway = Gateway.build(fake, GatewaySettings(**options), clocks)
    app = create_app(gateway, follow_api=False)
    runner = asyncio.create_task(follow(gateway))
    try:
        async with asyncio.timeout(5):
            for store in gateway.stores:
                await store.synced.wait()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            yield RunningGateway(fake, gateway, client, now, allow, rules)
    finally:
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner


def sse_events(text: str) -> list[dict[str, str]]:
    """The events of an event stream's text, each as its fields (``event``, ``id``, ``data``); comments left out."""
    return [dict(line.split(": ", 1) for line in block.splitlines() if not line.startswith(":"))
            for block in text.split("\n\n") if block.strip() and not block.startswith(":")]  # fmt: skip


async def end(gw: RunningGateway, stream: asyncio.Task[httpx.Response]) -> list[dict[str, str]]:
    """End an event stream opened in ``stream`` (as a dropped subscriber's ends) once ``gw`` has settled; its events."""
    await gw.settle()
    for subscription in list(gw.gateway.tasks.subscriptions):
        subscription.queue.put_nowait(None)
    return sse_events((await asyncio.wait_for(stream, 5)).text)
