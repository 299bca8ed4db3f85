"""kmock's Kubernetes emulator with the parts of an API server's semantics the operator relies on.

kmock (``kmock.KubernetesEmulator``) is a store behind HTTP: it keeps whatever
resourceVersion a body carries and checks none, knows no ``generateName``, answers a
listing in one piece with resourceVersion ``"..."``, replays every object to every watch
(and can miss what changes while it sends them), and matches each request against every
request it has ever received, so a long run grows quadratic. :class:`ApiServerEmulator`
adds, once for every user:

- resourceVersions that advance on every write, and a 409 to the operator's write that
  names a stale one (optimistic concurrency; the test harness's own writes are not checked);
- ``generateName``;
- listings in pages (``limit``/``continue``) with a resourceVersion;
- watches: without a resourceVersion, every object as ADDED, then every event after that
  listing without a gap; from a resourceVersion, only what changed (or was deleted) after it;
- forgetting answered requests (kmock's history keeps only the requests in flight), with a
  light log of its own instead: every request as a :class:`Hit`, and listeners called after
  each answer;
- BOOKMARK events on demand (:meth:`ApiServerEmulator.bookmark_all`).

Its users: every integration test (``tests/integration/conftest.py`` makes it the ``kmock``
fixture's class, with ``forget=False``: those tests count the operator's requests in kmock's
own history and use kmock's counted reactions, ``kmock[...][:1] << 500``, which forgetting
would empty; they are short enough not to need it), the chaos test (a subclass that only adds
faults and a ledger, and forgets) and the benchmarks (``bench/common.py``, which forget). It
lives here, in ``tests/support``, and the benchmarks import it, not the other way round: the
benchmarks already build on the test harness (``tests.integration.harness``) and run from the
repository's root (``python -m bench.scale``), where ``tests`` is importable, while the suite
should not depend on a tool folder for what it checks.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, cast

import aiohttp.test_utils
import aiohttp.web_runner
import attrs
import kmock
from kmock._internal import k8s as kmock_k8s

# The operator process sends its own requests as "asynctask-operator" (kopf's, if any, as "kopf/...").
OPERATOR_AGENTS = ("asynctask-operator", "kopf/")
WRITE_VERBS = frozenset({"create", "update", "patch", "delete"})
WRITES = (kmock.action.CREATE, kmock.action.UPDATE, kmock.action.DELETE)

Key = tuple[Any, str | None, str]  # (resource, namespace, name): kmock's key of a stored object


@attrs.define
class Hit:
    """One request the emulator answered, as its users count it."""

    t: float  # time.monotonic() when it was received
    operator: bool  # sent by the operator process
    kopf: bool  # sent by kopf's client
    method: str
    verb: str  # get, list, watch, create, update, patch, delete
    resource: str  # plural, plus "/status" for the subresource
    namespace: str | None
    name: str | None  # from the path, or from the body of a create (an Event's: the object it is about)
    selector: str  # labelSelector, if any
    status: int | None = None  # the answer's code; None while a watch streams
    agent: str = ""  # the User-Agent (the archiver's requests are counted apart: bench.api_budget --archive)

    @property
    def write(self) -> bool:
        return self.verb in WRITE_VERBS

    @property
    def subject(self) -> str:
        """The name the request is about: the object's, or the Job name a pod listing selects."""
        if self.name:
            return self.name
        for part in self.selector.split(","):
            key, _, value = part.partition("=")
            if key.strip() in ("batch.kubernetes.io/job-name", "job-name"):
                return value.strip()
        return ""


Listener = Callable[[Hit, Any], None]


def from_operator(request: Any) -> bool:
    return str(request.headers.get("User-Agent", "")).startswith(OPERATOR_AGENTS)


def _verb(method: str, name: str | None, params: dict[str, str]) -> str:
    if method == "GET":
        if name:
            return "get"
        return "watch" if params.get("watch", "").lower() in ("1", "true") else "list"
    return {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}.get(method, method.lower())


def version_of(obj: Any) -> int:
    version = str((obj.get("metadata") or {}).get("resourceVersion") or "")
    return int(version) if version.isdigit() else 0


