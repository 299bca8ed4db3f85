"""List and watch one kind into a store: the loop every follower of the API server needs.

client-go calls it a reflector. A kind is listed a page at a time, then watched from the
listing's resourceVersion; a watch that ends is resumed from its last event or bookmark, one
whose resourceVersion the server no longer serves (410 Gone) lists again, and a failure backs
off. What an object's arrival means is the :class:`Sink`'s: the operator's informer feeds its
cache, ledgers and work queue (controllers/informer.py); the gateway feeds its read cache and
its event streams. Both follow the API server through this one loop (ADR 0015).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from asynctask_operator.adapters.api import Kube
from asynctask_operator.adapters.kube import ApiError, Gone, Resource
from asynctask_operator.core.retry import backoff
from asynctask_operator.core.wire import Key, Obj, key_of

logger = logging.getLogger(__name__)

MAX_WATCH_BACKOFF = 30.0


class Sink(Protocol):
    """Where the objects of one kind go."""

    def mark(self) -> float:
        """A moment (of the store's monotonic clock) taken before a listing begins."""
        ...

    def listed(self, obj: Obj, since: float) -> None:
        """An object of a listing that began at ``since``. What the store got since then (a watch
        event, the answer to a write) is at least as new: a listed copy must not undo it."""
        ...

    def listing_done(self, keys: set[Key], since: float, namespace: str | None) -> None:
        """A whole listing (of ``namespace``, or every one) is in: what the store holds and the
        listing lacked was deleted while nobody watched (a DELETED event missed)."""
        ...

    def event(self, type_: str | None, obj: Obj) -> None:
        """A watch event: ``ADDED``, ``MODIFIED`` or ``DELETED``, and the object."""
        ...


async def list_into(api: Kube, resource: Resource, namespace: str | None, selector: str | None, sink: Sink) -> str:
    """List one kind (in one namespace, or all) into ``sink`` a page at a time; the listing's resourceVersion.

    Each page goes to the sink as it is read: the raw objects of a whole listing at once would
    be the process's peak memory (~7 KB per task decoded), which it keeps long after."""
    while True:
        since = sink.mark()
        keys: set[Key] = set()
        version = ""
        try:
            async for page, listed_version in api.list_pages(resource, namespace, selector):
                version = listed_version
                for obj in page:
                    keys.add(key_of(obj))
                    sink.listed(obj, since)
        except Gone:  # the continue token expired between two pages: list again from the start
            logger.info("listing %s: continue token expired; listing again", resource.plural)
            continue
        sink.listing_done(keys, since, namespace)
        return version


async def reflect(
    api: Kube,
    resource: Resource,
    namespace: str | None,
    selector: str | None,
    sink: Sink,
    version: str = "",
    *,
    relisted: Callable[[], object] | None = None,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
) -> None:
    """Watch one kind from ``version`` (listing it first when empty) for as long as the caller runs.

    ``relisted`` is called after each listing the watch itself needed (at a start without a
    version, or after a 410): whatever changed while nobody watched has just been taken in."""
    failures = 0
    while True:
        try:
            if not version:
                version = await list_into(api, resource, namespace, selector, sink)
                if relisted is not None:
                    relisted()
            async for event in api.watch(resource, namespace, selector, version):
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
                        sink.event(event.get("type"), obj)
                    except Exception:  # one object the store cannot take must not stall the stream
                        logger.exception("%s %s/%s: event skipped", resource.plural, *key_of(obj))
        except Gone:
            logger.info("watching %s: resourceVersion %s expired; listing again", resource.plural, version)
            version = ""
        except Exception as exc:
            failures += 1
            delay = backoff(failures, 0.5, MAX_WATCH_BACKOFF)
            logger.warning("watching %s failed (%s); again in %.1fs", resource.plural, exc, delay)
            await sleep(delay)
