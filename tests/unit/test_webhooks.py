"""docs/design.md §3.4: the webhook sender (httpx, SSRF guard at connect time) and the background dispatcher."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
from collections.abc import Callable
from typing import Any, cast

import httpcore
import httpx
import pytest
from standardwebhooks import Webhook

from asynctask_operator.adapters.kube import SECRETS, ApiError, NotFound, Resource
from asynctask_operator.adapters.kubeclient import KubeClient
from asynctask_operator.adapters.metrics import Metrics
from asynctask_operator.adapters.webhooks import (
    EXCERPT_BYTES,
    USER_AGENT,
    Answer,
    DestinationRefused,
    GuardedBackend,
    GuardedTransport,
    HttpxSender,
)
from asynctask_operator.controllers.callbacks import OUTCOMES_KEPT, CallbackDispatcher, SecretReader
from asynctask_operator.core.callbacks import CallbackSend, verdict
from asynctask_operator.core.destinations import DestinationPolicy
from asynctask_operator.core.models import SecretKeyRef, SecretRef

URL = "http://hooks.example.com/tasks"
BODY = b'{"specversion":"1.0","id":"uid-t.succeeded.1"}'
WHSEC = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
OK_RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def mock_sender(handler: Callable[[httpx.Request], httpx.Response]) -> HttpxSender:
    return HttpxSender(DestinationPolicy(), transport=httpx.MockTransport(handler))


# --------------------------------------------------------------------------- HttpxSender


async def test_a_2xx_answer() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204, content=b"thanks, long body ignored")

    sender = mock_sender(handler)
    answer = await sender.send(URL, BODY, {"webhook-id": "uid-t.succeeded.1", "x-api-key": "k"}, 5)
    await sender.aclose()
    assert answer == Answer(status_code=204)
    (request,) = seen
    assert (request.method, str(request.url), request.content) == ("POST", URL, BODY)
    assert request.headers["webhook-id"] == "uid-t.succeeded.1"
    assert request.headers["x-api-key"] == "k"
    assert request.headers["user-agent"] == USER_AGENT


async def test_a_503_with_retry_after() -> None:
    sender = mock_sender(lambda r: httpx.Response(503, headers={"Retry-After": "7"}, content=b"busy\n  now"))
    answer = await sender.send(URL, BODY, {}, 5)
    assert answer == Answer(status_code=503, retry_after=7.0, body_excerpt="busy now")
    assert verdict_of(answer) == "retry"


async def test_an_unreadable_retry_after_is_ignored() -> None:
    sender = mock_sender(lambda r: httpx.Response(503, headers=[(b"retry-after", "²".encode())]))
    answer = await sender.send(URL, BODY, {}, 5)
    assert (answer.status_code, answer.retry_after) == (503, None)


async def test_a_redirect_is_not_followed() -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(str(request.url))
        return httpx.Response(302, headers={"Location": "http://169.254.169.254/latest/meta-data/"})

    answer = await mock_sender(handler).send(URL, BODY, {}, 5)
    assert calls == [URL]
    assert (answer.status_code, answer.location) == (302, "http://169.254.169.254/latest/meta-data/")
    assert verdict_of(answer) == "failed"


@pytest.mark.parametrize(
    ("exc", "words"),
    [
        (httpx.ReadTimeout("read timed out"), ["timed out after 2.5s", "ReadTimeout"]),
        (httpx.ConnectTimeout("connect timed out"), ["timed out after 2.5s", "ConnectTimeout"]),
        (httpx.ConnectError("connection refused"), ["ConnectError", "connection refused"]),
        (httpx.RemoteProtocolError(""), ["RemoteProtocolError"]),
    ],
)
async def test_no_answer_is_an_error(exc: Exception, words: list[str]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    answer = await mock_sender(handler).send(URL, BODY, {}, 2.5)
    assert answer.status_code is None and answer.refused is None
    assert answer.error is not None
    for word in words:
        assert word in answer.error
    assert verdict_of(answer) == "retry"


async def test_the_body_excerpt_is_capped() -> None:
    sender = mock_sender(lambda r: httpx.Response(500, content=b"e" * 100_000))
    answer = await sender.send(URL, BODY, {}, 5)
    assert answer.status_code == 500
    assert answer.body_excerpt == "e" * EXCERPT_BYTES


async def test_a_cut_multibyte_excerpt_is_still_text() -> None:
    sender = mock_sender(lambda r: httpx.Response(400, content="é".encode() * 150))
    answer = await sender.send(URL, BODY, {}, 5)
    assert len(answer.body_excerpt) <= EXCERPT_BYTES
    assert answer.body_excerpt.startswith("é" * 99)


def verdict_of(answer: Answer) -> str:
    return verdict(answer.outcome("x", 1, dt.datetime(2025, 3, 1, tzinfo=dt.UTC)))[0]


# --------------------------------------------------------------------------- the SSRF guard


class Resolver:
    """A fake DNS: host -> addresses; records every lookup."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.asked: list[tuple[str, int]] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append((host, port))
        if host not in self.answers:
            raise OSError(f"[Errno -2] Name or service not known: {host}")
        return self.answers[host]


