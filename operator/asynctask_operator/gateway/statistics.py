"""``/v1/namespaces/{ns}/statistics``: figures over the tasks still present (the TTL window), or over
the archive's history (days to months, computed in its database), and the answer says which."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import Field

from asynctask_operator.core.models import Model
from asynctask_operator.core.statistics import summarize, window_of
from asynctask_operator.core.timestamps import stamp
from asynctask_operator.gateway.access import caller, gateway_of
from asynctask_operator.gateway.archived import asked, reader_of
from asynctask_operator.gateway.auth import User
from asynctask_operator.gateway.problems import Problem, documented
from asynctask_operator.gateway.reads import synced, task_views
from asynctask_operator.gateway.timequery import TIME, moment

router = APIRouter(tags=["statistics"])
NOTES = {
    "live": "over the tasks still present: finished tasks are deleted after their TTL",
    "archive": "over the archive's tasks: those finished, kept past their TTL for the archive's retention",
}


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
    source: Literal["live", "archive"] = Field(
        "live",
        description="live: the tasks still present (finished ones are deleted after their TTL); "
        "archive: the archive's tasks, kept past their TTL (docs/archive.md).",
    )
    note: str = "over the tasks still present: finished tasks are deleted after their TTL"
    groups: list[GroupFigures]


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
    source: Annotated[
        Literal["live", "archive"] | None,
        Query(description="live or archive; default: archive when the gateway reads one, else live"),
    ] = None,
) -> JSONResponse:
    """Counts, success rate, durations (mean, p50, p95) and mean queue wait of the tasks created in the window."""
    gateway = gateway_of(request)
    start, end = moment("since", since), moment("until", until)
    end = gateway.clocks.wall() if end is None else end
    if start is not None and start > end:
        raise Problem(400, "since is after until")
    chosen = source or ("archive" if gateway.archive is not None else "live")
    if chosen == "archive":
        from asynctask_operator.archive import Scope

        reader = reader_of(gateway)
        scope = Scope((ns,), start, end)
        window = await asked(reader.window(scope))
        groups = await asked(reader.figures(scope, group_by))
    else:
        synced(gateway)
        all_facts = [v.facts() for v in task_views(gateway, ns)]
        window = window_of([f for f in all_facts if f.created <= end], start, end)
        groups = summarize(all_facts, since=start, until=end, group_by=group_by)

    def text(value: float | None) -> str | None:
        return None if value is None else stamp(dt.datetime.fromtimestamp(value, dt.UTC))

    answer = StatisticsAnswer(
        since=text(window.since),
        until=text(window.until) or "",
        group_by=group_by,
        source=chosen,
        note=NOTES[chosen],
        groups=[GroupFigures(key=key, **vars(figures)) for key, figures in groups.items()],
    )
    return JSONResponse(answer.dump())
