"""The gate every ``/v1`` route passes: identify the caller, rate-limit them, authorize the act.

:data:`PERMISSIONS` is the one table of what each route needs: the verb and resource kubectl
would need for the same act (``kubectl create`` of an AsyncTask is ``create asynctasks``;
``kubectl patch`` for a cancel is ``patch asynctasks``; ``kubectl get -w`` is ``watch``).
A route about one object (its path names it: ``…/tasks/{name}``) asks about that object by
name, as kubectl does, so RBAC rules with ``resourceNames`` hold through the gateway as they do
through kubectl; a listing or a namespace's stream asks namespace-wide.
A route takes its caller with ``Depends(caller("cancel_task"))``, so a route without an entry
cannot be written (``KeyError`` at import), and the unit tests hold the table row by row.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from asynctask_operator.adapters.api import Kube
from asynctask_operator.adapters.kube import ApiError
from asynctask_operator.core.clocks import Clocks
from asynctask_operator.core.views import TaskView
from asynctask_operator.gateway.auth import ANONYMOUS, Permission, Reviews, User
from asynctask_operator.gateway.problems import Problem
from asynctask_operator.gateway.ratelimit import RateLimiter
from asynctask_operator.gateway.settings import GatewaySettings
from asynctask_operator.gateway.store import Store

if TYPE_CHECKING:
    from asynctask_operator.archive import ArchiveReader

logger = logging.getLogger(__name__)

PERMISSIONS: dict[str, tuple[str, str]] = {
    # route (the handler's name)  -> (verb, resource)
    "submit_task": ("create", "asynctasks"),
    "ingest_cloudevent": ("create", "asynctasks"),
    "get_task": ("get", "asynctasks"),
    "get_task_result": ("get", "asynctasks"),
    "list_tasks": ("list", "asynctasks"),
    "task_events": ("watch", "asynctasks"),
    "namespace_events": ("watch", "asynctasks"),
    "cancel_task": ("patch", "asynctasks"),
    "retry_task": ("patch", "asynctasks"),
    "delete_task": ("delete", "asynctasks"),
    "statistics": ("list", "asynctasks"),
    "list_history": ("list", "asynctasks"),
    "task_log": ("get", "asynctasks"),
    "list_queues": ("list", "taskqueues"),
    "get_queue": ("get", "taskqueues"),
    "pause_queue": ("patch", "taskqueues"),
    "resume_queue": ("patch", "taskqueues"),
    "list_schedules": ("list", "scheduledtasks"),
    "get_schedule": ("get", "scheduledtasks"),
    "suspend_schedule": ("patch", "scheduledtasks"),
    "resume_schedule": ("patch", "scheduledtasks"),
    "run_schedule": ("patch", "scheduledtasks"),
}


@dataclasses.dataclass
class Gateway:
    """Everything a request handler reads: the client, the caches, the reviews, the settings."""

    api: Kube
    settings: GatewaySettings
    clocks: Clocks
    reviews: Reviews
    limiter: RateLimiter | None
    tasks: Store[TaskView]
    """AsyncTasks, each with its view: what every answer, page and stream reads."""
    queues: Store[None]
    schedules: Store[None]
    tasktypes: Store[None]
    """TaskTypes: a submission naming one that does not exist, or a payload its schema refuses, is refused at once."""
    positions: dict[str, tuple[int, dict[tuple[str, str], int]]] = dataclasses.field(default_factory=dict)
    """Per namespace: the task store's revision, and the queue positions computed at it."""
    archive: ArchiveReader | None = None
    """The archive's reader (``--archive-dsn``): tasks past their TTL; None: live tasks only."""
    failures: RateLimiter | None = None
    """Per client address: the budget of failed authentications (:mod:`~asynctask_operator.gateway.failures`)."""

    @classmethod
    def build(cls, api: Kube, settings: GatewaySettings, clocks: Clocks | None = None) -> Gateway:
        clocks = clocks or Clocks()
        listings = max(len(settings.namespaces), 1)
        archive = None
        if settings.archive_dsn:  # its libraries (the [archive] extra) only when there is an archive to read
            from asynctask_operator.archive import ArchiveReader, engine_of

            archive = ArchiveReader(engine_of(settings.archive_dsn))
        return cls(
            api=api,
            settings=settings,
            clocks=clocks,
            reviews=Reviews(api, clocks),
            limiter=RateLimiter(settings.rate_limit, settings.rate_burst, clocks) if settings.rate_limit > 0 else None,
            tasks=Store(clocks, listings, view=TaskView.of),
            queues=Store(clocks, listings),
            schedules=Store(clocks, listings),
            tasktypes=Store(clocks, listings),
            archive=archive,
            failures=(
                RateLimiter(settings.auth_failure_limit / 60, settings.auth_failure_burst, clocks)
                if settings.auth_failure_limit > 0
                else None
            ),
        )

    @property
    def stores(self) -> tuple[Store[Any], ...]:
        """Every cache the gateway reads, each filled by its own list/watch loop (:func:`~asynctask_operator.gateway.app.follow`)."""
        return (self.tasks, self.queues, self.schedules, self.tasktypes)

    def serves(self, namespace: str) -> bool:
        return not self.settings.namespaces or namespace in self.settings.namespaces


