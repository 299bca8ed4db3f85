"""Who the caller is (TokenReview) and what they may do (SubjectAccessReview), asked of the cluster.

The gateway holds no user database and no policy of its own: a bearer token is reviewed by
the API server (``authentication.k8s.io/v1`` TokenReview), and each call is authorized with a
``authorization.k8s.io/v1`` SubjectAccessReview for exactly the verb, resource and namespace
kubectl would need for the same act (:data:`~asynctask_operator.gateway.access.PERMISSIONS` maps
each route to its verb and resource), about the object by name when the act is about one object
(``kubectl get asynctask mine`` asks about ``mine``, so a Role whose rule lists
``resourceNames: [mine]`` allows it), and namespace-wide for lists and streams. So the gateway
can never do for a caller what the caller's own RBAC refuses, nor refuse what it allows.

Answers are cached briefly and boundedly: an allowed one for at most 30 s, a denied one for
at most 5 s (a new RoleBinding takes effect soon), keyed on the user and the whole permission
(the object's name included), a token on a hash of it, never the token. Tokens are never logged.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import hashlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from asynctask_operator.adapters.api import Kube
from asynctask_operator.adapters.kube import SUBJECTACCESSREVIEWS, TOKENREVIEWS
from asynctask_operator.core.clocks import Clocks
from asynctask_operator.core.models import GROUP

logger = logging.getLogger(__name__)

ALLOWED_TTL = 30.0
DENIED_TTL = 5.0
CACHE_ENTRIES = 10_000
ANONYMOUS = "system:anonymous"

V = TypeVar("V")


@dataclasses.dataclass(frozen=True)
class User:
    name: str
    groups: tuple[str, ...] = ()
    uid: str = ""
    extra: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """The authenticator's extra attributes (``X-Remote-Extra-<key>`` from the front proxy: scopes, a
    credential's id), passed on in each SubjectAccessReview, as the API server passes them to its authorizers."""


@dataclasses.dataclass(frozen=True)
class Permission:
    """One SubjectAccessReview's resourceAttributes."""

    verb: str
    resource: str
    namespace: str
    group: str = GROUP
    name: str = ""
    subresource: str = ""

    def describe(self) -> str:
        """What the caller may not do, in words.

        >>> Permission("patch", "asynctasks", "media").describe()
        "patch asynctasks in namespace 'media'"
        >>> Permission("get", "pods", "media", group="", subresource="log").describe()
        "get pods/log in namespace 'media'"
        >>> Permission("get", "asynctasks", "media", name="mine").describe()
        "get asynctasks 'mine' in namespace 'media'"
        """
        resource = f"{self.resource}/{self.subresource}" if self.subresource else self.resource
        named = f" {self.name!r}" if self.name else ""
        return f"{self.verb} {resource}{named} in namespace {self.namespace!r}"


class TTLCache(Generic[V]):
    """At most ``size`` entries, each kept for the TTL it was put with; the oldest put is dropped first."""

    def __init__(self, clocks: Clocks, size: int = CACHE_ENTRIES) -> None:
        self.clocks = clocks
        self.size = size
        self._entries: collections.OrderedDict[object, tuple[float, V]] = collections.OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, key: object) -> V | None:
        entry = self._entries.get(key)
        if entry is None or entry[0] <= self.clocks.monotonic():
            self._entries.pop(key, None)
            self.misses += 1
            return None
        self.hits += 1
        return entry[1]

    def peek(self, key: object) -> V | None:
        """The live entry of ``key``, if any, without counting a hit or a miss (a check, not a use)."""
        entry = self._entries.get(key)
        return entry[1] if entry is not None and entry[0] > self.clocks.monotonic() else None

    def put(self, key: object, value: V, ttl: float) -> None:
        self._entries.pop(key, None)
        self._entries[key] = (self.clocks.monotonic() + ttl, value)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