class RecordingBackend(httpcore.AsyncMockBackend):
    """Answers every connection with one canned HTTP response; records where it was asked to connect."""

    def __init__(self, failing: tuple[str, ...] = ()) -> None:
        super().__init__([OK_RESPONSE])
        self.failing = failing
        self.connects: list[tuple[str, int]] = []

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.AsyncNetworkStream:
        self.connects.append((host, port))
        if host in self.failing:
            raise httpcore.ConnectError(f"connect to {host} refused")
        return await super().connect_tcp(host, port, timeout, local_address, socket_options)


def guarded(policy: DestinationPolicy, resolver: Resolver, backend: RecordingBackend) -> HttpxSender:
    return HttpxSender(policy, transport=GuardedTransport(GuardedBackend(policy, resolver, backend)))


@pytest.mark.parametrize(
    ("addresses", "refused"),
    [
        (["10.0.0.5"], "10.0.0.5"),
        (["169.254.169.254"], "169.254.169.254"),
        (["::1"], "::1"),
        (["93.184.215.14", "10.0.0.5"], "10.0.0.5"),  # one private answer among public ones
        (["2606:4700::1111", "::ffff:127.0.0.1"], "::ffff:127.0.0.1"),
    ],
)
async def test_a_host_resolving_to_a_private_address_is_refused(addresses: list[str], refused: str) -> None:
    resolver = Resolver({"hooks.example.com": addresses})
    sender = HttpxSender(DestinationPolicy(), resolver=resolver)  # the real transport: no network, refused first
    answer = await sender.send(URL, BODY, {}, 5)
    await sender.aclose()
    assert answer.status_code is None and answer.error is None
    assert answer.refused is not None
    assert f"hooks.example.com ({refused})" in answer.refused
    assert resolver.asked == [("hooks.example.com", 80)]
    assert verdict_of(answer) == "refused"


async def test_a_refused_host_is_never_connected_to() -> None:
    backend = RecordingBackend()
    resolver = Resolver({"hooks.example.com": ["93.184.215.14", "192.168.1.10"]})
    answer = await guarded(DestinationPolicy(), resolver, backend).send(URL, BODY, {}, 5)
    assert answer.refused is not None and "192.168.1.10" in answer.refused
    assert backend.connects == []


async def test_an_ip_literal_url_is_checked_too() -> None:
    backend = RecordingBackend()
    resolver = Resolver({"127.0.0.1": ["127.0.0.1"]})
    answer = await guarded(DestinationPolicy(), resolver, backend).send("http://127.0.0.1:8080/x", BODY, {}, 5)
    assert answer.refused is not None and "loopback" in answer.refused
    assert backend.connects == []


async def test_the_connection_goes_to_the_checked_address_not_the_name() -> None:
    backend = RecordingBackend()
    resolver = Resolver({"hooks.example.com": ["93.184.215.14"]})
    answer = await guarded(DestinationPolicy(), resolver, backend).send(URL, BODY, {}, 5)
    assert answer.status_code == 200
    assert backend.connects == [("93.184.215.14", 80)]
    assert resolver.asked == [("hooks.example.com", 80)]


@pytest.mark.parametrize(
    ("policy", "host", "address"),
    [
        (DestinationPolicy.of(hosts=["receiver.test"]), "receiver.test", "127.0.0.1"),
        (DestinationPolicy.of(hosts=["*.svc.cluster.local"]), "hooks.media.svc.cluster.local", "10.96.0.12"),
        (DestinationPolicy.of(cidrs=["10.0.0.0/8"]), "hooks.internal", "10.0.0.5"),
    ],
)
async def test_an_allowed_destination_passes_to_the_inner_backend(
    policy: DestinationPolicy, host: str, address: str
) -> None:
    backend = RecordingBackend()
    resolver = Resolver({host: [address]})
    answer = await guarded(policy, resolver, backend).send(f"http://{host}:8080/hook", BODY, {}, 5)
    assert answer == Answer(status_code=200)
    assert backend.connects == [(address, 8080)]


