"""The operator's view of the cluster, filled by watch events and by its own writes.

Tasks are kept as compact JSON (:class:`TaskStore`: a read decodes a fresh dict, which
is parsed when reconciled); TaskTypes parsed; Jobs and pods as slim views (a Job's pod
template is not needed to follow it); ScheduledTasks raw. Indexes answer the questions
the reconcilers ask: the Jobs a task owns, the pods of a Job, the AsyncTasks a
ScheduledTask owns.

Memory is what bounds how many tasks one operator can hold (docs/design.md §5.4: 10,000 in 150 MB):
a decoded task is ~100 Python objects (~7 KB) against ~1.5 KB of JSON, and a watch
event is decoded on its own, so nothing is shared between tasks.
"""

from __future__ import annotations

import collections
import dataclasses
import time
from collections.abc import Callable, Iterator, MutableMapping

from pydantic import ValidationError

from asynctask_operator.adapters.slimwire import compact_json, from_json
from asynctask_operator.core.models import TERMINAL_PHASES, TaskType
from asynctask_operator.core.observed import JobView, PodView, job_view, pod_view
from asynctask_operator.core.wire import Key, Obj, key_of, phase_in


def scheduled_owner(obj: Obj) -> tuple[str, str] | None:
    """(uid, name) of the ScheduledTask that controls an AsyncTask, if one does."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or ():
        if ref.get("kind") == "ScheduledTask" and ref.get("controller") and ref.get("uid"):
            return str(ref["uid"]), str(ref.get("name") or "")
    return None


# Never read by the operator, and the largest parts of an object on a real cluster.
_DROPPED_ANNOTATIONS = ("kubectl.kubernetes.io/last-applied-configuration",)


def slim_task(obj: Obj) -> Obj:
    """``obj`` without what nothing in the operator reads: ``metadata.managedFields`` and
    ``kubectl apply``'s copy of the whole object in an annotation. Shallow: ``obj`` is not changed."""
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        return obj
    annotations = meta.get("annotations")
    dropped = isinstance(annotations, dict) and any(a in annotations for a in _DROPPED_ANNOTATIONS)
    if "managedFields" not in meta and not dropped:
        return obj
    meta = {k: v for k, v in meta.items() if k != "managedFields"}
    if dropped:
        assert isinstance(annotations, dict)
        meta["annotations"] = {k: v for k, v in annotations.items() if k not in _DROPPED_ANNOTATIONS}
    return {**obj, "metadata": meta}


def _encode(obj: Obj) -> bytes:
    return compact_json(slim_task(obj))


SUPERSEDED_KEPT = 4  # per task: older resourceVersions recognised in a late watch event


class TaskStore(MutableMapping[Key, Obj]):
    """The AsyncTasks, each kept as compact JSON; every read decodes a fresh dict.

    A read costs a JSON decode (~10 µs, against the ms of a reconcile), and the
    dict it returns is the caller's own: changing it changes nothing in the cache.
    Beside each task, what is asked of all tasks at once (its type and whether it has
    finished), so that no question about every task decodes every task."""

    def __init__(self) -> None:
        self._blobs: dict[Key, bytes] = {}
        self._summary: dict[Key, tuple[str, str, str]] = {}  # (spec.type, status.phase, metadata.uid)

    def __getitem__(self, key: Key) -> Obj:
        decoded: Obj = from_json(self._blobs[key])
        return decoded

    def __setitem__(self, key: Key, obj: Obj) -> None:
        self.store(key, obj, _encode(obj))

    def store(self, key: Key, obj: Obj, blob: bytes) -> None:
        """Keep ``obj``, already encoded as ``blob`` (see :meth:`has_blob`)."""
        self._blobs[key] = blob
        uid = str((obj.get("metadata") or {}).get("uid") or "")
        self._summary[key] = (str((obj.get("spec") or {}).get("type") or ""), phase_in(obj), uid)

    def __delitem__(self, key: Key) -> None:
        del self._blobs[key]
        del self._summary[key]

    def __contains__(self, key: object) -> bool:
        return key in self._blobs

    def __iter__(self) -> Iterator[Key]:
        return iter(self._blobs)

    def __len__(self) -> int:
        return len(self._blobs)

    def has_blob(self, key: Key, blob: bytes) -> bool:
        return self._blobs.get(key) == blob

    def phase(self, key: Key) -> str | None:
        """The phase of the task held (``Pending`` when it has none yet); None when none is held."""
        summary = self._summary.get(key)
        return summary[1] if summary is not None else None

    def uid(self, key: Key) -> str | None:
        summary = self._summary.get(key)
        return summary[2] if summary is not None else None

    def unfinished_of_type(self, namespace: str, type_name: str) -> list[Key]:
        return [
            key
            for key, (type_, phase, _) in self._summary.items()
            if key[0] == namespace and type_ == type_name and phase not in TERMINAL_PHASES
        ]


