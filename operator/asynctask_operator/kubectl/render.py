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
from asynctask_operator.core.wire import queue_in

Obj = dict[str, Any]
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


def elapsed(task: Obj, now: dt.datetime) -> float:
    """Seconds from the task's creation to its completion, or to now while it has not finished."""
    start = parse_stamp(meta_of(task).get("creationTimestamp"))
    end = parse_stamp(status_of(task).get("completionTime")) or now
    return (end - start).total_seconds() if start else 0.0


def percent(task: Obj) -> int | None:
    """The reported percent; 100 once the task Succeeded (whatever it reported last)."""
    value = (status_of(task).get("progress") or {}).get("percent")
    if phase(task) == "Succeeded":
        return 100
    return int(value) if isinstance(value, int | float) else None


def steps(task: Obj) -> str:
    """``step 2/5 encode``, ``step encode`` or ``""``."""
    progress = status_of(task).get("progress") or {}
    done, total, name = progress.get("stepsDone"), progress.get("stepsTotal"), progress.get("step")
    count = f"{done}/{total}" if done is not None and total else ""
    text = " ".join(part for part in (count, str(name or "")) if part)
    return f"step {text}" if text else ""


def attempt(task: Obj) -> str:
    """``2/4``: this attempt of at most maxRetries + 1 (once admission recorded it), or ``""`` before one."""
    status = status_of(task)
    number = status.get("attempt")
    if not number:
        return ""
    retries = ((status.get("effective") or {}).get("retry") or {}).get("maxRetries")
    return f"{number}/{retries + 1}" if isinstance(retries, int) else str(number)


def message(task: Obj) -> str:
    """What is happening, in words: the progress message while it runs, else the status message."""
    status = status_of(task)
    progress = status.get("progress") or {}
    if phase(task) == "Running" and progress.get("message"):
        return str(progress["message"])
    return str(status.get("message") or "")


def finished(task: Obj) -> bool:
    return phase(task) in ("Succeeded", "Failed", "Cancelled")


# ---------------------------------------------------------------------- tables


def plain_table(*headers: str) -> Table:
    """A table as kubectl prints one: no borders, bold headers, three spaces between columns."""
    table = Table(box=None, show_edge=False, pad_edge=False, padding=(0, 3, 0, 0), header_style="bold")
    for header in headers:
        table.add_column(header, no_wrap=True)
    return table


def tasks_table(tasks: Iterable[Obj], now: dt.datetime, *, wide: bool = False, all_namespaces: bool = False) -> Table:
    headers = ["NAME", "TYPE", "QUEUE", "PHASE", "PROGRESS", "ATTEMPT", "AGE"]
    if wide:
        headers += ["PRIORITY", "REASON", "MESSAGE"]
    if all_namespaces:
        headers.insert(0, "NAMESPACE")
    table = plain_table(*headers)
    for task in tasks:
        value = percent(task)
        row = [
            meta_of(task).get("name", ""),
            spec_of(task).get("type", ""),
            queue_in(task),
            Text(phase(task), style=PHASE_STYLES.get(phase(task), "")),
            "" if value is None else f"{value}%",
            attempt(task),
            age(meta_of(task).get("creationTimestamp"), now),
        ]
        if wide:
            row += [str(spec_of(task).get("priority") or 0), str(status_of(task).get("reason") or ""), message(task)]
        if all_namespaces:
            row.insert(0, meta_of(task).get("namespace", ""))
        table.add_row(*row)
    return table


def queues_table(queues: Iterable[Obj], now: dt.datetime, *, all_namespaces: bool = False) -> Table:
    headers = ["NAME", "CONCURRENCY", "RUNNING", "PENDING", "OLDEST PENDING", "PAUSED", "AGE"]
    if all_namespaces:
        headers.insert(0, "NAMESPACE")
    table = plain_table(*headers)
    for queue in queues:
        spec, status = spec_of(queue), status_of(queue)
        oldest = status.get("oldestPendingSeconds")
        row = [
            meta_of(queue).get("name", ""),
            str(spec.get("concurrency", "")),
            str(status.get("running", 0)),
            str(status.get("pending", 0)),
            clock(oldest) if oldest else "",
            "yes" if spec.get("paused") else "no",
            age(meta_of(queue).get("creationTimestamp"), now),
        ]
        if all_namespaces:
            row.insert(0, meta_of(queue).get("namespace", ""))
        table.add_row(*row)
    return table


def pending_table(ordered: Sequence[tuple[int, Obj]], now: dt.datetime) -> Table:
    """The waiting tasks of one queue in admission order: the first is admitted next."""
    table = plain_table("POSITION", "NAME", "PRIORITY", "TYPE", "REASON", "WAITING")
    for position, task in ordered:
        table.add_row(
            str(position),
            meta_of(task).get("name", ""),
            str(spec_of(task).get("priority") or 0),
            spec_of(task).get("type", ""),
            str(status_of(task).get("reason") or "Queued"),
            age(meta_of(task).get("creationTimestamp"), now),
        )
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
    """One row per task, redrawn in place: name, phase, bar, percent, step, attempt, elapsed, message."""
    table = Table(box=None, show_header=False, show_edge=False, pad_edge=False, padding=(0, 2, 0, 0))
    for _ in range(7):
        table.add_column(no_wrap=True)
    table.add_column(no_wrap=True, overflow="ellipsis")
    for task in tasks:
        value = percent(task)
        style = PHASE_STYLES.get(phase(task), "")
        table.add_row(
            meta_of(task).get("name", ""),
            Text(phase(task), style=style),
            ProgressBar(total=100, completed=value or 0, width=BAR_WIDTH),
            "" if value is None else f"{value:>3}%",
            steps(task),
            f"attempt {attempt(task)}" if attempt(task) else "",
            clock(elapsed(task, now)),
            message(task),
        )
    return table


def progress_line(task: Obj, now: dt.datetime) -> str:
    """The progress of one task as a line (where the output is not a terminal), printed on each change.

    >>> progress_line({"metadata": {"name": "t"}, "status": {"phase": "Running", "progress": {"percent": 40}}},
    ...               dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    't Running 40%'
    """
    value = percent(task)
    parts = [
        meta_of(task).get("name", ""),
        phase(task),
        "" if value is None else f"{value}%",
        steps(task),
        f"attempt {attempt(task)}" if attempt(task) else "",
    ]
    if meta_of(task).get("creationTimestamp"):
        parts.append(clock(elapsed(task, now)))
    text = message(task)
    if text:
        parts.append(json.dumps(text, ensure_ascii=False))
    return " ".join(p for p in parts if p)


def change_of(task: Obj) -> tuple[Any, ...]:
    """What a line is printed for when it changes: phase, progress, attempt, reason, message."""
    status = status_of(task)
    progress = status.get("progress") or {}
    return (
        phase(task),
        status.get("reason"),
        status.get("attempt"),
        progress.get("percent"),
        progress.get("stepsDone"),
        progress.get("step"),
        message(task),
    )


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
