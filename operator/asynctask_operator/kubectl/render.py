"""How objects look in the terminal: tables, the live progress view, its one-line-per-change form, describe.

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
from rich.console import Group, RenderableType
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


def _meta(obj: Obj) -> Obj:
    return obj.get("metadata") or {}


def _spec(obj: Obj) -> Obj:
    return obj.get("spec") or {}


def _status(obj: Obj) -> Obj:
    return obj.get("status") or {}


def phase(task: Obj) -> str:
    return str(_status(task).get("phase") or "Pending")


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
    start = parse_stamp(_meta(task).get("creationTimestamp"))
    end = parse_stamp(_status(task).get("completionTime")) or now
    return (end - start).total_seconds() if start else 0.0


def percent(task: Obj) -> int | None:
    """The reported percent; 100 once the task Succeeded (whatever it reported last)."""
    value = (_status(task).get("progress") or {}).get("percent")
    if phase(task) == "Succeeded":
        return 100
    return int(value) if isinstance(value, int | float) else None


def steps(task: Obj) -> str:
    """``step 2/5 encode``, ``step encode`` or ``""``."""
    progress = _status(task).get("progress") or {}
    done, total, name = progress.get("stepsDone"), progress.get("stepsTotal"), progress.get("step")
    count = f"{done}/{total}" if done is not None and total else ""
    text = " ".join(part for part in (count, str(name or "")) if part)
    return f"step {text}" if text else ""


def attempt(task: Obj) -> str:
    """``2/4``: this attempt of at most maxRetries + 1 (once admission recorded it), or ``""`` before one."""
    status = _status(task)
    number = status.get("attempt")
    if not number:
        return ""
    retries = ((status.get("effective") or {}).get("retry") or {}).get("maxRetries")
    return f"{number}/{retries + 1}" if isinstance(retries, int) else str(number)


def message(task: Obj) -> str:
    """What is happening, in words: the progress message while it runs, else the status message."""
    status = _status(task)
    progress = status.get("progress") or {}
    if phase(task) == "Running" and progress.get("message"):
        return str(progress["message"])
    return str(status.get("message") or "")


def finished(task: Obj) -> bool:
    return phase(task) in ("Succeeded", "Failed", "Cancelled")


# ---------------------------------------------------------------------- tables


def _table(*headers: str) -> Table:
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
    table = _table(*headers)
    for task in tasks:
        value = percent(task)
        row = [
            _meta(task).get("name", ""),
            _spec(task).get("type", ""),
            queue_in(task),
            Text(phase(task), style=PHASE_STYLES.get(phase(task), "")),
            "" if value is None else f"{value}%",
            attempt(task),
            age(_meta(task).get("creationTimestamp"), now),
        ]
        if wide:
            row += [str(_spec(task).get("priority") or 0), str(_status(task).get("reason") or ""), message(task)]
        if all_namespaces:
            row.insert(0, _meta(task).get("namespace", ""))
        table.add_row(*row)
    return table


def queues_table(queues: Iterable[Obj], now: dt.datetime, *, all_namespaces: bool = False) -> Table:
    headers = ["NAME", "CONCURRENCY", "RUNNING", "PENDING", "OLDEST PENDING", "PAUSED", "AGE"]
    if all_namespaces:
        headers.insert(0, "NAMESPACE")
    table = _table(*headers)
    for queue in queues:
        spec, status = _spec(queue), _status(queue)
        oldest = status.get("oldestPendingSeconds")
        row = [
            _meta(queue).get("name", ""),
            str(spec.get("concurrency", "")),
            str(status.get("running", 0)),
            str(status.get("pending", 0)),
            clock(oldest) if oldest else "",
            "yes" if spec.get("paused") else "no",
            age(_meta(queue).get("creationTimestamp"), now),
        ]
        if all_namespaces:
            row.insert(0, _meta(queue).get("namespace", ""))
        table.add_row(*row)
    return table


def pending_table(ordered: Sequence[tuple[int, Obj]], now: dt.datetime) -> Table:
    """The waiting tasks of one queue in admission order: the first is admitted next."""
    table = _table("POSITION", "NAME", "PRIORITY", "TYPE", "REASON", "WAITING")
    for position, task in ordered:
        table.add_row(
            str(position),
            _meta(task).get("name", ""),
            str(_spec(task).get("priority") or 0),
            _spec(task).get("type", ""),
            str(_status(task).get("reason") or "Queued"),
            age(_meta(task).get("creationTimestamp"), now),
        )
    return table


def schedules_table(schedules: Iterable[Obj], now: dt.datetime, *, all_namespaces: bool = False) -> Table:
    headers = ["NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST SCHEDULE", "NEXT SCHEDULE", "AGE"]
    if all_namespaces:
        headers.insert(0, "NAMESPACE")
    table = _table(*headers)
    for schedule in schedules:
        spec, status = _spec(schedule), _status(schedule)
        last, following = status.get("lastScheduleTime"), status.get("nextScheduleTime")
        row = [
            _meta(schedule).get("name", ""),
            str(spec.get("schedule", "")),
            str(spec.get("timeZone") or "UTC"),
            "yes" if spec.get("suspend") else "no",
            str(len(status.get("active") or [])),
            f"{age(last, now)} ago" if last else "",
            str(following or ""),
            age(_meta(schedule).get("creationTimestamp"), now),
        ]
        if all_namespaces:
            row.insert(0, _meta(schedule).get("namespace", ""))
        table.add_row(*row)
    return table


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.1f}s" if value < 60 else clock(value)


def stats_table(groups: dict[str, Figures], by: str | None) -> Table:
    table = _table(
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
            _seconds(figures.p50_duration_seconds),
            _seconds(figures.p95_duration_seconds),
            _seconds(figures.mean_queue_wait_seconds),
        )
    return table


def reasons_table(reasons: dict[str, int]) -> Table:
    table = _table("FAILURE REASON", "TASKS")
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
            _meta(task).get("name", ""),
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
        _meta(task).get("name", ""),
        phase(task),
        "" if value is None else f"{value}%",
        steps(task),
        f"attempt {attempt(task)}" if attempt(task) else "",
    ]
    if _meta(task).get("creationTimestamp"):
        parts.append(clock(elapsed(task, now)))
    text = message(task)
    if text:
        parts.append(json.dumps(text, ensure_ascii=False))
    return " ".join(p for p in parts if p)


def change_of(task: Obj) -> tuple[Any, ...]:
    """What a line is printed for when it changes: phase, progress, attempt, reason, message."""
    status = _status(task)
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
    """The last words on a finished task: ``t Failed (RetriesExhausted): exit code 1``."""
    status = _status(task)
    reason = status.get("reason")
    error = status.get("error") or {}
    text = str(error.get("message") or status.get("message") or "")
    head = f"{_meta(task).get('name', '')} {phase(task)}" + (f" ({reason})" if reason else "")
    return f"{head}: {text}" if text else head


# ---------------------------------------------------------------------- describe


def _fields(rows: Sequence[tuple[str, Any]]) -> Table:
    table = Table(box=None, show_header=False, show_edge=False, pad_edge=False, padding=(0, 2, 0, 0))
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    for key, value in rows:
        if value not in (None, ""):
            table.add_row(f"{key}:", value if isinstance(value, Text) else str(value))
    return table


def describe_task(task: Obj, pods: Sequence[Obj], events: Sequence[Obj], now: dt.datetime) -> RenderableType:
    """Everything about one task: its spec, phase, progress, attempts (with Jobs and pods), callback, Events."""
    meta, spec, status = _meta(task), _spec(task), _status(task)
    progress = status.get("progress") or {}
    value = percent(task)
    done = " ".join(p for p in ("" if value is None else f"{value}%", steps(task), progress.get("message") or "") if p)
    error = status.get("error") or {}
    head = _fields(
        [
            ("Name", meta.get("name")),
            ("Namespace", meta.get("namespace")),
            ("Labels", ", ".join(f"{k}={v}" for k, v in sorted((meta.get("labels") or {}).items()))),
            ("Type", spec.get("type")),
            ("Queue", queue_in(task)),
            ("Priority", spec.get("priority") or 0),
            ("Phase", Text(phase(task), style=PHASE_STYLES.get(phase(task), ""))),
            ("Reason", status.get("reason")),
            ("Message", status.get("message")),
            ("Attempt", attempt(task)),
            ("Created", f"{meta.get('creationTimestamp')} ({age(meta.get('creationTimestamp'), now)} ago)"),
            ("Started", status.get("startTime")),
            ("Completed", status.get("completionTime")),
            ("Duration", _seconds(status.get("durationSeconds")) if status.get("durationSeconds") is not None else ""),
            ("Next retry", status.get("nextRetryTime")),
            ("Progress", done),
            ("Payload", json.dumps(spec.get("payload"), ensure_ascii=False) if "payload" in spec else ""),
            ("Result", json.dumps(status["result"], ensure_ascii=False) if "result" in status else ""),
            ("Error", f"{error.get('code')}: {error.get('message')}" if error else ""),
            ("Cancel requested", "yes" if spec.get("cancel") else ""),
        ]
    )
    parts: list[RenderableType] = [head]
    pods_by_attempt: dict[str, list[str]] = {}
    for pod in pods:
        number = str((_meta(pod).get("labels") or {}).get("asynctask.dev/attempt", ""))
        pod_phase = str(_status(pod).get("phase") or "")
        pods_by_attempt.setdefault(number, []).append(
            _meta(pod).get("name", "") + (f" ({pod_phase})" if pod_phase else "")
        )
    attempts = status.get("attempts") or []
    parts.append(Text("\nAttempts:", style="bold"))
    if attempts:
        table = _table("#", "JOB", "POD", "STARTED", "FINISHED", "OUTCOME", "EXIT", "REASON", "MESSAGE")
        for item in attempts:
            number = str(item.get("attempt", ""))
            table.add_row(
                number,
                str(item.get("job", "")),
                ", ".join(pods_by_attempt.get(number, [])),
                str(item.get("startTime") or ""),
                str(item.get("finishTime") or ""),
                str(item.get("outcome") or ("Running" if not item.get("finishTime") else "")),
                "" if item.get("exitCode") is None else str(item["exitCode"]),
                str(item.get("reason") or ""),
                str(item.get("message") or ""),
            )
        parts.append(table)
    else:
        parts.append(Text("  none yet"))
    callback = status.get("callback")
    parts.append(Text("\nCallback:", style="bold"))
    if callback:
        parts.append(
            _fields(
                [
                    ("  Event", f"{callback.get('event')} (attempt {callback.get('taskAttempt', 0)})"),
                    ("  State", callback.get("state")),
                    ("  Deliveries", callback.get("attempts", 0)),
                    ("  Last status", callback.get("lastStatusCode")),
                    ("  Last attempt", callback.get("lastAttemptTime")),
                    ("  Next attempt", callback.get("nextAttemptTime")),
                    ("  Last error", callback.get("lastError")),
                    ("  Id", callback.get("id")),
                ]
            )
        )
    else:
        parts.append(Text("  none" + ("" if spec.get("callback") else " (no callback configured)")))
    parts.append(Text("\nEvents:", style="bold"))
    if events:
        table = _table("TYPE", "REASON", "AGE", "MESSAGE")
        for event in events:
            when = event.get("lastTimestamp") or event.get("eventTime") or _meta(event).get("creationTimestamp")
            table.add_row(
                str(event.get("type") or ""), str(event.get("reason") or ""), age(when, now), str(event.get("message"))
            )
        parts.append(table)
    else:
        parts.append(Text("  none"))
    return Group(*parts)


# ---------------------------------------------------------------------- machine output


def as_list(objects: Sequence[Obj]) -> Obj:
    return {"apiVersion": "v1", "kind": "List", "items": list(objects), "metadata": {"resourceVersion": ""}}


def machine(objects: Sequence[Obj], output: str, kind: str, *, single: bool) -> str:
    """``-o json|yaml|name`` text: one object as itself when one was asked for by name, else a List."""
    if output == "name":
        return "".join(f"{kind}/{_meta(o).get('name', '')}\n" for o in objects)
    document: Any = objects[0] if single and len(objects) == 1 else as_list(objects)
    if output == "json":
        return json.dumps(document, indent=4, ensure_ascii=False) + "\n"
    return str(yaml.safe_dump(document, sort_keys=False, allow_unicode=True))