async def test_the_next_checked_address_is_tried_when_one_does_not_connect() -> None:
    backend = RecordingBackend(failing=("2606:4700::1111",))
    resolver = Resolver({"hooks.example.com": ["2606:4700::1111", "93.184.215.14"]})
    answer = await guarded(DestinationPolicy(), resolver, backend).send(URL, BODY, {}, 5)
    assert answer.status_code == 200
    assert backend.connects == [("2606:4700::1111", 80), ("93.184.215.14", 80)]


async def test_no_address_connects_is_an_error() -> None:
    backend = RecordingBackend(failing=("93.184.215.14",))
    resolver = Resolver({"hooks.example.com": ["93.184.215.14"]})
    answer = await guarded(DestinationPolicy(), resolver, backend).send(URL, BODY, {}, 5)
    assert answer.error is not None and "ConnectError" in answer.error
    assert verdict_of(answer) == "retry"


@pytest.mark.parametrize(
    ("answers", "words"), [({}, "cannot resolve hooks.example.com"), ({"hooks.example.com": []}, "no address")]
)
async def test_a_name_that_does_not_resolve_is_an_error(answers: dict[str, list[str]], words: str) -> None:
    backend = RecordingBackend()
    answer = await guarded(DestinationPolicy(), Resolver(answers), backend).send(URL, BODY, {}, 5)
    assert answer.refused is None
    assert answer.error is not None and words in answer.error
    assert backend.connects == []


async def test_unix_sockets_are_refused() -> None:
    guard = GuardedBackend(DestinationPolicy(), Resolver({}), RecordingBackend())
    with pytest.raises(DestinationRefused):
        await guard.connect_unix_socket("/var/run/docker.sock")


# --------------------------------------------------------------------------- the dispatcher


class FakeKube:
    """KubeClient.get for Secrets only; counts the GETs."""

    def __init__(self, secrets: dict[str, dict[str, bytes]], error: ApiError | None = None) -> None:
        self.secrets = secrets
        self.error = error
        self.gets: list[tuple[str | None, str]] = []

    async def get(self, resource: Resource, namespace: str | None, name: str) -> dict[str, Any]:
        assert resource == SECRETS
        self.gets.append((namespace, name))
        if self.error is not None:
            raise self.error
        if name not in self.secrets:
            raise NotFound(404, "NotFound", f'secrets "{name}" not found')
        return {"data": {k: base64.b64encode(v).decode() for k, v in self.secrets[name].items()}}


class FakeSender:
    """Records every send; answers ``answer``; blocks on ``gate`` when given one."""

    def __init__(self, answer: Answer | None = None, gate: asyncio.Event | None = None) -> None:
        self.answer = answer or Answer(status_code=200)
        self.gate = gate
        self.sent: list[tuple[str, bytes, dict[str, str], float]] = []
        self.active = 0
        self.most_active = 0
        self.closed = False

    async def send(self, url: str, body: bytes, headers: dict[str, str], timeout: float) -> Answer:
        self.sent.append((url, body, headers, timeout))
        self.active += 1
        self.most_active = max(self.most_active, self.active)
        try:
            if self.gate is not None:
                await self.gate.wait()
        finally:
            self.active -= 1
        return self.answer

    async def aclose(self) -> None:
        self.closed = True


class Woken:
    def __init__(self) -> None:
        self.keys: list[tuple[str, str]] = []
        self.event = asyncio.Event()

    def __call__(self, key: tuple[str, str]) -> None:
        self.keys.append(key)
        self.event.set()

    async def wait(self, count: int = 1, timeout: float = 5) -> None:
        async def enough() -> None:
            while len(self.keys) < count:
                self.event.clear()
                await self.event.wait()

        await asyncio.wait_for(enough(), timeout)


KEY = ("media", "t")
ID = "uid-t.succeeded.1"
SECRETS_IN_NS = {
    "hook": {"signing": WHSEC.encode()},
    "hook-headers": {"X-Api-Key": b"key-123", "Authorization": b"Bearer abc"},
}


