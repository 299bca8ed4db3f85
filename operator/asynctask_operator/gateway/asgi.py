"""What the gateway's plain ASGI middlewares share."""

from __future__ import annotations

from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send


async def seeing_status(app: ASGIApp, scope: Scope, receive: Receive, send: Send, seen: Callable[[int], None]) -> None:
    """Run ``app``, calling ``seen`` once with the status of its answer when the answer starts (an
    event stream's headers, not its end), or with 500 if it ends without one: what the server says then."""
    answered = False

    async def sending(message: Message) -> None:
        nonlocal answered
        if message["type"] == "http.response.start" and not answered:
            answered = True
            seen(int(message["status"]))
        await send(message)

    try:
        await app(scope, receive, sending)
    finally:
        if not answered:
            seen(500)
