"""The aggregated API ``archive.asynctask.dev/v1alpha1``: archived tasks for kubectl, read as their user.

Served on the aggregation port only (:mod:`.aggregation`), behind :class:`~.frontproxy.FrontProxyOnly`,
which puts the user the API server authenticated in ``request.state``::

    GET /apis, /apis/archive.asynctask.dev, /apis/archive.asynctask.dev/v1alpha1      discovery
    GET /openapi/v3, /openapi/v3/apis/archive.asynctask.dev/v1alpha1                   OpenAPI (kubectl explain)
    GET /apis/archive.asynctask.dev/v1alpha1/archivedtasks                             list asynctasks (all namespaces)
    GET …/v1alpha1/namespaces/{ns}/archivedtasks?type=&queue=&phase=&reason=&labelSelector=&since=&until=&q=&limit=&continue=
                                                                                       list asynctasks in ns
    GET …/v1alpha1/namespaces/{ns}/archivedtasks/{name}[?uid=]                          get asynctasks {name}
    GET …/v1alpha1/namespaces/{ns}/archivedtasks/{name}/log[?attempt=&uid=]             and get pods/log {its pod}
    GET /healthz

The API server authorizes only the path before it proxies (``get``/``list archivedtasks``, which the
chart gives to the view, edit and admin roles): what decides is here, a SubjectAccessReview for that
user, exactly the live reads' (:data:`~.access.PERMISSIONS`): a list ``list asynctasks`` in the
namespace, a task ``get asynctasks`` on its name, a log ``get pods/log`` on the attempt's pod too. Discovery and the OpenAPI document are answered to any user the front proxy names (the API server's
``system:discovery`` role gives every authenticated user the same). Errors are ``metav1.Status``.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from typing import TYPE_CHECKING, Annotated, Literal

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from asynctask_operator.adapters.kube import ApiError
from asynctask_operator.gateway import apiobjects, apischema, kubestatus
from asynctask_operator.gateway.access import NAMESPACE, Gateway, gateway_of
from asynctask_operator.gateway.apiobjects import GROUP, RESOURCE, VERSION
from asynctask_operator.gateway.archived import archived_answer, archived_task, asked, reader_of
from asynctask_operator.gateway.auth import Permission, User
from asynctask_operator.gateway.frontproxy import proxied_user
from asynctask_operator.gateway.kubestatus import forbidden
from asynctask_operator.gateway.logs import attempt_log, pod_log
from asynctask_operator.gateway.problems import Problem
from asynctask_operator.gateway.timequery import moment

if TYPE_CHECKING:
    from asynctask_operator.archive import ArchivedTask

logger = logging.getLogger(__name__)
router = APIRouter()
BASE = f"/apis/{GROUP}/{VERSION}"
RETRY_AFTER = {"Retry-After": "5"}


async def allowed(gateway: Gateway, user: User, permission: Permission) -> bool:
    try:
        return await gateway.reviews.allowed(user, permission)
    except ApiError as error:
        logger.warning("SubjectAccessReview failed: %s", error.status)
        raise Problem(503, "the Kubernetes API server could not authorize the request", headers=RETRY_AFTER) from None


async def authorized(request: Request, permission: Permission) -> tuple[Gateway, User]:
    """The gateway and the caller, once within their rate and allowed ``permission`` in a namespace served."""
    gateway, user = gateway_of(request), proxied_user(request)
    if permission.namespace and not NAMESPACE.match(permission.namespace):
        raise Problem(404, f"no namespace can be named {permission.namespace!r}")
    if gateway.limiter is not None:
        wait = gateway.limiter.take(user.name)
        if wait > 0:
            raise Problem(
                429, f"too many requests from {user.name}", headers={"Retry-After": str(max(1, math.ceil(wait)))}
            )
    if not await allowed(gateway, user, permission):
        raise forbidden(user, permission)
    if permission.namespace and not gateway.serves(permission.namespace):
        raise Problem(404, f"namespace {permission.namespace!r} is not served by this gateway")
    return gateway, user


# --------------------------------------------------------------------------- discovery, health


@router.get("/healthz")
async def healthz() -> PlainTextResponse:
    return PlainTextResponse("ok")


@router.get("/apis")
async def groups(request: Request) -> JSONResponse:
    proxied_user(request)
    return JSONResponse(apiobjects.group_list())


@router.get(f"/apis/{GROUP}")
async def group(request: Request) -> JSONResponse:
    proxied_user(request)
    return JSONResponse(apiobjects.group_document())


@router.get(BASE)
async def resources(request: Request) -> JSONResponse:
    proxied_user(request)
    return JSONResponse(apiobjects.resource_list())


@router.get("/openapi/v3")
async def openapi_discovery(request: Request) -> JSONResponse:
    proxied_user(request)
    return JSONResponse(apischema.discovery())


@router.get(f"/openapi/v3/{apischema.PATH}")
async def openapi_document(request: Request) -> Response:
    """The group-version's OpenAPI document (``kubectl explain archivedtasks``): the same for every user,
    immutable at one hash (the API server asks with ``?hash=``), so cacheable."""
    proxied_user(request)
    etag = f'"{apischema.document_hash()}"'
    headers = {"ETag": etag, "Cache-Control": "public, immutable" if request.query_params.get("hash") else "no-cache"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(apischema.document_bytes(), media_type="application/json", headers=headers)


# --------------------------------------------------------------------------- archivedtasks

Include = Literal["None", "Metadata", "Object"]


@dataclasses.dataclass(frozen=True)
class Listing:
    """A list's query parameters: Kubernetes' (``labelSelector``, ``limit``, ``continue``, …) and the history's."""

    type: Annotated[str | None, Query(max_length=253)] = None
    queue: Annotated[str | None, Query(max_length=63)] = None
    phase: Annotated[str | None, Query(max_length=32)] = None
    reason: Annotated[str | None, Query(max_length=128)] = None
    label_selector: Annotated[str | None, Query(alias="labelSelector", max_length=4096)] = None
    field_selector: Annotated[str | None, Query(alias="fieldSelector", max_length=4096)] = None
    since: Annotated[str | None, Query(max_length=64)] = None
    until: Annotated[str | None, Query(max_length=64)] = None
    q: Annotated[str | None, Query(max_length=253)] = None
    limit: Annotated[int | None, Query(ge=1)] = None
    continue_: Annotated[str | None, Query(alias="continue", max_length=400)] = None
    watch: Annotated[str | None, Query(max_length=8)] = None
    include_object: Annotated[Include, Query(alias="includeObject")] = "Metadata"


