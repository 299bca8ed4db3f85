"""An in-memory Kubernetes API with the semantics the operator relies on, in process.

kmock (the integration tier) is a store over HTTP: it never bumps ``resourceVersion``,
does not enforce the status subresource and replays every object on each watch. This
fake is what a unit test needs when those semantics are the point:

- every write gets the next ``resourceVersion`` (one counter for the whole "cluster");
  a no-op patch writes nothing;
- create refuses an existing name (409 AlreadyExists), ``generateName`` works, and
  ``status`` in a create or a main-resource patch is ignored (the status subresource);
  a patch to ``/status`` changes only the status; a ``metadata.resourceVersion`` in a
  patch is a precondition (409 on a stale one), and so is its ``metadata.uid``; a delete's ``uid`` too;
- deleting an object deletes what it owns (the garbage collector, by ownerReferences);
- listings come in pages (``limit``/``continue``) and carry the listing's resourceVersion;
- a watch starts after a resourceVersion, delivers ADDED/MODIFIED/DELETED in order,
  filtered by namespace and label selector, BOOKMARKs on request (:meth:`bookmark`),
  410 Gone from a version older than :meth:`compact` kept, and ends on :meth:`end_watches`;
- faults: :meth:`fail` answers the next matching requests with an error.

Which comes first, the answer to a write or the watch event of the same write, is
the race the operator must be right under both ways (``order``):

- ``"answer-first"``: the caller has the answer (and runs on with it) before any
  watcher sees the event;
- ``"event-first"``: the write returns only after every open watch of that resource
  has delivered the event and its consumer has handled it;
- ``"random"``: one or the other for each write, from ``seed``.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import datetime as dt
import itertools
import random
from collections.abc import AsyncIterator, Callable
from typing import Any, Literal

from asynctask_operator.adapters.kube import ApiError, Conflict, Gone, Invalid, NotFound, RequestCounter, Resource
from asynctask_operator.adapters.kubeclient import all_items

Order = Literal["answer-first", "event-first", "random"]
Obj = dict[str, Any]
ObjKey = tuple[Resource, str, str]  # (resource, namespace, name)
Fault = Callable[[str, Resource, str], ApiError | None]  # (verb, resource, name) -> error to answer, or None

# Kinds whose status is a subresource: a create or a main-resource patch ignores ``status``.
STATUS_SUBRESOURCE = frozenset({"asynctasks", "tasktypes", "taskqueues", "scheduledtasks", "jobs", "pods"})


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396: objects merge key by key, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def selects(selector: str | None, labels: dict[str, str]) -> bool:
    """Equality-based label selectors: ``a=b``, ``a==b``, ``a!=b``, ``a``, ``!a``, comma-separated."""
    for term in filter(None, (t.strip() for t in (selector or "").split(","))):
        if "!=" in term:
            k, v = term.split("!=", 1)
            if labels.get(k) == v:
                return False
        elif "=" in term:
            k, v = term.replace("==", "=").split("=", 1)
            if labels.get(k) != v:
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


@dataclasses.dataclass
class _Watch:
    resource: Resource
    namespace: str | None
    selector: str | None
    events: asyncio.Queue[Obj | None]
    handled: asyncio.Event  # set whenever the consumer has handled all it was given


@dataclasses.dataclass
class Request:
    verb: str
    resource: str
    namespace: str | None
    name: str
    subresource: str | None = None


class FakeKube:
    """See the module docstring. Implements the operator's Kubernetes client interface."""

    def __init__(
        self,
        *,
        order: Order = "answer-first",
        seed: int = 0,
        now: Callable[[], dt.datetime] | None = None,
    ) -> None:
        self.order: Order = order
        self.random = random.Random(seed)
        self.now = now or (lambda: dt.datetime.now(dt.UTC))
        self.counter = RequestCounter()
        self.requests: list[Request] = []
        self.objects: dict[ObjKey, Obj] = {}
        self._rv = itertools.count(1)
        self._version = 0
        self._log: list[tuple[int, Resource, str, Obj]] = []  # (resourceVersion, resource, type, object)
        self._compacted = 0  # watches from a version before this are answered 410
        self._watches: list[_Watch] = []
        self._faults: list[tuple[Fault, list[int]]] = []
        self._uids = itertools.count(1)
        self._continues: dict[str, list[Obj]] = {}
        self.after_create: dict[str, list[Callable[[Obj], object]]] = {}

    # ------------------------------------------------------------------ test hands

    def fail(self, verb: str, plural: str, error: ApiError, *, name: str | None = None, times: int = 1) -> None:
        """Answer the next ``times`` requests of ``verb`` on ``plural`` (and ``name``) with ``error``."""

        def fault(v: str, r: Resource, n: str) -> ApiError | None:
            return error if v == verb and r.plural == plural and (name is None or n == name) else None

        self._faults.append((fault, [times]))

    def on_create(self, plural: str, hook: Callable[[Obj], object]) -> None:
        """Call ``hook`` with a copy of every object of ``plural`` created (after the answer), as a controller would."""
        self.after_create.setdefault(plural, []).append(hook)

    def compact(self) -> None:
        """Forget the event history: a watch from any version before now is answered 410 Gone."""
        self._compacted = self._version + 1
        self._log.clear()

    def bookmark(self) -> None:
        """Send every open watch a BOOKMARK at the current resourceVersion."""
        for watch in self._watches:
            kind = watch.resource.plural
            watch.events.put_nowait(
                {"type": "BOOKMARK", "object": {"kind": kind, "metadata": {"resourceVersion": str(self._version)}}}
            )

    def end_watches(self) -> None:
        """End every open watch stream, as the server does at its timeout."""
        for watch in self._watches:
            watch.events.put_nowait(None)

    def writes(self) -> list[Request]:
        return [r for r in self.requests if r.verb in ("create", "patch", "update", "delete")]

    def get_object(self, resource: Resource, namespace: str, name: str) -> Obj | None:
        obj = self.objects.get((resource, namespace, name))
        return copy.deepcopy(obj) if obj is not None else None

    def of(self, resource: Resource, namespace: str | None = None) -> list[Obj]:
        return [
            copy.deepcopy(o)
            for (r, ns, _), o in sorted(self.objects.items(), key=lambda kv: kv[0][1:])
            if r == resource and (namespace is None or ns == namespace)
        ]

    # ------------------------------------------------------------------ the client interface

    async def create(self, resource: Resource, namespace: str | None, body: Obj) -> Obj:
        if resource.plural in REVIEWS:
            return self._review(resource, body)
        ns = namespace or ""
        meta = dict(body.get("metadata") or {})
        name = str(meta.get("name") or "")
        if not name and meta.get("generateName"):
            name = f"{meta['generateName']}{next(self._uids):05x}"
        self._enter("create", resource, ns, name)
        if not name:
            raise self._answer("create", resource, Invalid(422, "Invalid", "metadata.name: Required value"))
        if (resource, ns, name) in self.objects:
            raise self._answer(
                "create",
                resource,
                Conflict(409, "AlreadyExists", f'{resource.plural} "{name}" already exists'),
            )
        obj = copy.deepcopy(body)
        if resource.plural in STATUS_SUBRESOURCE:
            obj.pop("status", None)
        meta.update(
            name=name,
            namespace=ns if namespace is not None else meta.get("namespace"),
            uid=f"uid-{name}-{next(self._uids)}",
            creationTimestamp=self.now().astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            generation=1,
        )
        meta.pop("generateName", None)
        if not meta.get("namespace"):
            meta.pop("namespace", None)
        obj["metadata"] = meta
        answer = await self._write(resource, "ADDED", obj)
        self.counter.add("create", resource.plural, 201)
        for hook in self.after_create.get(resource.plural, ()):
            asyncio.get_running_loop().call_soon(hook, copy.deepcopy(answer))
        return answer

    async def replace(self, resource: Resource, name: str, body: Obj) -> Obj:
        self._enter("update", resource, "", name)
        current = self.objects.get((resource, "", name))
        if current is None:
            raise self._answer("update", resource, NotFound(404, "NotFound", f'{resource.plural} "{name}" not found'))
        self._precondition("update", resource, current, (body.get("metadata") or {}).get("resourceVersion"))
        obj = copy.deepcopy(body)
        obj["metadata"] = {**current["metadata"], **(obj.get("metadata") or {})}
        answer = await self._write(resource, "MODIFIED", obj)
        self.counter.add("update", resource.plural, 200)
        return answer

    async def get(self, resource: Resource, namespace: str | None, name: str) -> Obj:
        self._enter("get", resource, namespace or "", name)
        obj = self.objects.get((resource, namespace or "", name))
        if obj is None:
            raise self._answer("get", resource, NotFound(404, "NotFound", f'{resource.plural} "{name}" not found'))
        self.counter.add("get", resource.plural, 200)
        return copy.deepcopy(obj)

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
        self._enter("list", resource, namespace or "", "")
        listed = [
            copy.deepcopy(obj)
            for (r, ns, _), obj in sorted(self.objects.items(), key=lambda kv: kv[0][1:])
            if r == resource and (namespace is None or ns == namespace) and selects(label_selector, _labels(obj))
        ]
        version = str(self._version)
        token = f"c{next(self._uids)}"
        self._continues[token] = listed
        offset = 0
        while True:
            page = listed[offset : offset + limit]
            offset += limit
            self.counter.add("list", resource.plural, 200)
            yield page, version
            if offset >= len(listed):
                self._continues.pop(token, None)
                return
            await asyncio.sleep(0)  # another request between two pages
            if token not in self._continues:
                raise Gone(410, "Expired", "the continue token has expired")
            self._enter("list", resource, namespace or "", "")

    def expire_continues(self) -> None:
        """Every listing in progress finds its continue token expired at its next page."""
        self._continues.clear()

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
        since = int(resource_version) if resource_version else None
        if since is not None and since < self._compacted - 1:
            self.counter.add("watch", resource.plural, 410)
            raise Gone(410, "Expired", f"too old resource version: {since} ({self._compacted})")
        self.counter.add("watch", resource.plural, 200)
        watch = _Watch(resource, namespace, label_selector, asyncio.Queue(), asyncio.Event())
        if since is None:  # "start at most recent": the current objects as ADDED, then what follows
            for (r, _, _), obj in sorted(self.objects.items(), key=lambda kv: kv[0][1:]):
                if r == resource and self._matches(watch, obj):
                    watch.events.put_nowait({"type": "ADDED", "object": copy.deepcopy(obj)})
        else:
            for rv, r, type_, obj in self._log:
                if rv > since and r == resource and self._matches(watch, obj):
                    watch.events.put_nowait({"type": type_, "object": copy.deepcopy(obj)})
        self._watches.append(watch)
        try:
            async with asyncio.timeout(timeout_seconds):
                while True:
                    if watch.events.empty():
                        watch.handled.set()
                    event = await watch.events.get()
                    watch.handled.clear()
                    if event is None:
                        return
                    yield event
        except TimeoutError:
            return
        finally:
            self._watches.remove(watch)
            watch.handled.set()

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
        current = self.objects.get((resource, namespace, name))
        if current is None:
            raise self._answer("patch", resource, NotFound(404, "NotFound", f'{resource.plural} "{name}" not found'))
        self._precondition("patch", resource, current, (patch.get("metadata") or {}).get("resourceVersion"))
        uid = (patch.get("metadata") or {}).get("uid")
        if uid and uid != current["metadata"].get("uid"):  # the API server's check: another object of that name
            raise self._answer(
                "patch", resource, Conflict(409, "Conflict", f"Precondition failed: UID in precondition: {uid}")
            )
        patch = copy.deepcopy(patch)
        (patch.get("metadata") or {}).pop("resourceVersion", None)
        if subresource == "status":
            patch = {"status": patch.get("status") or {}}
        elif resource.plural in STATUS_SUBRESOURCE:
            patch.pop("status", None)
        merged = merge_patch(current, patch)
        for immutable in ("name", "namespace", "uid", "creationTimestamp", "resourceVersion", "generation"):
            if immutable in current["metadata"]:
                merged["metadata"][immutable] = current["metadata"][immutable]
        self.counter.add("patch", resource.plural, 200)
        if merged == current:
            return copy.deepcopy(current)  # nothing changed: no new resourceVersion, no event
        if merged.get("spec") != current.get("spec"):
            merged["metadata"]["generation"] = int(current["metadata"].get("generation") or 1) + 1
        return await self._write(resource, "MODIFIED", merged)

    async def delete(self, resource: Resource, namespace: str, name: str, *, uid: str | None = None) -> bool:
        self._enter("delete", resource, namespace, name)
        current = self.objects.get((resource, namespace, name))
        if current is None:
            self.counter.add("delete", resource.plural, 404)
            return False
        if uid is not None and current["metadata"].get("uid") != uid:
            raise self._answer(
                "delete",
                resource,
                Conflict(
                    409,
                    "Conflict",
                    f"Precondition failed: UID in precondition: {uid}, "
                    f"UID in object meta: {current['metadata'].get('uid')}",
                ),
            )
        self.counter.add("delete", resource.plural, 200)
        await self._remove(resource, current)
        return True

    # ------------------------------------------------------------------ inside

    def _enter(self, verb: str, resource: Resource, namespace: str, name: str, sub: str | None = None) -> None:
        self.requests.append(Request(verb, resource.plural, namespace or None, name, sub))
        for fault, left in self._faults:
            if left[0] <= 0:
                continue
            error = fault(verb, resource, name)
            if error is not None:
                left[0] -= 1
                self.counter.add(verb, resource.plural, error.status)
                raise error

    def _answer(self, verb: str, resource: Resource, error: ApiError) -> ApiError:
        self.counter.add(verb, resource.plural, error.status)
        return error

    def _precondition(self, verb: str, resource: Resource, current: Obj, expected: object) -> None:
        if expected and str(expected) != current["metadata"].get("resourceVersion"):
            raise self._answer(
                verb,
                resource,
                Conflict(
                    409,
                    "Conflict",
                    f'Operation cannot be fulfilled on {resource.plural} "{current["metadata"]["name"]}": '
                    "the object has been modified; please apply your changes to the latest version and try again",
                ),
            )

    def _matches(self, watch: _Watch, obj: Obj) -> bool:
        ns = (obj.get("metadata") or {}).get("namespace") or ""
        return (watch.namespace is None or ns == watch.namespace) and selects(watch.selector, _labels(obj))

    async def _write(self, resource: Resource, type_: str, obj: Obj) -> Obj:
        self._version = next(self._rv)
        obj["metadata"]["resourceVersion"] = str(self._version)
        meta = obj["metadata"]
        key = (resource, meta.get("namespace") or "", meta["name"])
        self.objects[key] = obj
        await self._publish(resource, type_, obj)
        return copy.deepcopy(obj)

    async def _remove(self, resource: Resource, obj: Obj) -> None:
        meta = obj["metadata"]
        del self.objects[resource, meta.get("namespace") or "", meta["name"]]
        self._version = next(self._rv)
        gone = copy.deepcopy(obj)
        gone["metadata"]["resourceVersion"] = str(self._version)
        await self._publish(resource, "DELETED", gone)
        uid = meta.get("uid")
        owned = [
            (r, o)
            for (r, _, _), o in list(self.objects.items())
            if any(ref.get("uid") == uid for ref in (o.get("metadata") or {}).get("ownerReferences") or ())
        ]
        for r, o in owned:  # the garbage collector: dependents go with their owner
            if (r, o["metadata"].get("namespace") or "", o["metadata"]["name"]) in self.objects:
                await self._remove(r, o)

    async def _publish(self, resource: Resource, type_: str, obj: Obj) -> None:
        self._log.append((self._version, resource, type_, copy.deepcopy(obj)))
        targets = [w for w in self._watches if w.resource == resource and self._matches(w, obj)]
        for watch in targets:
            watch.handled.clear()
            watch.events.put_nowait({"type": type_, "object": copy.deepcopy(obj)})
        order = self.order
        if order == "random":
            order = self.random.choice(("answer-first", "event-first"))
        if order == "event-first":
            for watch in targets:
                await watch.handled.wait()


    # ------------------------------------------------------------------ reviews (the gateway's TokenReviews, SARs)

    tokens: dict[str, tuple[str, tuple[str, ...]]] | None = None
    decide: Callable[[str, tuple[str, ...], dict[str, str]], bool] | None = None

    def reviews(
        self,
        tokens: dict[str, tuple[str, tuple[str, ...]]],
        decide: Callable[[str, tuple[str, ...], dict[str, str]], bool] = lambda user, groups, attributes: True,
    ) -> None:
        """Answer TokenReviews from ``tokens`` (token -> (user, groups)) and SubjectAccessReviews with
        ``decide(user, groups, resourceAttributes)``; without this call both are refused."""
        self.tokens = tokens
        self.decide = decide

    def _review(self, resource: Resource, body: Obj) -> Obj:
        self._enter("create", resource, "", "")
        self.counter.add("create", resource.plural, 201)
        spec = body.get("spec") or {}
        answer = copy.deepcopy(body)
        if resource.plural == "tokenreviews":
            found = (self.tokens or {}).get(str(spec.get("token")))
            user = {"username": found[0], "groups": list(found[1])} if found else {}
            answer["status"] = {"authenticated": found is not None, "user": user}
        else:
            groups = tuple(spec.get("groups") or ())
            allowed = self.decide is not None and self.decide(str(spec.get("user")), groups, spec["resourceAttributes"])
            answer["status"] = {"allowed": allowed}
        return answer


REVIEWS = frozenset({"tokenreviews", "subjectaccessreviews"})


def _labels(obj: Obj) -> dict[str, str]:
    return dict((obj.get("metadata") or {}).get("labels") or {})
