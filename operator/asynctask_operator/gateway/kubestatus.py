"""Every error of the aggregated API as a ``metav1.Status``: what kubectl prints as ``Error from server
(Reason): message``. The routes raise :class:`~.problems.Problem` as the gateway's others do (and reuse
their reads, which raise it too); these handlers give it the API server's shape instead of problem+json."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from asynctask_operator.adapters.kube import ApiError
from asynctask_operator.gateway import apiobjects
from asynctask_operator.gateway.auth import Permission, User
from asynctask_operator.gateway.frontproxy import proxied_user
from asynctask_operator.gateway.problems import Problem, from_api_error

logger = logging.getLogger(__name__)


def forbidden(user: User, permission: Permission) -> Problem:
    """403 naming the user and the permission, as the API server's own refusals do."""
    resource = f"{permission.resource}/{permission.subresource}" if permission.subresource else permission.resource
    named = f" {permission.name!r}" if permission.name else ""
    where = f"in namespace {permission.namespace!r}" if permission.namespace else "across all namespaces"
    why = "(archived tasks are read with the rights of live ones)"
    return Problem(403, f"User {user.name!r} may not {permission.verb} {resource}{named} {where} {why}")


def status_of(request: Request, problem: Problem) -> JSONResponse:
    """A problem as a ``Status``: a refused ``pods/log`` (raised by the shared log read) names the user and the pod."""
    detail = problem.detail
    permission = problem.members.get("permission")
    if problem.status == 403 and isinstance(permission, dict):
        detail = forbidden(proxied_user(request), Permission(**permission)).detail
    name = request.path_params.get("name")
    return apiobjects.status_response(problem.status, detail, name=name, headers=problem.headers)


async def on_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Problem)
    return status_of(request, exc)


async def on_validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    detail = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ())[1:])}: {e.get('msg', '')}" for e in exc.errors())
    return status_of(request, Problem(400, detail or "bad parameters"))


async def on_http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    words = {404: "the server could not find the requested resource", 405: "the server does not allow this method"}
    detail = words.get(exc.status_code, str(exc.detail))
    return status_of(request, Problem(exc.status_code, detail))


async def on_api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return status_of(request, from_api_error(exc, "the object"))


async def on_anything(request: Request, exc: Exception) -> Response:
    logger.exception("%s %s failed", request.method, request.url.path, exc_info=exc)
    return status_of(request, Problem(500, "the gateway failed to answer; the error is logged"))


def install(app: FastAPI) -> None:
    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(HTTPException, on_http)
    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(Exception, on_anything)
