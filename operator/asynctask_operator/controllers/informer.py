"""Listing and watching: how every kind the operator follows gets into the cache.

One mechanism for all six kinds (AsyncTasks, Jobs and pods by the thousand; TaskTypes,
TaskQueues and ScheduledTasks by the few): each is listed and watched by the reflector loop
(adapters/reflector.py: pages, resume from the last event or bookmark, relist after 410
Gone, backoff), which the gateway shares. A periodic resync lists everything again: a level-based repair
of whatever a lost event could have left stale. Nothing else watches (ADR 0015).

What an object's arrival means — which caches, ledgers and keys it touches — is the
caller's: each kind comes with its :class:`Feed`, the functions an event and a listing
hand their objects to.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Iterable, Mapping

from asynctask_operator.adapters.api import Kube
from asynctask_operator.adapters.kube import (
    ASYNCTASKS,
    JOBS,
    PODS,
    SCHEDULEDTASKS,
    TASKQUEUES,
    TASKTYPES,
    ApiError,
    NotFound,
    Resource,
)
from asynctask_operator.adapters.reflector import list_into, reflect
from asynctask_operator.controllers.cache import Cache
from asynctask_operator.core.naming import LABEL_MANAGED_BY, MANAGER
from asynctask_operator.core.wire import Key, Obj, key_of

logger = logging.getLogger(__name__)

OWNED_SELECTOR = f"{LABEL_MANAGED_BY}={MANAGER}"
Versions = dict[tuple[str, str | None], str]  # (kind, namespace) -> the resourceVersion of its listing
KINDS = ("tasktype", "taskqueue", "job", "pod", "task", "scheduledtask")
"""In the order a listing fills the cache: what a task refers to (its type, its queue, its Jobs
and their pods) is held before the task itself is taken in."""


@dataclasses.dataclass(frozen=True)
class Feed:
    """Where the objects of one kind go."""

    event: Callable[[str | None, Obj], None]
    """A watch event: ``ADDED``, ``MODIFIED`` or ``DELETED``, and the object."""
    listed: Callable[[Obj], object]
    """An object a listing has (and the cache has not seen change since the listing began)."""
    unlisted: Callable[[Key], object]
    """An object the cache holds that a whole listing no longer has: a DELETED event missed."""


@dataclasses.dataclass(frozen=True)
class _CacheSink:
    """One kind's :class:`~asynctask_operator.adapters.reflector.Sink`: the cache's freshness decides
    what a listing may still put in, the kind's :class:`Feed` where everything goes."""

    cache: Cache
    kind: str
    feed: Feed

    def mark(self) -> float:
        return self.cache.monotonic()

    def listed(self, obj: Obj, since: float) -> None:
        if not self.cache.changed_since(self.kind, key_of(obj), since):
            self.feed.listed(obj)

    def listing_done(self, keys: set[Key], since: float, namespace: str | None) -> None:
        for key in self.cache.stale(self.kind, keys, since, namespace):
            self.feed.unlisted(key)

    def event(self, type_: str | None, obj: Obj) -> None:
        self.feed.event(type_, obj)


