"""The console's sign-in, its task table and a task's page."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections import Counter
from typing import TYPE_CHECKING, Any

import yaml
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from asynctask_operator.adapters.kube import EVENTS, ApiError
from asynctask_operator.core import acts
from asynctask_operator.core.models import AsyncTask
from asynctask_operator.core.views import TaskView
from asynctask_operator.core.wire import event_about
from asynctask_operator.gateway.access import bearer_token, gateway_of, header_user
from asynctask_operator.gateway.archived import archived_task, asked, reader_of
from asynctask_operator.gateway.console.gate import Viewer, Visible, served_namespaces
from asynctask_operator.gateway.console.routing import (
    ConsoleRoute,
    console_of,
    field,
    form,
    local,
    same_origin,
    viewer,
)
from asynctask_operator.gateway.console.rows import PAGE_SIZES, PHASES, SORTS, WINDOWS, Filter, chosen, page_of
from asynctask_operator.gateway.console.sessions import COOKIE, COOKIE_PATH
from asynctask_operator.gateway.console.state import Console
from asynctask_operator.gateway.logs import attempt_pod
from asynctask_operator.gateway.problems import Problem
from asynctask_operator.gateway.reads import every_task_view, position_of, view_of

if TYPE_CHECKING:
    from asynctask_operator.archive import ArchivedTask

logger = logging.getLogger(__name__)
router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)


@router.get("/ui")
async def root() -> RedirectResponse:
    return RedirectResponse("/ui/", 308)


@router.get("/ui/login", response_class=HTMLResponse)
async def login_form(request: Request, next: str = "") -> Response:
    console = console_of(request)
    if header_user(gateway_of(request).settings, request) is not None:  # behind the auth proxy: no sign-in
        return RedirectResponse(local(next) or "/ui/", 303)
    return console.page(request, "login.html", next=local(next), error=None)


@router.post("/ui/login", response_class=HTMLResponse)
async def login(request: Request) -> Response:
    """Sign in with a bearer token: reviewed now (TokenReview); kept here, never sent back."""
    console = console_of(request)
    gateway = gateway_of(request)
    if not same_origin(request):
        raise Problem(403, "this form was sent from another site")
    fields = await form(request)
    target = local(field(fields, "next")) or "/ui/"
    token = bearer_token("Bearer " + field(fields, "token").strip())
    if token is None:
        return console.page(request, "login.html", 400, next=target, error="Paste a Kubernetes bearer token.")
    try:
        user = await gateway.reviews.authenticate(token)
    except ApiError:
        return console.page(
            request, "login.html", 503, next=target, error="The Kubernetes API server could not review the token."
        )
    if user is None:
        return console.page(
            request, "login.html", 401, next=target, error="The cluster did not accept this token (TokenReview)."
        )
    session = console.sessions.open(user, token)
    logger.info("console sign-in of %s", user.name)
    response = RedirectResponse(target, 303)
    console.set_cookie(request, response, session)
    return response


@router.post("/ui/logout")
async def logout(request: Request) -> Response:
    console = console_of(request)
    fields = await form(request)
    session = console.sessions.get(request.cookies.get(COOKIE))
    if session is not None and session.csrf_ok(field(fields, "csrf")) and same_origin(request):
        console.sessions.close(session.id)
    response = RedirectResponse("/ui/login", 303)
    response.delete_cookie(COOKIE, path=COOKIE_PATH)
    return response


@dataclasses.dataclass
class Table:
    """The task table of a request: its filter, what the user may list, and the rows it admits, in order."""

    console: Console
    who: Viewer
    flt: Filter
    visible: Visible
    every: list[TaskView]
    """Every task of the visible namespaces (for the filter's choices and the phase counts)."""
    rows: list[TaskView]


async def table(request: Request) -> Table:
    """The table of the request's filter, over the namespaces its user may list (403 for a namespace
    asked for by name that they may not)."""
    console = console_of(request)
    who = await viewer(request)
    gateway = who.gateway
    now = gateway.clocks.wall()
    flt = Filter.of(request.query_params, now)
    visible = await who.namespaces("list_tasks", served_namespaces(gateway))
    if flt.namespace and flt.namespace not in visible.shown:
        await who.require("list_tasks", flt.namespace)
    every = every_task_view(gateway, set(visible.shown))
    return Table(console, who, flt, visible, every, chosen(every, flt, set(visible.shown), now))


@router.get("/ui/", response_class=HTMLResponse)
async def tasks_page(request: Request) -> Response:
    """The task table: the filter's page, in its order, of the namespaces this user may list."""
    found = await table(request)
    console, who, flt, visible, every = found.console, found.who, found.flt, found.visible, found.every
    gateway = who.gateway
    page = page_of(found.rows, flt)
    unphased = Filter(**{**vars(flt), "phase": ""})
    phases = Counter(r.phase for r in every if unphased.admits(r))
    writable = {
        f"{ns}/{name}" for ns, name in await who.may_each("cancel_task", [(r.namespace, r.name) for r in page.rows])
    }
    bulk = bool(writable) or any(
        [await who.may("retry_task", ns) for ns in (visible.shown if not flt.namespace else [flt.namespace])]
    )
    return console.page(
        request,
        "tasks.html",
        session=who.session,
        flt=flt,
        page=page,
        visible=visible,
        phases=phases,
        phase_names=PHASES,
        types=sorted({r.type for r in every}),
        queues=sorted({r.queue for r in every}),
        sorts=SORTS,
        sizes=PAGE_SIZES,
        windows=list(WINDOWS),
        writable=writable,
        bulk=bulk,
        drawn=str(gateway.tasks.newest or ""),
        synced=gateway.tasks.synced.is_set(),
    )


@router.get("/ui/namespaces/{ns}/tasks/{name}", response_class=HTMLResponse)
async def task_page(request: Request, ns: str, name: str, uid: str = "") -> Response:
    """One task: status, progress, attempts, result, error, callback, conditions, Events, logs, YAML. A task the
    cluster deleted is shown as the archive kept it (``uid``: that one exactly), read-only."""
    console = console_of(request)
    who = await viewer(request)
    await who.require("get_task", ns, name)
    gateway = who.gateway
    obj = gateway.tasks.get(ns, name)
    archived: ArchivedTask | None = None
    if obj is None or (uid and (obj.get("metadata") or {}).get("uid") != uid):
        if gateway.archive is None:
            raise Problem(
                404, f"task {name!r} not found in namespace {ns!r} (finished tasks are deleted after their TTL)"
            )
        archived = await archived_task(gateway, ns, name, uid or None)
        obj = archived.object
    view = view_of(gateway.tasks, obj)
    try:
        task = AsyncTask.model_validate(obj)
    except ValidationError as error:
        raise Problem(502, f"the stored task cannot be read: {error.errors()[0].get('msg', '')}") from None
    may_patch, may_events, may_logs = await asyncio.gather(
        who.may("cancel_task", ns, name), who.may("list_events", ns), may_read_logs(who, ns, obj, archived)
    )
    events, events_error = await task_events(gateway.api, ns, obj) if may_events else ([], None)
    position = position_of(gateway, view) if archived is None else None
    may_patch = may_patch and archived is None  # what the cluster deleted cannot be cancelled or retried
    shown = dict(obj)
    shown["metadata"] = {k: v for k, v in (obj.get("metadata") or {}).items() if k != "managedFields"}
    return console.page(
        request,
        "task.html",
        session=who.session,
        task=task,
        view=view,
        ns=ns,
        name=name,
        position=position,
        may_cancel=may_patch and acts.actionable(obj, "cancel") is None,
        may_retry=may_patch and acts.actionable(obj, "retry") is None,
        may_logs=may_logs,
        may_events=may_events,
        events=events,
        events_error=events_error,
        yaml_text=yaml.safe_dump(shown, sort_keys=False, allow_unicode=True),
        attempts=list(task.status.attempts or ()),
        archived=archived,
    )


async def may_read_logs(who: Viewer, ns: str, obj: dict[str, Any], archived: ArchivedTask | None = None) -> bool:
    """Whether the user may read the task's attempt logs: ``get pods/log`` namespace-wide, else about
    the pod of its latest attempt by name (the pod a Role's ``resourceNames`` would list; of an archived
    task, the pod its kept log came from)."""
    if await who.may("pod_log", ns):
        return True
    if archived is not None:
        kept = await asked(reader_of(who.gateway).logs(archived.uid))
        for log in kept:
            if log.pod and await who.may("pod_log", ns, log.pod):
                return True
        return False
    pod = await attempt_pod(who.gateway, ns, obj, 0)
    return pod is not None and await who.may("pod_log", ns, str(pod["metadata"]["name"]))


async def task_events(api: Any, ns: str, obj: dict[str, Any]) -> tuple[list[dict[str, Any]], str | None]:
    """The Kubernetes Events about a task, oldest first; or why they could not be read."""
    try:
        found = [e for e in await api.list_objects(EVENTS, ns) if event_about(e, obj)]
    except ApiError as error:
        return [], f"Events could not be read ({error.status} {error.reason})"
    found.sort(key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime") or ""))
    return found[-50:], None
