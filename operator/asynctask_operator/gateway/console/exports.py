"""The task table as a download: every row a filter admits, as CSV or as a JSON array, streamed."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from typing import Any

from asynctask_operator.core.views import TaskView
from asynctask_operator.gateway.console.rows import iso

EXPORT_FIELDS = (
    "namespace", "name", "uid", "type", "queue", "phase", "reason", "message", "headline", "percent", "attempt",
    "created", "started", "finished", "wait_seconds", "duration_seconds",
)  # fmt: skip
MAX_EXPORT = 100_000


def export_record(row: TaskView) -> dict[str, Any]:
    """A task as the export writes it: the view's figures, settled ones only (a running task has no duration yet)."""
    return {
        "namespace": row.namespace,
        "name": row.name,
        "uid": row.uid,
        "type": row.type,
        "queue": row.queue,
        "phase": row.phase,
        "reason": row.reason,
        "message": row.message,
        "headline": row.headline,
        "percent": row.percent,
        "attempt": row.attempt,
        "created": iso(row.created) if row.created else "",
        "started": iso(row.started) if row.started else "",
        "finished": iso(row.finished) if row.finished else "",
        "wait_seconds": row.wait(None),
        "duration_seconds": row.duration(None),
    }


def csv_cell(value: Any) -> Any:
    """A cell a spreadsheet will not run: text starting with = + - @ (a formula) gets a leading quote."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value


def csv_lines(rows: Iterable[TaskView]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(EXPORT_FIELDS)
    for row in rows:
        record = export_record(row)
        writer.writerow([csv_cell(record[f]) for f in EXPORT_FIELDS])
        if buffer.tell() > 64 * 1024:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def json_lines(rows: Iterable[TaskView]) -> Iterator[str]:
    """A JSON array, an item per line."""
    yield "[\n"
    for i, row in enumerate(rows):
        yield ("," if i else "") + json.dumps(export_record(row), separators=(",", ":")) + "\n"
    yield "]\n"
