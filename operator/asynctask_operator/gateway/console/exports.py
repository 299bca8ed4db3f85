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


def _csv(cells: Iterable[Any]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerow([csv_cell(c) for c in cells])
    return buffer.getvalue()


CSV_HEADER = _csv(EXPORT_FIELDS)


def csv_line(row: TaskView) -> str:
    """One task as a CSV line (quoted as a spreadsheet must not run it)."""
    record = export_record(row)
    return _csv(record[f] for f in EXPORT_FIELDS)


def json_line(row: TaskView, first: bool) -> str:
    """One task as an item of the JSON array, on a line of its own."""
    return ("" if first else ",") + json.dumps(export_record(row), separators=(",", ":")) + "\n"


def csv_lines(rows: Iterable[TaskView]) -> Iterator[str]:
    """The header, then a line per task, sent 64 KiB at a time."""
    chunk = [CSV_HEADER]
    size = len(CSV_HEADER)
    for row in rows:
        line = csv_line(row)
        chunk.append(line)
        size += len(line)
        if size > 64 * 1024:
            yield "".join(chunk)
            chunk, size = [], 0
    yield "".join(chunk)


def json_lines(rows: Iterable[TaskView]) -> Iterator[str]:
    """A JSON array, an item per line."""
    yield "[\n"
    for i, row in enumerate(rows):
        yield json_line(row, i == 0)
    yield "]\n"
