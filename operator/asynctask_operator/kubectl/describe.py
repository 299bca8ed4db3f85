"""How ``describe`` shows one task: its fields, its attempts with their Jobs and pods, the callback's
delivery, and the Events about it; for a task past its TTL (an ``ArchivedTask``), when the archive
recorded it and which attempt logs it kept. Pure, as :mod:`~asynctask_operator.kubectl.render` is (whose
words for a task's phase, age and progress it uses)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from asynctask_operator.core.wire import Obj
from asynctask_operator.kubectl.render import (
    PHASE_STYLES,
    age,
    meta_of,
    percent_text,
    plain_table,
    short_duration,
    spec_of,
    status_of,
    view,
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
    spec, status = spec_of(task), status_of(task)
    seen = view(task)
    told = (seen.progress or {}).get("message") or ""
    done = " ".join(p for p in (percent_text(seen), f"step {seen.steps}" if seen.steps else "", told) if p)
    error = status.get("error") or {}
    waited, ran = seen.wait(now.timestamp()), seen.duration(now.timestamp())
    archive = task.get("archive") if task.get("kind") == "ArchivedTask" else None
    archived = f"{archive.get('archivedTime')} (gone from the cluster: read from the archive)" if archive else ""
    head = _fields(
        [
            ("Name", seen.name),
            ("Namespace", seen.namespace),
            ("Labels", ", ".join(f"{k}={v}" for k, v in sorted(seen.labels.items()))),
            ("Type", seen.type),
            ("Queue", seen.queue + (f" (group {seen.group})" if seen.group else "")),
            ("Concurrency key", seen.concurrency_key),
            ("Waiting for", seen.waiting_for_key.text if seen.waiting_for_key else ""),
            ("Priority", seen.priority),
            ("Phase", Text(seen.phase, style=PHASE_STYLES.get(seen.phase, ""))),
            ("Reason", seen.reason),
            ("Message", seen.message),
            ("Attempt", seen.attempt_text),
            ("Created", f"{seen.created_time} ({age(seen.created_time, now)} ago)"),
            ("Started", seen.start_time),
            ("Completed", seen.completion_time),
            ("Waited", "" if waited is None else short_duration(waited)),
            ("Duration", "" if ran is None else short_duration(ran)),
            ("Next retry", seen.next_retry_time),
            ("Progress", done),
            ("Payload", json.dumps(spec.get("payload"), ensure_ascii=False) if "payload" in spec else ""),
            ("Result", json.dumps(status["result"], ensure_ascii=False) if "result" in status else ""),
            ("Error", f"{error.get('code')}: {error.get('message')}" if error else ""),
            ("Cancel requested", "yes" if spec.get("cancel") else ""),
            ("Archived", archived),
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
        parts.append(Text("  none" if archive is not None else "  none yet"))
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
    if archive is not None:
        parts.append(Text("\nLogs kept:", style="bold"))
        parts.append(_kept_logs(archive.get("logs") or []))
    parts.append(Text("\nEvents:", style="bold"))
    if archive is not None:
        parts.append(Text("  none kept (the archive keeps no Events)"))
    elif events:
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


def _kept_logs(logs: Sequence[dict[str, Any]]) -> RenderableType:
    """The attempt logs the archive kept: ``kubectl asynctask logs NAME --attempt N`` reads each."""
    if not logs:
        return Text("  none")
    table = plain_table("#", "POD", "CONTAINER", "BYTES", "KEPT")
    for log in logs:
        kept = "all"
        if log.get("error"):
            kept = f"could not be read: {log['error']}"
        elif log.get("truncated"):
            kept = "the end only"
        table.add_row(str(log.get("attempt", "")), str(log.get("pod") or ""), str(log.get("container") or ""),
                      str(log.get("bytes", "")), kept)  # fmt: skip
    return table