def send_of(
    id_: str = "uid-t.succeeded.1",
    delivery: int = 1,
    secret: bool = True,
    headers: bool = True,
    **more: Any,
) -> CallbackSend:
    values: dict[str, Any] = {
        "namespace": "media",
        "id": id_,
        "delivery": delivery,
        "url": URL,
        "event": {"specversion": "1.0", "id": id_, "type": "dev.asynctask.task.succeeded", "data": {"n": "é"}},
        "secret_ref": SecretKeyRef(name="hook", key="signing") if secret else None,
        "headers_secret_ref": SecretRef(name="hook-headers") if headers else None,
        "timeout_seconds": 7.0,
    }
    values.update(more)
    return CallbackSend(**values)


def dispatcher(
    sender: Any, kube: FakeKube | None = None, max_in_flight: int = 64
) -> tuple[CallbackDispatcher, Woken, FakeKube]:
    kube = kube or FakeKube(SECRETS_IN_NS)
    woken = Woken()
    reader = SecretReader(cast(KubeClient, kube))
    return CallbackDispatcher(sender, reader, woken, max_in_flight=max_in_flight), woken, kube


async def test_a_delivery_is_signed_and_carries_the_secret_headers() -> None:
    sender = FakeSender()
    d, woken, _ = dispatcher(sender)
    d.submit(KEY, send_of())
    await woken.wait()
    (url, body, headers, timeout) = sender.sent[0]
    assert (url, timeout) == (URL, 7.0)
    assert json.loads(body) == send_of().event
    assert headers["webhook-id"] == "uid-t.succeeded.1"
    assert headers["webhook-timestamp"].isdigit()
    assert headers["webhook-signature"].startswith("v1,")
    assert headers["content-type"].startswith("application/cloudevents+json")
    assert (headers["x-api-key"], headers["authorization"]) == ("key-123", "Bearer abc")
    assert Webhook(WHSEC).verify(body, headers) == send_of().event  # verifiable in one call
    assert woken.keys == [KEY]
    got = d.outcome(KEY, ID)
    assert got is not None
    assert (got.id, got.delivery, got.status_code, got.error) == ("uid-t.succeeded.1", 1, 200, None)
    assert d.in_flight == 0


async def test_an_unsigned_delivery_has_no_signature() -> None:
    sender = FakeSender()
    d, woken, kube = dispatcher(sender)
    d.submit(KEY, send_of(secret=False, headers=False))
    await woken.wait()
    headers = sender.sent[0][2]
    assert "webhook-signature" not in headers
    assert {"webhook-id", "webhook-timestamp", "content-type"} <= set(headers)
    assert kube.gets == []


async def test_the_same_delivery_submitted_twice_is_sent_once() -> None:
    gate = asyncio.Event()
    sender = FakeSender(gate=gate)
    d, woken, _ = dispatcher(sender)
    d.submit(KEY, send_of())
    d.submit(KEY, send_of())  # under way
    assert d.in_flight == 1
    gate.set()
    await woken.wait()
    d.submit(KEY, send_of())  # made already (a stale cache copy of the task asks again)
    await asyncio.sleep(0.01)
    assert len(sender.sent) == 1
    assert woken.keys == [KEY]
    assert d.in_flight == 0


async def test_the_next_delivery_is_sent_and_an_older_one_is_not() -> None:
    sender = FakeSender(Answer(status_code=503))
    d, woken, _ = dispatcher(sender)
    d.submit(KEY, send_of(delivery=1))
    await woken.wait()
    d.submit(KEY, send_of(delivery=2))
    await woken.wait(2)
    assert len(sender.sent) == 2
    got = d.outcome(KEY, ID)
    assert got is not None and got.delivery == 2
    d.submit(KEY, send_of(delivery=1))
    d.submit(KEY, send_of(delivery=2))
    await asyncio.sleep(0.01)
    assert len(sender.sent) == 2


async def test_outcomes_are_known_by_event() -> None:
    d, woken, _ = dispatcher(FakeSender())
    assert d.outcome(KEY, None) is None
    d.submit(KEY, send_of())
    await woken.wait()
    assert d.outcome(KEY, None) is None  # the status records no event
    assert d.outcome(KEY, "uid-t.failed.2") is None  # another event
    assert d.outcome(("media", "other"), ID) is None  # another task
    got = d.outcome(KEY, ID)
    assert got is not None and (got.id, got.delivery) == (ID, 1)
    assert d.outcome(KEY, ID) is got  # kept: handed to every decision until the task goes


