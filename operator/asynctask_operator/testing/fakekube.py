"""The fake API server in process: the operator's :class:`~asynctask_operator.adapters.api.Kube`
interface over :class:`~asynctask_operator.testing.apiserver.ApiServer`, for unit tests of the
runtime, the gateway and the kubectl plugin.

What it adds to the model is what only a client sees: every request logged (:attr:`FakeKube.requests`)
and counted (:attr:`FakeKube.counter`, as the real client counts), copies handed out, and which
comes first, the answer to a write or the watch event of the same write, the race the operator must
be right under both ways (``order``):

- ``"answer-first"``: the caller has the answer (and runs on with it) before any watcher sees the event;
- ``"event-first"``: the write returns only after every open watch that got its event has handed it
  on and its consumer has handled it;
- ``"random"``: one or the other for each event, from ``seed``.

    fake = FakeKube(order="event-first")
    fake.fail("patch", "asynctasks", Conflict(409, "Conflict", "stale"))  # the next patch of a task
    await fake.create(TASKTYPES, "media", {"metadata": {"name": "echo"}, "spec": {...}})
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import datetime as dt
import functools
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Literal, TypeVar

from asynctask_operator.adapters.api import Kube
from asynctask_operator.adapters.kube import ApiError, NotFound, RequestCounter, Resource
from asynctask_operator.adapters.kubeclient import all_items, api_error
from asynctask_operator.core.wire import Obj
from asynctask_operator.testing.answers import Decide, Tokens
from asynctask_operator.testing.apiserver import ApiServer, ObjKey
from asynctask_operator.testing.semantics import REVIEWS
from asynctask_operator.testing.watches import Watch, Written

Order = Literal["answer-first", "event-first", "random"]
PathHandler = Callable[[str, list[tuple[str, str]], str], Awaitable[tuple[int, bytes]]]
"""Answers a raw GET: (path, query, accept) -> (status, body), as an aggregated API server would."""
NO_SUCH_PATH = b'{"kind":"Status","apiVersion":"v1","status":"Failure","message":"the server could not find the requested resource","reason":"NotFound","details":{},"code":404}'
"""The API server's answer for a path it does not serve (an API group without its APIService)."""
T = TypeVar("T")


@dataclasses.dataclass
class Request:
    verb: str
    resource: str
    namespace: str | None
    name: str
    subresource: str | None = None


