"""Server-Sent Events over the gateway's one cache: a task's status changes, a namespace's tasks.

A subscriber gets each change the reflector brings, through a bounded queue
(:class:`~asynctask_operator.gateway.store.Subscription`), so a thousand streams open no watch of
their own. Each event's ``id`` is the task's resourceVersion; a stream resumed with
``Last-Event-ID`` is sent what it missed first. A comment is sent when a stream has been idle for
``keepalive`` seconds (ingress proxies close silent connections). The API's routes
(:mod:`~asynctask_operator.gateway.events`) and the console's live pages stream through these.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from asynctask_operator.core.views import TaskView
from asynctask_operator.core.wire import Obj
from asynctask_operator.gateway.answers import task_answer
from asynctask_operator.gateway.reads import view_of
from asynctask_operator.gateway.store import Change, Store, Subscription, version_of

KEEPALIVE = b": keep-alive\n\n"
STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def frame(event: str, data: Any, id_: str | None = None) -> bytes:
    lines = [f"event: {event}"]
    if id_:
        lines.append(f"id: {id_}")
    lines.append("data: " + json.dumps(data, separators=(",", ":")))
    return ("\n".join(lines) + "\n\n").encode()


Render = Callable[[TaskView, Obj], dict[str, Any]]
"""What a task's event says of it: the API's summary (:func:`~asynctask_operator.gateway.answers.task_answer`),
or the console's cells."""


def status_frame(view: TaskView, obj: Obj, event: str = "status", render: Render = task_answer) -> bytes:
    return frame(event, render(view, obj), view.resource_version)


def watched(view: TaskView) -> tuple[Any, ...]:
    """What a status event is about: a change elsewhere (a label, the callback record) sends none."""
    return (view.phase, view.reason, view.attempt, view.progress, view.message)


async def changes(subscription: Subscription, keepalive: float) -> AsyncIterator[Change | bytes]:
    """The subscription's changes, with :data:`KEEPALIVE` after each ``keepalive`` seconds without
    one (ingress idle timeouts end silent streams); ends when the store drops a too slow reader."""
    while True:
        try:
            change = await asyncio.wait_for(subscription.next(), keepalive)
        except TimeoutError:
            yield KEEPALIVE
            continue
        if change is None:
            return
        yield change


async def task_stream(
    store: Store[TaskView],
    ns: str,
    name: str,
    last_id: str | None,
    keepalive: float,
    size: int,
    render: Render = task_answer,
) -> AsyncIterator[bytes]:
    with store.subscribe(ns, size) as subscription:
        current = store.get(ns, name)
        if current is None:
            yield frame("deleted", {"name": name, "namespace": ns})
            return
        view = view_of(store, current)
        sent = watched(view)
        if last_id != view.resource_version:
            yield status_frame(view, current, render=render)
        if view.terminal:
            return
        async for change in changes(subscription, keepalive):
            if isinstance(change, bytes):
                yield change
                continue
            type_, obj = change
            if (obj.get("metadata") or {}).get("name") != name:
                continue
            if type_ == "DELETED":
                yield frame("deleted", {"name": name, "namespace": ns}, version_of(obj))
                return
            view = view_of(store, obj)
            now = watched(view)
            if now == sent:
                continue
            sent = now
            yield status_frame(view, obj, render=render)
            if view.terminal:
                return


def selected(view: TaskView, type_: str | None, queue: str | None) -> bool:
    return (not type_ or view.type == type_) and (not queue or view.queue == queue)


def missed_since(store: Store[TaskView], ns: str, last_id: str) -> list[tuple[str, Obj]]:
    """What a namespace stream resumed after event ``last_id`` missed, oldest first: the tasks changed
    since, and those deleted since (kept for :data:`~asynctask_operator.gateway.store.TOMBSTONE_SECONDS`).

    resourceVersions are opaque to clients; the API server's (etcd's) are integers, and only those
    compare. With one that is not, every task is sent again (``task``: the client takes each as the
    current state), deletions too, rather than some silently skipped."""
    changed = [("task", o) for o in store.in_namespace(ns)]
    deleted = [("deleted", o) for k, o in store.deleted.items() if k[0] == ns]
    if not last_id.isdigit():
        return changed + deleted
    after = int(last_id)
    newer = [(e, o) for e, o in changed + deleted if version_of(o).isdigit() and int(version_of(o)) > after]
    return sorted(newer, key=lambda item: int(version_of(item[1])))


def initial_events(store: Store[TaskView], ns: str) -> list[tuple[str, Obj]]:
    """The namespace's tasks as a stream starts: each as ``task``, oldest change first where resourceVersions
    are numbers (so the last event's id is the snapshot's version), else by name."""
    current = list(store.in_namespace(ns))
    if all(version_of(o).isdigit() for o in current):
        current.sort(key=lambda o: int(version_of(o)))
    return [("task", o) for o in current]


def bookmark(store: Store[TaskView], ns: str) -> bytes:
    """The end of a stream's initial events (Kubernetes' ``sendInitialEvents`` marks it with a BOOKMARK
    annotated ``k8s.io/initial-events-end``): every task sent so far is the namespace's state; changes follow.
    Its id is the newest resourceVersion of the namespace, so a stream resumed from it sends nothing twice."""
    versions = [int(v) for o in store.in_namespace(ns) if (v := version_of(o)).isdigit()]
    newest = str(max(versions)) if versions else None
    return frame("bookmark", {"initialEventsEnd": True, "resourceVersion": newest}, newest)


async def namespace_stream(
    store: Store[TaskView],
    ns: str,
    type_: str | None,
    queue: str | None,
    last_id: str | None,
    keepalive: float,
    size: int,
    initial: bool = True,
) -> AsyncIterator[bytes]:
    with store.subscribe(ns, size) as subscription:
        if last_id:
            first = missed_since(store, ns, last_id)
        else:
            first = initial_events(store, ns) if initial else []
        for event, obj in first:
            view = view_of(store, obj)
            if selected(view, type_, queue):
                yield status_frame(view, obj, event)
        if last_id or initial:
            yield bookmark(store, ns)
        async for change in changes(subscription, keepalive):
            if isinstance(change, bytes):
                yield change
                continue
            type_of_change, obj = change
            view = view_of(store, obj)
            if selected(view, type_, queue):
                yield status_frame(view, obj, "deleted" if type_of_change == "DELETED" else "task")