async def test_the_last_events_outcomes_are_kept() -> None:
    d, woken, _ = dispatcher(FakeSender())
    ids = [f"uid-t.cancelled.0.{n}" for n in range(2, 3 + OUTCOMES_KEPT)]
    for n, ident in enumerate(ids, start=1):
        d.submit(KEY, send_of(ident))
        await woken.wait(n)
    assert [d.outcome(KEY, i) is not None for i in ids] == [False] + [True] * OUTCOMES_KEPT


async def test_a_new_delivery_of_an_old_event_keeps_it_among_the_last() -> None:
    sender = FakeSender(Answer(status_code=500))
    d, woken, _ = dispatcher(sender)
    ids = [f"uid-t.e.{n}" for n in range(OUTCOMES_KEPT)]
    for n, ident in enumerate(ids, start=1):
        d.submit(KEY, send_of(ident))
        await woken.wait(n)
    d.submit(KEY, send_of(ids[0], delivery=2))  # the oldest is delivered again: now the latest
    await woken.wait(OUTCOMES_KEPT + 1)
    d.submit(KEY, send_of("uid-t.e.new"))
    await woken.wait(OUTCOMES_KEPT + 2)
    assert d.outcome(KEY, ids[0]) is not None
    assert d.outcome(KEY, ids[1]) is None


async def test_forget_drops_a_tasks_outcomes() -> None:
    d, woken, _ = dispatcher(FakeSender())
    d.submit(KEY, send_of())
    await woken.wait()
    d.forget(KEY)
    assert d.outcome(KEY, ID) is None


async def test_in_flight_deliveries_are_bounded() -> None:
    gate = asyncio.Event()
    sender = FakeSender(gate=gate)
    d, woken, _ = dispatcher(sender, max_in_flight=2)
    for i in range(6):
        d.submit(("media", f"t{i}"), send_of(f"uid-t{i}.succeeded.1", secret=False, headers=False))
    for _ in range(20):
        await asyncio.sleep(0)
    assert sender.active == 2
    assert d.in_flight == 6  # submitted, waiting for a slot
    gate.set()
    await woken.wait(6)
    assert sender.most_active == 2
    assert len(sender.sent) == 6
    assert sorted(woken.keys) == [("media", f"t{i}") for i in range(6)]


async def test_a_slow_delivery_does_not_hold_up_another_task() -> None:
    gate = asyncio.Event()

    class OneSlow(FakeSender):
        async def send(self, url: str, body: bytes, headers: dict[str, str], timeout: float) -> Answer:
            if url.endswith("/slow"):
                self.gate = gate
            else:
                self.gate = None
            return await super().send(url, body, headers, timeout)

    sender = OneSlow()
    d, woken, _ = dispatcher(sender, max_in_flight=4)
    d.submit(("media", "slow"), send_of("uid-slow.succeeded.1", url="http://hooks.example.com/slow"))
    d.submit(("media", "fast"), send_of("uid-fast.succeeded.1"))
    await woken.wait()
    assert woken.keys == [("media", "fast")]
    gate.set()
    await woken.wait(2)


@pytest.mark.parametrize(
    ("secrets", "words"),
    [
        ({"hook-headers": {"x": b"1"}}, "Secret media/hook not found"),
        ({"hook": {"other": b"x"}, "hook-headers": {"x": b"1"}}, "has no key 'signing'"),
        ({"hook": {"signing": WHSEC.encode()}}, "Secret media/hook-headers not found"),
    ],
)
async def test_a_missing_secret_is_an_error_that_is_retried(secrets: dict[str, dict[str, bytes]], words: str) -> None:
    sender = FakeSender()
    d, woken, _ = dispatcher(sender, FakeKube(secrets))
    d.submit(KEY, send_of())
    await woken.wait()
    got = d.outcome(KEY, ID)
    assert got is not None and got.error is not None and words in got.error
    assert verdict(got)[0] == "retry"
    assert sender.sent == []


async def test_an_api_error_reading_the_secret_is_retried() -> None:
    d, woken, _ = dispatcher(FakeSender(), FakeKube({}, error=ApiError(403, "Forbidden", "no get on secrets")))
    d.submit(KEY, send_of())
    await woken.wait()
    got = d.outcome(KEY, ID)
    assert got is not None and got.error is not None and "403" in got.error
    assert verdict(got)[0] == "retry"


