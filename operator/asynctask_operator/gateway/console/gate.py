"""Who is looking at the console, and what they may see and do: the gateway's own reviews, per act.

Every page, stream, export and button asks :meth:`Viewer.may` for exactly the permission
kubectl would need for the same act (:data:`ACTS`, built on the API's table
:data:`~asynctask_operator.gateway.access.PERMISSIONS`), about the object by name when the act
is about one (a task's page, its buttons, its log), answered by a SubjectAccessReview
about the signed-in user (what a SelfSubjectAccessReview with their token would answer),
cached as the API's are. So the console can never show or do more than the user's RBAC allows,
and a button is drawn only when its act would be allowed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from fastapi import Request

from asynctask_operator.adapters.kube import ApiError
from asynctask_operator.core.models import GROUP
from asynctask_operator.gateway.access import NAMESPACE, PERMISSIONS, Gateway, gateway_of, header_user, refused
from asynctask_operator.gateway.auth import ANONYMOUS, Permission, User
from asynctask_operator.gateway.console.sessions import COOKIE, Session
from asynctask_operator.gateway.problems import Problem

if TYPE_CHECKING:
    from asynctask_operator.gateway.console.state import Console

logger = logging.getLogger(__name__)

ACTS: dict[str, tuple[str, str, str, str]] = {
    # act -> (API group, verb, resource, subresource)
    **{route: (GROUP, verb, resource, "") for route, (verb, resource) in PERMISSIONS.items()},
    "pod_log": ("", "get", "pods", "log"),
    "list_pods": ("", "list", "pods", ""),
    "list_events": ("", "list", "events", ""),
}


REVIEW_CONCURRENCY = 8
"""SubjectAccessReviews one act on many objects sends at once (a bulk act, a page of rows)."""


def permission_of(act: str, namespace: str, name: str = "") -> Permission:
    group, verb, resource, subresource = ACTS[act]
    return Permission(verb, resource, namespace, group=group, name=name, subresource=subresource)


class SignIn(Exception):
    """No signed-in user: the page sends the browser to the sign-in form."""


@dataclasses.dataclass
class Viewer:
    user: User
    session: Session
    gateway: Gateway

    async def may(self, act: str, namespace: str, name: str = "") -> bool:
        """Whether the user may do ``act`` in ``namespace`` (to the object ``name``, as kubectl would ask
        about it, when the act is about one); raises a 503 problem when the cluster cannot say."""
        try:
            return await self.gateway.reviews.permits(self.user, permission_of(act, namespace, name))
        except ApiError as error:
            logger.warning("SubjectAccessReview failed: %s", error.status)
            raise Problem(503, "the Kubernetes API server could not authorize the request") from None

    async def require(self, act: str, namespace: str, name: str = "") -> None:
        """403 naming the permission unless the user may do ``act`` in ``namespace`` (to ``name``)."""
        if not NAMESPACE.match(namespace) or not self.gateway.serves(namespace):
            raise Problem(404, f"namespace {namespace!r} is not served by this gateway")
        if not await self.may(act, namespace, name):
            raise refused(permission_of(act, namespace, name))

    async def may_each(self, act: str, keys: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
        """Of the objects ``keys`` ((namespace, name)), those the user may do ``act`` to: every one of a
        namespace where a namespace-wide rule allows it (one review), else each asked about by name
        (a Role with ``resourceNames``), at most :data:`REVIEW_CONCURRENCY` reviews at a time."""
        by_namespace: dict[str, list[str]] = {}
        for ns, name in keys:
            by_namespace.setdefault(ns, []).append(name)
        wide = dict(zip(by_namespace, await asyncio.gather(*(self.may(act, ns) for ns in by_namespace)), strict=True))
        slots = asyncio.Semaphore(REVIEW_CONCURRENCY)

        async def named(ns: str, name: str) -> bool:
            async with slots:
                return await self.may(act, ns, name)

        asked = [(ns, name) for ns, names in by_namespace.items() if not wide[ns] for name in names]
        answers = await asyncio.gather(*(named(ns, name) for ns, name in asked))
        allowed = {(ns, name) for ns, names in by_namespace.items() if wide[ns] for name in names}
        return allowed | {key for key, yes in zip(asked, answers, strict=True) if yes}

    async def namespaces(self, act: str, candidates: list[str]) -> Visible:
        """Of ``candidates``, those where the user may do ``act``; how many were hidden."""
        answers = await asyncio.gather(*(self.may(act, ns) for ns in candidates))
        shown = [ns for ns, allowed in zip(candidates, answers, strict=True) if allowed]
        return Visible(shown, len(candidates) - len(shown), ACTS[act][1], ACTS[act][2])


@dataclasses.dataclass(frozen=True)
class Visible:
    shown: list[str]
    hidden: int
    verb: str
    resource: str

    @property
    def banner(self) -> str | None:
        """What the page says when RBAC hides namespaces: never a silently partial list."""
        if not self.hidden:
            return None
        some = "1 namespace is" if self.hidden == 1 else f"{self.hidden} namespaces are"
        return f"{some} not shown: your Kubernetes RBAC does not allow you to {self.verb} {self.resource} there."


async def archive_namespaces(who: Viewer, act: str, chosen: str, shown: list[str]) -> tuple[str, ...] | None:
    """The namespaces a page reads of the archive: the one ``chosen``; else every one (None) when the
    gateway serves every namespace and the user may ``act`` cluster-wide — the history of deleted
    namespaces included, as ``kubectl asynctask history -A`` reads it through the aggregated API; else
    those ``shown`` (the namespaces the user may ``act`` in)."""
    if chosen:
        return (chosen,)
    if not who.gateway.settings.namespaces and await who.may(act, ""):
        return None
    return tuple(shown)


def served_namespaces(gateway: Gateway) -> list[str]:
    """The namespaces the console can show: those the gateway serves, else every namespace its caches hold."""
    if gateway.settings.namespaces:
        return sorted(gateway.settings.namespaces)
    found = {key[0] for store in gateway.stores for key in store.objects}  # TaskTypes too: a namespace with history
    return sorted(found)


async def viewer_of(request: Request, console: Console) -> Viewer:
    """The signed-in user of this request, or :class:`SignIn`.

    Trusted-header mode takes the user from the auth proxy's header on every request (and opens a
    session for its CSRF token when there is none for that user); otherwise the session's token is
    reviewed again (TokenReview, cached ≤ 30 s) so a revoked token ends the session.
    """
    gateway = gateway_of(request)
    settings = gateway.settings
    session = console.sessions.get(request.cookies.get(COOKIE))
    proxied = header_user(settings, request)
    if proxied is not None:
        if session is None or session.token is not None or session.user != proxied:
            session = console.sessions.open(proxied, None)
            request.state.new_session = session
        return Viewer(proxied, session, gateway)
    if session is None:
        if settings.allow_anonymous:
            session = console.sessions.open(User(ANONYMOUS, ("system:unauthenticated",)), None)
            request.state.new_session = session
            return Viewer(session.user, session, gateway)
        raise SignIn()
    if session.token is None:
        if session.user.name == ANONYMOUS and settings.allow_anonymous:
            return Viewer(session.user, session, gateway)
        console.sessions.close(session.id)  # a trusted-header session without its header
        raise SignIn()
    try:
        reviewed = await gateway.reviews.authenticate(session.token)
    except ApiError as error:
        logger.warning("TokenReview failed: %s", error.status)
        raise Problem(503, "the Kubernetes API server could not review your token") from None
    if reviewed is None:
        console.sessions.close(session.id)
        raise SignIn()
    return Viewer(reviewed, session, gateway)
