"""The operator's view of the cluster, filled by watch events and by its own writes.

Tasks are kept raw (they are parsed when reconciled); TaskTypes parsed; Jobs and pods
as slim views (a Job's pod template is not needed to follow it); ScheduledTasks raw.
Indexes answer the questions the reconcilers ask: the Jobs a task owns, the pods of a
Job, the AsyncTasks a ScheduledTask owns.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from asynctask_operator.core.models import TaskType
from asynctask_operator.core.observed import JobView, PodView, job_view, pod_view

Key = tuple[str, str]  # (namespace, name)


def key_of(obj: dict[str, Any]) -> Key:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


def scheduled_owner(obj: dict[str, Any]) -> tuple[str, str] | None:
    """(uid, name) of the ScheduledTask that controls an AsyncTask, if one does."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or ():
        if ref.get("kind") == "ScheduledTask" and ref.get("controller") and ref.get("uid"):
            return str(ref["uid"]), str(ref.get("name") or "")
    return None


class Cache:
    def __init__(self) -> None:
        self.tasks: dict[Key, dict[str, Any]] = {}
        self.scheduledtasks: dict[Key, dict[str, Any]] = {}
        self._runs_by_owner: dict[str, dict[str, dict[str, Any]]] = collections.defaultdict(dict)
        self.tasktypes: dict[Key, TaskType] = {}
        self.jobs: dict[Key, JobView] = {}
        self.pods: dict[Key, PodView] = {}
        self._jobs_by_owner: dict[str, dict[str, JobView]] = collections.defaultdict(dict)
        self._pods_by_job: dict[Key, dict[str, PodView]] = collections.defaultdict(dict)
        self._touched: dict[tuple[str, Key], float] = {}
        self._dropped: dict[tuple[str, Key], float] = {}
        self.synced: set[str] = set()
        self._events: dict[tuple[str, Key], float] = {}
        self.task_listeners: list[Callable[[Key, dict[str, Any] | None], None]] = []

    def watched(self, kind: str, key: Key) -> None:
        """A watch event for this object arrived now (see ``answer_to_request_at``)."""
        self._events[kind, key] = time.monotonic()

    def _newer_event(self, kind: str, key: Key, request_at: float | None) -> bool:
        return request_at is not None and self._events.get((kind, key), float("-inf")) >= request_at

    def _touch(self, kind: str, key: Key) -> None:
        self._touched[kind, key] = time.monotonic()

    def _forget(self, kind: str, key: Key) -> None:
        self._touched.pop((kind, key), None)
        self._dropped[kind, key] = time.monotonic()

    # -- tasks
    def put_task(self, obj: dict[str, Any], answer_to_request_at: float | None = None) -> Key:
        """Store a task; from a write's answer (``answer_to_request_at``: when the request was sent)
        only if no watch event for it arrived since: that event is at least as new as the answer."""
        key = key_of(obj)
        if self._newer_event("task", key, answer_to_request_at):
            return key
        self._unindex_run(key)
        self.tasks[key] = obj
        owner = scheduled_owner(obj)
        if owner is not None:
            self._runs_by_owner[owner[0]][key[1]] = obj
        self._touch("task", key)
        for listener in self.task_listeners:
            listener(key, obj)
        return key

    def drop_task(self, key: Key) -> None:
        self._unindex_run(key)
        self.tasks.pop(key, None)
        self._forget("task", key)
        for listener in self.task_listeners:
            listener(key, None)

    def _unindex_run(self, key: Key) -> None:
        old = self.tasks.get(key)
        owner = scheduled_owner(old) if old is not None else None
        if owner is not None:
            runs = self._runs_by_owner.get(owner[0], {})
            runs.pop(key[1], None)
            if not runs:
                self._runs_by_owner.pop(owner[0], None)

    def runs_of(self, owner_uid: str) -> list[dict[str, Any]]:
        """The AsyncTasks a ScheduledTask (by uid) controls."""
        return list(self._runs_by_owner.get(owner_uid, {}).values())

    # -- scheduled tasks
    def put_scheduledtask(self, obj: dict[str, Any]) -> Key:
        key = key_of(obj)
        self.scheduledtasks[key] = obj
        self._touch("scheduledtask", key)
        return key

    def drop_scheduledtask(self, key: Key) -> None:
        self.scheduledtasks.pop(key, None)
        self._forget("scheduledtask", key)

    # -- task types
    def put_tasktype(self, obj: dict[str, Any]) -> Key:
        key = key_of(obj)
        try:
            self.tasktypes[key] = TaskType.model_validate(obj)
        except ValidationError:
            self.tasktypes.pop(key, None)  # the CRD schema refuses these; an old CRD might not have
        self._touch("tasktype", key)
        return key

    def drop_tasktype(self, key: Key) -> None:
        self.tasktypes.pop(key, None)
        self._forget("tasktype", key)

    # -- jobs
    def put_job(self, obj: dict[str, Any], answer_to_request_at: float | None = None) -> JobView:
        view = job_view(obj)
        key = (view.namespace, view.name)
        if self._newer_event("job", key, answer_to_request_at) and key in self.jobs:
            return self.jobs[key]
        old = self.jobs.get(key)
        if old is not None and old.owner_uid and old.owner_uid != view.owner_uid:
            self._jobs_by_owner[old.owner_uid].pop(view.name, None)
        self.jobs[key] = view
        if view.owner_uid:
            self._jobs_by_owner[view.owner_uid][view.name] = view
        self._touch("job", key)
        return view

    def drop_job(self, key: Key) -> JobView | None:
        view = self.jobs.pop(key, None)
        self._forget("job", key)
        if view is not None and view.owner_uid:
            owned = self._jobs_by_owner.get(view.owner_uid, {})
            owned.pop(view.name, None)
            if not owned:
                self._jobs_by_owner.pop(view.owner_uid, None)
        return view

    def jobs_of(self, owner_uid: str) -> dict[int, JobView]:
        return {j.attempt: j for j in self._jobs_by_owner.get(owner_uid, {}).values() if j.attempt is not None}

    # -- pods
    def put_pod(self, obj: dict[str, Any]) -> PodView:
        view = pod_view(obj)
        key = (view.namespace, view.name)
        self.pods[key] = view
        self._pods_by_job[view.namespace, view.job_name][view.name] = view
        self._touch("pod", key)
        return view

    def drop_pod(self, key: Key) -> PodView | None:
        view = self.pods.pop(key, None)
        self._forget("pod", key)
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
        return max(self._touched.get((kind, key), 0.0), self._dropped.get((kind, key), 0.0)) >= since

    def forget_drops_before(self, since: float) -> None:
        self._dropped = {k: when for k, when in self._dropped.items() if when >= since}

    def stale(self, kind: str, listed: set[Key], since: float) -> list[Key]:
        """Keys of ``kind`` not in a full listing begun at ``since`` and not updated after it."""
        return [
            key for (k, key), when in list(self._touched.items()) if k == kind and key not in listed and when < since
        ]
