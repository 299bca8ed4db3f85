"""Callbacks through the real operator process, to a real HTTP receiver run by the test (docs/design.md §3.4)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import json
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp.web
import kmock
import pytest
from standardwebhooks import Webhook

from asynctask_operator.testing.cluster import NS, Cluster, operator_requests, operator_writes
from asynctask_operator.testing.operators import Operator, eventually

SECRETS = kmock.resource("", "v1", "secrets")
EVENTS = kmock.resource("", "v1", "events")
KEY = secrets.token_bytes(24)
WHSEC = "whsec_" + base64.b64encode(KEY).decode()
FAST = ("--callback-allowed-host", "127.0.0.1", "--callback-backoff-seconds", "1")


@dataclasses.dataclass
class Delivery:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def event(self) -> dict[str, Any]:
        return dict(json.loads(self.body))


class Receiver:
    """A webhook receiver: each path answers from its own script of responses (the last one repeats)."""

    def __init__(self) -> None:
        self.deliveries: list[Delivery] = []
        self.scripts: dict[str, list[int | float]] = {}  # an int is a status code; a float, seconds to hang
        self.port = 0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def script(self, path: str, *answers: int | float) -> str:
        self.scripts[path] = list(answers)
        return self.url(path)

    def to(self, path: str) -> list[Delivery]:
        return [d for d in self.deliveries if d.path == path]

    async def handle(self, request: aiohttp.web.Request) -> aiohttp.web.Response:
        body = await request.read()
        self.deliveries.append(Delivery(request.path, {k.lower(): v for k, v in request.headers.items()}, body))
        script = self.scripts.get(request.path) or [200]
        answer = script.pop(0) if len(script) > 1 else script[0]
        if isinstance(answer, float):
            await asyncio.sleep(answer)
            answer = 200
        headers = {"Retry-After": "1"} if answer == 429 else {}
        return aiohttp.web.Response(status=answer, text="receiver says hi", headers=headers)


@contextlib.asynccontextmanager
async def serving(handle: Callable[[aiohttp.web.Request], Awaitable[aiohttp.web.Response]]) -> AsyncIterator[int]:
    """An HTTP server on 127.0.0.1 answering every POST with ``handle``; yields its port."""
    app = aiohttp.web.Application()
    app.router.add_route("POST", "/{tail:.*}", handle)
    runner = aiohttp.web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = aiohttp.web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield int(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
    finally:
        await runner.cleanup()


@pytest.fixture()
async def receiver() -> AsyncIterator[Receiver]:
    rx = Receiver()
    async with serving(rx.handle) as port:
        rx.port = port
        yield rx


async def create_secret(k: kmock.KubernetesEmulator, name: str, data: dict[str, str]) -> None:
    body = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": NS, "resourceVersion": "1"},
        "data": {key: base64.b64encode(value.encode()).decode() for key, value in data.items()},
    }
    resp = await k.post(f"/api/v1/namespaces/{NS}/secrets", json=body)
    assert resp.status == 200, await resp.text()


def event_reasons(k: kmock.KubernetesEmulator, name: str) -> list[str]:
    """Reasons of the Events posted about task ``name`` (the status write comes first, then the Event)."""
    events = [dict(k.objects[key]) for key in list(k.objects) if key[0] == EVENTS]
    return [e["reason"] for e in events if e["involvedObject"]["name"] == name]


def callback_of(cluster: Cluster, name: str) -> dict[str, Any]:
    return dict(cluster.status(name).get("callback") or {})


def state_is(cluster: Cluster, name: str, *states: str) -> Callable[[], bool]:
    return lambda: callback_of(cluster, name).get("state") in states


async def run_to_success(cluster: Cluster, name: str, spec: dict[str, Any]) -> None:
    await cluster.create_task(name, {"type": "echo", **spec})
    await eventually(lambda: cluster.has_job(f"{name}-1"), what=f"Job {name}-1")
    await cluster.job_succeeds(f"{name}-1")
    await eventually(lambda: cluster.phase(name) == "Succeeded", what=f"{name} Succeeded")


@pytest.mark.operator_args(*FAST)
async def test_fails_twice_then_delivers_three_times_with_one_webhook_id_and_valid_signatures(
    cluster: Cluster, operator: Operator, receiver: Receiver, kmock: kmock.KubernetesEmulator
) -> None:
    await create_secret(kmock, "hook-signing", {"secret": WHSEC})
    await create_secret(kmock, "hook-headers", {"X-Api-Key": "k-123"})
    await cluster.create_tasktype("echo")
    url = receiver.script("/hook/flaky", 503, 500, 200)
    callback = {
        "url": url,
        "secretRef": {"name": "hook-signing", "key": "secret"},
        "headersSecretRef": {"name": "hook-headers"},
    }
    await run_to_success(cluster, "flaky", {"callback": callback})
    await eventually(state_is(cluster, "flaky", "Delivered", "Failed"), 30, "the callback delivered")

    record = callback_of(cluster, "flaky")
    assert record["state"] == "Delivered", record
    assert record["attempts"] == 3 and record["lastStatusCode"] == 200
    got = receiver.to("/hook/flaky")
    assert len(got) == 3
    assert {d.headers["webhook-id"] for d in got} == {record["id"]}
    for delivery in got:  # each verifies in one call, with its own timestamp
        assert Webhook(WHSEC).verify(delivery.body, delivery.headers) == delivery.event
        assert delivery.headers["content-type"].startswith("application/cloudevents+json")
        assert delivery.headers["x-api-key"] == "k-123"
    event = got[-1].event
    assert event["specversion"] == "1.0" and event["type"] == "dev.asynctask.task.succeeded"
    assert event["source"] == f"/namespaces/{NS}/asynctasks/flaky" and event["id"] == record["id"]
    data = event["data"]
    assert (data["name"], data["namespace"], data["type"], data["phase"], data["attempt"]) == (
        "flaky",
        NS,
        "echo",
        "Succeeded",
        1,
    )
    assert data["uid"] == cluster.task("flaky")["metadata"]["uid"] and data["completionTime"]
    conditions = {c["type"]: c["status"] for c in cluster.status("flaky")["conditions"]}
    assert conditions["CallbackDelivered"] == "True"


@pytest.mark.operator_args(*FAST)
async def test_a_400_stops_at_once_and_posts_a_warning_event(
    cluster: Cluster, operator: Operator, receiver: Receiver, kmock: kmock.KubernetesEmulator
) -> None:
    await cluster.create_tasktype("echo")
    url = receiver.script("/hook/bad", 400)
    await run_to_success(cluster, "rejected", {"callback": {"url": url}})
    await eventually(state_is(cluster, "rejected", "Failed", "Delivered"), 20, "the callback given up")

    record = callback_of(cluster, "rejected")
    assert record["state"] == "Failed" and record["attempts"] == 1 and record["lastStatusCode"] == 400
    assert "receiver says hi" in record["lastError"]
    await eventually(lambda: "CallbackFailed" in event_reasons(kmock, "rejected"), what="a CallbackFailed Event")
    await asyncio.sleep(2.5)  # longer than the first retry delay would be
    assert len(receiver.to("/hook/bad")) == 1


@pytest.mark.operator_args(*FAST)
async def test_a_hanging_receiver_is_cut_at_its_timeout_and_holds_up_no_other_task(
    cluster: Cluster, operator: Operator, receiver: Receiver
) -> None:
    await cluster.create_tasktype("echo")
    url = receiver.script("/hook/hang", 30.0)
    callback = {"url": url, "timeoutSeconds": 1, "maxAttempts": 1}
    await run_to_success(cluster, "hung", {"callback": callback})
    await eventually(lambda: len(receiver.to("/hook/hang")) == 1, what="the hanging delivery under way")

    # While that delivery hangs, another task runs through its whole life.
    await run_to_success(cluster, "bystander", {})
    assert callback_of(cluster, "hung").get("state") == "Pending"  # still waiting for the receiver

    await eventually(state_is(cluster, "hung", "Failed", "Delivered"), 10, "the hanging delivery cut")
    record = callback_of(cluster, "hung")
    assert record["state"] == "Failed"
    assert "timed out after 1s" in record["lastError"] and "gave up after 1" in record["lastError"]


@pytest.mark.process
@pytest.mark.operator_args(*FAST)
async def test_a_restart_mid_retry_resumes_and_never_resends_a_delivered_event(
    cluster: Cluster, operator: Operator, receiver: Receiver
) -> None:
    await cluster.create_tasktype("echo")
    done_url = receiver.script("/hook/done", 200)
    await run_to_success(cluster, "early", {"callback": {"url": done_url}})
    await eventually(state_is(cluster, "early", "Delivered"), 15, "early's callback delivered")

    retry_url = receiver.script("/hook/retry", 503)
    # A longer first delay than FAST's, so that the kill lands mid-retry.
    await run_to_success(cluster, "resumed", {"callback": {"url": retry_url}})
    await eventually(state_is(cluster, "resumed", "Delivering"), 15, "resumed's first delivery failed")
    operator.kill()
    await operator.proc.wait()  # type: ignore[union-attr]
    receiver.script("/hook/retry", 200)
    await operator.start()
    await eventually(state_is(cluster, "resumed", "Delivered"), 20, "resumed's callback delivered after the restart")

    record = callback_of(cluster, "resumed")
    assert record["attempts"] == 2
    assert [d.headers["webhook-id"] for d in receiver.to("/hook/retry")] == [record["id"]] * 2
    assert len(receiver.to("/hook/done")) == 1  # delivered before the crash: not sent again


async def test_loopback_is_refused_without_the_allow_list(
    cluster: Cluster, operator: Operator, receiver: Receiver, kmock: kmock.KubernetesEmulator
) -> None:
    await cluster.create_tasktype("echo")
    url = receiver.script("/hook/ssrf", 200)
    await run_to_success(cluster, "ssrf", {"callback": {"url": url}})
    await eventually(state_is(cluster, "ssrf", "Refused", "Delivered", "Failed"), 15, "the callback refused")

    record = callback_of(cluster, "ssrf")
    assert record["state"] == "Refused", record
    assert "127.0.0.1" in record["lastError"] and "loopback" in record["lastError"]
    assert receiver.to("/hook/ssrf") == []
    await eventually(lambda: "CallbackRefused" in event_reasons(kmock, "ssrf"), what="a CallbackRefused Event")


@pytest.mark.operator_args(*FAST)
async def test_selected_running_and_retrying_events_each_get_their_own_id(
    cluster: Cluster, operator: Operator, receiver: Receiver
) -> None:
    await cluster.create_tasktype("echo")
    url = receiver.script("/hook/all", 200)
    events = ["Running", "Retrying", "Succeeded"]
    retry = {"maxRetries": 1, "backoff": "Fixed", "baseSeconds": 1, "jitter": False}
    await cluster.create_task("steps", {"type": "echo", "callback": {"url": url, "events": events}, "retry": retry})
    await eventually(lambda: cluster.has_job("steps-1"), what="Job steps-1")
    await cluster.job_fails("steps-1")
    await eventually(lambda: cluster.has_job("steps-2"), 15, "Job steps-2")
    await cluster.job_succeeds("steps-2")
    await eventually(lambda: cluster.phase("steps") == "Succeeded", what="steps Succeeded")
    await eventually(state_is(cluster, "steps", "Delivered"), 15, "the last callback delivered")

    seen = [(d.event["type"].rsplit(".", 1)[1], d.event["data"]["attempt"]) for d in receiver.to("/hook/all")]
    # A Running event the task moved past before its delivery is replaced by the newer one;
    # the terminal one always arrives, and ids never repeat.
    assert seen[-1] == ("succeeded", 2)
    assert len({d.headers["webhook-id"] for d in receiver.to("/hook/all")}) == len(seen)
    assert set(seen) <= {("running", 1), ("retrying", 1), ("running", 2), ("succeeded", 2)}


@pytest.mark.operator_args(*FAST)
async def test_a_callback_delivered_at_once_costs_one_status_write_and_one_secret_read(
    cluster: Cluster, operator: Operator, receiver: Receiver, kmock: kmock.KubernetesEmulator
) -> None:
    await create_secret(kmock, "hook-signing", {"secret": WHSEC})
    await cluster.create_tasktype("echo")
    url = receiver.script("/hook/budget", 200)
    callback = {"url": url, "secretRef": {"name": "hook-signing", "key": "secret"}}
    for name in ("budget-a", "budget-b"):
        await run_to_success(cluster, name, {"callback": callback})
    for name in ("budget-a", "budget-b"):
        await eventually(state_is(cluster, name, "Delivered"), 15, f"{name}'s callback delivered")
    await asyncio.sleep(0.5)  # a write that would follow the Delivered one

    writes = operator_writes(kmock)
    for name in ("budget-a", "budget-b"):
        # Job, Running, Succeeded (with the event recorded as Pending), Delivered.
        assert writes.count(("PATCH", f"/apis/asynctask.dev/v1alpha1/namespaces/{NS}/asynctasks/{name}/status")) == 3
        assert writes.count(("POST", f"/apis/batch/v1/namespaces/{NS}/jobs")) == 2
    reads = [r for r in operator_requests(kmock) if r == ("GET", f"/api/v1/namespaces/{NS}/secrets/hook-signing")]
    assert len(reads) == 1  # cached: the second task's delivery reads no Secret
