"""What the gateway's routes and the console's pages read from its caches, in one place.

Every task is read once, when it changes, into its :class:`~asynctask_operator.core.views.TaskView`
(the task store keeps them): the API's answers, the console's rows, the event streams, the queue
figures, the positions and the statistics are all made from those views, so no two of them
can disagree about a task. A route module serves one resource; what two of them need is here.
"""

from __future__ import annotations

from collections.abc import Iterator

from fastapi.responses import JSONResponse

from asynctask_operator.core.positions import queue_positions
from asynctask_operator.core.views import QueueView, ScheduleView, TaskView, queue_views
from asynctask_operator.core.wire import Obj
from asynctask_operator.gateway.access import Gateway
from asynctask_operator.gateway.answers import retry_after, task_answer
from asynctask_operator.gateway.problems import Problem
from asynctask_operator.gateway.store import Store

Positions = dict[tuple[str, str], int]


def synced(gateway: Gateway, *, kinds: str = "tasks") -> None:
    """503 with Retry-After while a cache the answer needs is still loading (``kinds``: tasks, queues, schedules)."""
    stores = {"tasks": (gateway.tasks,), "queues": (gateway.tasks, gateway.queues), "schedules": (gateway.schedules,)}
    if not all(store.synced.is_set() for store in stores[kinds]):
        raise Problem(503, "the gateway's cache is still loading", headers={"Retry-After": "1"})


def task_view(gateway: Gateway, ns: str, name: str) -> TaskView:
    """The task's view; 404 when the cache holds no such task (503 while it loads)."""
    synced(gateway)
    found: TaskView | None = gateway.tasks.views.get((ns, name))
    if found is None:
        raise Problem(404, f"task {name!r} not found in namespace {ns!r}")
    return found


def task_object(gateway: Gateway, ns: str, name: str) -> Obj:
    """The task as the API server sent it (for what a view does not hold: its result, attempts, YAML)."""
    obj = gateway.tasks.get(ns, name)
    if obj is None:
        raise Problem(404, f"task {name!r} not found in namespace {ns!r}")
    return obj


def view_of(store: Store[TaskView], obj: Obj) -> TaskView:
    """The task's view: the store's, read when the object changed, unless ``obj`` is not the one it holds."""
    key = ((obj.get("metadata") or {}).get("namespace") or "", (obj.get("metadata") or {}).get("name") or "")
    held = store.views.get(key)
    return held if held is not None and store.objects.get(key) is obj else TaskView.of(obj)


def task_views(gateway: Gateway, ns: str) -> Iterator[TaskView]:
    """The namespace's tasks, by name."""
    views = gateway.tasks.views
    for key in gateway.tasks.keys_in(ns):
        yield views[key]


def every_task_view(gateway: Gateway, namespaces: set[str]) -> list[TaskView]:
    """The tasks of ``namespaces``, in no order."""
    return [v for (ns, _), v in gateway.tasks.views.items() if ns in namespaces]


def positions(gateway: Gateway, ns: str) -> Positions:
    """The namespace's queue positions, ``{(queue, task): place}``: computed once per change of the cache
    (not once per GET), in the operator's admission order."""
    revision = gateway.tasks.revision
    cached = gateway.positions.get(ns)
    if cached is None or cached[0] != revision:
        views = gateway.tasks.views
        waiting = (w for (namespace, _), v in views.items() if namespace == ns and (w := v.waiting) is not None)
        cached = (revision, queue_positions(waiting, concurrency_of_queues(gateway, ns)))
        gateway.positions[ns] = cached
    return cached[1]


def concurrency_of_queues(gateway: Gateway, ns: str) -> dict[str, int]:
    """Each TaskQueue's ``spec.concurrency`` in the namespace (slots decide who starts next with keys or fairness)."""
    out = {}
    for obj in gateway.queues.in_namespace(ns):
        value = (obj.get("spec") or {}).get("concurrency")
        if isinstance(value, int):
            out[str(obj["metadata"]["name"])] = value
    return out


def position_of(gateway: Gateway, view: TaskView) -> int | None:
    """The task's place in its queue's admission order while it waits (1: next); None otherwise."""
    if not view.waits:
        return None
    return positions(gateway, view.namespace).get((view.queue, view.name))


def queues_of(gateway: Gateway, ns: str) -> dict[str, QueueView]:
    """Every queue of the namespace, by name: the TaskQueues, the queues tasks name, and ``default``."""
    synced(gateway, kinds="queues")
    return queue_views(ns, gateway.queues.in_namespace(ns), task_views(gateway, ns), gateway.clocks.wall())


def schedules_of(gateway: Gateway, ns: str) -> list[ScheduleView]:
    """The namespace's ScheduledTasks, by name."""
    synced(gateway, kinds="schedules")
    return [ScheduleView.of(o) for o in gateway.schedules.in_namespace(ns)]


def schedule_view(gateway: Gateway, ns: str, name: str) -> ScheduleView:
    synced(gateway, kinds="schedules")
    obj = gateway.schedules.get(ns, name)
    if obj is None:
        raise Problem(404, f"schedule {name!r} not found in namespace {ns!r}")
    return ScheduleView.of(obj)


def concurrency_of(gateway: Gateway, namespace: str, queue: str) -> int | None:
    obj = gateway.queues.get(namespace, queue)
    spec = (obj or {}).get("spec") or {}
    value = spec.get("concurrency")
    return value if isinstance(value, int) else None


def task_response(
    gateway: Gateway, obj: Obj, status_code: int = 200, *, headers: dict[str, str] | None = None
) -> JSONResponse:
    """The task's summary, with its ETag and, while unfinished, a Retry-After."""
    key = (str(obj["metadata"].get("namespace") or ""), str(obj["metadata"].get("name") or ""))
    held = gateway.tasks.views.get(key)
    view = held if held is not None and gateway.tasks.get(*key) is obj else TaskView.of(obj)
    place = position_of(gateway, view)
    out = {"ETag": f'"{view.resource_version}"', **(headers or {})}
    hint = retry_after(view.phase, place, concurrency_of(gateway, view.namespace, view.queue))
    if hint is not None:
        out["Retry-After"] = str(hint)
    return JSONResponse(task_answer(view, obj, place), status_code=status_code, headers=out)
