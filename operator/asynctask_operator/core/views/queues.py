"""How a person sees a queue: its limits, and the tasks holding a slot and waiting for one.

**Running** is the tasks holding a slot, what the queue's ``concurrency`` counts: the operator's
count, as the TaskQueue's status gives it (a task between its admission and its Job counts,
before anyone else can see it run). A queue with no TaskQueue (the implicit ``default``, or one
tasks name that does not exist yet), or whose status the operator has not written yet, is
counted from its tasks: the Running ones hold the slots, the waiting ones wait.

>>> q = QueueView.of("ns", "gpu", {"spec": {"concurrency": 2}, "status": {"running": 2, "pending": 5}}, [], 0.0)
>>> (q.running, q.pending, q.exists)
(2, 5, True)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping

from asynctask_operator.core.views.tasks import TaskView, _count, _dict, _list
from asynctask_operator.core.wire import DEFAULT_QUEUE, Obj


@dataclasses.dataclass(frozen=True, slots=True)
class BusyKeyView:
    key: str
    holding: int
    waiting: int

    @classmethod
    def of(cls, value: object) -> BusyKeyView | None:
        if not isinstance(value, dict) or not isinstance(value.get("key"), str):
            return None
        return cls(str(value["key"]), _count(value.get("holding")) or 0, _count(value.get("waiting")) or 0)


@dataclasses.dataclass(frozen=True, slots=True)
class QueueView:
    namespace: str
    name: str
    exists: bool
    """False: no TaskQueue of this name (the implicit default queue, or one tasks name that does not exist)."""
    concurrency: int | None
    paused: bool
    max_starts_per_minute: int | None
    running: int
    """The tasks holding a slot (the module's rule)."""
    pending: int
    oldest_pending_seconds: int | None
    waiting_for_key: int
    """Of the pending tasks, those whose concurrency key is busy (the TaskQueue's status; 0 without one)."""
    busiest_keys: tuple[BusyKeyView, ...]
    """The keys with the most tasks waiting for them (the operator's top few; no per-key metric exists)."""
    fairness: str
    """How a fair queue groups its tasks for round-robin admission (``Key``, ``Label app``); ``""``: not fair."""
    created_time: str | None

    @classmethod
    def of(cls, namespace: str, name: str, obj: Obj | None, tasks: Iterable[TaskView], now: float) -> QueueView:
        """The queue ``name`` from its TaskQueue (``obj``, None when there is none) and the tasks in it."""
        spec = (obj or {}).get("spec") or {}
        status = (obj or {}).get("status") or {}
        counted = obj is not None and _count(status.get("running")) is not None
        if counted:
            running, pending = _count(status.get("running")) or 0, _count(status.get("pending")) or 0
            oldest = _count(status.get("oldestPendingSeconds"))
        else:
            mine = [t for t in tasks if t.queue == name]
            running = sum(1 for t in mine if t.phase == "Running")
            waiting = [t.queued for t in mine if t.waits]
            pending = len(waiting)
            since = min((w for w in waiting if w is not None), default=None)
            oldest = None if since is None else int(max(0.0, now - since))
        fair = _dict(spec.get("fairness"))
        busiest = _list(status.get("busiestKeys")) if counted else []
        return cls(
            namespace=namespace,
            name=name,
            exists=obj is not None,
            concurrency=_count(spec.get("concurrency")),
            paused=spec.get("paused") is True,
            max_starts_per_minute=_count(spec.get("maxStartsPerMinute")),
            running=running,
            pending=pending,
            oldest_pending_seconds=oldest,
            waiting_for_key=(_count(status.get("waitingForKey")) or 0) if counted else 0,
            busiest_keys=tuple(b for b in map(BusyKeyView.of, busiest) if b is not None),
            fairness=" ".join(str(v) for v in (fair.get("by"), fair.get("label")) if isinstance(v, str)),
            created_time=((obj or {}).get("metadata") or {}).get("creationTimestamp"),
        )


def queue_views(namespace: str, queues: Iterable[Obj], tasks: Iterable[TaskView], now: float) -> dict[str, QueueView]:
    """Every queue of a namespace, by name: its TaskQueues, the queues its tasks name, and ``default``."""
    defined: Mapping[str, Obj] = {str((o.get("metadata") or {}).get("name") or ""): o for o in queues}
    tasks = list(tasks)
    names = set(defined) | {t.queue for t in tasks} | {DEFAULT_QUEUE}
    return {name: QueueView.of(namespace, name, defined.get(name), tasks, now) for name in sorted(names)}
