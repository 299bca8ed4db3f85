"""The console's queues, schedules and statistics pages."""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from asynctask_operator.core.naming import LABEL_SCHEDULED_TASK, label_value
from asynctask_operator.core.statistics import failures_by_reason, finished_per_hour, summarize, window_of
from asynctask_operator.core.views import QueueView, ScheduleView, TaskView
from asynctask_operator.gateway.archived import asked, reader_of
from asynctask_operator.gateway.console import charts
from asynctask_operator.gateway.console.gate import Viewer, Visible, archive_namespaces, served_namespaces
from asynctask_operator.gateway.console.routing import ConsoleRoute, console_of, viewer
from asynctask_operator.gateway.console.rows import WINDOWS, iso
from asynctask_operator.gateway.problems import Problem
from asynctask_operator.gateway.reads import every_task_view, positions, queues_of, schedules_of

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
PENDING_SHOWN = 20
RECENT_RUNS = 5


async def namespaces_of(who: Viewer, act: str) -> tuple[Visible, set[str]]:
    """The namespaces where the user may do ``act`` (listing queues or schedules), and of those, the
    ones where they may also list tasks (the pending tasks of a queue, the runs of a schedule)."""
    visible = await who.namespaces(act, served_namespaces(who.gateway))
    return visible, set((await who.namespaces("list_tasks", visible.shown)).shown)


@dataclasses.dataclass
class QueueRow:
    queue: QueueView
    pending: list[tuple[int, str, str]]
    """The first waiting tasks, by admission order: (position, name, what it waits for beyond a slot)."""
    may_pause: bool


@router.get("/ui/queues", response_class=HTMLResponse)
async def queues_page(request: Request) -> Response:
    console = console_of(request)
    who = await viewer(request)
    gateway = who.gateway
    visible, readable = await namespaces_of(who, "list_queues")
    groups: list[tuple[str, list[QueueRow]]] = []
    for ns in visible.shown:
        ranks = positions(gateway, ns) if ns in readable else {}
        views = gateway.tasks.views
        waiting: dict[str, list[tuple[int, str, str]]] = {}
        for (queue, name), position in ranks.items():
            view = views.get((ns, name))
            note = view.waiting_for_key.text if view is not None and view.waiting_for_key is not None else ""
            waiting.setdefault(queue, []).append((position, name, note))
        found = queues_of(gateway, ns)
        may = await who.may_each("pause_queue", [(ns, q.name) for q in found.values() if q.exists])
        rows = [
            QueueRow(q, sorted(waiting.get(q.name, []))[:PENDING_SHOWN], (ns, q.name) in may) for q in found.values()
        ]
        groups.append((ns, rows))
    return console.page(request, "queues.html", session=who.session, groups=groups, visible=visible)


@dataclasses.dataclass
class ScheduleRow:
    schedule: ScheduleView
    runs: list[TaskView]
    may_patch: bool


@router.get("/ui/schedules", response_class=HTMLResponse)
async def schedules_page(request: Request) -> Response:
    console = console_of(request)
    who = await viewer(request)
    gateway = who.gateway
    visible, readable = await namespaces_of(who, "list_schedules")
    rows = every_task_view(gateway, readable)
    groups: list[tuple[str, list[ScheduleRow]]] = []
    for ns in visible.shown:
        found = schedules_of(gateway, ns)
        may = await who.may_each("suspend_schedule", [(ns, s.name) for s in found])
        views = []
        for item in found:
            mark = label_value(item.name)
            runs = sorted(
                (r for r in rows if r.namespace == ns and r.labels.get(LABEL_SCHEDULED_TASK) == mark),
                key=lambda r: r.created or 0.0,
                reverse=True,
            )[:RECENT_RUNS]
            views.append(ScheduleRow(item, runs, (ns, item.name) in may))
        groups.append((ns, views))
    return console.page(request, "schedules.html", session=who.session, groups=groups, visible=visible)


@router.get("/ui/statistics", response_class=HTMLResponse)
async def statistics_page(request: Request, namespace: str = "", window: str = "24h", source: str = "") -> Response:
    """Success rate and p50/p95 durations by type and by queue, tasks finished per hour (per day over long
    windows), failures by reason, over the chosen window: of the tasks still present, or of the archive's
    (the default when the gateway reads one: its history outlives the TTL, for windows of days to months)."""
    console = console_of(request)
    who = await viewer(request)
    gateway = who.gateway
    if window and window not in WINDOWS:
        raise Problem(400, f"window must be one of {', '.join(WINDOWS)} or empty (all); got {window!r}")
    visible = await who.namespaces("statistics", served_namespaces(gateway))
    if namespace:
        await who.require("statistics", namespace)
    chosen_ns = {namespace} if namespace else set(visible.shown)
    until = gateway.clocks.wall()
    since = until - WINDOWS[window] if window else None
    if source not in ("", "live", "archive"):
        raise Problem(400, f"source must be live or archive; got {source!r}")
    source = source or ("archive" if gateway.archive is not None else "live")
    daily = since is None or until - since > 8 * 86400  # a bar per hour would be too many
    if source == "archive":
        from asynctask_operator.archive import Scope

        read = await archive_namespaces(who, "statistics", namespace, sorted(chosen_ns))
        found = await asked(reader_of(gateway).statistics(Scope(read, since, until)))
        covered, by_type, by_queue, overall = found.window, found.by_type, found.by_queue, found.overall
        hours = found.finished_per_day if daily else found.finished_per_hour
        reasons = found.failures_by_reason
    else:
        facts = [v.facts() for v in every_task_view(gateway, chosen_ns)]
        covered = window_of([f for f in facts if f.created <= until], since, until)
        by_type = summarize(facts, since=since, until=until, group_by="type")
        by_queue = summarize(facts, since=since, until=until, group_by="queue")
        overall = summarize(facts, since=since, until=until)[""]
        hours = finished_per_hour(facts, since, until)
        reasons = failures_by_reason(facts, since, until)
        daily = False
    figures: dict[str, Any] = {"type": by_type, "queue": by_queue}
    pictures = {
        group: {
            "rate": charts.bar_chart(
                f"Success rate by {group}", [(k, v.success_rate) for k, v in found.items()], fmt=charts.percent
            ),
            "p50": charts.bar_chart(
                f"p50 duration by {group}", [(k, v.p50_duration_seconds) for k, v in found.items()], fmt=charts.seconds
            ),
            "p95": charts.bar_chart(
                f"p95 duration by {group}", [(k, v.p95_duration_seconds) for k, v in found.items()], fmt=charts.seconds
            ),
        }
        for group, found in figures.items()
    }
    per_hour = (
        charts.column_chart("Tasks finished per day (UTC)", [(iso(d)[5:10], n) for d, n in hours])
        if daily
        else charts.column_chart("Tasks finished per hour (UTC)", [(iso(h)[11:16], n) for h, n in hours])
    )
    failures = charts.bar_chart("Failures by reason", [(r, float(n)) for r, n in reasons], fmt=lambda v: f"{v:.0f}")
    return console.page(
        request,
        "statistics.html",
        session=who.session,
        visible=visible,
        namespace=namespace,
        window=window,
        windows=list(WINDOWS),
        source=source,
        archive=gateway.archive is not None,
        daily=daily,
        covered_since=iso(covered.since) if covered.since else None,
        covered_until=iso(covered.until),
        overall=overall,
        figures=figures,
        pictures=pictures,
        per_hour=per_hour,
        hours=hours,
        failures=failures,
        reasons=reasons,
        iso=iso,
    )
