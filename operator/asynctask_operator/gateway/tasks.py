"""``/v1/namespaces/{ns}/tasks``: submit, read, list, cancel, retry and delete AsyncTasks.

Reads come from the cache (:class:`~asynctask_operator.gateway.store.Store`); writes go to the
API server, and their answers into the cache. A POST answers ``202 Accepted`` with the
task's ``Location`` and a ``Retry-After``; with an ``Idempotency-Key`` the task's name is
derived from (namespace, user, key) (:mod:`asynctask_operator.core.idempotency`), so a replay
is answered ``200 OK`` with the original task (header ``Idempotent-Replayed: true``).
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from asynctask_operator.adapters.kube import ASYNCTASKS, TASKTYPES, ApiError, Conflict, NotFound
from asynctask_operator.core import acts
from asynctask_operator.core.idempotency import (
    ANNOTATION_FINGERPRINT,
    ANNOTATION_SUBMITTED_BY,
    MAX_KEY_LENGTH,
    fingerprint,
    task_name_for_key,
    valid_key,
)
from asynctask_operator.core.labelselectors import matches, parse
from asynctask_operator.core.models import API_VERSION, AsyncTask, TaskType
from asynctask_operator.core.queueing import queue_positions
from asynctask_operator.core.timestamps import stamp
from asynctask_operator.core.tracing import trace_annotations
from asynctask_operator.core.validation import Refusal, check_payload
from asynctask_operator.gateway.access import Gateway, caller, gateway_of
from asynctask_operator.gateway.auth import Permission, User
from asynctask_operator.gateway.problems import Problem, documented, from_api_error
from asynctask_operator.gateway.views import (
    TaskPage,
    TaskSubmission,
    TaskSummary,
    retry_after,
    summary,
    task_queue,
)

router = APIRouter(tags=["tasks"])

KEY_PATTERN = r"^[!-~]([ -~]*[!-~])?$"  # printable ASCII, no space at either end (HTTP strips those)
DEFAULT_PAGE = 100
GENERATE_NAME_CHARS = 40  # of the type, in a generated name (the API server adds 5 random characters)


def location(namespace: str, name: str) -> str:
    return f"/v1/namespaces/{namespace}/tasks/{name}"


def parsed(obj: dict[str, Any]) -> AsyncTask:
    try:
        return AsyncTask.model_validate(obj)
    except ValidationError as error:  # an object the CRD let in but the model cannot read: not the caller's fault
        raise Problem(502, f"the stored task cannot be read: {error.errors()[0].get('msg', '')}") from None


def synced(gateway: Gateway) -> None:
    if not gateway.tasks.synced.is_set():
        raise Problem(503, "the gateway's cache is still loading", headers={"Retry-After": "1"})


def cached_task(gateway: Gateway, ns: str, name: str) -> AsyncTask:
    synced(gateway)
    obj = gateway.tasks.get(ns, name)
    if obj is None:
        raise Problem(404, f"task {name!r} not found in namespace {ns!r}")
    return parsed(obj)


def position_of(gateway: Gateway, task: AsyncTask) -> int | None:
    if task.phase != "Pending":
        return None
    return places(gateway, task.metadata.namespace).get((task_queue(task), task.metadata.name))


def places(gateway: Gateway, ns: str) -> dict[tuple[str, str], int]:
    """The namespace's queue positions, computed once per change of the cache (not once per GET)."""
    revision = gateway.tasks.revision
    cached = gateway.positions.get(ns)
    if cached is None or cached[0] != revision:
        waiting = (w for (namespace, _), w in gateway.tasks.indexed.items() if namespace == ns)
        cached = (revision, queue_positions(waiting))
        gateway.positions[ns] = cached
    return cached[1]


def concurrency_of(gateway: Gateway, namespace: str, queue: str) -> int | None:
    obj = gateway.queues.get(namespace, queue)
    spec = (obj or {}).get("spec") or {}
    value = spec.get("concurrency")
    return value if isinstance(value, int) else None


def answer(
    gateway: Gateway, task: AsyncTask, status_code: int = 200, *, headers: dict[str, str] | None = None
) -> JSONResponse:
    place = position_of(gateway, task)
    body = summary(task, place)
    out = {"ETag": f'"{task.metadata.resource_version}"', **(headers or {})}
    hint = retry_after(task.phase, place, concurrency_of(gateway, task.metadata.namespace, body.queue))
    if hint is not None:
        out["Retry-After"] = str(hint)
    return JSONResponse(body.dump(), status_code=status_code, headers=out)


