"""The console's History: tasks past their TTL, from the archive, as the task table shows live ones.

Each archived task is read through the same view as a live one (its row, its task page), newest
first, a page at a time by keyset (the next page starts after the last row: no count, no offset,
so page 1,000 of a million tasks comes as fast as the first). The filter is the task table's,
and a reason; the export streams every task the filter admits, page after page. Authorized as
the task table is: ``list asynctasks`` in each namespace shown (docs/console.md, History).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse

from asynctask_operator.core.views import TaskView
from asynctask_operator.gateway.archived import asked, reader_of
from asynctask_operator.gateway.console.exports import CSV_HEADER, MAX_EXPORT, csv_line, json_line
from asynctask_operator.gateway.console.gate import Visible, archive_namespaces, served_namespaces
from asynctask_operator.gateway.console.routing import ConsoleRoute, console_of, viewer
from asynctask_operator.gateway.console.rows import PAGE_SIZES, PHASES, WINDOWS, Filter
from asynctask_operator.gateway.console.state import SECURITY_HEADERS
from asynctask_operator.gateway.problems import Problem

if TYPE_CHECKING:
    from asynctask_operator.archive import ArchivedTask, ArchiveReader, HistoryQuery

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
EXPORT_PAGE = 500


def history_query(
    flt: Filter, namespaces: tuple[str, ...] | None, reason: str, cursor: str | None, limit: int
) -> HistoryQuery:
    from asynctask_operator.archive import HistoryQuery

    return HistoryQuery(
        namespaces=namespaces,
        type=flt.type or None,
        queue=flt.queue or None,
        phase=flt.phase or None,
        reason=reason or None,
        label_selector=flt.label or None,
        since=flt.since,
        until=flt.until,
        q=flt.q or None,
        limit=limit,
        cursor=cursor,
    )


def text(query: Any, field: str, limit: int) -> str:
    value = (query.get(field) or "").strip()
    if len(value) > limit:
        raise Problem(400, f"{field} is longer than {limit} characters")
    return value


async def scope(request: Request) -> tuple[Any, Filter, Visible, tuple[str, ...] | None, str]:
    """The request's viewer, filter, the namespaces it may list, those the filter reads (None: every one
    of the archive, :func:`~.gate.archive_namespaces`), and the reason."""
    who = await viewer(request)
    gateway = who.gateway
    flt = Filter.of(request.query_params, gateway.clocks.wall())
    visible = await who.namespaces("list_history", served_namespaces(gateway))
    if flt.namespace:
        await who.require("list_history", flt.namespace)
    namespaces = await archive_namespaces(who, "list_history", flt.namespace, visible.shown)
    return who, flt, visible, namespaces, text(request.query_params, "reason", 128)


@router.get("/ui/history", response_class=HTMLResponse)
async def history_page(request: Request) -> Response:
    """A page of archived tasks, newest first; ``cursor`` (the previous page's) for the next one."""
    console = console_of(request)
    who, flt, visible, namespaces, reason = await scope(request)
    gateway = who.gateway
    cursor = text(request.query_params, "cursor", 400) or None
    rows: list[tuple[TaskView, ArchivedTask]] = []
    following = None
    if gateway.archive is not None and namespaces != ():
        page = await asked(reader_of(gateway).page(history_query(flt, namespaces, reason, cursor, flt.size)))
        rows = [(TaskView.of(task.object), task) for task in page.items]
        following = page.next_cursor
    return console.page(
        request,
        "history.html",
        session=who.session,
        flt=flt,
        reason=reason,
        visible=visible,
        rows=rows,
        cursor=cursor,
        following=following,
        archive=gateway.archive is not None,
        phase_names=PHASES,
        sizes=PAGE_SIZES,
        windows=list(WINDOWS),
    )


async def every_archived(reader: ArchiveReader, query: HistoryQuery) -> AsyncIterator[TaskView]:
    """Every archived task the query admits, page after page (at most :data:`MAX_EXPORT`)."""
    import dataclasses

    sent, cursor = 0, None
    while sent < MAX_EXPORT:
        page = await asked(reader.page(dataclasses.replace(query, cursor=cursor)))
        for task in page.items[: MAX_EXPORT - sent]:
            yield TaskView.of(task.object)
        sent += len(page.items)
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


@router.get("/ui/export/history.{fmt}")
async def export_history(request: Request, fmt: str) -> Response:
    """Every archived task the filter admits (not only a page), as CSV or a JSON array, streamed."""
    if fmt not in ("csv", "json"):
        raise Problem(404, "export as history.csv or history.json")
    who, flt, _, namespaces, reason = await scope(request)
    reader = reader_of(who.gateway)
    tasks = every_archived(reader, history_query(flt, namespaces, reason, None, EXPORT_PAGE))

    async def lines() -> AsyncIterator[str]:
        yield CSV_HEADER if fmt == "csv" else "[\n"
        first = True
        async for view in tasks:
            yield csv_line(view) if fmt == "csv" else json_line(view, first)
            first = False
        if fmt == "json":
            yield "]\n"

    headers = {**SECURITY_HEADERS, "Content-Disposition": f'attachment; filename="asynctask-history.{fmt}"'}
    media = "text/csv; charset=utf-8" if fmt == "csv" else "application/json"
    return StreamingResponse(lines(), media_type=media, headers=headers)
