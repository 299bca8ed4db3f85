"""``/v1/namespaces/{ns}/schedules``: ScheduledTasks — list, get, suspend, resume, run now."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from asynctask_operator.adapters.kube import SCHEDULEDTASKS, ApiError
from asynctask_operator.core import acts
from asynctask_operator.core.timestamps import stamp
from asynctask_operator.core.views import ScheduleView
from asynctask_operator.gateway.access import Gateway, caller, gateway_of
from asynctask_operator.gateway.answers import ScheduleList, ScheduleSummary, schedule_answer
from asynctask_operator.gateway.auth import User
from asynctask_operator.gateway.problems import documented, from_api_error
from asynctask_operator.gateway.reads import schedule_view, schedules_of

router = APIRouter(tags=["schedules"])
RESPONSES = documented(401, 403, 404, 429, 503)


@router.get("/v1/namespaces/{ns}/schedules", response_model=ScheduleList, responses=RESPONSES)
async def list_schedules(
    ns: str, request: Request, user: Annotated[User, Depends(caller("list_schedules"))]
) -> JSONResponse:
    items = [schedule_answer(v) for v in schedules_of(gateway_of(request), ns)]
    return JSONResponse(ScheduleList(items=items).dump())


@router.get("/v1/namespaces/{ns}/schedules/{name}", response_model=ScheduleSummary, responses=RESPONSES)
async def get_schedule(
    ns: str, name: str, request: Request, user: Annotated[User, Depends(caller("get_schedule"))]
) -> JSONResponse:
    return JSONResponse(schedule_answer(schedule_view(gateway_of(request), ns, name)).dump())


async def write(gateway: Gateway, ns: str, name: str, patch: dict[str, Any], status_code: int = 200) -> JSONResponse:
    schedule_view(gateway, ns, name)  # 404 unless it exists
    try:
        obj = await gateway.api.patch(SCHEDULEDTASKS, ns, name, patch)
    except ApiError as error:
        raise from_api_error(error, f"schedule {name!r}") from None
    gateway.schedules.put(obj)
    return JSONResponse(schedule_answer(ScheduleView.of(obj)).dump(), status_code=status_code)


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