def new_task(ns: str, user: User, submission: TaskSubmission, name: str | None, print_: str | None) -> dict[str, Any]:
    annotations = {ANNOTATION_SUBMITTED_BY: user.name}
    if print_ is not None:
        annotations[ANNOTATION_FINGERPRINT] = print_
    meta: dict[str, Any] = {"namespace": ns, "annotations": annotations}
    if submission.labels:
        meta["labels"] = dict(submission.labels)
    if name is not None:
        meta["name"] = name
    else:
        meta["generateName"] = submission.type[:GENERATE_NAME_CHARS].rstrip("-.") + "-"
    return {"apiVersion": API_VERSION, "kind": "AsyncTask", "metadata": meta, "spec": submission.task_spec()}


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


async def create(
    gateway: Gateway, ns: str, user: User, submission: TaskSubmission, key: str | None, **annotations: str
) -> Response:
    """Create the task of a submission: 202; with an idempotency ``key``, the replay of the original (200)."""
    name = print_ = None
    if key is not None:
        name = task_name_for_key(ns, user.name, key)
        print_ = fingerprint(submission.model_dump(by_alias=True, exclude_none=True, mode="json"))
    if name is None or gateway.tasks.get(ns, name) is None:  # a replay answers with its task, whatever its type now
        await check_type(gateway, ns, user, submission)
    body = new_task(ns, user, submission, name, print_)
    body["metadata"]["annotations"].update(annotations)
    try:
        created = await gateway.api.create(ASYNCTASKS, ns, body)
    except Conflict as conflict:
        if name is None:  # a create's 409 is always "AlreadyExists" (kmock words its reason otherwise)
            raise from_api_error(conflict, "the task") from None
        return await replay(gateway, ns, name, print_ or "")
    except ApiError as error:
        raise from_api_error(error, "the task") from None
    gateway.tasks.put(created)
    task = parsed(created)
    return answer(gateway, task, 202, headers={"Location": location(ns, task.metadata.name)})


async def check_type(gateway: Gateway, ns: str, user: User, submission: TaskSubmission) -> None:
    """Refuse (422) a submission whose TaskType does not exist in the namespace, or whose payload that type
    refuses (its schema, the payload limit): the operator's own check
    (:func:`~asynctask_operator.core.validation.check_payload`), made before the task exists, naming the
    field by its JSON pointer in the body.

    A type the cache has not seen is looked up once (created a moment ago, its watch event not here yet).
    When the cluster cannot say (the cache still loading, the lookup failing), the task is created and the
    operator decides as it does for ``kubectl apply``: it waits a few seconds for the type to appear, then
    ends the task UnknownTaskType."""
    type_ = submission.type
    obj = gateway.tasktypes.get(ns, type_)
    if obj is None:
        if not gateway.tasktypes.synced.is_set():
            return
        try:
            obj = await gateway.api.get(TASKTYPES, ns, type_)
        except NotFound:
            raise await unknown_type(gateway, ns, user, type_) from None
        except ApiError:
            return
        gateway.tasktypes.put(obj)
    try:
        tasktype = TaskType.model_validate(obj)
    except ValidationError:
        return  # a TaskType the operator reports on itself (InvalidTaskType): the type is at fault, not the caller
    try:
        check_payload(tasktype, submission.payload, gateway.settings.payload_limit_bytes)
    except Refusal as refusal:
        if refusal.pointer is None:  # the type's schema is broken: the operator reports it on the task
            return
        field = ".".join(p.replace("~1", "/").replace("~0", "~") for p in refusal.pointer.split("/")[1:])
        raise Problem(
            422,
            refusal.message.removeprefix("spec."),
            title="Invalid payload",
            reason=refusal.reason,
            errors=[{"field": field, "pointer": refusal.pointer, "message": refusal.message.removeprefix("spec.")}],
        ) from None


async def unknown_type(gateway: Gateway, ns: str, user: User, type_: str) -> Problem:
    """The 422 of a TaskType that does not exist: it names the types that do, to a caller who may list them."""
    try:
        may_list = await gateway.reviews.allowed(user, Permission("list", "tasktypes", ns))
    except ApiError:
        may_list = False
    if may_list:
        names = [str(o["metadata"]["name"]) for o in gateway.tasktypes.in_namespace(ns)]
        there = f"the TaskTypes there are {', '.join(names)}" if names else "there is no TaskType there yet"
    else:
        names, there = [], "you may not list the TaskTypes there"
    detail = f"type: no TaskType {type_!r} in namespace {ns!r}; {there}"
    return Problem(
        422,
        detail,
        title="Unknown task type",
        reason="UnknownTaskType",
        types=names,
        errors=[{"field": "type", "pointer": "/type", "message": detail.removeprefix("type: ")}],
    )


