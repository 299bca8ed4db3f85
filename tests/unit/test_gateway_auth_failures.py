"""Failed authentications are limited per client address before any TokenReview: a flood of made-up
tokens costs the API server a bounded number of reviews (in process, against FakeKube, the test's clock).
"""

from __future__ import annotations

import asyncio
import secrets

import httpx

from asynctask_operator.core.clocks import Clocks
from asynctask_operator.gateway.ratelimit import MAX_USERS, RateLimiter
from tests.support.gateway import NS, RunningGateway, bearer, running_gateway

TASKS = f"/v1/namespaces/{NS}/tasks"
LIMITED = {"auth_failure_limit": 20.0, "auth_failure_burst": 20}  # the defaults, made explicit
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def token_reviews(gw: RunningGateway) -> int:
    return sum(n for (verb, resource, _), n in gw.fake.counter.counts.items() if resource == "tokenreviews")


async def made_up(gw: RunningGateway, headers: dict[str, str] | None = None) -> httpx.Response:
    return await gw.client.get(TASKS, headers=bearer(secrets.token_hex(16)) | (headers or {}))


async def test_a_flood_of_made_up_tokens_costs_a_burst_of_reviews_then_429() -> None:
    async with running_gateway(**LIMITED) as gw:
        codes = [(await made_up(gw)).status_code for _ in range(200)]
        assert codes == [401] * 20 + [429] * 180
        assert token_reviews(gw) == 20
        refused = await made_up(gw)
        assert refused.status_code == 429 and refused.headers["Retry-After"] == "3"  # one failure per 3 s
        assert refused.headers["content-type"] == "application/problem+json"
        gw.now[0] += 30  # 20 a minute: ten more in 30 s
        codes = [(await made_up(gw)).status_code for _ in range(50)]
        assert codes == [401] * 10 + [429] * 40
        assert token_reviews(gw) == 30


async def test_a_concurrent_flood_is_bounded_too() -> None:
    """The unit is taken before the review: a thousand requests at once cannot all pass the check first."""
    async with running_gateway(**LIMITED) as gw:
        answers = await asyncio.gather(*(made_up(gw) for _ in range(300)))
        assert sorted(a.status_code for a in answers) == [401] * 20 + [429] * 280
        assert token_reviews(gw) == 20


async def test_successful_authentications_spend_nothing() -> None:
    async with running_gateway(**LIMITED) as gw:
        gw.fake.reviews({f"good-{i}": ("alice", ()) for i in range(100)})
        codes = {(await gw.client.get(TASKS, headers=bearer(f"good-{i}"))).status_code for i in range(100)}
        assert codes == {200}
        assert token_reviews(gw) == 100


async def test_a_blocked_address_keeps_serving_tokens_already_accepted() -> None:
    async with running_gateway(**LIMITED) as gw:
        assert (await gw.client.get(TASKS, headers=gw.alice)).status_code == 200  # reviewed and cached
        while (await made_up(gw)).status_code != 429:
            pass
        assert (await gw.client.get(TASKS, headers=gw.alice)).status_code == 200
        assert (await gw.client.get("/healthz")).status_code == 200
        # A token not reviewed yet waits, like any other, until the address has budget again.
        assert (await gw.client.get(TASKS, headers=gw.bob)).status_code == 429


async def test_the_console_sign_in_is_limited_as_well() -> None:
    async with running_gateway(**LIMITED) as gw:
        for _ in range(20):
            answer = await gw.client.post("/ui/login", content=f"token={secrets.token_hex(16)}", headers=FORM)
            assert answer.status_code == 401
        answer = await gw.client.post("/ui/login", content="token=alice-token", headers=FORM)
        assert answer.status_code == 429 and "Retry-After" in answer.headers
        assert answer.headers["content-type"].startswith("text/plain") and "try again in" in answer.text
        assert token_reviews(gw) == 20


async def test_the_forwarded_address_counts_only_when_trusted_and_only_its_last_entry() -> None:
    async with running_gateway(**LIMITED) as gw:  # not trusted: the header changes nothing
        codes = [(await made_up(gw, {"X-Forwarded-For": f"10.0.0.{i}"})).status_code for i in range(30)]
        assert codes == [401] * 20 + [429] * 10
    async with running_gateway(**LIMITED, trusted_proxy_header="X-Forwarded-For") as gw:
        # The proxy appends the address it saw; what the client wrote before it is the client's to choose.
        spoofed = [f"{secrets.token_hex(4)}, 203.0.113.7" for _ in range(30)]
        codes = [(await made_up(gw, {"X-Forwarded-For": value})).status_code for value in spoofed]
        assert codes == [401] * 20 + [429] * 10
        other = await made_up(gw, {"X-Forwarded-For": "6.6.6.6, 203.0.113.8"})
        assert other.status_code == 401  # another client behind the same proxy
        assert token_reviews(gw) == 21


async def test_no_limit_when_turned_off() -> None:
    async with running_gateway(auth_failure_limit=0.0) as gw:
        codes = {(await made_up(gw)).status_code for _ in range(50)}
        assert codes == {401}
        assert token_reviews(gw) == 50


def test_the_addresses_kept_are_bounded() -> None:
    limiter = RateLimiter(rate=20 / 60, burst=20, clocks=Clocks(monotonic=lambda: 0.0))
    for i in range(MAX_USERS + 500):
        limiter.take(f"10.{i // 65536}.{i // 256 % 256}.{i % 256}")
    assert len(limiter) == MAX_USERS
