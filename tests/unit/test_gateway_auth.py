"""Who may do what through the gateway: TokenReview, SubjectAccessReview per route, caches, rate limit."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.routing import APIRoute

from asynctask_operator.adapters.kube import ASYNCTASKS, SCHEDULEDTASKS, TASKQUEUES
from asynctask_operator.core.clocks import Clocks
from asynctask_operator.gateway import cloudevents, events, history, queues, schedules, statistics, tasks
from asynctask_operator.gateway.access import PERMISSIONS, bearer_token
from asynctask_operator.gateway.auth import ALLOWED_TTL, DENIED_TTL, TTLCache
from tests.support.gateway import NS, running_gateway

T = f"/v1/namespaces/{NS}"

ROUTES: list[tuple[str, str, str, str]] = [
    # (method, path, verb, resource): what kubectl would need for the same act
    ("POST", f"{T}/tasks", "create", "asynctasks"),
    ("POST", f"{T}/cloudevents", "create", "asynctasks"),
    ("GET", f"{T}/tasks/t1", "get", "asynctasks"),
    ("GET", f"{T}/tasks/t1/result", "get", "asynctasks"),
    ("GET", f"{T}/tasks", "list", "asynctasks"),
    ("GET", f"{T}/tasks/t1/events", "watch", "asynctasks"),
    ("GET", f"{T}/events", "watch", "asynctasks"),
    ("POST", f"{T}/tasks/t1:cancel", "patch", "asynctasks"),
    ("POST", f"{T}/tasks/t1:retry", "patch", "asynctasks"),
    ("DELETE", f"{T}/tasks/t1", "delete", "asynctasks"),
    ("GET", f"{T}/statistics", "list", "asynctasks"),
    ("GET", f"{T}/history", "list", "asynctasks"),
    ("GET", f"{T}/tasks/t1/log", "get", "asynctasks"),
    ("GET", f"{T}/queues", "list", "taskqueues"),
    ("GET", f"{T}/queues/q1", "get", "taskqueues"),
    ("POST", f"{T}/queues/q1:pause", "patch", "taskqueues"),
    ("POST", f"{T}/queues/q1:resume", "patch", "taskqueues"),
    ("GET", f"{T}/schedules", "list", "scheduledtasks"),
    ("GET", f"{T}/schedules/s1", "get", "scheduledtasks"),
    ("POST", f"{T}/schedules/s1:suspend", "patch", "scheduledtasks"),
    ("POST", f"{T}/schedules/s1:resume", "patch", "scheduledtasks"),
    ("POST", f"{T}/schedules/s1:run", "patch", "scheduledtasks"),
]


def test_every_v1_route_has_exactly_one_row_here() -> None:
    modules = (tasks, cloudevents, events, queues, schedules, statistics, history)
    routes = [r for module in modules for r in module.router.routes]
    served = {(method, route.path) for route in routes if isinstance(route, APIRoute) for method in route.methods or ()}
    assert {route.name for route in routes if isinstance(route, APIRoute)} == set(PERMISSIONS)
    expected = {(m, p.replace("t1", "{name}").replace("q1", "{name}").replace("s1", "{name}")) for m, p, _, _ in ROUTES}
    assert served == {(m, p.replace(NS, "{ns}")) for m, p in expected}


def object_of(path: str) -> str:
    """The object a route's path names (``…/tasks/t1:cancel`` -> ``t1``): what kubectl would ask about by name."""
    parts = path.removeprefix(T + "/").split("/")
    return parts[1].split(":")[0] if len(parts) > 1 else ""


@pytest.mark.parametrize(("method", "path", "verb", "resource"), ROUTES, ids=[f"{r[0]} {r[1]}" for r in ROUTES])
async def test_each_route_asks_for_what_kubectl_would_need(method: str, path: str, verb: str, resource: str) -> None:
    async with running_gateway() as gw:
        asked: list[dict[str, str]] = []
        decide = gw.fake.decide
        assert decide is not None

        def record(user: str, groups: tuple[str, ...], attributes: dict[str, str]) -> bool:
            asked.append(attributes)
            return False

        gw.fake.decide = record
        body: dict[str, Any] = {"json": {"type": "echo"}} if path.endswith("/tasks") and method == "POST" else {}
        answer = await gw.client.request(method, path, headers=gw.alice, **body)
        name = object_of(path)
        wide = {"group": "asynctask.dev", "resource": resource, "verb": verb, "namespace": NS}
        # About one object: namespace-wide first (a grant for every name), then the object by name, as kubectl asks.
        assert asked == ([wide, {**wide, "name": name}] if name else [wide])
        assert answer.status_code == 403
        about = f" {name!r}" if name else ""
        assert answer.json()["detail"] == f"you may not {verb} {resource}{about} in namespace '{NS}'"
        assert answer.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    ("headers", "detail"),
    [({}, "a bearer token is required"), ({"Authorization": "Bearer stolen"}, "not accepted"),
     ({"Authorization": "Basic YWxpY2U6eA=="}, "a bearer token is required")],
)  # fmt: skip
async def test_no_token_or_a_bad_one_is_401(headers: dict[str, str], detail: str) -> None:
    async with running_gateway() as gw:
        answer = await gw.client.get(f"{T}/tasks", headers=headers)
        assert answer.status_code == 401 and detail in answer.json()["detail"]
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")