def strictly(submission: TaskSubmission, body: bytes) -> None:
    """Refuse what FastAPI's lax parsing let through (``"cancel": 0`` for false, ``"priority": "5"``): the
    body must be exactly what the schema says, as the API server would hold it."""
    try:
        TaskSubmission.model_validate_json(body, strict=True)
    except ValidationError as error:
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in error.errors()]) from None


async def replay(gateway: Gateway, ns: str, name: str, print_: str) -> Response:
    """The same Idempotency-Key again: the original task if the body is the same."""
    obj = gateway.tasks.get(ns, name)
    if obj is None:
        try:
            obj = await gateway.api.get(ASYNCTASKS, ns, name)
        except NotFound:  # deleted between our create and our read: another request holds the key
            raise Problem(409, "a request with this Idempotency-Key is in progress; retry") from None
        except ApiError as error:
            raise from_api_error(error, "the task") from None
        gateway.tasks.put(obj)
    task = parsed(obj)
    if task.metadata.deletion_timestamp:
        raise Problem(409, "the task of this Idempotency-Key is being deleted; retry with a new key")
    if task.metadata.annotations.get(ANNOTATION_FINGERPRINT) != print_:
        raise Problem(422, "this Idempotency-Key was used with a different body", title="Idempotency-Key reused")
    return answer(gateway, task, 200, headers={"Location": location(ns, name), "Idempotent-Replayed": "true"})


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
    if_none_match: Annotated[str | None, Header(alias="If-None-Match")] = None,
) -> Response:
    """A task's summary from the cache; ``ETag`` is its resourceVersion, ``Retry-After`` while unfinished."""
    gateway = gateway_of(request)
    task = cached_task(gateway, ns, name)
    etag = f'"{task.metadata.resource_version}"'
    if if_none_match is not None and etag in {t.strip() for t in if_none_match.split(",")} | {"*"}:
        return Response(status_code=304, headers={"ETag": etag})
    return answer(gateway, task)


@router.get(
    "/v1/namespaces/{ns}/tasks/{name}/result",
    responses=documented(401, 403, 404, 409, 429, 503, also={200: {"description": "The task's result (any JSON)"}}),
)
async def get_task_result(
    ns: str, name: str, request: Request, user: Annotated[User, Depends(caller("get_task_result"))]
) -> Response:
    """The result of a Succeeded task; 409 with its phase otherwise."""
    task = cached_task(gateway_of(request), ns, name)
    if task.phase != "Succeeded":
        raise Problem(409, f"task {name!r} is {task.phase}, not Succeeded", phase=task.phase)
    return JSONResponse({"result": task.status.result})


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
    chosen: list[AsyncTask] = []
    more = False
    for obj in gateway.tasks.in_namespace(ns):
        name = str(obj["metadata"]["name"])
        if name <= after:
            continue
        task = parsed(obj)
        if (
            (type and task.spec.type != type)
            or (queue and task_queue(task) != queue)
            or (phase and task.phase != phase)
        ):
            continue
        if not matches(terms, task.metadata.labels):
            continue
        if len(chosen) == limit:
            more = True
            break
        chosen.append(task)
    ranks = places(gateway, ns) if any(t.phase == "Pending" for t in chosen) else {}
    items = [summary(t, ranks.get((task_queue(t), t.metadata.name))) for t in chosen]
    token = encode_continue(chosen[-1].metadata.name) if more and chosen else None
    return JSONResponse(TaskPage(items=items, continue_=token).dump())


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
    task = cached_task(gateway, ns, name)
    if task.finished:
        raise Problem(409, f"task {name!r} has finished ({task.phase}): nothing to cancel", phase=task.phase)
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
    task = cached_task(gateway, ns, name)
    if task.phase not in acts.RETRYABLE_PHASES:
        raise Problem(
            409, f"only a Failed or Cancelled task can be retried; {name!r} is {task.phase}", phase=task.phase
        )
    requested = stamp(gateway.clocks.utcnow(), micro=True)
    return await write(gateway, ns, name, acts.retry_task(requested), 202)


async def write(gateway: Gateway, ns: str, name: str, patch: dict[str, Any], status_code: int) -> Response:
    try:
        obj = await gateway.api.patch(ASYNCTASKS, ns, name, patch)
    except ApiError as error:
        raise from_api_error(error, f"task {name!r}") from None
    gateway.tasks.put(obj)
    return answer(gateway, parsed(obj), status_code)


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
