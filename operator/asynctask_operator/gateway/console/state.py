"""What the console keeps beside the gateway: its sessions and its templates."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import Any
from urllib.parse import urlencode

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from asynctask_operator import __version__
from asynctask_operator.gateway.access import Gateway
from asynctask_operator.gateway.console.rows import duration_text
from asynctask_operator.gateway.console.sessions import COOKIE, COOKIE_PATH, Session, Sessions

SECURITY_HEADERS = {
    # No inline script or style anywhere: what a task's message or result holds can never run.
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


def since_text(seconds: float | None, now: float) -> str:
    """How long ago, shortly: "3 m 05 s"."""
    if not seconds:
        return ""
    return duration_text(max(0.0, now - seconds))


def stamp_text(seconds: float | None) -> str:
    if not seconds:
        return ""
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("asynctask_operator.gateway.console", "templates"),
        autoescape=True,  # every value is text unless a template says otherwise (only our SVG charts do)
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["duration"] = duration_text
    env.filters["stamp"] = stamp_text
    env.filters["pretty"] = pretty
    env.globals["urlencode"] = urlencode
    env.globals["version"] = __version__
    return env


@dataclasses.dataclass
class Console:
    gateway: Gateway
    sessions: Sessions
    templates: jinja2.Environment = dataclasses.field(default_factory=environment)

    @classmethod
    def build(cls, gateway: Gateway) -> Console:
        console = cls(gateway, Sessions(gateway.clocks, gateway.settings.session_seconds))
        for name in console.templates.list_templates():  # compiled at start, not in a user's first request
            console.templates.get_template(name)
        return console

    def page(
        self, request: Request, template: str, status_code: int = 200, session: Session | None = None, **context: Any
    ) -> HTMLResponse:
        now = self.gateway.clocks.wall()
        notices: list[str] = []
        if session is not None:
            notices, session.notices = session.notices, []
        body = self.templates.get_template(template).render(
            request=request,
            session=session,
            csrf=session.csrf if session else "",
            user=session.user if session else None,
            notices=notices,
            now=now,
            ago=lambda s: since_text(s, now),
            Markup=Markup,
            **context,
        )
        response = HTMLResponse(body, status_code=status_code, headers=SECURITY_HEADERS)
        self.keep(request, response)
        return response

    def keep(self, request: Request, response: Any) -> None:
        """Set the cookie of a session this request opened."""
        session: Session | None = getattr(request.state, "new_session", None)
        if session is not None:
            self.set_cookie(request, response, session)

    def set_cookie(self, request: Request, response: Any, session: Session) -> None:
        response.set_cookie(
            COOKIE,
            session.id,
            max_age=max(1, int(session.expires - self.gateway.clocks.wall())),
            path=COOKIE_PATH,
            httponly=True,
            secure=request.url.scheme == "https",
            samesite="strict",
        )
