"""The task table: one row per task's view, the filter of the page, its order and its page.

A row is the task's :class:`~asynctask_operator.core.views.TaskView`, read once when the task
changed and kept in the gateway's store (no model parsing: the first page of 10,000 tasks is
filtered and sorted in a few milliseconds); the API and the kubectl plugin show the same figures.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

from asynctask_operator.core.labelselectors import Term, matches, parse
from asynctask_operator.core.timestamps import parse_stamp, stamp
from asynctask_operator.core.views import TaskView
from asynctask_operator.gateway.problems import Problem

PHASES = ("Pending", "Running", "Succeeded", "Failed", "Cancelled")
SORTS = ("name", "namespace", "type", "queue", "phase", "progress", "attempt", "age", "duration")
PAGE_SIZES = (25, 50, 100)
DEFAULT_PAGE_SIZE = 50
WINDOWS = {"1h": 3600, "6h": 6 * 3600, "24h": 24 * 3600, "7d": 7 * 24 * 3600, "30d": 30 * 86400, "90d": 90 * 86400}
"""The windows a page offers; the long ones are the archive's (the live tasks are those within their TTL)."""
NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")


def live_cells(view: TaskView, now: float) -> dict[str, Any]:
    """What the page's script puts into a row's cells when its task changes."""
    return {
        "key": view.key,
        "phase": view.phase,
        "reason": view.reason,
        "percent": view.percent,
        "step": view.steps,
        "message": view.headline,
        "attempt": view.attempt_text,
        "duration": duration_text(view.duration(now)),
        "terminal": view.terminal,
    }


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

    def admits(self, row: TaskView) -> bool:
        created = row.created or 0.0
        return (
            (not self.namespace or row.namespace == self.namespace)
            and (not self.type or row.type == self.type)
            and (not self.queue or row.queue == self.queue)
            and (not self.phase or row.phase == self.phase)
            and (not self.q or self.q.lower() in row.name.lower())
            and (self.since is None or created >= self.since)
            and (self.until is None or created <= self.until)
            and (not self.terms or matches(self.terms, row.labels))
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
        return lambda r: (r.created or 0.0, r.name)
    if sort == "duration":
        return lambda r: (e if (e := r.duration(now)) is not None else -1.0, r.name)
    if sort == "attempt":
        return lambda r: (r.attempt, r.name)
    return lambda r: (getattr(r, sort), r.namespace, r.name)


def chosen(rows: Iterable[TaskView], flt: Filter, namespaces: set[str], now: float) -> list[TaskView]:
    """The rows of the visible namespaces that the filter admits, in its order."""
    kept = [r for r in rows if r.namespace in namespaces and flt.admits(r)]
    kept.sort(key=_order_key(flt.sort, now), reverse=flt.desc)
    return kept


@dataclasses.dataclass(frozen=True)
class Page:
    rows: list[TaskView]
    total: int
    number: int
    pages: int
    size: int

    @property
    def first(self) -> int:
        """The place of its first row in the whole (1-based); 0 when empty."""
        return 0 if not self.rows else (self.number - 1) * self.size + 1


def page_of(rows: list[TaskView], flt: Filter) -> Page:
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