class Informer:
    def __init__(
        self,
        api: Kube,
        cache: Cache,
        feeds: Mapping[str, Feed],
        namespaces: Iterable[str],
        *,
        synced: Callable[[], None],
        relisted: Callable[[str, str | None], None],
        resync_seconds: float,
    ) -> None:
        """``synced``: called after each full listing (at start and every ``resync_seconds``);
        ``relisted(kind, namespace)``: after a watch had to list its kind again."""
        self.api = api
        self.cache = cache
        self.feeds = dict(feeds)
        self.namespaces: tuple[str | None, ...] = tuple(namespaces) or (None,)
        self._synced = synced
        self._relisted = relisted
        self.resync_seconds = resync_seconds

    async def list_into_cache(
        self, kind: str, resource: Resource, namespace: str | None, selector: str | None = None
    ) -> str:
        """List one kind (in one namespace, or all) into the cache a page at a time; the listing's resourceVersion.

        What the cache got since the listing began (a watch event, the answer to a write) is at
        least as new as the listing, and the watch brings whatever comes after it: putting the
        listed copy over it would undo a newer state with nothing left to redo it (a finished Job
        seen running again, a task read back to an earlier phase). The listing only fills gaps,
        and drops what it no longer has."""
        return await list_into(self.api, resource, namespace, selector, self._sink(kind))

    def _sink(self, kind: str) -> _CacheSink:
        return _CacheSink(self.cache, kind, self.feeds[kind])

    async def sync(self) -> Versions:
        """List every kind in every served namespace into the cache; the listings' resourceVersions.

        Run once before the first reconcile (so "the TaskType does not exist" is never concluded
        from an empty cache), then every ``resync_seconds``. The watches start from the first
        one's resourceVersions (:meth:`watches`)."""
        began = self.cache.monotonic()
        versions: Versions = {}
        try:
            for ns in self.namespaces:  # each Resource named at its call: tests/unit/test_rbac.py reads them here
                versions["tasktype", ns] = await self.list_into_cache("tasktype", TASKTYPES, ns)
                versions["taskqueue", ns] = await self.list_into_cache("taskqueue", TASKQUEUES, ns)
                versions["job", ns] = await self.list_into_cache("job", JOBS, ns, OWNED_SELECTOR)
                versions["pod", ns] = await self.list_into_cache("pod", PODS, ns, OWNED_SELECTOR)
                versions["task", ns] = await self.list_into_cache("task", ASYNCTASKS, ns)
                versions["scheduledtask", ns] = await self.list_into_cache("scheduledtask", SCHEDULEDTASKS, ns)
        except NotFound as exc:
            raise SystemExit(
                "the asynctask.dev CRDs are not installed in this cluster: run `asynctask-operator crds --apply` "
                f"(or kubectl apply -f crds/) first ({exc.message})"
            ) from None
        self.cache.forget_drops_before(began)
        self.cache.synced.update({"tasktypes", "taskqueues", "asynctasks", "jobs", "pods", "scheduledtasks"})
        self._synced()
        logger.info(
            "synced %d tasks, %d task types, %d jobs, %d pods in %.2fs",
            len(self.cache.tasks),
            len(self.cache.tasktypes),
            len(self.cache.jobs),
            len(self.cache.pods),
            self.cache.monotonic() - began,
        )
        return versions

    def watches(self, versions: Versions) -> list[asyncio.Task[None]]:
        """The watch of every kind, one per served namespace (or one cluster-wide), from the
        resourceVersions :meth:`sync` returned."""
        out = []
        for ns in self.namespaces:
            streams = {
                "tasktype": self.watch_kind("tasktype", TASKTYPES, ns, None, versions.get(("tasktype", ns), "")),
                "taskqueue": self.watch_kind("taskqueue", TASKQUEUES, ns, None, versions.get(("taskqueue", ns), "")),
                "job": self.watch_kind("job", JOBS, ns, OWNED_SELECTOR, versions.get(("job", ns), "")),
                "pod": self.watch_kind("pod", PODS, ns, OWNED_SELECTOR, versions.get(("pod", ns), "")),
                "task": self.watch_kind("task", ASYNCTASKS, ns, None, versions.get(("task", ns), "")),
                "scheduledtask": self.watch_kind(
                    "scheduledtask", SCHEDULEDTASKS, ns, None, versions.get(("scheduledtask", ns), "")
                ),
            }
            out += [asyncio.create_task(c, name=f"watch-{kind}-{ns}") for kind, c in streams.items()]
        return out

    async def watch_kind(
        self, kind: str, resource: Resource, namespace: str | None, selector: str | None = None, version: str = ""
    ) -> None:
        """Watch one kind, from where the last event (or bookmark) left off, for as long as the operator runs."""
        await reflect(
            self.api,
            resource,
            namespace,
            selector,
            self._sink(kind),
            version,
            relisted=lambda: self._relisted(kind, namespace),  # what changed while nobody watched
        )

    async def resync_forever(self) -> None:
        while True:
            await asyncio.sleep(self.resync_seconds)
            try:
                await self.sync()
            except ApiError as exc:
                logger.warning("resync failed, the next one will retry: %s", exc)
