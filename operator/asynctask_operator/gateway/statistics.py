"""``/v1/namespaces/{ns}/statistics``: figures over the tasks still present (the TTL window)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import Field

from asynctask_operator.core.models import Model
from asynctask_operator.core.statistics import summarize, window_of
from asynctask_operator.core.timestamps import parse_stamp, stamp
from asynctask_operator.gateway.access import caller, gateway_of
from asynctask_operator.gateway.auth import User
from asynctask_operator.gateway.problems import Problem, documented
from asynctask_operator.gateway.reads import synced, task_views

router = APIRouter(tags=["statistics"])


class GroupFigures(Model):
    key: str = Field(description="The type or queue of the group; empty without groupBy.")
    total: int
    succeeded: int
    failed: int
    cancelled: int
    success_rate: float | None = None
    mean_duration_seconds: float | None = None
    p50_duration_seconds: float | None = None
    p95_duration_seconds: float | None = None
    mean_queue_wait_seconds: float | None = None


class StatisticsAnswer(Model):
    since: str | None = Field(
        None, description="Start of the window covered: the later of ?since and the oldest task present."
    )
    until: str
    group_by: str | None = None
    note: str = "over the tasks still present: finished tasks are deleted after their TTL"
    groups: list[GroupFigures]


TIME: dict[str, Any] = {"json_schema_extra": {"format": "date-time"}}
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)$")


def moment(name: str, text: str | None) -> float | None:
    """Epoch seconds of a query's RFC 3339 time; 400 for anything else."""
    if text is None:
        return None
    parsed_ = parse_stamp(text.upper()) if RFC3339.match(text) else None
    if parsed_ is None:
        raise Problem(400, f"{name} must be an RFC 3339 time (2026-01-02T03:04:05Z)")
    return parsed_.timestamp()


@router.get(
    "/v1/namespaces/{ns}/statistics", response_model=StatisticsAnswer, responses=documented(400, 401, 403, 429, 503)
)
async def statistics(
    ns: str,
    request: Request,
    user: Annotated[User, Depends(caller("statistics"))],
    since: Annotated[str | None, Query(max_length=64, description="RFC 3339; default: the oldest task", **TIME)] = None,
    until: Annotated[str | None, Query(max_length=64, description="RFC 3339; default: now", **TIME)] = None,
    group_by: Annotated[Literal["type", "queue"] | None, Query(alias="groupBy")] = None,
) -> JSONResponse:
    """Counts, success rate, durations (mean, p50, p95) and mean queue wait of the tasks created in the window."""
    gateway = gateway_of(request)
    synced(gateway)
    start, end = moment("since", since), moment("until", until)
    end = gateway.clocks.wall() if end is None else end
    if start is not None and start > end:
        raise Problem(400, "since is after until")
    all_facts = [v.facts() for v in task_views(gateway, ns)]
    window = window_of([f for f in all_facts if f.created <= end], start, end)
    groups = summarize(all_facts, since=start, until=end, group_by=group_by)

    def text(value: float | None) -> str | None:
        return None if value is None else stamp(dt.datetime.fromtimestamp(value, dt.UTC))

    answer = StatisticsAnswer(
        since=text(window.since),
        until=text(window.until) or "",
        group_by=group_by,
        groups=[GroupFigures(key=key, **vars(figures)) for key, figures in groups.items()],
    )
    return JSONResponse(answer.dump())