@pytest.mark.parametrize("name", ["webhook-signature", "Content-Type", "host"])
async def test_a_reserved_header_in_the_secret_is_fatal(name: str) -> None:
    sender = FakeSender()
    secrets = {**SECRETS_IN_NS, "hook-headers": {name: b"forged"}}
    d, woken, _ = dispatcher(sender, FakeKube(secrets))
    d.submit(KEY, send_of())
    await woken.wait()
    got = d.outcome(KEY, ID)
    assert got is not None and got.fatal is not None and repr(name) in got.fatal
    assert verdict(got)[0] == "failed"
    assert sender.sent == []


async def test_secrets_are_read_once_within_the_cache_time() -> None:
    d, woken, kube = dispatcher(FakeSender(Answer(status_code=500)))
    d.submit(KEY, send_of(delivery=1))
    await woken.wait()
    d.submit(KEY, send_of(delivery=2))
    await woken.wait(2)
    assert sorted(kube.gets) == [("media", "hook"), ("media", "hook-headers")]


@pytest.mark.parametrize(
    ("answer", "kind"),
    [
        (Answer(status_code=200), "delivered"),
        (Answer(status_code=503, retry_after=30.0), "retry"),
        (Answer(error="timed out after 7s (ReadTimeout)"), "retry"),
        (Answer(refused="callback to x (10.0.0.5) refused"), "refused"),
        (Answer(status_code=302, location="http://elsewhere/"), "failed"),
    ],
)
async def test_the_outcome_carries_the_answer(answer: Answer, kind: str) -> None:
    d, woken, _ = dispatcher(FakeSender(answer))
    d.submit(KEY, send_of())
    await woken.wait()
    got = d.outcome(KEY, ID)
    assert got is not None
    assert (got.status_code, got.error, got.refused, got.retry_after, got.location) == (
        answer.status_code,
        answer.error,
        answer.refused,
        answer.retry_after,
        answer.location,
    )
    assert verdict(got)[0] == kind


async def test_close_cancels_deliveries_and_closes_the_sender() -> None:
    sender = FakeSender(gate=asyncio.Event())
    d, woken, _ = dispatcher(sender)
    d.submit(KEY, send_of())
    for _ in range(10):
        await asyncio.sleep(0)
    await d.close()
    assert sender.closed
    assert d.outcome(KEY, ID) is None and woken.keys == []
    assert d.in_flight == 0


async def test_a_non_ascii_header_value_ends_with_an_outcome() -> None:
    sender = mock_sender(lambda r: httpx.Response(200))
    secrets = {**SECRETS_IN_NS, "hook-headers": {"x-api-key": "clé".encode()}}
    d, woken, _ = dispatcher(sender, FakeKube(secrets))
    d.submit(KEY, send_of())
    try:
        await woken.wait(timeout=0.5)
    except TimeoutError:
        pass
    got = d.outcome(KEY, ID)
    assert got is not None
    assert verdict(got)[0] in ("failed", "retry")
    await d.close()


async def test_a_url_the_guard_refuses_is_never_requested() -> None:
    sender = FakeSender()
    d, woken, kube = dispatcher(sender)
    d.submit(KEY, send_of(url="https://hooks.example.com:0/x"))
    await woken.wait()
    got = d.outcome(KEY, ID)
    assert got is not None and got.refused is not None and "port 0" in got.refused
    assert sender.sent == [] and kube.gets == []


@pytest.mark.parametrize("value", [b"whsec_", b"whsec_!!!not base64!!!"])
async def test_a_malformed_signing_key_is_fatal_and_names_the_secret(value: bytes) -> None:
    sender = FakeSender()
    d, woken, _ = dispatcher(sender, FakeKube({**SECRETS_IN_NS, "hook": {"signing": value}}))
    d.submit(KEY, send_of())
    await woken.wait()
    got = d.outcome(KEY, ID)
    assert got is not None and got.fatal is not None
    assert "whsec_" in got.fatal and "media/hook key signing" in got.fatal
    assert sender.sent == []


@pytest.mark.parametrize(("delivery", "result"), [(5, "retry"), (6, "failed")])
async def test_the_last_allowed_delivery_counts_as_failed(delivery: int, result: str) -> None:
    metrics = Metrics()
    sender = FakeSender(Answer(status_code=503))
    kube = FakeKube(SECRETS_IN_NS)
    woken = Woken()
    d = CallbackDispatcher(sender, SecretReader(cast(KubeClient, kube)), woken, metrics=metrics)
    d.submit(KEY, send_of(delivery=delivery, max_attempts=6))
    await woken.wait()
    assert metrics.callbacks.labels("media", result)._value.get() == 1
