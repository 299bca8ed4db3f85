"""``/v1/namespaces/{ns}/queues``: each queue's concurrency, running and pending tasks, pause and resume.

The figures are counted from the cached tasks (fresher than a TaskQueue's own status, which
the operator writes every few seconds). A queue that tasks name but no TaskQueue defines (the
implicit ``default``, or a missing one) is listed with ``exists: false``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from asynctask_operator.adapters.kube import TASKQUEUES, ApiError
from asynctask_operator.core import acts
from asynctask_operator.core.models import AsyncTask, TaskQueue
from asynctask_operator.core.wire import DEFAULT_QUEUE
from asynctask_operator.gateway.access import Gateway, caller, gateway_of
from asynctask_operator.gateway.auth import User
from asynctask_operator.gateway.problems import Problem, documented, from_api_error
from asynctask_operator.gateway.tasks import parsed
from asynctask_operator.gateway.views import QueueList, QueueSummary, queue_summary, task_queue

router = APIRouter(tags=["queues"])
RESPONSES = documented(401, 403, 404, 429, 503)


def loaded(gateway: Gateway) -> None:
    if not (gateway.queues.synced.is_set() and gateway.tasks.synced.is_set()):
        raise Problem(503, "the gateway's cache is still loading", headers={"Retry-After": "1"})


def queue_object(obj: dict[str, Any] | None) -> TaskQueue | None:
    if obj is None:
        return None
    try:
        return TaskQueue.model_validate(obj)
    except ValidationError:
        return None


def summaries(gateway: Gateway, ns: str) -> dict[str, QueueSummary]:
    tasks: list[AsyncTask] = [parsed(o) for o in gateway.tasks.in_namespace(ns)]
    defined = {str(o["metadata"]["name"]): queue_object(o) for o in gateway.queues.in_namespace(ns)}
    names = set(defined) | {task_queue(t) for t in tasks} | {DEFAULT_QUEUE}
    now = gateway.clocks.wall()
    return {name: queue_summary(ns, name, defined.get(name), tasks, now) for name in sorted(names)}


@router.get("/v1/namespaces/{ns}/queues", response_model=QueueList, responses=RESPONSES)
async def list_queues(ns: str, request: Request, user: Annotated[User, Depends(caller("list_queues"))]) -> JSONResponse:
    """Every queue of the namespace: the TaskQueues, and the queues tasks name."""
    gateway = gateway_of(request)
    loaded(gateway)
    return JSONResponse(QueueList(items=list(summaries(gateway, ns).values())).dump())


@router.get("/v1/namespaces/{ns}/queues/{name}", response_model=QueueSummary, responses=RESPONSES)
async def get_queue(
    ns: str, name: str, request: Request, user: Annotated[User, Depends(caller("get_queue"))]
) -> JSONResponse:
    gateway = gateway_of(request)
    loaded(gateway)
    found = summaries(gateway, ns).get(name)
    if found is None:
        raise Problem(404, f"queue {name!r} not found in namespace {ns!r}")
    return JSONResponse(found.dump())


async def set_paused(gateway: Gateway, ns: str, name: str, paused: bool) -> JSONResponse:
    loaded(gateway)
    if gateway.queues.get(ns, name) is None:
        raise Problem(404, f"TaskQueue {name!r} not found in namespace {ns!r}")
    try:
        obj = await gateway.api.patch(TASKQUEUES, ns, name, acts.pause_queue(paused))
    except ApiError as error:
        raise from_api_error(error, f"TaskQueue {name!r}") from None
    gateway.queues.put(obj)
    return JSONResponse(summaries(gateway, ns)[name].dump())


@router.post(
    "/v1/namespaces/{ns}/queues/{name}:pause", response_model=QueueSummary, responses=documented(409) | RESPONSES
)
async def pause_queue(
    ns: str, name: str, request: Request, user: Annotated[User, Depends(caller("pause_queue"))]
) -> JSONResponse:
    """Admit nothing more from the queue (``spec.paused: true``); what runs goes on."""
    return await set_paused(gateway_of(request), ns, name, True)


@router.post(
    "/v1/namespaces/{ns}/queues/{name}:resume", response_model=QueueSummary, responses=documented(409) | RESPONSES
)
async def resume_queue(
    ns: str, name: str, request: Request, user: Annotated[User, Depends(caller("resume_queue"))]
) -> JSONResponse:
    return await set_paused(gateway_of(request), ns, name, False)