def gateway_of(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


def bearer_token(header: str | None) -> str | None:
    """The token of ``Authorization: Bearer <token>``; None without one.

    >>> bearer_token("Bearer abc"), bearer_token("bearer  abc "), bearer_token("Basic abc"), bearer_token(None)
    ('abc', 'abc', None, None)
    """
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")  # a DNS label, as namespaces are
UNAUTHORIZED_HEADERS = {"WWW-Authenticate": 'Bearer realm="asynctask-gateway"'}


def header_user(settings: GatewaySettings, request: Request) -> User | None:
    """The user the auth proxy's header names (``--trusted-header``, groups from
    ``--trusted-groups-header``); None when that mode is off or the header is absent."""
    if not settings.trusted_header:
        return None
    name = (request.headers.get(settings.trusted_header) or "").strip()
    if not name:
        return None
    groups_header = settings.trusted_groups_header
    groups = (request.headers.get(groups_header) or "") if groups_header else ""
    return User(name, tuple(g.strip() for g in groups.split(",") if g.strip()))


async def identify(gateway: Gateway, request: Request) -> User:
    """The caller: from the trusted header (behind an auth proxy), else from their bearer token's review."""
    settings = gateway.settings
    proxied = header_user(settings, request)
    if proxied is not None:
        return proxied
    token = bearer_token(request.headers.get("authorization"))
    if token is None:
        if settings.allow_anonymous:
            return User(ANONYMOUS, ("system:unauthenticated",))
        raise Problem(401, "a bearer token is required (Authorization: Bearer <token>)", headers=UNAUTHORIZED_HEADERS)
    try:
        user = await gateway.reviews.authenticate(token)
    except ApiError as error:
        logger.warning("TokenReview failed: %s", error.status)
        raise Problem(
            503, "the Kubernetes API server could not review the token", headers={"Retry-After": "5"}
        ) from None
    if user is None:
        raise Problem(401, "the bearer token was not accepted by the cluster", headers=UNAUTHORIZED_HEADERS)
    return user


BEARER = HTTPBearer(auto_error=False, description="A Kubernetes bearer token (a ServiceAccount's, or a user's)")
"""Declares the bearer scheme in the OpenAPI; the token itself is read by :func:`identify`."""


def refused(permission: Permission) -> Problem:
    """The 403 of a permission the caller lacks: it names the permission, for the caller to ask for it."""
    return Problem(403, f"you may not {permission.describe()}", permission=dataclasses.asdict(permission))


def caller(route: str) -> Callable[..., Awaitable[User]]:
    """The dependency of one route: its caller, once identified, within their rate and allowed the act."""
    verb, resource = PERMISSIONS[route]

    async def dependency(
        request: Request, ns: str, _: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)] = None
    ) -> User:
        gateway = gateway_of(request)
        user = await identify(gateway, request)
        if not NAMESPACE.match(ns):
            raise Problem(404, f"no namespace can be named {ns!r}")
        if gateway.limiter is not None:
            wait = gateway.limiter.take(user.name)
            if wait > 0:
                raise Problem(
                    429, f"too many requests from {user.name}", headers={"Retry-After": str(max(1, math.ceil(wait)))}
                )
        permission = Permission(verb, resource, ns, name=str(request.path_params.get("name") or ""))
        try:
            allowed = await gateway.reviews.permits(user, permission)
        except ApiError as error:
            logger.warning("SubjectAccessReview failed: %s", error.status)
            raise Problem(
                503, "the Kubernetes API server could not authorize the request", headers={"Retry-After": "5"}
            ) from None
        if not allowed:
            raise refused(permission)
        if not gateway.serves(ns):
            raise Problem(404, f"namespace {ns!r} is not served by this gateway")
        return user

    dependency.__name__ = f"caller_{route}"
    return dependency