@router.get(f"{BASE}/{RESOURCE}")
async def list_everywhere(request: Request, listing: Annotated[Listing, Depends()]) -> Response:
    """Archived tasks of every namespace the gateway serves: ``list asynctasks`` cluster-wide."""
    return await listed(request, None, listing)


@router.get(f"{BASE}/namespaces/{{ns}}/{RESOURCE}")
async def list_namespaced(ns: str, request: Request, listing: Annotated[Listing, Depends()]) -> Response:
    """Archived tasks of the namespace: ``list asynctasks`` there."""
    return await listed(request, ns, listing)


async def listed(request: Request, ns: str | None, listing: Listing) -> Response:
    """Archived tasks, newest first, a keyset page at a time (``metadata.continue``); the history's filters."""
    from asynctask_operator.archive import HistoryQuery

    if listing.watch not in (None, "", "false", "0"):
        raise Problem(405, "archived tasks cannot be watched: they no longer change")
    if listing.field_selector:
        raise Problem(
            400,
            "fieldSelector is not supported: select with labelSelector, type, queue, phase, reason, since, until or q",
        )
    gateway, _ = await authorized(request, Permission("list", "asynctasks", ns or ""))
    bound = gateway.settings.list_limit
    query = HistoryQuery(
        namespaces=(ns,) if ns else (gateway.settings.namespaces or None),
        type=listing.type or None, queue=listing.queue or None, phase=listing.phase or None,
        reason=listing.reason or None, label_selector=listing.label_selector or None,
        since=moment("since", listing.since), until=moment("until", listing.until), q=listing.q or None,
        limit=min(listing.limit or bound, bound), cursor=listing.continue_ or None,
    )  # fmt: skip
    page = await asked(reader_of(gateway).page(query))
    objects = [apiobjects.archived_object(task, archived_answer(task)) for task in page.items]
    if apiobjects.wants_table(request.headers.get("accept", "")):
        body = apiobjects.table(objects, page.next_cursor, gateway.clocks.wall(), listing.include_object)
        return JSONResponse(body, media_type=apiobjects.TABLE_TYPE)
    return JSONResponse(apiobjects.object_list(objects, page.next_cursor))


async def found(gateway: Gateway, ns: str, name: str, uid: str | None) -> ArchivedTask:
    """The archived task; 404 in the API server's words when the archive holds none."""
    try:
        return await archived_task(gateway, ns, name, uid)
    except Problem as problem:
        if problem.status == 404:
            raise Problem(404, f'{RESOURCE}.{GROUP} "{name}" not found') from None
        raise


@router.get(f"{BASE}/namespaces/{{ns}}/{RESOURCE}/{{name}}")
async def get_archived(
    ns: str,
    name: str,
    request: Request,
    uid: Annotated[str | None, Query(max_length=128)] = None,
    include_object: Annotated[Include, Query(alias="includeObject")] = "Metadata",
) -> Response:
    """One archived task (by name the newest, by ``uid`` exactly), with the list of its kept logs."""
    gateway, _ = await authorized(request, Permission("get", "asynctasks", ns, name=name))
    task = await found(gateway, ns, name, uid)
    logs = await asked(reader_of(gateway).logs(task.uid))
    obj = apiobjects.archived_object(task, archived_answer(task), logs)
    if apiobjects.wants_table(request.headers.get("accept", "")):
        body = apiobjects.table([obj], None, gateway.clocks.wall(), include_object)
        return JSONResponse(body, media_type=apiobjects.TABLE_TYPE)
    return JSONResponse(obj)


@router.get(f"{BASE}/namespaces/{{ns}}/{RESOURCE}/{{name}}/log")
async def archived_log(
    ns: str,
    name: str,
    request: Request,
    attempt: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    uid: Annotated[str | None, Query(max_length=128)] = None,
) -> PlainTextResponse:
    """An attempt's log (``0``: the last) as the archive kept it; needs what ``kubectl logs`` needs on its pod."""
    gateway, user = await authorized(request, Permission("get", "asynctasks", ns, name=name))
    task = await found(gateway, ns, name, uid)

    async def may_read(pod: str) -> bool:
        return await allowed(gateway, user, pod_log(ns, pod))

    text = await attempt_log(gateway, ns, name, attempt, may_read, uid=task.uid)
    headers = {"X-Log-Source": text.source} | ({"X-Log-Truncated": "true"} if text.truncated else {})
    return PlainTextResponse(text.text, headers=headers)


def install(app: FastAPI) -> None:
    """The routes, and every error as a ``metav1.Status`` (:mod:`.kubestatus`)."""
    app.include_router(router)
    kubestatus.install(app)
