"""Every error the gateway answers, as ``application/problem+json`` (RFC 9457).

A handler raises :class:`Problem`; the handlers installed by :func:`install` turn it, and
whatever FastAPI or Starlette raise (a bad body, an unknown route, a body too large) and the
API server's own refusals (:class:`~asynctask_operator.adapters.kube.ApiError`), into one
shape::

    {"type": "about:blank", "title": "Forbidden", "status": 403,
     "detail": "you may not patch asynctasks in namespace 'media'"}

No input can make the gateway answer 500: an unexpected exception is logged and answered
500 still as a problem, and a test (schemathesis) holds that no route gets there.
"""

from __future__ import annotations

import http
import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from asynctask_operator.adapters.kube import ApiError

logger = logging.getLogger(__name__)

MEDIA_TYPE = "application/problem+json"
UNREACHABLE_RETRY_AFTER = 5  # seconds a client waits before trying again when the API server is away


class Problem(Exception):
    """An answer other than 2xx: status, a one-line detail, and optional members and headers."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        title: str | None = None,
        headers: dict[str, str] | None = None,
        **members: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.title = title or http.HTTPStatus(status).phrase
        self.headers = headers or {}
        self.members = members

    def body(self) -> dict[str, Any]:
        return {
            "type": "about:blank",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            **self.members,
        }


def response(problem: Problem) -> JSONResponse:
    return JSONResponse(problem.body(), status_code=problem.status, headers=problem.headers, media_type=MEDIA_TYPE)


def from_api_error(error: ApiError, what: str) -> Problem:
    """The API server's answer to a write or read the gateway made for a caller, as the caller's problem.

    Its refusal message is carried over (it names the field: ``spec.priority: Invalid value``)."""
    if error.status == 422:
        return Problem(422, error.message, title="Invalid", reason=error.reason or "Invalid")
    if error.status == 404:
        return Problem(404, f"{what} not found")
    if error.status == 409:
        return Problem(409, error.message, reason=error.reason or "Conflict")
    if error.status == 400:
        return Problem(400, error.message)
    if error.status == 429:
        return Problem(429, "the Kubernetes API server is busy", headers={"Retry-After": str(UNREACHABLE_RETRY_AFTER)})
    if error.status in (401, 403):  # the gateway's own credentials: its ServiceAccount lacks a right
        logger.error("the API server refused the gateway itself (%s): %s", error.status, error.message)
        return Problem(502, "the gateway's own credentials were refused by the Kubernetes API server")
    logger.warning("the API server failed %s: %s %s", what, error.status, error.message)
    return Problem(
        503, "the Kubernetes API server is unavailable", headers={"Retry-After": str(UNREACHABLE_RETRY_AFTER)}
    )


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    """``("body", "retry", "maxRetries")`` -> ``"retry.maxRetries"``; a query or path part keeps its source."""
    parts = [str(p) for p in loc]
    if parts and parts[0] == "body":
        parts = parts[1:]
    return ".".join(parts) or "body"


async def _on_problem(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Problem)
    return response(exc)


async def _on_validation(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [{"field": _field(e.get("loc", ())), "message": str(e.get("msg", ""))} for e in exc.errors()]
    malformed = any(e.get("type") == "json_invalid" for e in exc.errors())
    status = 400 if malformed else 422
    detail = "the body is not valid JSON" if malformed else "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return response(Problem(status, detail, errors=errors))


async def _on_http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else http.HTTPStatus(exc.status_code).description
    headers = dict(exc.headers or {})
    if exc.status_code == 405:  # Starlette names the methods of one matching route; a path may have several
        headers["Allow"] = ", ".join(allowed_methods(request))
    return response(Problem(exc.status_code, detail, headers=headers))


def allowed_methods(request: Request) -> list[str]:
    """Every method the app serves at the request's path, from its OpenAPI paths. No name holds a colon,
    so ``…/tasks/x:cancel`` is the cancel action's path alone."""
    patterns: list[tuple[re.Pattern[str], list[str]]] | None = getattr(request.app.state, "allow_patterns", None)
    if patterns is None:
        patterns = [
            (re.compile("^" + re.sub(r"\\{[^}]+\\}", "[^/:]+", re.escape(path)) + "$"), [m.upper() for m in item])
            for path, item in request.app.openapi().get("paths", {}).items()
        ]
        request.app.state.allow_patterns = patterns
    methods = {m for pattern, ms in patterns if pattern.match(request.url.path) for m in ms}
    return sorted(methods)


async def _on_api_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return response(from_api_error(exc, "the object"))


async def _on_anything(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("%s %s failed", request.method, request.url.path, exc_info=exc)
    return response(Problem(500, "the gateway failed to answer; the error is logged"))


def install(app: FastAPI) -> None:
    app.add_exception_handler(Problem, _on_problem)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(HTTPException, _on_http)
    app.add_exception_handler(ApiError, _on_api_error)
    app.add_exception_handler(Exception, _on_anything)


PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
    },
    "additionalProperties": True,
}


EVERY_ROUTE = (401, 403, 404, 422, 429, 503)  # a token, a permission, a namespace, parameters, the rate, the API


def documented(*codes: int, also: dict[int | str, dict[str, Any]] | None = None) -> dict[int | str, dict[str, Any]]:
    """The ``responses`` of a route: its error codes and those of every route, each a problem+json, and ``also``."""
    return dict(also or {}) | {
        code: {
            "description": http.HTTPStatus(code).phrase,
            "content": {MEDIA_TYPE: {"schema": PROBLEM_SCHEMA}},
        }
        for code in sorted({*codes, *EVERY_ROUTE})
    }
