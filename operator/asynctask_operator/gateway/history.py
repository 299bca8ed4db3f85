"""``/v1/namespaces/{ns}/history`` and ``…/tasks/{name}/log``: tasks past their TTL, and any attempt's log.

The history is the archive's (docs/archive.md): finished tasks kept in a database after the
cluster deleted them, newest first, a page at a time by keyset (``continue`` is the last row's
place, never an offset: page 1,000 costs what page 1 does). Each item is a task's summary, the
same as a live task's (:mod:`~asynctask_operator.core.views`), marked ``archived``. An attempt's
log comes from its pod while the pod is there, else from the archive's copy
(:mod:`~asynctask_operator.gateway.logs`).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from asynctask_operator.adapters.kube import ApiError
from asynctask_operator.gateway.access import caller, gateway_of
from asynctask_operator.gateway.answers import HistoryAnswer
from asynctask_operator.gateway.archived import archived_answer, asked, reader_of
from asynctask_operator.gateway.auth import User
from asynctask_operator.gateway.logs import attempt_log, pod_log
from asynctask_operator.gateway.problems import Problem, documented
from asynctask_operator.gateway.timequery import TIME, moment

router = APIRouter(tags=["history"])
DEFAULT_PAGE = 50


@router.get(
    "/v1/namespaces/{ns}/history", response_model=HistoryAnswer, responses=documented(400, 401, 403, 404, 429, 503)
)
async def list_history(
    ns: str,
    request: Request,
    user: Annotated[User, Depends(caller("list_history"))],
    type: Annotated[str | None, Query(max_length=253)] = None,
    queue: Annotated[str | None, Query(max_length=63)] = None,
    phase: Annotated[str | None, Query(max_length=32)] = None,
    reason: Annotated[str | None, Query(max_length=128)] = None,
    label_selector: Annotated[str | None, Query(alias="labelSelector", max_length=4096)] = None,
    since: Annotated[str | None, Query(max_length=64, description="Created at or after (RFC 3339)", **TIME)] = None,
    until: Annotated[str | None, Query(max_length=64, description="Created at or before (RFC 3339)", **TIME)] = None,
    q: Annotated[str | None, Query(max_length=253, description="A part of the task's name")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = DEFAULT_PAGE,
    continue_: Annotated[str | None, Query(alias="continue", max_length=400)] = None,
) -> JSONResponse:
    """Archived tasks of the namespace, newest first, filtered; ``continue`` of the answer gives the next page."""
    from asynctask_operator.archive import HistoryQuery

    gateway = gateway_of(request)
    reader = reader_of(gateway)
    query = HistoryQuery(
        namespaces=(ns,),
        type=type or None,
        queue=queue or None,
        phase=phase or None,
        reason=reason or None,
        label_selector=label_selector or None,
        since=moment("since", since),
        until=moment("until", until),
        q=q or None,
        limit=min(limit, gateway.settings.list_limit),
        cursor=continue_ or None,
    )
    page = await asked(reader.page(query))
    answer = {"items": [archived_answer(task) for task in page.items]}
    return JSONResponse(answer | ({"continue": page.next_cursor} if page.next_cursor else {}))


@router.get(
    "/v1/namespaces/{ns}/tasks/{name}/log",
    response_class=PlainTextResponse,
    responses=documented(
        401, 403, 404, 409, 429, 502, 503,
        also={200: {"description": "The attempt's log as text", "content": {"text/plain": {"schema": {"type": "string"}}}}},
    ),
)  # fmt: skip
async def task_log(
    ns: str,
    name: str,
    request: Request,
    user: Annotated[User, Depends(caller("task_log"))],
    attempt: Annotated[int, Query(ge=0, le=1_000_000, description="The attempt; 0: the latest")] = 0,
    uid: Annotated[str | None, Query(max_length=128, description="This task exactly (names are reused)")] = None,
) -> PlainTextResponse:
    """An attempt's log: the end of its pod's while the pod is there, else the copy the archive kept when the
    attempt ended (``X-Log-Source: pod|archive``; ``X-Log-Truncated: true`` when only its end was kept). Needs
    what ``kubectl logs`` needs too: ``get pods/log`` on that pod."""
    gateway = gateway_of(request)

    async def allowed(pod: str) -> bool:
        try:
            return await gateway.reviews.permits(user, pod_log(ns, pod))
        except ApiError:
            raise Problem(
                503, "the Kubernetes API server could not authorize the request", headers={"Retry-After": "5"}
            ) from None

    found = await attempt_log(gateway, ns, name, attempt, allowed, uid=uid)
    headers = {"X-Log-Source": found.source} | ({"X-Log-Truncated": "true"} if found.truncated else {})
    return PlainTextResponse(found.text, headers=headers)
