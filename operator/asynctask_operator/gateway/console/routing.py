"""What every console route shares: its state, its viewer, its forms, and how its errors are shown.

A console route raises as an API route does (:class:`~asynctask_operator.gateway.problems.Problem`);
:class:`ConsoleRoute` answers a page's problem as an HTML page with that status, and sends a
request without a signed-in user to the sign-in form. Every POST is a form carrying the
session's CSRF token, from the console's own origin.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from fastapi import Request, Response
from fastapi.responses import PlainTextResponse, RedirectResponse
from fastapi.routing import APIRoute

from asynctask_operator.gateway.console.gate import SignIn, Viewer, viewer_of
from asynctask_operator.gateway.console.state import SECURITY_HEADERS, Console
from asynctask_operator.gateway.problems import Problem

MAX_FORM_BYTES = 256 * 1024
FORM_TYPE = "application/x-www-form-urlencoded"


def console_of(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


async def viewer(request: Request) -> Viewer:
    return await viewer_of(request, console_of(request))


def wants_html(request: Request) -> bool:
    return not request.url.path.startswith(("/ui/live/", "/ui/export/")) and not request.url.path.endswith("/log")


class ConsoleRoute(APIRoute):
    """A route whose problems are pages (or plain text, for streams and exports) and whose
    anonymous requests go to the sign-in form."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handle(request)
            except SignIn:
                if request.method == "GET" and wants_html(request):
                    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                    return RedirectResponse("/ui/login?" + urlencode({"next": target}), 303)
                return PlainTextResponse("sign in first: /ui/login", 401, headers=SECURITY_HEADERS)
            except Problem as problem:
                if not wants_html(request):
                    return PlainTextResponse(problem.detail, problem.status, headers=SECURITY_HEADERS)
                console = console_of(request)
                return console.page(request, "error.html", problem.status, problem=problem)

        return guarded


def same_origin(request: Request) -> bool:
    """Whether a POST comes from a page of this console (its Origin, else its Referer, names this host)."""
    origin = request.headers.get("origin") or request.headers.get("referer")
    if not origin:
        return True  # a browser sends Origin on every cross-site POST: none means not one
    parts = urlsplit(origin)
    return parts.netloc == request.headers.get("host", request.url.netloc)


async def form(request: Request) -> dict[str, list[str]]:
    """The fields of a urlencoded form; 400/413/415 as problems."""
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != FORM_TYPE:
        raise Problem(415, f"a console action is a form ({FORM_TYPE})")
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise Problem(413, f"the form is larger than {MAX_FORM_BYTES} bytes")
    try:
        return parse_qs(body.decode(), keep_blank_values=True, max_num_fields=10_000)
    except (UnicodeDecodeError, ValueError):
        raise Problem(400, "the form cannot be read") from None


def field(fields: dict[str, list[str]], name: str) -> str:
    values = fields.get(name) or [""]
    return values[0]


async def acting(request: Request) -> tuple[Viewer, dict[str, list[str]]]:
    """The viewer of a console POST and its form, once its origin and CSRF token are checked."""
    if not same_origin(request):
        raise Problem(403, "this form was sent from another site")
    who = await viewer(request)
    fields = await form(request)
    if not who.session.csrf_ok(field(fields, "csrf")):
        raise Problem(403, "the form's CSRF token is missing or stale: reload the page and try again")
    return who, fields


def back(request: Request, fields: dict[str, list[str]], default: str = "/ui/") -> RedirectResponse:
    """303 to the page the form came from (its ``back`` field, a console path), else ``default``."""
    return RedirectResponse(local(field(fields, "back")) or default, 303)


def local(target: str) -> str:
    """``target`` when it is a path of the console, else "" (no open redirect).

    >>> local("/ui/queues?x=1"), local("//evil.example/ui/"), local("https://evil.example/"), local("/v1/x")
    ('/ui/queues?x=1', '', '', '')
    """
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/ui/") or target.startswith("//"):
        return ""
    return target


def query_of(request: Request) -> dict[str, Any]:
    return dict(request.query_params)