def token_key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Reviews:
    """TokenReviews and SubjectAccessReviews through the gateway's own client, cached."""

    def __init__(
        self,
        api: Kube,
        clocks: Clocks,
        *,
        allowed_ttl: float = ALLOWED_TTL,
        denied_ttl: float = DENIED_TTL,
        size: int = CACHE_ENTRIES,
    ) -> None:
        self.api = api
        self.allowed_ttl = min(allowed_ttl, ALLOWED_TTL)
        self.denied_ttl = min(denied_ttl, DENIED_TTL)
        self.users: TTLCache[tuple[User | None]] = TTLCache(clocks, size)  # (None,): refused
        self.decisions: TTLCache[bool] = TTLCache(clocks, size)
        self._pending: dict[object, asyncio.Future[Any]] = {}

    async def authenticate(self, token: str) -> User | None:
        """The user a bearer token stands for, or None when the cluster does not accept it."""
        key = token_key(token)
        cached = self.users.get(key)
        if cached is not None:
            return cached[0]
        return await self._once(("token", key), lambda: self._review_token(key, token))

    def accepted(self, token: str) -> bool:
        """Whether the cluster accepted this token in a review still cached (so no review is needed now)."""
        cached = self.users.peek(token_key(token))
        return cached is not None and cached[0] is not None

    async def _once(self, key: object, review: Callable[[], Awaitable[V]]) -> V:
        """One review per key at a time: a thousand clients arriving together with one token ask once."""
        pending = self._pending.get(key)
        if pending is None:
            pending = asyncio.ensure_future(review())
            self._pending[key] = pending
            pending.add_done_callback(lambda _: self._pending.pop(key, None))
        return await asyncio.shield(pending)

    async def _review_token(self, key: str, token: str) -> User | None:
        answer = await self.api.create(
            TOKENREVIEWS,
            None,
            {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}},
        )
        status = answer.get("status") or {}
        user: User | None = None
        if status.get("authenticated"):
            info = status.get("user") or {}
            user = User(str(info.get("username") or ""), tuple(info.get("groups") or ()), str(info.get("uid") or ""))
            if not user.name:
                user = None
        self.users.put(key, (user,), self.allowed_ttl if user is not None else self.denied_ttl)
        return user

    async def permits(self, user: User, permission: Permission) -> bool:
        """Whether the user may do what ``permission`` says, about its object by name when it names one: a
        namespace-wide grant first (one review, cached, for every object of the namespace), else the object
        by name (a rule with ``resourceNames``). RBAC only ever allows, so a namespace-wide allow is an allow
        for every name; asking it first spares a review per object for the many callers who have one."""
        if permission.name and await self.allowed(user, dataclasses.replace(permission, name="")):
            return True
        return await self.allowed(user, permission)

    async def allowed(self, user: User, permission: Permission) -> bool:
        key = (user, permission)
        cached = self.decisions.get(key)
        if cached is not None:
            return cached
        return await self._once(key, lambda: self._review_access(user, permission))

    async def _review_access(self, user: User, permission: Permission) -> bool:
        key = (user, permission)
        attributes = {
            "group": permission.group,
            "resource": permission.resource,
            "verb": permission.verb,
            "namespace": permission.namespace,
        }
        if permission.name:
            attributes["name"] = permission.name
        if permission.subresource:
            attributes["subresource"] = permission.subresource
        spec: dict[str, object] = {"user": user.name, "groups": list(user.groups), "resourceAttributes": attributes}
        if user.uid:
            spec["uid"] = user.uid
        if user.extra:
            spec["extra"] = {key: list(values) for key, values in user.extra}
        body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec}
        answer = await self.api.create(SUBJECTACCESSREVIEWS, None, body)
        status = answer.get("status") or {}
        allowed = bool(status.get("allowed")) and not status.get("denied")
        self.decisions.put(key, allowed, self.allowed_ttl if allowed else self.denied_ttl)
        return allowed
