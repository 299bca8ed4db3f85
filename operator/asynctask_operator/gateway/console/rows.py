"""The task table: one :class:`Row` per cached task, the filter of the page, its order and its page.

A row is read from the task's wire form (no model parsing: the first page of 10,000 tasks is
filtered and sorted in a few milliseconds) and kept until the cached object changes
(:class:`RowCache`, by identity: the store replaces an object on every change).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

from asynctask_operator.core.labelselectors import Term, matches, parse
from asynctask_operator.core.models import TERMINAL_PHASES
from asynctask_operator.core.timestamps import parse_stamp, stamp
from asynctask_operator.core.wire import number_in, queue_in, seconds_in
from asynctask_operator.gateway.problems import Problem

Obj = dict[str, Any]
PHASES = ("Pending", "Running", "Succeeded", "Failed", "Cancelled")
SORTS = ("name", "namespace", "type", "queue", "phase", "progress", "attempt", "age", "duration")
PAGE_SIZES = (25, 50, 100)
DEFAULT_PAGE_SIZE = 50
WINDOWS = {"1h": 3600, "6h": 6 * 3600, "24h": 24 * 3600, "7d": 7 * 24 * 3600}
NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")


@dataclasses.dataclass(frozen=True, slots=True)
class Row:
    namespace: str
    name: str
    uid: str
    type: str
    queue: str
    phase: str
    reason: str
    message: str
    percent: float | None
    step: str
    attempt: int
    created: float
    started: float | None
    finished: float | None
    duration: float | None
    labels: dict[str, str]
    resource_version: str

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def terminal(self) -> bool:
        return self.phase in TERMINAL_PHASES

    def elapsed(self, now: float) -> float | None:
        """Its duration: the recorded one, else running so far."""
        if self.duration is not None:
            return self.duration
        if self.started is not None and not self.terminal:
            return max(0.0, now - self.started)
        return None

    def live(self, now: float) -> dict[str, Any]:
        """What the page's script puts into the row's cells when the task changes."""
        return {
            "key": self.key,
            "phase": self.phase,
            "reason": self.reason,
            "percent": self.percent,
            "step": self.step,
            "message": self.message,
            "attempt": self.attempt,
            "duration": duration_text(self.elapsed(now)),
            "terminal": self.terminal,
        }


def row_of(obj: Obj) -> Row:
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    progress = status.get("progress") or {}
    percent = number_in(progress.get("percent"))
    done, total = progress.get("stepsDone"), progress.get("stepsTotal")
    step = f"{done}/{total}" if isinstance(done, int) and isinstance(total, int) and total > 0 else ""
    if percent is None and step and isinstance(done, int) and isinstance(total, int):
        percent = 100.0 * done / total
    if progress.get("step"):
        step = f"{step} {progress['step']}".strip()
    attempt = status.get("attempt")
    return Row(
        namespace=str(meta.get("namespace") or ""),
        name=str(meta.get("name") or ""),
        uid=str(meta.get("uid") or ""),
        type=str(spec.get("type") or ""),
        queue=queue_in(obj),
        phase=str(status.get("phase") or "Pending"),
        reason=str(status.get("reason") or ""),
        message=str(progress.get("message") or status.get("message") or ""),
        percent=None if percent is None else max(0.0, min(100.0, percent)),
        step=step,
        attempt=attempt if isinstance(attempt, int) else 0,
        created=seconds_in(meta.get("creationTimestamp")) or 0.0,
        started=seconds_in(status.get("startTime")),
        finished=seconds_in(status.get("completionTime")),
        duration=number_in(status.get("durationSeconds")),
        labels=dict(meta.get("labels") or {}),
        resource_version=str(meta.get("resourceVersion") or ""),
    )


class RowCache:
    """Rows by task key, each good for as long as the store holds the same object."""

    def __init__(self) -> None:
        self._rows: dict[tuple[str, str], tuple[Obj, Row]] = {}

    def row(self, key: tuple[str, str], obj: Obj) -> Row:
        """The row of ``obj``, read once however many pages and live streams ask for it."""
        held = self._rows.get(key)
        if held is None or held[0] is not obj:
            held = (obj, row_of(obj))
            self._rows[key] = held
        return held[1]

    def rows(self, objects: Mapping[tuple[str, str], Obj]) -> list[Row]:
        out = [self.row(key, obj) for key, obj in objects.items()]
        cache = self._rows
        if len(cache) > 2 * len(objects) + 1000:  # forget the rows of deleted tasks now and then
            for key in [k for k in cache if k not in objects]:
                del cache[key]
        return out


@dataclasses.dataclass(frozen=True)
class Filter:
    """The query of the task table (and of its export and its bulk actions)."""

    namespace: str = ""
    type: str = ""
    queue: str = ""
    phase: str = ""
    label: str = ""
    q: str = ""
    window: str = ""
    since: float | None = None
    until: float | None = None
    sort: str = "age"
    desc: bool = True
    page: int = 1
    size: int = DEFAULT_PAGE_SIZE
    terms: tuple[Term, ...] = ()

    @classmethod
    def of(cls, query: Mapping[str, str], now: float) -> Filter:
        """The filter of a page's query string; a :class:`Problem` (400) naming the field otherwise."""

        def text(field: str, limit: int = 253) -> str:
            value = (query.get(field) or "").strip()
            if len(value) > limit:
                raise Problem(400, f"{field} is longer than {limit} characters")
            return value

        phase = text("phase", 32)
        if phase and phase not in PHASES:
            raise Problem(400, f"phase must be one of {', '.join(PHASES)}; got {phase!r}")
        sort = text("sort", 16) or "age"
        if sort not in SORTS:
            raise Problem(400, f"sort must be one of {', '.join(SORTS)}; got {sort!r}")
        order = text("order", 4) or ("desc" if sort in ("age", "duration") else "asc")
        if order not in ("asc", "desc"):
            raise Problem(400, f"order must be asc or desc; got {order!r}")
        label = text("label", 4096)
        try:
            terms = tuple(parse(label))
        except ValueError as error:
            raise Problem(400, f"label: {error}") from None
        window = text("window", 8)
        if window and window not in WINDOWS:
            raise Problem(400, f"window must be one of {', '.join(WINDOWS)}; got {window!r}")
        since, until = moment("since", text("since", 40)), moment("until", text("until", 40))
        if window:
            since = now - WINDOWS[window]
        if since is not None and until is not None and since > until:
            raise Problem(400, "since is after until: swap them")
        return cls(
            namespace=text("namespace", 63),
            type=text("type"),
            queue=text("queue", 63),
            phase=phase,
            label=label,
            q=text("q", 253),
            window=window,
            since=since,
            until=until,
            sort=sort,
            desc=order == "desc",
            page=number("page", query.get("page"), 1, 1_000_000),
            size=min(PAGE_SIZES, key=lambda s: abs(s - number("size", query.get("size"), DEFAULT_PAGE_SIZE, 100))),
            terms=terms,
        )

    def admits(self, row: Row) -> bool:
        return (
            (not self.namespace or row.namespace == self.namespace)
            and (not self.type or row.type == self.type)
            and (not self.queue or row.queue == self.queue)
            and (not self.phase or row.phase == self.phase)
            and (not self.q or self.q.lower() in row.name.lower())
            and (self.since is None or row.created >= self.since)
            and (self.until is None or row.created <= self.until)
            and (not self.terms or matches(list(self.terms), row.labels))
        )

    def query(self, **changes: object) -> dict[str, str]:
        """The query string of this filter (for links: another page, another order), with ``changes``."""
        out = {
            "namespace": self.namespace,
            "type": self.type,
            "queue": self.queue,
            "phase": self.phase,
            "label": self.label,
            "q": self.q,
            "window": self.window,
            "since": "" if self.window or self.since is None else iso(self.since),
            "until": "" if self.until is None else iso(self.until),
            "sort": self.sort,
            "order": "desc" if self.desc else "asc",
            "page": str(self.page),
            "size": str(self.size),
        }
        out.update({k: str(v) for k, v in changes.items()})
        return {k: v for k, v in out.items() if v and not (k == "page" and v == "1")}

    @property
    def described(self) -> str:
        """The filter in words, for a confirmation: "phase=Failed, type=transcode"."""
        parts = [f"{field}={value}" for field in ("namespace", "type", "queue", "phase", "label", "q", "window")
                 if (value := getattr(self, field))]  # fmt: skip
        if self.since is not None and not self.window:
            parts.append(f"since={iso(self.since)}")
        if self.until is not None:
            parts.append(f"until={iso(self.until)}")
        return ", ".join(parts) or "every task"


