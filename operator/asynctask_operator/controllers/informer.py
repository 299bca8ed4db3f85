"""Listing and watching: how every kind the operator follows gets into the cache.

One mechanism for all six kinds (AsyncTasks, Jobs and pods by the thousand; TaskTypes,
TaskQueues and ScheduledTasks by the few): each is listed a page at a time, then watched
from the listing's resourceVersion, resumed from the last event or bookmark when the
stream ends, listed again when the server no longer serves that version (410 Gone), and
backed off when it fails. A periodic resync lists everything again: a level-based repair
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
from typing import Any

from asynctask_operator.adapters.api import Kube
from asynctask_operator.adapters.kube import (
    ASYNCTASKS,
    JOBS,
    PODS,
    SCHEDULEDTASKS,
    TASKQUEUES,
    TASKTYPES,
    ApiError,
    Gone,
    NotFound,
    Resource,
)
from asynctask_operator.controllers.cache import Cache, Key, key_of
from asynctask_operator.core.naming import LABEL_MANAGED_BY, MANAGER
from asynctask_operator.core.retry import backoff

logger = logging.getLogger(__name__)

OWNED_SELECTOR = f"{LABEL_MANAGED_BY}={MANAGER}"
MAX_WATCH_BACKOFF = 30.0
Obj = dict[str, Any]
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
        and drops what it no longer has. Each page goes into the cache as it is read: the raw
        objects of a whole listing at once would be the operator's peak memory (~7 KB per task
        decoded), which the process keeps long after."""
        feed = self.feeds[kind]
        while True:
            began = self.cache.monotonic()
            listed: set[Key] = set()
            version = ""
            try:
                async for page, listed_version in self.api.list_pages(resource, namespace, selector):
                    version = listed_version
                    for obj in page:
                        key = key_of(obj)
                        listed.add(key)
                        if not self.cache.changed_since(kind, key, began):
                            feed.listed(obj)
            except Gone:  # the continue token expired between two pages: list again from the start
                logger.info("listing %s: continue token expired; listing again", resource.plural)
                continue
            for key in self.cache.stale(kind, listed, began, namespace):
                feed.unlisted(key)
            return version

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
        """Watch one kind, from where the last event (or bookmark) left off, for as long as the operator runs.

        A watch that ends is resumed; one whose resourceVersion the server no longer serves (410
        Gone) lists again; a failure backs off."""
        feed = self.feeds[kind]
        failures = 0
        while True:
            try:
                if not version:
                    version = await self.list_into_cache(kind, resource, namespace, selector)
                    self._relisted(kind, namespace)  # what changed while nobody watched
                async for event in self.api.watch(resource, namespace, selector, version):
                    failures = 0
                    obj = event.get("object")
                    if not isinstance(obj, dict):
                        continue
                    if event.get("type") == "ERROR":  # a Status in place of an object
                        raise (Gone if obj.get("code") == 410 else ApiError)(
                            int(obj.get("code") or 0), str(obj.get("reason") or ""), str(obj.get("message") or "")
                        )
                    version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
                    if event.get("type") != "BOOKMARK":
                        try:
                            feed.event(event.get("type"), obj)
                        except Exception:  # one object the cache cannot take must not stall the stream
                            logger.exception("%s %s/%s: event skipped", kind, *key_of(obj))
            except Gone:
                logger.info("watching %s: resourceVersion %s expired; listing again", resource.plural, version)
                version = ""
            except Exception as exc:
                failures += 1
                delay = backoff(failures, 0.5, MAX_WATCH_BACKOFF)
                logger.warning("watching %s failed (%s); again in %.1fs", resource.plural, exc, delay)
                await asyncio.sleep(delay)

    async def resync_forever(self) -> None:
        while True:
            await asyncio.sleep(self.resync_seconds)
            try:
                await self.sync()
            except ApiError as exc:
                logger.warning("resync failed, the next one will retry: %s", exc)