class FakeKube:
    """See the module docstring. ``model``: the API server to face (a new one by default, with ``now``)."""

    def __init__(
        self,
        *,
        order: Order = "answer-first",
        seed: int = 0,
        now: Callable[[], dt.datetime] | None = None,
        model: ApiServer | None = None,
    ) -> None:
        self.model = model or ApiServer(now=now)
        self.order: Order = order
        self.random = random.Random(seed)
        self.counter = RequestCounter()
        self.requests: list[Request] = []
        self.after_create: dict[str, list[Callable[[Obj], object]]] = {}
        self.paths: list[tuple[str, PathHandler]] = []
        self._handled: dict[Watch, asyncio.Event] = {}  # set whenever a watch's consumer has handled all it was given

    # ------------------------------------------------------------------ the model's, here for the tests' hands

    @property
    def now(self) -> Callable[[], dt.datetime]:
        return self.model.now

    @now.setter
    def now(self, now: Callable[[], dt.datetime]) -> None:
        self.model.now = now

    @property
    def objects(self) -> dict[ObjKey, Obj]:
        return self.model.objects

    @property
    def tokens(self) -> Tokens | None:
        return self.model.reviewer.tokens

    @property
    def decide(self) -> Decide | None:
        return self.model.reviewer.decide

    @decide.setter
    def decide(self, decide: Decide | None) -> None:
        self.model.reviewer.decide = decide

    def reviews(self, tokens: Tokens, decide: Decide = lambda user, groups, attributes: True) -> None:
        self.model.reviews(tokens, decide)

    def fail(self, verb: str, plural: str, error: ApiError, *, name: str | None = None, times: int = 1) -> None:
        self.model.fail(verb, plural, error, name=name, times=times)

    def compact(self) -> None:
        self.model.compact()

    def bookmark(self) -> None:
        self.model.bookmark()

    def end_watches(self) -> None:
        self.model.end_watches()

    def expire_continues(self) -> None:
        self.model.expire_continues()

    # ------------------------------------------------------------------ the test's hands

    def on_create(self, plural: str, hook: Callable[[Obj], object]) -> None:
        """Call ``hook`` with a copy of every object of ``plural`` created (after the answer), as a controller would."""
        self.after_create.setdefault(plural, []).append(hook)

    def serve_paths(self, prefix: str, handler: PathHandler) -> None:
        """Answer raw GETs of ``prefix`` and below with ``handler``, as the API server proxies an aggregated
        API to the server its APIService names; without one, such a GET is 404, as where none is installed."""
        self.paths.append((prefix.rstrip("/"), handler))

    def writes(self) -> list[Request]:
        return [r for r in self.requests if r.verb in ("create", "patch", "update", "delete")]

    def get_object(self, resource: Resource, namespace: str, name: str) -> Obj | None:
        obj = self.model.objects.get((resource, namespace, name))
        return copy.deepcopy(obj) if obj is not None else None

    def of(self, resource: Resource, namespace: str | None = None) -> list[Obj]:
        return [
            copy.deepcopy(o)
            for (r, ns, _), o in sorted(self.model.objects.items(), key=lambda kv: kv[0][1:])
            if r == resource and (namespace is None or ns == namespace)
        ]

    # ------------------------------------------------------------------ the client interface

    async def create(self, resource: Resource, namespace: str | None, body: Obj) -> Obj:
        if resource.plural in REVIEWS:
            self._enter("create", resource, "", "")
            self.counter.add("create", resource.plural, 201)
            return self.model.create(resource, None, body).answer
        meta = body.get("metadata") or {}
        if not meta.get("name") and meta.get("generateName"):  # named here, so the request log names it
            body = {**body, "metadata": {**meta, "name": self.model.generate_name(str(meta["generateName"]))}}
        self._enter("create", resource, namespace or "", str((body.get("metadata") or {}).get("name") or ""))
        written = self._call("create", resource, lambda: self.model.create(resource, namespace, body))
        await self._settle(written)
        self.counter.add("create", resource.plural, 201)
        answer = copy.deepcopy(written.answer)
        for hook in self.after_create.get(resource.plural, ()):
            asyncio.get_running_loop().call_soon(hook, copy.deepcopy(answer))
        return answer

    async def replace(self, resource: Resource, name: str, body: Obj) -> Obj:
        self._enter("update", resource, "", name)
        written = self._call("update", resource, lambda: self.model.replace(resource, None, name, body))
        self.counter.add("update", resource.plural, 200)
        await self._settle(written)
        return copy.deepcopy(written.answer)

    async def get(self, resource: Resource, namespace: str | None, name: str) -> Obj:
        self._enter("get", resource, namespace or "", name)
        found = self._call("get", resource, lambda: self.model.get(resource, namespace, name))
        self.counter.add("get", resource.plural, 200)
        return copy.deepcopy(found)

    async def list_objects(
        self, resource: Resource, namespace: str | None = None, label_selector: str | None = None
    ) -> list[Obj]:
        return await all_items(self.list_pages(resource, namespace, label_selector))

    async def list_pages(
        self,
        resource: Resource,
        namespace: str | None = None,
        label_selector: str | None = None,
        *,
        limit: int = 500,
    ) -> AsyncIterator[tuple[list[Obj], str]]:
        token = ""
        while True:
            self._enter("list", resource, namespace or "", "")
            listing = functools.partial(self.model.list, resource, namespace, label_selector, limit=limit, token=token)
            page = self._call("list", resource, listing)
            self.counter.add("list", resource.plural, 200)
            yield copy.deepcopy(page.items), page.version
            if not page.token:
                return
            token = page.token
            await asyncio.sleep(0)  # another request between two pages

    async def watch(
        self,
        resource: Resource,
        namespace: str | None,
        label_selector: str | None,
        resource_version: str,
        *,
        timeout_seconds: int = 300,
    ) -> AsyncIterator[Obj]:
        self._enter("watch", resource, namespace or "", "")
        watch = self._call(
            "watch", resource, lambda: self.model.watch(resource, namespace, label_selector, resource_version)
        )
        self.counter.add("watch", resource.plural, 200)
        handled = self._handled[watch] = asyncio.Event()
        try:
            async with asyncio.timeout(timeout_seconds):
                while True:
                    if watch.events.empty():
                        handled.set()
                    event = await watch.events.get()
                    handled.clear()
                    if event is None:
                        return
                    yield copy.deepcopy(event)
        except TimeoutError:
            return
        finally:
            self.model.unwatch(watch)
            del self._handled[watch]
            handled.set()

    async def patch(
        self,
        resource: Resource,
        namespace: str,
        name: str,
        patch: Obj,
        *,
        subresource: str | None = None,
    ) -> Obj:
        self._enter("patch", resource, namespace, name, subresource)
        written = self._call(
            "patch", resource, lambda: self.model.patch(resource, namespace, name, patch, subresource=subresource)
        )
        self.counter.add("patch", resource.plural, 200)
        await self._settle(written)
        return copy.deepcopy(written.answer)

    async def delete(self, resource: Resource, namespace: str, name: str, *, uid: str | None = None) -> bool:
        self._enter("delete", resource, namespace, name)
        try:
            written = self._call("delete", resource, lambda: self.model.delete(resource, namespace, name, uid=uid))
        except NotFound:
            return False
        self.counter.add("delete", resource.plural, 200)
        await self._settle(written)
        return True

    async def raw_get(
        self, path: str, query: Sequence[tuple[str, str]] = (), *, accept: str = "application/json"
    ) -> bytes:
        plural = path.rstrip("/").rsplit("/", 1)[-1] or "/"
        self.requests.append(Request("get", plural, None, path))
        for prefix, handler in self.paths:
            if path == prefix or path.startswith(prefix + "/"):
                status, body = await handler(path, list(query), accept)
                break
        else:
            status, body = 404, NO_SUCH_PATH
        self.counter.add("get", plural, status)
        if 200 <= status < 300:
            return body
        raise api_error(status, body)

    # ------------------------------------------------------------------ inside

    def _enter(self, verb: str, resource: Resource, namespace: str, name: str, sub: str | None = None) -> None:
        """Log the request; answer it with the error the model was told to fail it with, if any."""
        self.requests.append(Request(verb, resource.plural, namespace or None, name, sub))
        error = self.model.fault(verb, resource, name)
        if error is not None:
            self.counter.add(verb, resource.plural, error.status)
            raise error

    def _call(self, verb: str, resource: Resource, call: Callable[[], T]) -> T:
        try:
            return call()
        except ApiError as error:
            self.counter.add(verb, resource.plural, error.status)
            raise

    async def _settle(self, written: Written) -> None:
        """Wait, for each event of the write that is to come first, until its watchers have handled it.

        Every watch that was given an event is marked busy before anything waits: its consumer marks
        it idle again only once it has asked for more with nothing left (all of this write's events)."""
        for delivery in written.deliveries:
            for watch in delivery.watches:
                if watch in self._handled:
                    self._handled[watch].clear()
        for delivery in written.deliveries:
            order = self.order if self.order != "random" else self.random.choice(("answer-first", "event-first"))
            if order == "event-first":
                for watch in delivery.watches:
                    if watch in self._handled:
                        await self._handled[watch].wait()


def _conforms(fake: FakeKube) -> Kube:
    return fake  # mypy checks here that the fake is a Kube