def number(field: str, value: str | None, default: int, top: int) -> int:
    if not value:
        return default
    if not value.isdigit() or not 1 <= int(value) <= top:
        raise Problem(400, f"{field} must be a whole number from 1 to {top}; got {value!r}")
    return int(value)


def moment(field: str, value: str) -> float | None:
    """Epoch seconds of an RFC 3339 time, or of a browser's ``datetime-local`` value (taken as UTC)."""
    if not value:
        return None
    text = value.upper().replace(" ", "T")
    if re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?", text):
        text += "Z"
    if re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\dZ", text):
        text = text[:-1] + ":00Z"
    parsed = parse_stamp(text)
    if parsed is None:
        raise Problem(400, f"{field} must be a time like 2026-01-02T03:04:05Z; got {value!r}")
    return parsed.timestamp()


def iso(seconds: float) -> str:
    """Epoch seconds as an object's times are written (:func:`~asynctask_operator.core.timestamps.stamp`)."""
    return stamp(dt.datetime.fromtimestamp(seconds, dt.UTC))


def _order_key(sort: str, now: float) -> Any:
    if sort == "progress":
        return lambda r: (r.percent if r.percent is not None else -1.0, r.name)
    if sort == "age":
        return lambda r: (r.created, r.name)
    if sort == "duration":
        return lambda r: (e if (e := r.elapsed(now)) is not None else -1.0, r.name)
    if sort == "attempt":
        return lambda r: (r.attempt, r.name)
    return lambda r: (getattr(r, sort), r.namespace, r.name)