@attrs.define(kw_only=True)
class ApiServerEmulator(kmock.KubernetesEmulator):
    """kmock's emulator, closer to an API server where the operator depends on it (see the module)."""

    forget: bool = True
    """Drop answered requests from kmock's history (``False``: keep it, for tests that read it)."""
    hits: list[Hit] = attrs.field(factory=list, init=False)
    listeners: list[Listener] = attrs.field(factory=list, init=False)
    last_operator_hit: float = attrs.field(default=0.0, init=False)
    conflicts: int = attrs.field(default=0, init=False)  # the operator's writes refused for a stale resourceVersion
    _versions: Iterator[int] = attrs.field(factory=lambda: itertools.count(10_000_000), init=False)
    _deleted_at: dict[Key, int] = attrs.field(factory=dict, init=False)  # the resourceVersion of each deletion
    # A write's resourceVersion is given and its object stored as one step; a listing's or a watch's
    # resourceVersion is taken with its snapshot. Without it a write numbered before a listing but
    # stored after it would be in neither the listing nor the watch that follows it.
    _writes: asyncio.Lock = attrs.field(factory=asyncio.Lock, init=False)

    def next_version(self) -> str:
        """A new resourceVersion, later than every one given so far (for objects put in the store directly)."""
        return str(next(self._versions))

    # -- every request: the log, then the answer, then forgetting it

    async def _handle(self, request: Any) -> Any:
        try:
            return await self._logged(request)
        finally:
            self._forget(request)

    async def _logged(self, request: Any) -> Any:
        hit = self._hit(request)
        if hit is None or hit.verb == "watch":  # a watch answers when it ends: it is counted when it starts
            return await self._serve(request)
        try:
            response = await self._serve(request)
        except kmock_k8s.KubernetesError as exc:
            hit.status = exc.status
            raise
        hit.status = int(response.status)
        for listener in self.listeners:
            listener(hit, request)
        return response

    async def _serve(self, request: Any) -> Any:
        """Answer ``request``: a write with its resourceVersion checked and a new one given."""
        if request.resource is None or request.action not in WRITES:
            return await super()._handle(request)
        async with self._writes:
            key = self._name(request)
            before = self.stored(key)
            self._version(request, before)
            response = await super()._handle(request)
            if before is not None and self.stored(key) is None:  # deleted (or its last finalizer removed)
                self._deleted_at[key] = next(self._versions)
            elif before is None:
                self._deleted_at.pop(key, None)  # created (again)
            self._stored(request, key, before)
            return response

    def _stored(self, request: Any, key: Key, before: Any) -> None:
        """Called after a write was stored (``before``: the object as it was, or None); for subclasses."""

    def stored(self, key: Key) -> Any:
        """The stored object (kmock's) under ``key``, or None when there is none or it was deleted."""
        found = self._objects._objects.get(key)
        return None if found is None or found.deleted else found

    def _name(self, request: Any) -> Key:
        """The key of the object a write is about; a create with ``generateName`` is given its name here."""
        data = request.data if isinstance(request.data, dict) else {}
        meta = data.get("metadata") or {}
        if request.action == kmock.action.CREATE and not meta.get("name") and meta.get("generateName"):
            meta["name"] = f"{meta['generateName']}{next(self._versions):x}"  # kmock knows no generateName
        return (
            request.resource,
            request.namespace or meta.get("namespace"),
            str(request.name or meta.get("name") or ""),
        )

    def _version(self, request: Any, before: Any) -> None:
        """Refuse the operator's update that names a stale resourceVersion; give every create or update a new one.

        A real API server answers 409 to such a write, which is how the operator notices it
        decided on stale data; without it a stale decision would be written (and counted) as
        if it were a new one. The harness's own writes carry a resourceVersion of their own
        and are not checked."""
        if not isinstance(request.data, dict) or request.action == kmock.action.DELETE:
            return
        meta = request.data.setdefault("metadata", {})
        stale = (
            request.action == kmock.action.UPDATE
            and before is not None
            and meta.get("resourceVersion")
            and from_operator(request)
            and (before.get("metadata") or {}).get("resourceVersion") != meta["resourceVersion"]
        )
        if stale:
            self.conflicts += 1
            raise kmock_k8s.KubernetesError(
                status=409,
                reason="Conflict",
                message="the object has been modified; please apply your changes to the latest version",
            )
        meta["resourceVersion"] = str(next(self._versions))

    # -- listings and watches

    async def _serve_list(self, request: Any) -> Any:
        """A listing with a resourceVersion (kmock answers "...") and in pages, as an API server does.

        ``limit`` and ``continue`` (kmock ignores both): the page after the continue token's
        object, in (namespace, name) order, and a token when more remain. A page is found by
        key and only its objects are copied (kmock copies every object of the resource for
        every listing, which made 21 pages cost 21 whole listings)."""
        params = request.params or {}
        limit = int(params.get("limit") or 0)
        token = str(params.get("continue") or "")
        if limit <= 0:
            async with self._writes:
                version = self.next_version()
                listing = cast(dict[str, Any], await super()._serve_list(request))
            listing["metadata"] = {"resourceVersion": version}
            return listing
        if request.resource not in self._get_resources():
            raise kmock_k8s.KubernetesResourceNotFoundError()
        async with self._writes, self._lock:
            version = token.split("|", 1)[0] if token else self.next_version()
            keys = sorted(
                (ns or "", name, ns)
                for (resource, ns, name), obj in self._objects._objects.items()
                if resource == request.resource
                and (request.namespace is None or ns == request.namespace)
                and not obj.deleted
            )
            if token:
                after = tuple(token.split("|", 1)[1].split("/", 1))
                keys = [k for k in keys if (k[0], k[1]) > after]
            page = [self._objects._objects[request.resource, ns, name].raw for _, name, ns in keys[:limit]]
        meta = {"resourceVersion": version}
        if len(keys) > limit:
            last = keys[limit - 1]
            meta["continue"] = f"{version}|{last[0]}/{last[1]}"
        return {"metadata": meta, "items": page}

    async def _serve_watch(self, request: Any) -> AsyncIterator[Any]:
        """A watch as an API server serves it.

        Without a resourceVersion (or "0"): every object as ADDED, then every event after
        that listing: the place on the event bus is taken with the listing (kmock takes it
        after sending it, and misses what changed meanwhile). From a resourceVersion: only
        what changed or was deleted after it (kmock replays every object, so a client that
        lists and then watches from the listing's resourceVersion would get each object twice
        at startup, and again at each reconnect)."""
        self._forget(request)  # matched already: a stream open for minutes need not be matched against
        since = str((request.params or {}).get("resourceVersion", ""))
        resumed = since.isdigit() and since != "0"
        yield b""  # the headers: the stream is open
        bus = self._buses[request.resource]
        async with self._writes, self._lock:
            mark = await bus.mark()
            objects = self._KubernetesEmulator__get_objs(request, strict=False)
            if not resumed:
                events = [{"type": "ADDED", "object": obj.raw} for obj in objects if not obj.deleted]
            else:
                events = [
                    {"type": "MODIFIED", "object": obj.raw}
                    for obj in objects
                    if not obj.deleted and version_of(obj) > int(since)
                ]
                events += [
                    {"type": "DELETED", "object": gone.last.raw}
                    for key, at in self._deleted_at.items()
                    if at > int(since)
                    and key[0] == request.resource
                    and (request.namespace is None or key[1] == request.namespace)
                    and (gone := self._objects._objects.get(key)) is not None
                    and gone.deleted
                    and not gone.empty
                ]
        try:
            for event in events:
                yield event
            check = self._KubernetesEmulator__check  # type: ignore[attr-defined]
            async for event in bus.stream(since=mark):
                meta = (event.get("object") or {}).get("metadata") or {}
                if check(request, request.resource, meta.get("namespace"), meta.get("name"), strict=False):
                    yield event
        finally:
            await bus.unmark(mark)

    async def bookmark_all(self) -> None:
        """A BOOKMARK on every watch stream, with a resourceVersion later than every write so far.

        A real API server's bookmarks keep an idle stream alive and tell a client where to resume."""
        async with self._writes:
            version = self.next_version()
        resources: list[Any] = list(self.resources)  # kmock's keys: resource references
        for resource in resources:
            info = self.resources[resource]
            event = {
                "type": "BOOKMARK",
                "object": {
                    "kind": info.kind,
                    "apiVersion": f"{resource.group}/{resource.version}" if resource.group else resource.version,
                    "metadata": {"resourceVersion": version},
                },
            }
            await self._buses[resource].put(event)

    def _KubernetesEmulator__get_objs(self, request: Any, strict: bool) -> list[Any]:
        """kmock's object lookup, by key when the request names one object (kmock scans them all)."""
        if request.name is not None and (strict or request.namespace is not None):
            found = self._objects._objects.get((request.resource, request.namespace, request.name))
            if found is not None:
                return [found]
        return super()._KubernetesEmulator__get_objs(request, strict)  # type: ignore[misc,no-any-return]

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
        agent = str(request.headers.get("User-Agent", ""))
        operator = agent.startswith(OPERATOR_AGENTS)
        if request.resource is None or not request.resource.plural:  # discovery, /version
            if operator:
                self.last_operator_hit = time.monotonic()
            return None
        method = str(request.method.value).upper()
        name = request.name
        if method == "POST" and not name and isinstance(request.data, dict):
            name = (request.data.get("metadata") or {}).get("name")
            if request.resource.plural == "events":  # an Event counts for the object it is about
                name = (request.data.get("involvedObject") or {}).get("name") or name
        params = dict(request.params or {})
        resource = request.resource.plural + (f"/{request.subresource}" if request.subresource else "")
        hit = Hit(
            t=time.monotonic(),
            operator=operator,
            kopf=agent.startswith("kopf/"),
            method=method,
            verb=_verb(method, name if method != "POST" else None, params),
            resource=resource,
            namespace=request.namespace,
            name=name,
            selector=params.get("labelSelector", ""),
            agent=agent,
        )
        self.hits.append(hit)
        if operator:
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
