"""The gateway's read cache of one kind, fed by the reflector, and its fan-out to event streams.

One :class:`Store` per kind (AsyncTasks, TaskQueues, ScheduledTasks) is the
:class:`~asynctask_operator.adapters.reflector.Sink` of that kind's list/watch loop: every
GET, listing, event stream and statistic is read from it, so a thousand clients cost the API
server nothing more. A write's answer goes in too (:meth:`Store.put`), so a GET right after a
POST sees the task before its watch event arrives.

Each change is offered to every :class:`Subscription` of its namespace through a bounded
queue; a client that falls :attr:`Subscription.size` changes behind is dropped (its stream
ends; it reconnects with ``Last-Event-ID``), never the gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from asynctask_operator.core.clocks import Clocks
from asynctask_operator.core.wire import Key, Obj, key_of

V = TypeVar("V")
Change = tuple[str, Obj]  # ("ADDED" | "MODIFIED" | "DELETED", object)


def version_of(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


TOMBSTONE_SECONDS = 600.0
"""How long a deleted key's time is kept: longer than any listing of the kind takes."""


def newer(candidate: Obj, current: Obj | None) -> bool:
    """Whether ``candidate`` may replace ``current``: resourceVersions compare as numbers when both are
    (etcd's are; the API only promises equality), otherwise the later arrival wins."""
    if current is None:
        return True
    a, b = version_of(candidate), version_of(current)
    if a.isdigit() and b.isdigit():
        return int(a) >= int(b)
    return True


@dataclasses.dataclass(eq=False)
class Subscription:
    """The changes of one namespace (or all: ``None``) from the moment of subscribing."""

    namespace: str | None
    size: int
    queue: asyncio.Queue[Change | None] = dataclasses.field(init=False)
    dropped: bool = False

    def __post_init__(self) -> None:
        self.queue = asyncio.Queue(self.size + 1)  # one more: the end-of-stream mark always fits

    def offer(self, change: Change) -> None:
        if self.dropped:
            return
        if self.queue.qsize() >= self.size:
            self.dropped = True  # too slow: end its stream rather than hold every change for it
            self.queue.put_nowait(None)
            return
        self.queue.put_nowait(change)

    async def next(self) -> Change | None:
        """The next change; None when the subscriber was dropped."""
        return await self.queue.get()


class Store(Generic[V]):
    """Objects of one kind by (namespace, name): the reflector's sink, the readers' source."""

    def __init__(self, clocks: Clocks, listings: int = 1, view: Callable[[Obj], V] | None = None) -> None:
        self.clocks = clocks
        self.view = view
        self.views: dict[Key, V] = {}
        """``view(obj)`` of each object, read once when it changes (the tasks' :class:`~asynctask_operator.core.views.TaskView`:
        every answer, page, stream and position reads these, none reads an object again)."""
        self.objects: dict[Key, Obj] = {}
        self._touched: dict[Key, float] = {}  # when an event or a write answer last set a key held
        self._gone: dict[Key, float] = {}  # when a key was dropped, oldest first, for TOMBSTONE_SECONDS
        self.deleted: dict[Key, Obj] = {}
        """The last state of each object deleted in the last :data:`TOMBSTONE_SECONDS` (the deletion's
        watch event, or the last held): a stream resumed with ``Last-Event-ID`` learns of deletions too."""
        self._listings_left = listings  # listings (one per namespace watched) before it is synced
        self.synced = asyncio.Event()
        self.subscriptions: set[Subscription] = set()
        self.revision = 0  # counts the changes: what is computed from the store is good until it moves
        self.newest = 0
        """The highest resourceVersion seen, where they are numbers (etcd's are, and grow across every kind):
        a state drawn from the store is older than any change with a higher one."""

    # ------------------------------------------------------------------ the Sink

    def mark(self) -> float:
        return self.clocks.monotonic()

    def listed(self, obj: Obj, since: float) -> None:
        key = key_of(obj)
        if self._last_change(key) > since:
            return  # a watch event, a write's answer or a deletion since the listing began is newer
        current = self.objects.get(key)
        if current is None or (version_of(current) != version_of(obj) and newer(obj, current)):
            self._set(key, obj, "ADDED" if current is None else "MODIFIED")

    def listing_done(self, keys: set[Key], since: float, namespace: str | None) -> None:
        for key in [k for k in self.objects if (namespace is None or k[0] == namespace) and k not in keys]:
            if self._last_change(key) <= since:
                self._drop(key)
        if not self.synced.is_set():
            self._listings_left -= 1
            if self._listings_left <= 0:
                self.synced.set()

    def event(self, type_: str | None, obj: Obj) -> None:
        key = key_of(obj)
        self._touched[key] = self.clocks.monotonic()
        current = self.objects.get(key)
        if type_ == "DELETED":
            self._drop(key, obj)
        elif current is not None and version_of(obj) and version_of(obj) == version_of(current):
            return  # the event of a write whose answer is in already
        elif newer(obj, current):
            self._set(key, obj, "ADDED" if key not in self.objects else "MODIFIED")

    # ------------------------------------------------------------------ writes and reads

    def put(self, obj: Obj) -> None:
        """The API server's answer to a write: the object as it is now."""
        key = key_of(obj)
        if newer(obj, self.objects.get(key)):
            self._touched[key] = self.clocks.monotonic()
            if self.objects.get(key) != obj:
                self._set(key, obj, "ADDED" if key not in self.objects else "MODIFIED")

    def get(self, namespace: str, name: str) -> Obj | None:
        return self.objects.get((namespace, name))

    def in_namespace(self, namespace: str) -> Iterator[Obj]:
        """The namespace's objects, by name."""
        for key in self.keys_in(namespace):
            yield self.objects[key]

    def keys_in(self, namespace: str) -> list[Key]:
        """The keys of the namespace's objects, by name."""
        return sorted(k for k in self.objects if k[0] == namespace)

    @contextlib.contextmanager
    def subscribe(self, namespace: str | None, size: int) -> Iterator[Subscription]:
        subscription = Subscription(namespace, size)
        self.subscriptions.add(subscription)
        try:
            yield subscription
        finally:
            self.subscriptions.discard(subscription)

    # ------------------------------------------------------------------ inside

    def _set(self, key: Key, obj: Obj, type_: str) -> None:
        version = version_of(obj)
        if version.isdigit() and int(version) > self.newest:
            self.newest = int(version)
        self.objects[key] = obj
        self.deleted.pop(key, None)
        if self.view is not None:
            self.views[key] = self.view(obj)
        self._publish(key, (type_, obj))

    def _last_change(self, key: Key) -> float:
        return max(self._touched.get(key, -1.0), self._gone.get(key, -1.0))

    def _drop(self, key: Key, gone: Obj | None = None) -> None:
        obj = self.objects.pop(key, None)
        self.views.pop(key, None)
        # The deletion's time outlives the object only as long as a listing could still be under
        # way; one entry per object ever deleted would grow for as long as the gateway runs.
        now = self.clocks.monotonic()
        self._touched.pop(key, None)
        self._gone.pop(key, None)
        self._gone[key] = now
        last = gone or obj
        if last is not None:
            self.deleted[key] = last
        for old, at in list(self._gone.items()):
            if at > now - TOMBSTONE_SECONDS:
                break
            del self._gone[old]
            self.deleted.pop(old, None)
        if obj is not None or gone is not None:
            self._publish(key, ("DELETED", gone or obj or {}))

    def _publish(self, key: Key, change: Change) -> None:
        self.revision += 1
        for subscription in list(self.subscriptions):
            if subscription.namespace is None or subscription.namespace == key[0]:
                subscription.offer(change)
