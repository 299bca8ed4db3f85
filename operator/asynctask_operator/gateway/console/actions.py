"""The console's buttons: cancel and retry (one task, or many after a confirmation), pause and
resume a queue, suspend, resume and run a schedule now.

Each is a form POST with the session's CSRF token; each act is authorized for the user
(SubjectAccessReview) in the task's namespace and made with the same patch the API and the
kubectl plugin make (:mod:`asynctask_operator.core.acts`); the page it came from shows what
happened.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from asynctask_operator.adapters.kube import ASYNCTASKS, SCHEDULEDTASKS, TASKQUEUES, ApiError, Resource
from asynctask_operator.core import acts
from asynctask_operator.core.timestamps import stamp
from asynctask_operator.gateway.access import Gateway
from asynctask_operator.gateway.console.gate import Viewer, served_namespaces
from asynctask_operator.gateway.console.routing import ConsoleRoute, acting, back, console_of, field, local
from asynctask_operator.gateway.console.rows import Filter, chosen
from asynctask_operator.gateway.problems import Problem, from_api_error
from asynctask_operator.gateway.reads import every_task_view
from asynctask_operator.gateway.store import Store

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)

MAX_BULK = 1000
"""Tasks one bulk action may touch; a larger set is narrowed by its filter first."""
BULK_CONCURRENCY = 8
ACTIONS = {"cancel": "cancel_task", "retry": "retry_task"}
FILTER_FIELDS = ("namespace", "type", "queue", "phase", "label", "q", "window", "since", "until")


def patch_of(gateway: Gateway, action: str) -> dict[str, Any]:
    if action == "cancel":
        return acts.cancel_task()
    return acts.retry_task(stamp(gateway.clocks.utcnow(), micro=True))


async def write(
    gateway: Gateway, store: Store[Any], resource: Resource, ns: str, name: str, patch: dict[str, Any]
) -> None:
    try:
        obj = await gateway.api.patch(resource, ns, name, patch)
    except ApiError as error:
        raise from_api_error(error, f"{name!r}") from None
    store.put(obj)


@dataclasses.dataclass
class Outcome:
    done: int = 0
    skipped: int = 0
    refused: int = 0
    failed: list[str] = dataclasses.field(default_factory=list)

    def text(self, action: str) -> str:
        verb = {"cancel": "Cancelled", "retry": "Retried"}[action]
        parts = [f"{verb} {self.done} task{'s' if self.done != 1 else ''}."]
        if self.skipped:
            nothing = "finished or already being cancelled" if action == "cancel" else "not Failed or Cancelled"
            parts.append(f"{self.skipped} skipped ({nothing} by now, or gone).")
        if self.refused:
            parts.append(f"{self.refused} refused by RBAC.")
        if self.failed:
            parts.append(f"{len(self.failed)} failed: {'; '.join(self.failed[:3])}")
        return " ".join(parts)


async def act_on_all(who: Viewer, action: str, keys: list[tuple[str, str]]) -> Outcome:
    """The act on each task, at most :data:`BULK_CONCURRENCY` at a time; what became of them."""
    gateway = who.gateway
    outcome = Outcome()
    allowed = await who.may_each(ACTIONS[action], keys)
    slots = asyncio.Semaphore(BULK_CONCURRENCY)

    async def one(ns: str, name: str) -> None:
        obj = gateway.tasks.get(ns, name)
        if (ns, name) not in allowed:
            outcome.refused += 1
            return
        if obj is None or acts.actionable(obj, action) is not None:
            outcome.skipped += 1
            return
        async with slots:
            try:
                await write(gateway, gateway.tasks, ASYNCTASKS, ns, name, patch_of(gateway, action))
            except Problem as problem:
                outcome.failed.append(f"{name}: {problem.detail}")
                return
        outcome.done += 1

    await asyncio.gather(*(one(ns, name) for ns, name in keys))
    return outcome


def task_keys(values: list[str]) -> list[tuple[str, str]]:
    keys = []
    for value in values:
        ns, _, name = value.partition("/")
        if not ns or not name:
            raise Problem(400, f"task must be namespace/name; got {value!r}")
        keys.append((ns, name))
    return list(dict.fromkeys(keys))


@router.post("/ui/bulk")
async def bulk(request: Request) -> Response:
    """Cancel or retry the selected tasks, or all that match the filter: first a page that says how
    many (and lists them, hidden, so what is confirmed is what is acted on); then the act."""
    console = console_of(request)
    who, fields = await acting(request)
    action = field(fields, "action")
    if action not in ACTIONS:
        raise Problem(400, f"action must be cancel or retry; got {action!r}")
    gateway = who.gateway
    back_to = local(field(fields, "back")) or "/ui/"
    if field(fields, "confirm") == "yes":
        keys = task_keys(fields.get("task", []))
        if len(keys) > MAX_BULK:
            raise Problem(413, f"at most {MAX_BULK} tasks at once: narrow the filter")
        for ns in {ns for ns, _ in keys}:
            if not gateway.serves(ns):
                raise Problem(404, f"namespace {ns!r} is not served by this gateway")
        outcome = await act_on_all(who, action, keys)
        who.session.notices.append(outcome.text(action))
        return back(request, fields, back_to)
    now = gateway.clocks.wall()
    visible = await who.namespaces("list_tasks", served_namespaces(gateway))
    if field(fields, "all") == "yes":
        flt = Filter.of({f: field(fields, f) for f in FILTER_FIELDS}, now)
        rows = chosen(every_task_view(gateway, set(visible.shown)), flt, set(visible.shown), now)
        matching = [(r.namespace, r.name) for r in rows]
        described = flt.described
    else:
        matching = [k for k in task_keys(fields.get("task", [])) if k[0] in visible.shown]
        described = "the selected tasks"
        if not matching:
            who.session.notices.append("Select one or more tasks first.")
            return back(request, fields, back_to)
    objects = {k: gateway.tasks.get(*k) for k in matching}
    able = [k for k, obj in objects.items() if obj is not None and acts.actionable(obj, action) is None]
    refused = len(able) - len(await who.may_each(ACTIONS[action], able[:MAX_BULK]))
    return console.page(
        request,
        "bulk.html",
        session=who.session,
        action=action,
        described=described,
        matching=len(matching),
        able=able[:MAX_BULK],
        more=max(0, len(able) - MAX_BULK),
        refused=refused,
        back=back_to,
        visible=visible,
    )


@router.post("/ui/namespaces/{ns}/tasks/{name}/{action}")
async def task_action(request: Request, ns: str, name: str, action: str) -> Response:
    who, fields = await acting(request)
    if action not in ACTIONS:
        raise Problem(404, f"no action {action!r}: cancel or retry")
    await who.require(ACTIONS[action], ns, name)
    gateway = who.gateway
    obj = gateway.tasks.get(ns, name)
    if obj is None:
        raise Problem(404, f"task {name!r} not found in namespace {ns!r}")
    why = acts.actionable(obj, action)
    if why is not None:
        raise Problem(409, f"task {name!r} {why}")
    await write(gateway, gateway.tasks, ASYNCTASKS, ns, name, patch_of(gateway, action))
    who.session.notices.append(f"{'Cancel' if action == 'cancel' else 'Retry'} of {name} requested.")
    return back(request, fields, f"/ui/namespaces/{ns}/tasks/{name}")


QUEUE_ACTS = {"pause": True, "resume": False}
SCHEDULE_ACTS = {"suspend": "suspend_schedule", "resume": "resume_schedule", "run": "run_schedule"}


@router.post("/ui/namespaces/{ns}/queues/{name}/{action}")
async def queue_action(request: Request, ns: str, name: str, action: str) -> Response:
    who, fields = await acting(request)
    if action not in QUEUE_ACTS:
        raise Problem(404, f"no action {action!r}: pause or resume")
    await who.require(f"{action}_queue", ns, name)
    gateway = who.gateway
    if gateway.queues.get(ns, name) is None:
        raise Problem(404, f"TaskQueue {name!r} not found in namespace {ns!r}")
    await write(gateway, gateway.queues, TASKQUEUES, ns, name, acts.pause_queue(QUEUE_ACTS[action]))
    who.session.notices.append(f"Queue {name} {'paused' if QUEUE_ACTS[action] else 'resumed'}.")
    return back(request, fields, "/ui/queues")


@router.post("/ui/namespaces/{ns}/schedules/{name}/{action}")
async def schedule_action(request: Request, ns: str, name: str, action: str) -> Response:
    who, fields = await acting(request)
    if action not in SCHEDULE_ACTS:
        raise Problem(404, f"no action {action!r}: suspend, resume or run")
    await who.require(SCHEDULE_ACTS[action], ns, name)
    gateway = who.gateway
    if gateway.schedules.get(ns, name) is None:
        raise Problem(404, f"ScheduledTask {name!r} not found in namespace {ns!r}")
    if action == "run":
        patch = acts.run_schedule_now(stamp(gateway.clocks.utcnow(), micro=True))
    else:
        patch = acts.suspend_schedule(action == "suspend")
    await write(gateway, gateway.schedules, SCHEDULEDTASKS, ns, name, patch)
    done = {"suspend": "suspended", "resume": "resumed", "run": "asked to start a run now"}[action]
    who.session.notices.append(f"Schedule {name} {done}.")
    return back(request, fields, "/ui/schedules")
