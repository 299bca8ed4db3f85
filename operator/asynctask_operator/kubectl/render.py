"""How objects look in the terminal: tables, the live progress view, its one-line-per-change form
(``describe``'s view of one task is in :mod:`~asynctask_operator.kubectl.describe`).

Pure: every function takes the objects and the time, and returns a rich renderable or text, so
tests compare golden text (``Console(record=True, width=...)``, ``export_text()``).

    NAME        TYPE   QUEUE   PHASE     PROGRESS   ATTEMPT   AGE
    hello-x7k   hello  default Running   45%        1         12s
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from typing import Any

import yaml
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from asynctask_operator.core.statistics import Figures
from asynctask_operator.core.timestamps import parse_stamp
from asynctask_operator.core.views import QueueView, TaskView
from asynctask_operator.core.wire import Obj

BAR_WIDTH = 20
PHASE_STYLES = {
    "Pending": "yellow",
    "Running": "cyan",
    "Retrying": "magenta",
    "Succeeded": "green",
    "Failed": "red",
    "Cancelled": "bright_black",
}


def meta_of(obj: Obj) -> Obj:
    return obj.get("metadata") or {}


def spec_of(obj: Obj) -> Obj:
    return obj.get("spec") or {}


def status_of(obj: Obj) -> Obj:
    return obj.get("status") or {}


def phase(task: Obj) -> str:
    return str(status_of(task).get("phase") or "Pending")


def view(task: Obj) -> TaskView:
    """The task as every front door shows it (:class:`~asynctask_operator.core.views.TaskView`)."""
    return TaskView.of(task)


def age(stamp: str | None, now: dt.datetime) -> str:
    """A short age as kubectl rounds it (two of a unit before it is used): ``90s``, ``5m``, ``3h``, ``12d``."""
    moment = parse_stamp(stamp)
    if moment is None:
        return "<unknown>"
    seconds = max(int((now - moment).total_seconds()), 0)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= 2 * size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def clock(seconds: float) -> str:
    """``mm:ss``, or ``h:mm:ss`` from an hour."""
    whole = max(int(seconds), 0)
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60:02d}:{rest % 60:02d}"


def percent_text(task: TaskView) -> str:
    """``45%``; ``""`` when unknown (the view's percent: 100 once Succeeded)."""
    return "" if task.percent is None else f"{task.percent:.0f}%"


def timing(task: TaskView, now: dt.datetime) -> str:
    """How long it waited, while it has not started (``wait 00:35``), else how long it has run (``run 01:05``)."""
    seconds = now.timestamp()
    ran = task.duration(seconds)
    if ran is not None:
        return f"run {clock(ran)}"
    waited = task.wait(seconds)
    return f"wait {clock(waited)}" if waited is not None else ""


def finished(task: Obj) -> bool:
    return view(task).terminal


# ---------------------------------------------------------------------- tables


def plain_table(*headers: str) -> Table:
    """A table as kubectl prints one: no borders, bold headers, three spaces between columns."""
    table = Table(box=None, show_edge=False, pad_edge=False, padding=(0, 3, 0, 0), header_style="bold")
    for header in headers:
        table.add_column(header, no_wrap=True)
    return table


def tasks_table(tasks: Iterable[Obj], now: dt.datetime, *, wide: bool = False, all_namespaces: bool = False) -> Table:
    """``kubectl asynctask get``: AGE from creation; with ``-o wide`` WAIT (queue to first start) and DURATION
    (first start to finish, or now) too, and the headline as MESSAGE."""
    headers = ["NAME", "TYPE", "QUEUE", "PHASE", "PROGRESS", "ATTEMPT", "AGE"]
    if wide:
        headers += ["WAIT", "DURATION", "PRIORITY", "REASON", "MESSAGE"]
    if all_namespaces:
        headers.insert(0, "NAMESPACE")
    table = plain_table(*headers)
    seconds = now.timestamp()
    for task in map(view, tasks):
        row: list[str | Text] = [
            task.name,
            task.type,
            task.queue,
            Text(task.phase, style=PHASE_STYLES.get(task.phase, "")),
            percent_text(task),
            task.attempt_text,
            age(task.created_time, now),
        ]
        if wide:
            waited, ran = task.wait(seconds), task.duration(seconds)
            row += [
                "" if waited is None else clock(waited),
                "" if ran is None else clock(ran),
                str(task.priority),
                task.reason,
                task.headline,
            ]
        if all_namespaces:
            row.insert(0, task.namespace)
        table.add_row(*row)
    return table


def queues_table(queues: Iterable[Obj], now: dt.datetime, *, all_namespaces: bool = False) -> Table:
    """``kubectl asynctask queue list``: RUNNING is the tasks holding a slot, as the TaskQueue's status counts them."""
    headers = ["NAME", "CONCURRENCY", "RUNNING", "PENDING", "OLDEST PENDING", "WAITING FOR KEY", "PAUSED", "AGE"]
    if all_namespaces:
        headers.insert(0, "NAMESPACE")
    table = plain_table(*headers)
    for obj in queues:
        meta = meta_of(obj)
        queue = QueueView.of(str(meta.get("namespace") or ""), str(meta.get("name") or ""), obj, (), now.timestamp())
        row = [
            queue.name,
            "" if queue.concurrency is None else str(queue.concurrency),
            str(queue.running),
            str(queue.pending),
            clock(queue.oldest_pending_seconds) if queue.oldest_pending_seconds else "",
            str(queue.waiting_for_key) if queue.waiting_for_key else "",
            "yes" if queue.paused else "no",
            age(queue.created_time, now),
        ]
        if all_namespaces:
            row.insert(0, queue.namespace)
        table.add_row(*row)
    return table


def pending_table(ordered: Sequence[tuple[int, TaskView]], now: dt.datetime) -> Table:
    """The waiting tasks of one queue in admission order (the first is admitted next); WAITING since each
    entered the queue."""
    keyed = any(task.concurrency_key for _, task in ordered)
    headers = ["POSITION", "NAME", "PRIORITY", "TYPE", "REASON", "WAITING"] + (["KEY", "HELD BY"] if keyed else [])
    table = plain_table(*headers)
    for position, task in ordered:
        waited = task.wait(now.timestamp())
        row = [
            str(position),
            task.name,
            str(task.priority),
            task.type,
            task.reason or "Queued",
            "" if waited is None else clock(waited),
        ]
        if keyed:
            wait = task.waiting_for_key
            row += [task.concurrency_key, ", ".join(wait.holders) if wait is not None else ""]
        table.add_row(*row)
    return table


def schedules_table(schedules: Iterable[Obj], now: dt.datetime, *, all_namespaces: bool = False) -> Table:
    headers = ["NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST SCHEDULE", "NEXT SCHEDULE", "AGE"]
    if all_namespaces:
        headers.insert(0, "NAMESPACE")
    table = plain_table(*headers)
    for schedule in schedules:
        spec, status = spec_of(schedule), status_of(schedule)
        last, following = status.get("lastScheduleTime"), status.get("nextScheduleTime")
        row = [
            meta_of(schedule).get("name", ""),
            str(spec.get("schedule", "")),
            str(spec.get("timeZone") or "UTC"),
            "yes" if spec.get("suspend") else "no",
            str(len(status.get("active") or [])),
            f"{age(last, now)} ago" if last else "",
            str(following or ""),
            age(meta_of(schedule).get("creationTimestamp"), now),
        ]
        if all_namespaces:
            row.insert(0, meta_of(schedule).get("namespace", ""))
        table.add_row(*row)
    return table


def short_duration(value: float | None) -> str:
    """``12.5s`` under a minute, ``mm:ss`` from one, ``-`` when unknown."""
    if value is None:
        return "-"
    return f"{value:.1f}s" if value < 60 else clock(value)


def stats_table(groups: dict[str, Figures], by: str | None) -> Table:
    table = plain_table(
        (by or "").upper() or "TASKS", "TOTAL", "SUCCEEDED", "FAILED", "CANCELLED", "SUCCESS", "P50", "P95", "MEAN WAIT"
    )
    for key, figures in groups.items():
        rate = figures.success_rate
        table.add_row(
            key or "all",
            str(figures.total),
            str(figures.succeeded),
            str(figures.failed),
            str(figures.cancelled),
            "-" if rate is None else f"{rate * 100:.1f}%",
            short_duration(figures.p50_duration_seconds),
            short_duration(figures.p95_duration_seconds),
            short_duration(figures.mean_queue_wait_seconds),
        )
    return table


def reasons_table(reasons: dict[str, int]) -> Table:
    table = plain_table("FAILURE REASON", "TASKS")
    for reason, count in reasons.items():
        table.add_row(reason, str(count))
    return table


# ---------------------------------------------------------------------- progress


def progress_view(tasks: Iterable[Obj], now: dt.datetime) -> Table:
    """One row per task, redrawn in place: name, phase, bar, percent, step, attempt, wait or run time, headline.

    The headline's column is the one that gives way when the terminal is narrow (rich narrows the
    wrapping columns first), and its text is cut with … rather than wrapped: one line per task."""
    table = Table(box=None, show_header=False, show_edge=False, pad_edge=False, padding=(0, 2, 0, 0))
    for _ in range(7):
        table.add_column(no_wrap=True)
    table.add_column()
    for task in map(view, tasks):
        table.add_row(
            task.name,
            Text(task.phase, style=PHASE_STYLES.get(task.phase, "")),
            ProgressBar(total=100, completed=task.percent or 0, width=BAR_WIDTH),
            f"{percent_text(task):>4}",
            f"step {task.steps}" if task.steps else "",
            f"attempt {task.attempt_text}" if task.attempt_text else "",
            timing(task, now),
            Text(task.headline, no_wrap=True, overflow="ellipsis"),
        )
    return table


def progress_line(task: Obj, now: dt.datetime) -> str:
    """The progress of one task as a line (where the output is not a terminal), printed on each change.

    >>> progress_line({"metadata": {"name": "t"}, "status": {"phase": "Running", "progress": {"percent": 40}}},
    ...               dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    't Running 40%'
    """
    seen = view(task)
    parts = [
        seen.name,
        seen.phase,
        percent_text(seen),
        f"step {seen.steps}" if seen.steps else "",
        f"attempt {seen.attempt_text}" if seen.attempt_text else "",
        timing(seen, now),
        json.dumps(seen.headline, ensure_ascii=False) if seen.headline else "",
    ]
    return " ".join(p for p in parts if p)


def change_of(task: Obj) -> tuple[Any, ...]:
    """What a line is printed for when it changes: phase, reason, attempt, progress, headline."""
    seen = view(task)
    return (seen.phase, seen.reason, seen.attempt, seen.percent, seen.steps_done, seen.step, seen.headline)


def outcome(task: Obj) -> str:
    """The last words on a finished task: ``t Failed (NonRetryableExitCode): container main exited with code 2: input not found``."""
    status = status_of(task)
    reason = status.get("reason")
    error = status.get("error") or {}
    text = str(error.get("message") or status.get("message") or "")
    head = f"{meta_of(task).get('name', '')} {phase(task)}" + (f" ({reason})" if reason else "")
    return f"{head}: {text}" if text else head


# ---------------------------------------------------------------------- machine output


def as_list(objects: Sequence[Obj]) -> Obj:
    return {"apiVersion": "v1", "kind": "List", "items": list(objects), "metadata": {"resourceVersion": ""}}


def machine(objects: Sequence[Obj], output: str, kind: str, *, single: bool) -> str:
    """``-o json|yaml|name`` text: one object as itself when one was asked for by name, else a List."""
    if output == "name":
        return "".join(f"{kind}/{meta_of(o).get('name', '')}\n" for o in objects)
    document: Any = objects[0] if single and len(objects) == 1 else as_list(objects)
    if output == "json":
        return json.dumps(document, indent=4, ensure_ascii=False) + "\n"
    return str(yaml.safe_dump(document, sort_keys=False, allow_unicode=True))
