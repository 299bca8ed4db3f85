"""``/v1/namespaces/{ns}/tasks``: submit, read, list, cancel, retry and delete AsyncTasks.

Reads come from the cache, through the tasks' views (:mod:`~asynctask_operator.gateway.reads`);
writes go to the API server, and their answers into the cache. A POST answers ``202 Accepted``
with the task's ``Location`` and a ``Retry-After`` (:mod:`~asynctask_operator.gateway.submissions`).
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from asynctask_operator.adapters.kube import ASYNCTASKS, ApiError
from asynctask_operator.core import acts
from asynctask_operator.core.idempotency import MAX_KEY_LENGTH, valid_key
from asynctask_operator.core.labelselectors import matches, parse
from asynctask_operator.core.timestamps import stamp
from asynctask_operator.core.tracing import trace_annotations
from asynctask_operator.core.views import TaskView
from asynctask_operator.gateway.access import Gateway, caller, gateway_of
from asynctask_operator.gateway.answers import TaskPage, TaskSubmission, TaskSummary, task_answer
from asynctask_operator.gateway.archived import archived_answer, archived_task
from asynctask_operator.gateway.auth import User
from asynctask_operator.gateway.problems import Problem, documented, from_api_error
from asynctask_operator.gateway.reads import position_of, synced, task_object, task_response, task_view, task_views
from asynctask_operator.gateway.submissions import create

router = APIRouter(tags=["tasks"])

KEY_PATTERN = r"^[!-~]([ -~]*[!-~])?$"  # printable ASCII, no space at either end (HTTP strips those)
DEFAULT_PAGE = 100
TASK_RESPONSES = documented(400, 401, 403, 404, 429, 503)


@router.post(
    "/v1/namespaces/{ns}/tasks",
    status_code=202,
    response_model=TaskSummary,
    responses=documented(
        400,
        401,
        403,
        409,
        413,
        415,
        422,
        429,
        503,
        also={200: {"model": TaskSummary, "description": "A replay of an Idempotency-Key: the original task"}},
    ),
)
async def submit_task(
    ns: str,
    submission: TaskSubmission,
    request: Request,
    user: Annotated[User, Depends(caller("submit_task"))],
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=MAX_KEY_LENGTH,
            pattern=KEY_PATTERN,
            description="The same key and body again answers with the same task (for as long as it exists).",
        ),
    ] = None,
) -> Response:
    """Submit a task: 202 Accepted, ``Location`` to poll, ``Retry-After`` a hint of when."""
    gateway = gateway_of(request)
    strictly(submission, await request.body())
    if idempotency_key is not None and not valid_key(idempotency_key):
        raise Problem(400, "Idempotency-Key must be 1-255 printable ASCII characters")
    # The request's W3C trace context: the task's trace joins it (ADR 0020); a malformed one is ignored.
    joined = trace_annotations(request.headers.get("traceparent"), request.headers.get("tracestate"))
    return await create(gateway, ns, user, submission, idempotency_key, **joined)


def strictly(submission: TaskSubmission, body: bytes) -> None:
    """Refuse what FastAPI's lax parsing let through (``"cancel": 0`` for false, ``"priority": "5"``): the
    body must be exactly what the schema says, as the API server would hold it."""
    try:
        TaskSubmission.model_validate_json(body, strict=True)
    except ValidationError as error:
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in error.errors()]) from None


@router.get(
    "/v1/namespaces/{ns}/tasks/{name}",
    response_model=TaskSummary,
    responses=documented(
        400, 401, 403, 404, 429, 503, also={304: {"description": "Not modified since the ETag given in If-None-Match"}}
    ),
)
async def get_task(
    ns: str,
    name: str,
    request: Request,
    user: Annotated[User, Depends(caller("get_task"))],
    uid: Annotated[
        str | None, Query(max_length=128, description="This task exactly (names are reused after a deletion).")
    ] = None,
    if_none_match: Annotated[str | None, Header(alias="If-None-Match")] = None,
) -> Response:
    """A task's summary from the cache, or from the archive once it is gone (``archived: true``); ``ETag`` is
    its resourceVersion, ``Retry-After`` while unfinished."""
    gateway = gateway_of(request)
    synced(gateway)
    view = gateway.tasks.views.get((ns, name))
    if view is None or (uid is not None and view.uid != uid):
        if gateway.archive is None:
            which = f" with uid {uid!r}" if uid else ""
            raise Problem(404, f"task {name!r}{which} not found in namespace {ns!r}")
        archived = archived_answer(await archived_task(gateway, ns, name, uid))
        etag = f'"{archived.get("resourceVersion", "")}"'
        if if_none_match is not None and etag in {t.strip() for t in if_none_match.split(",")} | {"*"}:
            return Response(status_code=304, headers={"ETag": etag})
        return JSONResponse(archived, headers={"ETag": etag})
    etag = f'"{view.resource_version}"'
    if if_none_match is not None and etag in {t.strip() for t in if_none_match.split(",")} | {"*"}:
        return Response(status_code=304, headers={"ETag": etag})
    return task_response(gateway, task_object(gateway, ns, name))


@router.get(
    "/v1/namespaces/{ns}/tasks/{name}/result",
    responses=documented(401, 403, 404, 409, 429, 503, also={200: {"description": "The task's result (any JSON)"}}),
)
async def get_task_result(
    ns: str, name: str, request: Request, user: Annotated[User, Depends(caller("get_task_result"))]
) -> Response:
    """The result of a Succeeded task (live, or archived once it is gone); 409 with its phase otherwise."""
    gateway = gateway_of(request)
    synced(gateway)
    obj = gateway.tasks.get(ns, name)
    if obj is None and gateway.archive is not None:
        obj = (await archived_task(gateway, ns, name)).object
    if obj is None:
        raise Problem(404, f"task {name!r} not found in namespace {ns!r}")
    view = TaskView.of(obj)
    if view.phase != "Succeeded":
        raise Problem(409, f"task {name!r} is {view.phase}, not Succeeded", phase=view.phase)
    return JSONResponse({"result": (obj.get("status") or {}).get("result")})


@router.get("/v1/namespaces/{ns}/tasks", response_model=TaskPage, responses=TASK_RESPONSES)
async def list_tasks(
    ns: str,
    request: Request,
    user: Annotated[User, Depends(caller("list_tasks"))],
    type: Annotated[str | None, Query(max_length=253)] = None,
    queue: Annotated[str | None, Query(max_length=63)] = None,
    phase: Annotated[str | None, Query(max_length=32)] = None,
    label_selector: Annotated[str | None, Query(alias="labelSelector", max_length=4096)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = DEFAULT_PAGE,
    continue_: Annotated[str | None, Query(alias="continue", max_length=400)] = None,
) -> Response:
    """A page of task summaries, by name, from the cache; ``continue`` of the answer gives the next page."""
    gateway = gateway_of(request)
    synced(gateway)
    try:
        terms = parse(label_selector or "")
    except ValueError as error:
        raise Problem(400, str(error)) from None
    after = decode_continue(continue_) if continue_ else ""
    limit = min(limit, gateway.settings.list_limit)
    chosen: list[TaskView] = []
    more = False
    for view in task_views(gateway, ns):
        if view.name <= after:
            continue
        if (type and view.type != type) or (queue and view.queue != queue) or (phase and view.phase != phase):
            continue
        if not matches(terms, view.labels):
            continue
        if len(chosen) == limit:
            more = True
            break
        chosen.append(view)
    items = [task_answer(v, task_object(gateway, ns, v.name), position_of(gateway, v)) for v in chosen]
    token = encode_continue(chosen[-1].name) if more and chosen else None
    return JSONResponse({"items": items} | ({"continue": token} if token else {}))


def encode_continue(name: str) -> str:
    return base64.urlsafe_b64encode(name.encode()).decode().rstrip("=")


def decode_continue(token: str) -> str:
    try:
        return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise Problem(400, "the continue token is not one this gateway gave") from None


@router.post(
    "/v1/namespaces/{ns}/tasks/{name}:cancel",
    status_code=202,
    response_model=TaskSummary,
    responses=documented(401, 403, 404, 409, 429, 503),
)
async def cancel_task(
    ns: str, name: str, request: Request, user: Annotated[User, Depends(caller("cancel_task"))]
) -> Response:
    """Cancel an unfinished task (``spec.cancel: true``); 409 when it has finished."""
    gateway = gateway_of(request)
    view = task_view(gateway, ns, name)
    if view.terminal:
        raise Problem(409, f"task {name!r} has finished ({view.phase}): nothing to cancel", phase=view.phase)
    return await write(gateway, ns, name, acts.cancel_task(), 202)


@router.post(
    "/v1/namespaces/{ns}/tasks/{name}:retry",
    status_code=202,
    response_model=TaskSummary,
    responses=documented(401, 403, 404, 409, 429, 503),
)
async def retry_task(
    ns: str, name: str, request: Request, user: Annotated[User, Depends(caller("retry_task"))]
) -> Response:
    """Run a Failed or Cancelled task again (``asynctask.dev/retry-requested``); 409 in any other phase."""
    gateway = gateway_of(request)
    view = task_view(gateway, ns, name)
    if view.phase not in acts.RETRYABLE_PHASES:
        raise Problem(
            409, f"only a Failed or Cancelled task can be retried; {name!r} is {view.phase}", phase=view.phase
        )
    requested = stamp(gateway.clocks.utcnow(), micro=True)
    return await write(gateway, ns, name, acts.retry_task(requested), 202)


async def write(gateway: Gateway, ns: str, name: str, patch: dict[str, Any], status_code: int) -> Response:
    try:
        obj = await gateway.api.patch(ASYNCTASKS, ns, name, patch)
    except ApiError as error:
        raise from_api_error(error, f"task {name!r}") from None
    gateway.tasks.put(obj)
    return task_response(gateway, obj, status_code)


@router.delete(
    "/v1/namespaces/{ns}/tasks/{name}",
    status_code=204,
    responses=documented(401, 403, 404, 429, 503),
)
async def delete_task(
    ns: str, name: str, request: Request, user: Annotated[User, Depends(caller("delete_task"))]
) -> Response:
    """Delete a task (a running one's Job goes with it)."""
    gateway = gateway_of(request)
    try:
        deleted = await gateway.api.delete(ASYNCTASKS, ns, name)
    except ApiError as error:
        raise from_api_error(error, f"task {name!r}") from None
    if not deleted:
        raise Problem(404, f"task {name!r} not found in namespace {ns!r}")
    return Response(status_code=204)
