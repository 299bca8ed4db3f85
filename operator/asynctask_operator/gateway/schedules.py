"""``/v1/namespaces/{ns}/schedules``: ScheduledTasks — list, get, suspend, resume, run now."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from asynctask_operator.adapters.kube import SCHEDULEDTASKS, ApiError
from asynctask_operator.core import acts
from asynctask_operator.core.models import ScheduledTask
from asynctask_operator.core.timestamps import stamp
from asynctask_operator.gateway.access import Gateway, caller, gateway_of
from asynctask_operator.gateway.auth import User
from asynctask_operator.gateway.problems import Problem, documented, from_api_error
from asynctask_operator.gateway.views import ScheduleList, ScheduleSummary, schedule_summary

router = APIRouter(tags=["schedules"])
RESPONSES = documented(401, 403, 404, 429, 503)


def loaded(gateway: Gateway) -> None:
    if not gateway.schedules.synced.is_set():
        raise Problem(503, "the gateway's cache is still loading", headers={"Retry-After": "1"})


def schedule(obj: dict[str, Any]) -> ScheduledTask:
    try:
        return ScheduledTask.model_validate(obj)
    except ValidationError as error:
        raise Problem(502, f"the stored ScheduledTask cannot be read: {error.errors()[0].get('msg', '')}") from None


def cached(gateway: Gateway, ns: str, name: str) -> ScheduledTask:
    loaded(gateway)
    obj = gateway.schedules.get(ns, name)
    if obj is None:
        raise Problem(404, f"schedule {name!r} not found in namespace {ns!r}")
    return schedule(obj)


@router.get("/v1/namespaces/{ns}/schedules", response_model=ScheduleList, responses=RESPONSES)
async def list_schedules(
    ns: str, request: Request, user: Annotated[User, Depends(caller("list_schedules"))]
) -> JSONResponse:
    gateway = gateway_of(request)
    loaded(gateway)
    items = [schedule_summary(schedule(o)) for o in gateway.schedules.in_namespace(ns)]
    return JSONResponse(ScheduleList(items=items).dump())


@router.get("/v1/namespaces/{ns}/schedules/{name}", response_model=ScheduleSummary, responses=RESPONSES)
async def get_schedule(
    ns: str, name: str, request: Request, user: Annotated[User, Depends(caller("get_schedule"))]
) -> JSONResponse:
    return JSONResponse(schedule_summary(cached(gateway_of(request), ns, name)).dump())


async def write(gateway: Gateway, ns: str, name: str, patch: dict[str, Any], status_code: int = 200) -> JSONResponse:
    cached(gateway, ns, name)
    try:
        obj = await gateway.api.patch(SCHEDULEDTASKS, ns, name, patch)
    except ApiError as error:
        raise from_api_error(error, f"schedule {name!r}") from None
    gateway.schedules.put(obj)
    return JSONResponse(schedule_summary(schedule(obj)).dump(), status_code=status_code)


@router.post("/v1/namespaces/{ns}/schedules/{name}:suspend", response_model=ScheduleSummary, responses=RESPONSES)
async def suspend_schedule(
    ns: str, name: str, request: Request, user: Annotated[User, Depends(caller("suspend_schedule"))]
) -> JSONResponse:
    """Start no more runs (``spec.suspend: true``)."""
    return await write(gateway_of(request), ns, name, acts.suspend_schedule(True))


@router.post("/v1/namespaces/{ns}/schedules/{name}:resume", response_model=ScheduleSummary, responses=RESPONSES)
async def resume_schedule(
    ns: str, name: str, request: Request, user: Annotated[User, Depends(caller("resume_schedule"))]
) -> JSONResponse:
    return await write(gateway_of(request), ns, name, acts.suspend_schedule(False))


@router.post(
    "/v1/namespaces/{ns}/schedules/{name}:run", status_code=202, response_model=ScheduleSummary, responses=RESPONSES
)
async def run_schedule(
    ns: str, name: str, request: Request, user: Annotated[User, Depends(caller("run_schedule"))]
) -> JSONResponse:
    """Start one run now, whatever the schedule or suspend (``asynctask.dev/run-now``: a new value)."""
    gateway = gateway_of(request)
    value = stamp(gateway.clocks.utcnow(), micro=True)
    return await write(gateway, ns, name, acts.run_schedule_now(value), 202)
