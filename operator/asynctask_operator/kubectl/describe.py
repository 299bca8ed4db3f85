"""How ``describe`` shows one task: its fields, its attempts with their Jobs and pods, the callback's
delivery, and the Events about it. Pure, as :mod:`~asynctask_operator.kubectl.render` is (whose
words for a task's phase, age and progress it uses)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from asynctask_operator.core.wire import queue_in
from asynctask_operator.kubectl.render import (
    PHASE_STYLES,
    Obj,
    age,
    attempt,
    meta_of,
    percent,
    phase,
    plain_table,
    short_duration,
    spec_of,
    status_of,
    steps,
)


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
    meta, spec, status = meta_of(task), spec_of(task), status_of(task)
    progress = status.get("progress") or {}
    value = percent(task)
    done = " ".join(p for p in ("" if value is None else f"{value}%", steps(task), progress.get("message") or "") if p)
    error = status.get("error") or {}
    duration = status.get("durationSeconds")
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
            ("Duration", "" if duration is None else short_duration(duration)),
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
        number = str((meta_of(pod).get("labels") or {}).get("asynctask.dev/attempt", ""))
        pod_phase = str(status_of(pod).get("phase") or "")
        pods_by_attempt.setdefault(number, []).append(
            meta_of(pod).get("name", "") + (f" ({pod_phase})" if pod_phase else "")
        )
    attempts = status.get("attempts") or []
    parts.append(Text("\nAttempts:", style="bold"))
    if attempts:
        table = plain_table("#", "JOB", "POD", "STARTED", "FINISHED", "OUTCOME", "EXIT", "REASON", "MESSAGE")
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
        table = plain_table("TYPE", "REASON", "AGE", "MESSAGE")
        for event in events:
            when = event.get("lastTimestamp") or event.get("eventTime") or meta_of(event).get("creationTimestamp")
            table.add_row(
                str(event.get("type") or ""), str(event.get("reason") or ""), age(when, now), str(event.get("message"))
            )
        parts.append(table)
    else:
        parts.append(Text("  none"))
    return Group(*parts)