def chosen(rows: Iterable[Row], flt: Filter, namespaces: set[str], now: float) -> list[Row]:
    """The rows of the visible namespaces that the filter admits, in its order."""
    kept = [r for r in rows if r.namespace in namespaces and flt.admits(r)]
    kept.sort(key=_order_key(flt.sort, now), reverse=flt.desc)
    return kept


@dataclasses.dataclass(frozen=True)
class Page:
    rows: list[Row]
    total: int
    number: int
    pages: int
    size: int

    @property
    def first(self) -> int:
        """The place of its first row in the whole (1-based); 0 when empty."""
        return 0 if not self.rows else (self.number - 1) * self.size + 1


def page_of(rows: list[Row], flt: Filter) -> Page:
    pages = max(1, math.ceil(len(rows) / flt.size))
    number_ = min(flt.page, pages)
    start = (number_ - 1) * flt.size
    return Page(rows[start : start + flt.size], len(rows), number_, pages, flt.size)


def duration_text(seconds: float | None) -> str:
    """A short human duration.

    >>> duration_text(0.4), duration_text(42), duration_text(125), duration_text(7300), duration_text(None)
    ('0.4 s', '42 s', '2 m 05 s', '2 h 01 m', '')
    """
    if seconds is None:
        return ""
    if seconds < 10:
        return f"{seconds:.1f} s"
    whole = int(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} m {whole % 60:02d} s"
    if whole < 86400:
        return f"{whole // 3600} h {whole % 3600 // 60:02d} m"
    return f"{whole // 86400} d {whole % 86400 // 3600:02d} h"