class Cache:
    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.monotonic = monotonic
        """The clock of every freshness stamp here; a write's answer is dated by it too (``answer_to_request_at``)."""
        self.tasks = TaskStore()
        self._task_rv: dict[Key, tuple[str, bool]] = {}  # (resourceVersion, from a write's answer) held
        self._superseded: dict[Key, tuple[str, ...]] = {}  # the last few it held before (older ones)
        self.scheduledtasks: dict[Key, Obj] = {}
        self._task_of_uid: dict[str, Key] = {}  # what a Job's owner uid names (a Job of a deleted task: none)
        self._runs_by_owner: dict[str, set[Key]] = collections.defaultdict(set)
        self._run_owner: dict[Key, tuple[str, str]] = {}  # run -> (uid, name) of its ScheduledTask
        self.tasktypes: dict[Key, TaskType] = {}
        self.jobs: dict[Key, JobView] = {}
        self.pods: dict[Key, PodView] = {}
        self._jobs_by_owner: dict[str, dict[str, JobView]] = collections.defaultdict(dict)
        self._pods_by_job: dict[Key, dict[str, PodView]] = collections.defaultdict(dict)
        self._touched: dict[tuple[str, Key], float] = {}
        self._dropped: dict[tuple[str, Key], float] = {}
        self.synced: set[str] = set()
        self._events: dict[tuple[str, Key], float] = {}

    def event_arrived(self, kind: str, key: Key) -> None:
        """A watch event for this object arrived now (see ``answer_to_request_at``)."""
        self._events[kind, key] = self.monotonic()

    def newer_event(self, kind: str, key: Key, request_at: float | None) -> bool:
        """A watch event (or the deletion) of this object came at ``request_at`` or later."""
        if request_at is None:
            return False
        seen = max(self._events.get((kind, key), float("-inf")), self._dropped.get((kind, key), float("-inf")))
        return seen >= request_at

    def mark_seen(self, kind: str, key: Key) -> None:
        """The cache took this object now (see :meth:`changed_since`)."""
        self._touched[kind, key] = self.monotonic()

    def mark_gone(self, kind: str, key: Key) -> None:
        """The object is deleted (see :meth:`changed_since`)."""
        self._touched.pop((kind, key), None)
        # The event time goes with the object (it grew by one entry per object ever seen). The
        # deletion's time, kept until the next resync, guards what it guarded: the answer to a
        # write sent before the deletion does not bring the object back (see newer_event).
        self._events.pop((kind, key), None)
        self._dropped[kind, key] = self.monotonic()

    def has_copy(self, kind: str, obj: Obj) -> bool:
        """The cache holds this object as it is (a watch replaying what the listing put there).

        Such an event changes nothing any reconcile would see: the caller can skip it."""
        if kind == "task":
            return self.tasks.has_blob(key_of(obj), _encode(obj))
        if kind == "job":
            view = job_view(obj)
            return self.jobs.get((view.namespace, view.name)) == view
        if kind == "pod":
            pview = pod_view(obj)
            return self.pods.get((pview.namespace, pview.name)) == pview
        return False

    # -- tasks
    @staticmethod
    def task_blob(obj: Obj) -> bytes:
        """The form a task is kept in (compact JSON, slim): encoded once, compared and stored."""
        return _encode(obj)

    def stale_task(self, obj: Obj) -> bool:
        """This copy of a task is one the cache has already moved past.

        A watch event can arrive after the answer to a later write of the operator's own (the
        event of its previous write, say). Storing it would take the cache back a version and
        the next status write would be refused with a 409. resourceVersions are opaque, but
        one the cache replaced by a newer version is known to be older: such a copy is skipped."""
        rv = str((obj.get("metadata") or {}).get("resourceVersion") or "")
        return bool(rv) and rv in self._superseded.get(key_of(obj), ())

    def put_task(self, obj: Obj, answer_to_request_at: float | None = None, blob: bytes | None = None) -> bool:
        """Store a task; from a write's answer (``answer_to_request_at``: when the request was sent)
        only if no watch event for it arrived since: that event is at least as new as the answer.

        True when the cache holds something it did not before (a new task, or another copy):
        what follows from that is :class:`~asynctask_operator.controllers.intake.TaskIntake`'s."""
        key = key_of(obj)
        answer = answer_to_request_at is not None
        if self.newer_event("task", key, answer_to_request_at) or (not answer and self.stale_task(obj)):
            return False
        blob = blob if blob is not None else _encode(obj)  # ``blob``: this object's, encoded already
        self.mark_seen("task", key)
        if self.tasks.has_blob(key, blob):
            return False
        self._note_version(key, str((obj.get("metadata") or {}).get("resourceVersion") or ""), answer)
        self._unindex_run(key)
        self.tasks.store(key, obj, blob)
        uid = str((obj.get("metadata") or {}).get("uid") or "")
        if uid:
            self._task_of_uid[uid] = key
        owner = scheduled_owner(obj)
        if owner is not None:
            self._runs_by_owner[owner[0]].add(key)
            self._run_owner[key] = owner
        return True

    def _note_version(self, key: Key, rv: str, answer: bool) -> None:
        """Remember the version now held, and the one it replaced when that one is surely older:
        an answer replaces only what arrived before its request was sent (see ``put_task``), and
        a watch event replaces an earlier event of the same stream. An event replacing an answer
        proves nothing (it may be a version from before the write that the stream delivers late)."""
        previous = self._task_rv.get(key)
        if previous is not None and rv and previous[0] != rv and (answer or not previous[1]):
            self._superseded[key] = (*self._superseded.get(key, ())[-(SUPERSEDED_KEPT - 1) :], previous[0])
        if answer and rv in self._superseded.get(key, ()):  # the server says it is current after all
            self._superseded[key] = tuple(v for v in self._superseded[key] if v != rv)
        if rv:
            self._task_rv[key] = (rv, answer)

    def drop_task(self, key: Key) -> None:
        uid = self.tasks.uid(key)
        if uid and self._task_of_uid.get(uid) == key:
            del self._task_of_uid[uid]
        self._task_rv.pop(key, None)
        self._superseded.pop(key, None)
        self._unindex_run(key)
        self.tasks.pop(key, None)
        self.mark_gone("task", key)

    def task_of_uid(self, uid: str | None) -> Key | None:
        """The task a uid is of, if the cache holds it."""
        return self._task_of_uid.get(uid or "")

    def run_owner(self, key: Key) -> tuple[str, str] | None:
        """(uid, name) of the ScheduledTask whose run this task is, if it is one."""
        return self._run_owner.get(key)

    def _unindex_run(self, key: Key) -> None:
        owner = self._run_owner.pop(key, None)
        if owner is not None:
            runs = self._runs_by_owner.get(owner[0], set())
            runs.discard(key)
            if not runs:
                self._runs_by_owner.pop(owner[0], None)

    def runs_of(self, owner_uid: str) -> list[Obj]:
        """The AsyncTasks a ScheduledTask (by uid) controls."""
        return [self.tasks[key] for key in sorted(self._runs_by_owner.get(owner_uid, ())) if key in self.tasks]

    def unfinished_tasks_of_type(self, namespace: str, type_name: str) -> list[Key]:
        return self.tasks.unfinished_of_type(namespace, type_name)

    # -- scheduled tasks
    def put_scheduledtask(self, obj: Obj, answer_to_request_at: float | None = None) -> bool:
        """Store a ScheduledTask; from a write's answer (``answer_to_request_at``: when the request was
        sent) only if no watch event for it arrived since, as :meth:`put_task`: an answer read after
        the event of a later change (a new ``asynctask.dev/run-now`` value) would take the cache back
        to the object without it, and nothing would wake the schedule again. True when stored."""
        key = key_of(obj)
        if self.newer_event("scheduledtask", key, answer_to_request_at):
            return False
        self.scheduledtasks[key] = obj
        self.mark_seen("scheduledtask", key)
        return True

    def drop_scheduledtask(self, key: Key) -> None:
        self.scheduledtasks.pop(key, None)
        self.mark_gone("scheduledtask", key)

    # -- task types
    def put_tasktype(self, obj: Obj) -> Key:
        key = key_of(obj)
        try:
            self.tasktypes[key] = TaskType.model_validate(obj)
        except ValidationError:
            self.tasktypes.pop(key, None)  # the CRD schema refuses these; an old CRD might not have
        self.mark_seen("tasktype", key)
        return key

    def drop_tasktype(self, key: Key) -> None:
        self.tasktypes.pop(key, None)
        self.mark_gone("tasktype", key)

    # -- jobs
    def put_job(self, obj: Obj | JobView, answer_to_request_at: float | None = None) -> JobView:
        """Store a Job (or its view, built already); from a write's answer only if no newer event came."""
        view = obj if isinstance(obj, JobView) else job_view(obj)
        key = (view.namespace, view.name)
        if self.newer_event("job", key, answer_to_request_at) and key in self.jobs:
            return self.jobs[key]
        old = self.jobs.get(key)
        if old is not None and old.owner_uid and old.owner_uid != view.owner_uid:
            self._jobs_by_owner[old.owner_uid].pop(view.name, None)
        self.jobs[key] = view
        if view.owner_uid:
            self._jobs_by_owner[view.owner_uid][view.name] = view
        self.mark_seen("job", key)
        return view

    def job_deleting(self, key: Key) -> None:
        """The operator deleted this Job: hold it as being deleted until the watch reports it gone."""
        view = self.jobs.get(key)
        if view is not None and not view.deleting:
            deleting = dataclasses.replace(view, deleting=True)
            self.jobs[key] = deleting
            if view.owner_uid:
                self._jobs_by_owner[view.owner_uid][view.name] = deleting

    def drop_job(self, key: Key) -> JobView | None:
        view = self.jobs.pop(key, None)
        self.mark_gone("job", key)
        if view is not None and view.owner_uid:
            owned = self._jobs_by_owner.get(view.owner_uid, {})
            owned.pop(view.name, None)
            if not owned:
                self._jobs_by_owner.pop(view.owner_uid, None)
        return view

    def jobs_of(self, owner_uid: str) -> dict[int, JobView]:
        return {j.attempt: j for j in self._jobs_by_owner.get(owner_uid, {}).values() if j.attempt is not None}

    # -- pods
    def put_pod(self, obj: Obj | PodView) -> PodView:
        view = obj if isinstance(obj, PodView) else pod_view(obj)
        key = (view.namespace, view.name)
        self.pods[key] = view
        self._pods_by_job[view.namespace, view.job_name][view.name] = view
        self.mark_seen("pod", key)
        return view

    def drop_pod(self, key: Key) -> PodView | None:
        view = self.pods.pop(key, None)
        self.mark_gone("pod", key)
        if view is not None:
            byjob = self._pods_by_job.get((view.namespace, view.job_name), {})
            byjob.pop(view.name, None)
            if not byjob:
                self._pods_by_job.pop((view.namespace, view.job_name), None)
        return view

    def pods_of(self, namespace: str, job_name: str) -> list[PodView]:
        return list(self._pods_by_job.get((namespace, job_name), {}).values())

    def owner_of_job(self, namespace: str, job_name: str) -> Key | None:
        view = self.jobs.get((namespace, job_name))
        if view is None or not view.owner_name:
            return None
        return namespace, view.owner_name

    # -- resync
    def changed_since(self, kind: str, key: Key, since: float) -> bool:
        """Put or dropped (by a watch event, or the answer to a write) at ``since`` or later."""
        never = float("-inf")  # not 0.0: a monotonic clock may start at 0 (an event loop's does)
        return max(self._touched.get((kind, key), never), self._dropped.get((kind, key), never)) >= since

    def forget_drops_before(self, since: float) -> None:
        self._dropped = {k: when for k, when in self._dropped.items() if when >= since}

    def stale(self, kind: str, listed: set[Key], since: float, namespace: str | None = None) -> list[Key]:
        """Keys of ``kind`` (in ``namespace``, or any) not in a full listing begun at ``since`` and not
        updated after it."""
        return [
            key
            for (k, key), when in list(self._touched.items())
            if k == kind and key not in listed and when < since and (namespace is None or key[0] == namespace)
        ]
