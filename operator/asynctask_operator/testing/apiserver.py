"""The fake Kubernetes API server: one model of the semantics the operator relies on, served in
process by :class:`~asynctask_operator.testing.fakekube.FakeKube` and over HTTP by
:class:`~asynctask_operator.testing.emulator.ApiServerEmulator`. Synchronous, without I/O: a request is
one method call, and nothing happens between two calls.

- objects by (resource, namespace, name); one resourceVersion counter for the whole "cluster",
  advanced by every write; a write that changes nothing writes nothing;
- create: 409 AlreadyExists on an existing name, ``generateName``, ``uid`` and
  ``creationTimestamp`` set by the server; ``status`` of a kind with the status subresource is
  left out of a create and of a write of the main resource, and a write to ``/status`` changes
  only the status; ``generation`` advances when the spec changes;
- a ``metadata.resourceVersion`` in a patch or an update is a precondition (409 on a stale one), and
  so is its ``metadata.uid`` (409 when another object of that name is there now),
  and so is a delete's ``uid``; deleting an object deletes what it owns (the garbage collector,
  by ownerReferences, at once);
- listings in (namespace, name) order, filtered by namespace and label selector, in pages
  (``limit`` and a continue token) of one snapshot, with the listing's resourceVersion; a continue
  token expires (410) with :meth:`ApiServer.expire_continues`, or when 64 newer listings are open;
- watches from a resourceVersion (the events after it, as they were) or from none or "0" (every
  object as ADDED), then every event as it happens; BOOKMARKs on :meth:`ApiServer.bookmark`; 410
  from a version older than :meth:`ApiServer.compact` kept; :meth:`ApiServer.end_watches` ends them;
- TokenReviews and SubjectAccessReviews answered from :meth:`ApiServer.reviews` (and kept none of);
- faults: :meth:`ApiServer.fail` makes the next matching requests answer an error, before anything
  is done (a face asks :meth:`ApiServer.fault` first).

Every event also goes to :attr:`ApiServer.listeners` (the HTTP face mirrors the objects into kmock's
store with one). With ``real_objects`` (the benchmarks'), objects are as large as a real server's:
each write records its writer's ``managedFields`` (:mod:`.managedfields`), a new Job gets the
server's defaults (:mod:`.realobjects`), and :meth:`ApiServer.bind` is the scheduler's binding.
Not modelled: finalizers, field selectors, server-side apply, admission (CRD schemas, CEL); the
end-to-end tier against a real cluster is the judge of where this differs.
"""

from __future__ import annotations

import builtins
import copy
import dataclasses
import datetime as dt
import itertools
from collections.abc import Callable

from asynctask_operator.adapters.kube import PODS, ApiError, Resource
from asynctask_operator.core.labelselectors import matches
from asynctask_operator.core.wire import Obj
from asynctask_operator.testing import managedfields, realobjects
from asynctask_operator.testing import semantics as rules
from asynctask_operator.testing.answers import Decide, Faults, Reviews, Tokens
from asynctask_operator.testing.semantics import REVIEWS, SERVER_SET, STATUS_SUBRESOURCE, namespace_of
from asynctask_operator.testing.watches import Delivery, Event, Watch, Written

ObjKey = tuple[Resource, str, str]  # (resource, namespace or "", name)
OPEN_LISTINGS = 64  # continue tokens kept; an older one is answered 410, as an API server's expire