async def test_reviews_are_cached_briefly_and_keyed_on_a_hash_of_the_token() -> None:
    async with running_gateway() as gw:

        def reviews() -> tuple[int, int]:
            counts = gw.fake.counter.counts
            return counts["create", "tokenreviews", 201], counts["create", "subjectaccessreviews", 201]

        for _ in range(3):
            assert (await gw.client.get(f"{T}/tasks", headers=gw.alice)).status_code == 200
        assert reviews() == (1, 1)
        assert "alice-token" not in repr(gw.gateway.reviews.users._entries)
        gw.now[0] += ALLOWED_TTL + 0.1
        await gw.client.get(f"{T}/tasks", headers=gw.alice)
        assert reviews() == (2, 2)
        # denied: cached no longer than DENIED_TTL, so a new RoleBinding helps soon
        assert (await gw.client.get(f"{T}/tasks", headers=gw.bob)).status_code == 403
        gw.allow.add(("bob", "list", "asynctasks", NS))
        assert (await gw.client.get(f"{T}/tasks", headers=gw.bob)).status_code == 403  # still cached
        gw.now[0] += DENIED_TTL + 0.1
        assert (await gw.client.get(f"{T}/tasks", headers=gw.bob)).status_code == 200


async def test_anonymous_access_only_when_enabled_and_still_authorized() -> None:
    async with running_gateway(allow_anonymous=True) as gw:
        answer = await gw.client.get(f"{T}/tasks")
        assert answer.status_code == 403  # system:anonymous may do nothing here
        gw.allow.add(("system:anonymous", "list", "asynctasks", NS))
        gw.now[0] += DENIED_TTL + 0.1
        assert (await gw.client.get(f"{T}/tasks")).status_code == 200


async def test_the_trusted_header_names_the_user_without_a_token_review() -> None:
    async with running_gateway(trusted_header="X-Forwarded-User") as gw:
        answer = await gw.client.post(f"{T}/tasks", json={"type": "echo"}, headers={"X-Forwarded-User": "alice"})
        assert answer.status_code == 202 and answer.json()["submittedBy"] == "alice"
        assert gw.fake.counter.counts["create", "tokenreviews", 201] == 0


async def test_a_user_beyond_the_rate_limit_gets_429_with_retry_after() -> None:
    async with running_gateway(rate_limit=1.0, rate_burst=2) as gw:
        codes = [(await gw.client.get(f"{T}/tasks", headers=gw.alice)).status_code for _ in range(3)]
        assert codes == [200, 200, 429]
        limited = await gw.client.get(f"{T}/tasks", headers=gw.alice)
        assert limited.headers["Retry-After"] == "1" and "alice" in limited.json()["detail"]
        gw.allow.add(("bob", "list", "asynctasks", NS))
        assert (await gw.client.get(f"{T}/tasks", headers=gw.bob)).status_code == 200  # per user
        gw.now[0] += 1.0
        assert (await gw.client.get(f"{T}/tasks", headers=gw.alice)).status_code == 200


@pytest.mark.parametrize(
    ("header", "token"),
    [("Bearer abc", "abc"), ("bearer abc", "abc"), ("Bearer  abc ", "abc"), ("Bearer", None), ("Token abc", None),
     ("", None), (None, None)],
)  # fmt: skip
def test_bearer_tokens(header: str | None, token: str | None) -> None:
    assert bearer_token(header) == token


def test_the_ttl_cache_is_bounded_and_expires() -> None:
    now = [0.0]
    cache: TTLCache[int] = TTLCache(Clocks(monotonic=lambda: now[0]), size=2)
    cache.put("a", 1, 10)
    cache.put("b", 2, 1)
    cache.put("c", 3, 10)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (None, 2, 3)  # "a" was the oldest
    now[0] = 1.0
    assert cache.get("b") is None and cache.get("c") == 3 and len(cache) == 1


def test_the_resources_named_are_the_adapters() -> None:
    assert {r for _, r in PERMISSIONS.values()} == {ASYNCTASKS.plural, TASKQUEUES.plural, SCHEDULEDTASKS.plural}


async def test_metrics_count_requests_by_route_template_and_review_cache_hits() -> None:
    async with running_gateway() as gw:
        for name in ("a", "b"):
            await gw.client.get(f"{T}/tasks/{name}", headers=gw.alice)
        await gw.client.get(f"{T}/tasks", headers={})
        text = (await gw.client.get("/metrics")).text
        assert (
            'asynctask_gateway_requests_total{code="404",method="GET",route="/v1/namespaces/{ns}/tasks/{name}"} 2.0'
            in text
        )
        assert 'asynctask_gateway_requests_total{code="401",method="GET",route="/v1/namespaces/{ns}/tasks"} 1.0' in text
        assert 'asynctask_gateway_review_cache_total{result="hit",review="token"} 1.0' in text
        assert "asynctask_gateway_event_streams 0.0" in text
        assert "alice" not in text and "/tasks/a" not in text


async def test_a_namespace_wide_grant_answers_for_every_object_with_one_review() -> None:
    async with running_gateway() as gw:
        names = [
            (await gw.client.post(f"{T}/tasks", json={"type": "echo"}, headers=gw.alice)).json()["name"]
            for _ in range(3)
        ]
        before = gw.fake.counter.counts["create", "subjectaccessreviews", 201]
        for name in names:
            assert (await gw.client.get(f"{T}/tasks/{name}", headers=gw.alice)).status_code == 200
        assert (
            gw.fake.counter.counts["create", "subjectaccessreviews", 201] - before == 1
        )  # get, namespace-wide, cached
