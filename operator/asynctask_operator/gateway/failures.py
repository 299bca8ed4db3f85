"""A limit on failed authentications per client address, applied before any TokenReview.

The per-user rate limit (:func:`~asynctask_operator.gateway.access.caller`) can only apply once the
caller is known, after their token's review; and a refused review is cached per token, so a flood
of made-up tokens would cost the API server one TokenReview each. Here, every request that may need
a review — a bearer token with no accepted review cached, or a console sign-in — first takes one
unit of its client address's budget (``auth_failure_limit`` a minute, bursts of
``auth_failure_burst``: :class:`~asynctask_operator.gateway.ratelimit.RateLimiter`, so at most
10,000 addresses are kept), and gets it back when the answer is not a 401. So only failures spend
the budget, and taking before the review bounds a concurrent flood as well as a sequential one.
An address whose budget is spent is answered 429 with Retry-After, without a review; requests
whose token is cached as accepted, console pages of a session and requests without a token (which
need no review) go on as before.

The address is the connection's peer, or — behind a proxy, when ``trusted_proxy_header`` says so —
the last entry of that header: the one the proxy in front appended. The first entries are whatever
the client sent, and trusting them would let a flood name a new address per request.
"""

from __future__ import annotations

import math

from starlette.datastructures import Headers
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from asynctask_operator.gateway import problems
from asynctask_operator.gateway.access import Gateway, bearer_token
from asynctask_operator.gateway.problems import Problem

SIGN_IN = ("POST", "/ui/login")  # the console's sign-in reviews the token of its form


def client_address(scope: Scope, header: str | None) -> str:
    """The client's address: the last entry of the trusted header when there is one, else the peer's.

    >>> scope = {"client": ("10.0.0.9", 5123), "headers": [(b"x-forwarded-for", b"6.6.6.6, 203.0.113.7")]}
    >>> client_address(scope, "X-Forwarded-For"), client_address(scope, None)
    ('203.0.113.7', '10.0.0.9')
    """
    if header:
        hops = [hop.strip() for hop in Headers(scope=scope).get(header, "").split(",")]
        if hops[-1]:
            return hops[-1]
    client = scope.get("client")
    return str(client[0]) if client else ""


def may_need_review(scope: Scope, gateway: Gateway) -> bool:
    if (scope["method"], scope["path"]) == SIGN_IN:
        return True
    token = bearer_token(Headers(scope=scope).get("authorization"))
    return token is not None and not gateway.reviews.accepted(token)


class LimitFailedAuthentications:
    """The ASGI middleware of the module docstring."""

    def __init__(self, app: ASGIApp, gateway: Gateway) -> None:
        self.app = app
        self.gateway = gateway

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limiter = self.gateway.failures
        if scope["type"] != "http" or limiter is None or not may_need_review(scope, self.gateway):
            await self.app(scope, receive, send)
            return
        address = client_address(scope, self.gateway.settings.trusted_proxy_header)
        wait = limiter.take(address)
        if wait > 0:
            retry = str(max(1, math.ceil(wait)))
            detail = "too many failed authentications from this address"
            if scope["path"].startswith("/ui/"):  # a person at the console's sign-in form: words, not JSON
                text = f"{detail}: try again in {retry} s"
                await PlainTextResponse(text, 429, headers={"Retry-After": retry})(scope, receive, send)
                return
            await problems.response(Problem(429, detail, headers={"Retry-After": retry}))(scope, receive, send)
            return

        async def sending(message: Message) -> None:
            # Once, at the answer's start (a stream's too). A request that raises keeps its unit spent.
            if message["type"] == "http.response.start" and message["status"] != 401:
                limiter.give_back(address)
            await send(message)

        await self.app(scope, receive, sending)