@dataclasses.dataclass(frozen=True)
class Page:
    """One page of a listing: its objects, the listing's resourceVersion, the token of the next page ("" if none)."""

    items: list[Obj]
    version: str
    token: str = ""


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class ApiServer:
    """See the module docstring. Objects come in as JSON dicts and go out as the stored ones: copy before changing."""

    def __init__(self, *, now: Callable[[], dt.datetime] | None = None, real_objects: bool = False) -> None:
        self.now = now or _utcnow
        self.real_objects = real_objects
        """Objects as a real API server keeps them: ``managedFields`` on every write, a Job's defaults
        (:mod:`~asynctask_operator.testing.realobjects`). Off: only what a client sent (and the tests see)."""
        self.objects: dict[ObjKey, Obj] = {}
        """The store. Put an object here to have it without a write (no resourceVersion, no event)."""
        self.version = 0
        """The last resourceVersion given."""
        self.listeners: list[Callable[[Event], None]] = []
        self.reviewer = Reviews()
        self.faults = Faults()
        self._log: list[Event] = []
        self._oldest = 0  # a watch from before this version is answered 410 (compacted)
        self._watches: list[Watch] = []
        self._listings: dict[int, tuple[list[Obj], str]] = {}  # listing -> (its snapshot, its resourceVersion)
        self._serial = itertools.count(1)  # uids, generated names, listings
        self._kinds: dict[Resource, str] = {}

    # ------------------------------------------------------------------ reads

    def get(self, resource: Resource, namespace: str | None, name: str) -> Obj:
        found = self.objects.get((resource, namespace or "", name))
        if found is None:
            raise rules.not_found(resource, name)
        return found

    def list(
        self, resource: Resource, namespace: str | None = None, selector: str | None = None, *, limit: int = 0,
        token: str = "",
    ) -> Page:  # fmt: skip
        """A page of at most ``limit`` objects (0: all), from the start or from a continue ``token``."""
        if token:
            listing, _, offset_text = token.partition(":")
            found = self._listings.get(int(listing)) if listing.isdigit() and offset_text.isdigit() else None
            if found is None:
                raise rules.continue_expired()
            snapshot, version, offset, number = found[0], found[1], int(offset_text), int(listing)
        else:
            terms = rules.selector(selector)
            snapshot = [
                obj
                for _, obj in sorted(
                    ((ns, name), obj)
                    for (r, ns, name), obj in self.objects.items()
                    if r == resource and (namespace is None or ns == namespace)
                )
                if matches(terms, rules.labels_of(obj))
            ]
            version, offset, number = str(self.version), 0, next(self._serial)
        end = offset + limit if limit > 0 else len(snapshot)
        if end >= len(snapshot):
            self._listings.pop(number, None)
            return Page(snapshot[offset:end], version)
        self._listings[number] = (snapshot, version)
        while len(self._listings) > OPEN_LISTINGS:
            del self._listings[next(iter(self._listings))]
        return Page(snapshot[offset:end], version, f"{number}:{end}")

    def watch(self, resource: Resource, namespace: str | None, selector: str | None, since: str) -> Watch:
        """A watch from resourceVersion ``since`` ("" or "0": the current objects as ADDED first)."""
        start = int(since) if since.isdigit() else 0
        if start and start < self._oldest:
            raise rules.too_old(start, self._oldest)
        watch = Watch(resource, namespace, rules.selector(selector))
        if not start:
            for (r, _, _), obj in sorted(self.objects.items(), key=lambda kv: kv[0][1:]):
                if watch.sees(r, obj):
                    watch.give({"type": "ADDED", "object": obj})
        else:
            for event in self._log:
                if event.version > start and watch.sees(event.resource, event.object):
                    watch.give(event.wire())
        self._watches.append(watch)
        return watch

    def unwatch(self, watch: Watch) -> None:
        if watch in self._watches:
            self._watches.remove(watch)

    # ------------------------------------------------------------------ writes

    def create(
        self, resource: Resource, namespace: str | None, body: Obj, *, restore: bool = False, manager: str = ""
    ) -> Written:
        """A new object; ``restore``: as it was before the test began, with the uid, times, generation
        and status its body carries (what the server sets is set only where the body has none).
        ``manager``: who writes it (its ``managedFields`` entry, with :attr:`real_objects`)."""
        if resource.plural in REVIEWS:
            return Written(self.reviewer.answer(resource, body))
        obj = copy.deepcopy(body)
        meta = obj.setdefault("metadata", {})
        ns = namespace if namespace is not None else str(meta.get("namespace") or "")
        name = str(meta.get("name") or "")
        if not name and meta.get("generateName"):
            name = self.generate_name(str(meta["generateName"]))
        if not name:
            raise rules.name_required()
        if (resource, ns, name) in self.objects:
            raise rules.already_exists(resource, name)
        if resource.plural in STATUS_SUBRESOURCE and not restore:
            obj.pop("status", None)
        given = {
            field: meta[field] for field in ("uid", "creationTimestamp", "generation") if restore and field in meta
        }
        for field in ("generateName", "resourceVersion", "namespace"):
            meta.pop(field, None)
        meta.update(
            name=name, uid=f"uid-{name}-{next(self._serial)}", creationTimestamp=rules.stamp(self.now()), generation=1
        )
        meta.update(given)
        if ns:
            meta["namespace"] = ns
        if self.real_objects:
            obj = realobjects.defaulted(resource, obj)
            self._manage(obj, None, manager, None)
        return self._written(obj, [self._commit(resource, "ADDED", obj)])

    def generate_name(self, prefix: str) -> str:
        """A name for ``generateName: prefix`` (the server adds a few characters of its own)."""
        return f"{prefix}{next(self._serial):05x}"

    def patch(
        self,
        resource: Resource,
        namespace: str | None,
        name: str,
        patch: Obj,
        *,
        subresource: str | None = None,
        manager: str = "",
    ) -> Written:
        """A JSON merge patch, of the status only through ``subresource="status"``."""
        current = self.get(resource, namespace, name)
        self._precondition(resource, current, patch)
        if subresource == "status":
            patch = {"status": patch.get("status") or {}}
        elif resource.plural in STATUS_SUBRESOURCE:
            patch = {k: v for k, v in patch.items() if k != "status"}
        return self._change(resource, current, rules.merge_patch(current, patch), manager, subresource)

    def replace(self, resource: Resource, namespace: str | None, name: str, body: Obj, *, manager: str = "") -> Written:
        """An update (PUT): the whole object, its status kept where the status is a subresource."""
        current = self.get(resource, namespace, name)
        self._precondition(resource, current, body)
        new = copy.deepcopy(body)
        new["metadata"] = {**current["metadata"], **(new.get("metadata") or {})}
        if resource.plural in STATUS_SUBRESOURCE:
            new.pop("status", None)
            if "status" in current:
                new["status"] = current["status"]
        return self._change(resource, current, new, manager)

    def bind(self, namespace: str, pod: str, node: str, now: str) -> Written:
        """A pod's ``binding`` subresource (the scheduler's one write): its node and PodScheduled, at once."""
        current = self.get(PODS, namespace, pod)
        status = dict(current.get("status") or {})
        scheduled = {"type": "PodScheduled", "status": "True", "lastProbeTime": None, "lastTransitionTime": now}
        status["conditions"] = [
            *(c for c in status.get("conditions") or () if c.get("type") != "PodScheduled"),
            scheduled,
        ]
        new = {**current, "spec": {**(current.get("spec") or {}), "nodeName": node}, "status": status}
        return self._change(PODS, current, new, "kube-scheduler")

    def delete(self, resource: Resource, namespace: str | None, name: str, *, uid: str | None = None) -> Written:
        """Delete (and, in the background, what it owns); :class:`NotFound` when there is nothing to delete."""
        current = self.get(resource, namespace, name)
        if uid is not None and current["metadata"].get("uid") != uid:
            raise rules.other_uid(uid, current["metadata"].get("uid"))
        deliveries: builtins.list[Delivery] = []
        self._remove(resource, current, deliveries)
        return Written(deliveries[0].event.object, tuple(deliveries))

    def put(self, resource: Resource, obj: Obj) -> Obj:
        """Store ``obj`` as it is (its uid, its times, its status), with the next resourceVersion, and
        announce it: what a benchmark uses to fill the store faster than by creating every object."""
        key = (resource, namespace_of(obj), str(obj["metadata"]["name"]))
        delivery = self._commit(resource, "MODIFIED" if key in self.objects else "ADDED", copy.deepcopy(obj))
        return delivery.event.object

    # ------------------------------------------------------------------ what the server does on its own

    def bookmark(self) -> None:
        """A BOOKMARK at the current resourceVersion on every open watch (where to resume from)."""
        for watch in self._watches:
            resource = watch.resource
            api_version = f"{resource.group}/{resource.version}" if resource.group else resource.version
            meta = {"resourceVersion": str(self.version)}
            kind = self._kinds.get(resource, resource.plural)
            watch.give({"type": "BOOKMARK", "object": {"kind": kind, "apiVersion": api_version, "metadata": meta}})

    def compact(self) -> None:
        """Forget the event history: a watch from any version before now is answered 410 Gone."""
        self._oldest = self.version
        self._log.clear()

    def end_watches(self) -> None:
        """End every open watch stream, as the server does at its timeout."""
        for watch in self._watches:
            watch.end()

    def expire_continues(self) -> None:
        """Every listing in progress finds its continue token expired at its next page."""
        self._listings.clear()

    # ------------------------------------------------------------------ reviews and faults

    def reviews(self, tokens: Tokens, decide: Decide = lambda user, groups, attributes: True) -> None:
        """Answer TokenReviews from ``tokens`` (token -> (user, groups)) and SubjectAccessReviews with
        ``decide(user, groups, resourceAttributes)``; until this is called both are refused."""
        self.reviewer.tokens, self.reviewer.decide = tokens, decide

    def fail(self, verb: str, plural: str, error: ApiError, *, name: str | None = None, times: int = 1) -> None:
        """Answer the next ``times`` requests of ``verb`` on ``plural`` (and ``name``) with ``error``."""
        self.faults.add(verb, plural, error, name=name, times=times)

    def fault(self, verb: str, resource: Resource, name: str) -> ApiError | None:
        """The error a request is to be answered with instead (one of :meth:`fail`'s, used up), or None:
        each face asks before it does anything else."""
        return self.faults.take(verb, resource, name)

    # ------------------------------------------------------------------ inside

    def _precondition(self, resource: Resource, current: Obj, body: Obj) -> None:
        expected = (body.get("metadata") or {}).get("resourceVersion")
        if expected and str(expected) != current["metadata"].get("resourceVersion"):
            raise rules.stale(resource, current["metadata"]["name"])
        uid = (body.get("metadata") or {}).get("uid")
        if uid and uid != current["metadata"].get("uid"):  # the API server's check: another object of that name
            raise rules.uid_mismatch(uid)

    def _change(
        self, resource: Resource, current: Obj, new: Obj, manager: str = "", subresource: str | None = None
    ) -> Written:
        """Write ``new`` over ``current``, keeping what only the server sets; nothing when nothing changed."""
        meta = dict(new.get("metadata") or {})
        for field in SERVER_SET:
            if field in current["metadata"]:
                meta[field] = current["metadata"][field]
        if self.real_objects and "managedFields" in current["metadata"]:
            meta["managedFields"] = current["metadata"]["managedFields"]  # the server's own, not a client's
        new = {**new, "metadata": meta}
        if new == current:
            return Written(current)
        if new.get("spec") != current.get("spec"):
            meta["generation"] = int(current["metadata"].get("generation") or 1) + 1
        if self.real_objects:
            self._manage(new, current, manager, subresource)
        return self._written(new, [self._commit(resource, "MODIFIED", new)])

    def _manage(self, new: Obj, old: Obj | None, manager: str, subresource: str | None) -> None:
        """Record ``manager``'s write in ``new``'s managedFields (a new metadata dict: stored ones stay)."""
        meta = new["metadata"] = dict(new["metadata"])
        api_version = str(new.get("apiVersion") or "v1")
        entries = list((old or {}).get("metadata", {}).get("managedFields") or ())
        time = rules.stamp(self.now())
        fields = managedfields.updated(entries, manager or "unknown", api_version, subresource, old, new, time)
        if fields:
            meta["managedFields"] = fields
        else:
            meta.pop("managedFields", None)

    def _remove(self, resource: Resource, obj: Obj, deliveries: builtins.list[Delivery]) -> None:
        deliveries.append(self._commit(resource, "DELETED", obj))
        uid = obj["metadata"].get("uid")
        owned = [
            (r, o)
            for (r, _, _), o in self.objects.items()
            if uid and any(ref.get("uid") == uid for ref in (o.get("metadata") or {}).get("ownerReferences") or ())
        ]
        for r, o in owned:  # the garbage collector: dependents go with their owner
            if self.objects.get((r, namespace_of(o), o["metadata"]["name"])) is o:
                self._remove(r, o, deliveries)

    def _commit(self, resource: Resource, type_: str, obj: Obj) -> Delivery:
        """Give ``obj`` the next resourceVersion, store it (or drop it), log the event and hand it out."""
        self.version += 1
        obj = {**obj, "metadata": {**obj["metadata"], "resourceVersion": str(self.version)}}
        key = (resource, namespace_of(obj), str(obj["metadata"]["name"]))
        if type_ == "DELETED":
            self.objects.pop(key, None)
        else:
            self.objects[key] = obj
        if obj.get("kind"):
            self._kinds[resource] = str(obj["kind"])
        event = Event(self.version, resource, type_, obj)
        self._log.append(event)
        watches = tuple(w for w in self._watches if w.sees(resource, obj))
        for watch in watches:
            watch.give(event.wire())
        for listener in self.listeners:
            listener(event)
        return Delivery(event, watches)

    def _written(self, answer: Obj, deliveries: builtins.list[Delivery]) -> Written:
        return Written(deliveries[-1].event.object if deliveries else answer, tuple(deliveries))
