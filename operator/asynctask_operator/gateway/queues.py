"""``/v1/namespaces/{ns}/queues``: each queue's concurrency, running and pending tasks, pause and resume.

The figures are the queue's view (:class:`~asynctask_operator.core.views.QueueView`): the tasks
holding a slot and those waiting, as the operator counts them in the TaskQueue's status. A queue
that tasks name but no TaskQueue defines (the implicit ``default``, or a missing one) is listed
with ``exists: false``, its figures counted from its tasks.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from asynctask_operator.adapters.kube import TASKQUEUES, ApiError
from asynctask_operator.core import acts
from asynctask_operator.gateway.access import Gateway, caller, gateway_of
from asynctask_operator.gateway.answers import QueueList, QueueSummary, queue_answer
from asynctask_operator.gateway.auth import User
from asynctask_operator.gateway.problems import Problem, documented, from_api_error
from asynctask_operator.gateway.reads import queues_of, synced

router = APIRouter(tags=["queues"])
RESPONSES = documented(401, 403, 404, 429, 503)


def summaries(gateway: Gateway, ns: str) -> dict[str, QueueSummary]:
    return {name: queue_answer(view) for name, view in queues_of(gateway, ns).items()}


@router.get("/v1/namespaces/{ns}/queues", response_model=QueueList, responses=RESPONSES)
async def list_queues(ns: str, request: Request, user: Annotated[User, Depends(caller("list_queues"))]) -> JSONResponse:
    """Every queue of the namespace: the TaskQueues, and the queues tasks name."""
    gateway = gateway_of(request)
    return JSONResponse(QueueList(items=list(summaries(gateway, ns).values())).dump())


@router.get("/v1/namespaces/{ns}/queues/{name}", response_model=QueueSummary, responses=RESPONSES)
async def get_queue(
    ns: str, name: str, request: Request, user: Annotated[User, Depends(caller("get_queue"))]
) -> JSONResponse:
    gateway = gateway_of(request)
    found = summaries(gateway, ns).get(name)
    if found is None:
        raise Problem(404, f"queue {name!r} not found in namespace {ns!r}")
    return JSONResponse(found.dump())


async def set_paused(gateway: Gateway, ns: str, name: str, paused: bool) -> JSONResponse:
    synced(gateway, kinds="queues")
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
