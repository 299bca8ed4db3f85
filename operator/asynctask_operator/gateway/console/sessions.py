"""Console sign-ins: the bearer token stays in the gateway; the browser holds a random session id.

A :class:`Session` is made when someone signs in with a token (reviewed at once, and again
at least every 30 s through the gateway's cached TokenReviews, so a revoked token stops
working), or, in trusted-header mode, when the auth proxy's user first opens a page. The
browser gets an HttpOnly, SameSite=Strict cookie holding only the session's id (Secure when
the console is served over TLS) that expires with the session. Each session has its own CSRF
token, which every form and ``fetch`` of the console sends back.

Sessions live in this process's memory, bounded: a restart of the gateway signs everyone
out, and with several replicas the chart pins each browser to one (``sessionAffinity``) —
the price of never handing the token to the browser (docs/adr/0021-console-server-rendered.md).
"""

from __future__ import annotations

import collections
import dataclasses
import hmac
import secrets

from asynctask_operator.core.clocks import Clocks
from asynctask_operator.gateway.auth import User

COOKIE = "asynctask_console"
COOKIE_PATH = "/ui"
MAX_SESSIONS = 10_000


@dataclasses.dataclass
class Session:
    id: str
    csrf: str
    user: User
    token: str | None
    """The bearer token it signed in with; None in trusted-header mode (the proxy says who it is)."""
    expires: float
    """Wall-clock seconds."""
    notices: list[str] = dataclasses.field(default_factory=list)
    """What the next page shows once (the outcome of an action)."""

    def __repr__(self) -> str:  # never the token, not even in a traceback
        return f"Session(user={self.user.name!r}, expires={self.expires})"

    def csrf_ok(self, value: str | None) -> bool:
        return value is not None and hmac.compare_digest(self.csrf.encode(), value.encode())


class Sessions:
    """At most ``size`` sessions; past that, the oldest sign-in goes first."""

    def __init__(self, clocks: Clocks, lifetime: float, size: int = MAX_SESSIONS) -> None:
        self.clocks = clocks
        self.lifetime = lifetime
        self.size = size
        self._by_id: collections.OrderedDict[str, Session] = collections.OrderedDict()

    def open(self, user: User, token: str | None) -> Session:
        session = Session(
            id=secrets.token_urlsafe(32),
            csrf=secrets.token_urlsafe(32),
            user=user,
            token=token,
            expires=self.clocks.wall() + self.lifetime,
        )
        self._by_id[session.id] = session
        while len(self._by_id) > self.size:
            self._by_id.popitem(last=False)
        return session

    def get(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        session = self._by_id.get(session_id)
        if session is None:
            return None
        if session.expires <= self.clocks.wall():
            del self._by_id[session_id]
            return None
        return session

    def close(self, session_id: str | None) -> None:
        if session_id:
            self._by_id.pop(session_id, None)

    def __len__(self) -> int:
        return len(self._by_id)
