"""The fake API server over HTTP: kmock's Kubernetes emulator answering from
:class:`~asynctask_operator.testing.apiserver.ApiServer`, for the integration tests and the benchmarks.

kmock (``kmock.KubernetesEmulator``) serves the HTTP side: the URLs, discovery, its request history,
and its reactions, which answer before the model where a test sets one (``kmock["post", path][:1] << 500``).
Its own semantics are a store's (no resourceVersions, no ``generateName``, no paging, every object
replayed to every watch); here the model has the say:

- a write is applied to the model first, then answered: by a matching reaction if any (so a 500 set
  on a create comes *after* the object is stored: the "timed out after commit" case), else with
  what the model answered; an error of the model's (a 409, a 422, a 404) is the answer;
- a create the test sends itself (through kmock's client: ``emulator.post(...)``) restores an object
  as it was before the test began: the uid, times and status in its body are kept;
- a get, a listing (paged: ``limit``/``continue``, with labelSelector) and a watch (from a
  resourceVersion, with labelSelector, ended at ``timeoutSeconds``; BOOKMARKs on
  :meth:`ApiServerEmulator.bookmark_all`) are the model's, unless a reaction answers them;
- kmock's store (``emulator.objects``, with every version and the deleted ones) is kept as a mirror
  of the model's, for the tests that read it; write through the API or :attr:`ApiServerEmulator.model`,
  never into the mirror;
- every request is logged as a :class:`Hit` (and listeners called after each answer), and with
  ``forget`` an answered request is dropped from kmock's history, which kmock scans for every request.

Needs kmock (the ``test`` extra).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp.test_utils
import aiohttp.web_runner
import attrs
import kmock

from asynctask_operator.adapters.kube import ApiError, Resource
from asynctask_operator.testing.apiserver import ApiServer
from asynctask_operator.testing.hits import Hit, Listener, WatchListener, from_operator, from_the_test, hit_of
from asynctask_operator.testing.managedfields import manager_of
from asynctask_operator.testing.semantics import namespace_of
from asynctask_operator.testing.watches import Event

VERBS = {
    kmock.action.CREATE: "create",
    kmock.action.UPDATE: "patch",
    kmock.action.DELETE: "delete",
    kmock.action.FETCH: "get",
    kmock.action.LIST: "list",
    kmock.action.WATCH: "watch",
}

WRITES = (kmock.action.CREATE, kmock.action.UPDATE, kmock.action.DELETE)
Key = tuple[Any, str | None, str]  # (kmock's resource, namespace, name): kmock's key of a stored object


def _resource(reference: Any) -> Resource:
    """The model's name of kmock's resource reference."""
    return Resource(str(reference.group or ""), str(reference.version or ""), str(reference.plural or ""))


def _error(error: ApiError) -> kmock.KubernetesError:
    return kmock.KubernetesError(status=error.status, reason=error.reason, message=error.message)


@attrs.define(kw_only=True)
class ApiServerEmulator(kmock.KubernetesEmulator):
    """kmock's emulator answering from :attr:`model` (see the module docstring)."""

    model: ApiServer = attrs.field(factory=ApiServer)
    """The API server it serves (a new one by default); the same model can be served in process too."""
    forget: bool = True
    """Drop answered requests from kmock's history (``False``: keep it, for tests that read it)."""
    hits: list[Hit] = attrs.field(factory=list, init=False)
    listeners: list[Listener] = attrs.field(factory=list, init=False)
    watch_listeners: list[WatchListener] = attrs.field(factory=list, init=False)
    """Called with each watch event sent (its stream's Hit, the event, its size in bytes on the wire)."""
    last_operator_hit: float = attrs.field(default=0.0, init=False)
    conflicts: int = attrs.field(default=0, init=False)  # the operator's writes refused for a stale resourceVersion
    _answers: dict[int, Any] = attrs.field(factory=dict, init=False)  # by id() of a write in flight: the model's answer
    _watch_hits: dict[int, Hit] = attrs.field(factory=dict, init=False)  # by id() of a watch request: its Hit

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self.model.listeners.append(self._mirror)

    # -- every request: the log, then the answer, then forgetting it

    async def _handle(self, request: Any) -> Any:
        try:
            return await self._logged(request)
        finally:
            self._answers.pop(id(request), None)
            self._forget(request)

    async def _logged(self, request: Any) -> Any:
        hit = self._hit(request)
        if hit is None or hit.verb == "watch":  # a watch answers when it ends: it is counted when it starts
            if hit is not None:
                self._watch_hits[id(request)] = hit
            return await self._serve(request)
        try:
            response = await self._serve(request)
        except kmock.KubernetesError as exc:
            hit.status = exc.status
            raise
        hit.status = int(response.status)
        body = getattr(response, "body", None)
        hit.received = len(body) if isinstance(body, bytes | bytearray) else 0
        for listener in self.listeners:
            listener(hit, request)
        return response

    async def _serve(self, request: Any) -> Any:
        """Answer ``request``: a write is the model's first, then a reaction's or the model's answer."""
        if request.resource is None:  # discovery, /version
            return await self._react(request)
        resource = _resource(request.resource)
        fault = self.model.fault(VERBS.get(request.action, ""), resource, str(self._name(request)[2]))
        if fault is not None:
            raise _error(fault)
        if request.action not in WRITES:
            return await self._react(request)
        key = self._name(request)
        before = self.stored(key)
        data = request.data if isinstance(request.data, dict) else {}
        manager = manager_of(str(request.headers.get("User-Agent", "")), (request.params or {}).get("fieldManager"))
        try:
            if request.action == kmock.action.CREATE:
                written = self.model.create(
                    resource, request.namespace, data, restore=from_the_test(request), manager=manager
                )
                key = (key[0], key[1], str((written.answer.get("metadata") or {}).get("name") or ""))
            elif request.action == kmock.action.UPDATE:
                written = self.model.patch(
                    resource, request.namespace, request.name, data, subresource=request.subresource, manager=manager
                )
            else:
                uid = (data.get("preconditions") or {}).get("uid")
                written = self.model.delete(resource, request.namespace, request.name, uid=uid)
        except ApiError as exc:
            if exc.reason == "Conflict" and request.action == kmock.action.UPDATE and from_operator(request):
                self.conflicts += 1
            raise _error(exc) from None
        self._answers[id(request)] = written.answer
        self._stored(request, key, before)
        return await self._react(request)

    async def _react(self, request: Any) -> Any:
        """kmock's answer: a matching reaction's, else the fallbacks below (kmock's own store is skipped)."""
        return await kmock.RawHandler._handle(self, request)

    def _stored(self, request: Any, key: Key, before: Any) -> None:
        """Called after a write was stored (``before``: the object as it was, or None); for subclasses."""

    def stored(self, key: Key) -> Any:
        """The model's object under kmock's ``key``, or None when there is none."""
        return self.model.objects.get((_resource(key[0]), key[1] or "", key[2]))

    def _name(self, request: Any) -> Key:
        """The key of the object a request is about (a create's: from its body; "" for a generated name)."""
        data = request.data if isinstance(request.data, dict) else {}
        meta = data.get("metadata") or {}
        return (
            request.resource,
            request.namespace or meta.get("namespace"),
            str(request.name or (meta.get("name") if request.action == kmock.action.CREATE else "") or ""),
        )

    def _mirror(self, event: Event) -> None:
        """Keep kmock's store a copy of the model's: a version per event, a deletion marked (not dropped)."""
        r = event.resource
        key = (
            kmock.resource(r.group, r.version, r.plural),
            namespace_of(event.object) or None,
            event.object["metadata"]["name"],
        )
        found = self._objects._objects.get(key)
        if event.type == "DELETED":
            if found is not None:
                found.delete()
        elif found is None:
            self._objects[key] = event.object
        else:
            found.create(event.object)

    # -- kmock's fallbacks: what the model answers

    async def _serve_create(self, request: Any) -> Any:
        return self._answers[id(request)]

    async def _serve_update(self, request: Any) -> Any:
        return self._answers[id(request)]

    async def _serve_delete(self, request: Any) -> Any:
        return self._answers[id(request)]

    async def _serve_fetch(self, request: Any) -> Any:
        try:
            return self.model.get(_resource(request.resource), request.namespace, str(request.name))
        except ApiError as exc:
            raise _error(exc) from None

    async def _serve_list(self, request: Any) -> Any:
        """A listing in pages (``limit``/``continue``), filtered by ``labelSelector``, with its resourceVersion."""
        if request.resource not in self._get_resources():
            raise kmock.KubernetesResourceNotFoundError()
        params = request.params or {}
        try:
            page = self.model.list(
                _resource(request.resource),
                request.namespace,
                params.get("labelSelector"),
                limit=int(params.get("limit") or 0),
                token=str(params.get("continue") or ""),
            )
        except ApiError as exc:
            raise _error(exc) from None
        meta = {"resourceVersion": page.version} | ({"continue": page.token} if page.token else {})
        return {"metadata": meta, "items": page.items}

    async def _serve_watch(self, request: Any) -> AsyncIterator[Any]:
        """A watch as the model serves it, until ``timeoutSeconds`` or the model ends it."""
        self._forget(request)  # matched already: a stream open for minutes need not be matched against
        hit = self._watch_hits.pop(id(request), None)
        params = request.params or {}
        try:
            watch = self.model.watch(
                _resource(request.resource),
                request.namespace,
                params.get("labelSelector"),
                str(params.get("resourceVersion") or ""),
            )
        except ApiError as exc:
            raise _error(exc) from None
        timeout = float(params.get("timeoutSeconds") or 0) or None
        try:
            yield b""  # the headers: the stream is open
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    while (event := await watch.events.get()) is not None:
                        line = json.dumps(event, separators=(",", ":")).encode() + b"\n"  # as a server sends it
                        if hit is not None:
                            hit.events += 1
                            hit.received += len(line)
                            for listener in self.watch_listeners:
                                listener(hit, event, len(line))
                        yield line
        finally:
            self.model.unwatch(watch)

    async def bookmark_all(self) -> None:
        """A BOOKMARK on every watch stream, at the current resourceVersion (kmock sends none).

        A real API server's bookmarks keep an idle stream alive and tell a client where to resume."""
        self.model.bookmark()

    # -- the request log

    def _forget(self, request: Any) -> None:
        """Drop an answered request from kmock's own history.

        kmock matches each request against its reactions by scanning every request it has
        ever received (``request in reaction._source``), so its cost grows with the history:
        O(requests²) over a run, seconds per request after a few thousand. Users count from
        :attr:`hits` instead; kmock's history keeps only the requests in flight (the open
        watches): ``for r in kmock`` sees those only."""
        if not self.forget:
            return
        for i in range(len(self._requests) - 1, -1, -1):
            if self._requests[i] is request:
                del self._requests[i]
                break
        for payload in self._payloads:
            payload._requests.clear()

    def _hit(self, request: Any) -> Hit | None:
        hit = hit_of(request)
        if hit is None:  # discovery, /version
            if from_operator(request):
                self.last_operator_hit = time.monotonic()
            return None
        self.hits.append(hit)
        if hit.operator:
            self.last_operator_hit = hit.t
        return hit

    def operator_hits(self, since: int = 0) -> list[Hit]:
        return [h for h in self.hits[since:] if h.operator]


class QuickShutdownServer(aiohttp.test_utils.RawTestServer):
    """kmock's server, not waiting 5 s at exit for the watch streams of a stopped operator."""

    async def _make_runner(self, debug: bool = True, **kwargs: Any) -> aiohttp.web_runner.ServerRunner:
        runner = await super()._make_runner(debug=debug, **kwargs)
        runner._shutdown_timeout = 0.1
        return runner
