"""The history query: filters as SQL (bound parameters only) and keyset pagination, newest first.

A page is ``ORDER BY created DESC, uid DESC LIMIT n+1`` after the last row of the previous page:
``WHERE (created, uid) < (:created, :uid)``. The cursor is that sort key, opaque to the caller
(base64 of JSON): no OFFSET, so page 1,000 costs what page 1 does, and no COUNT to page. Rows
added between two pages are newer than the cursor (or, archived late, older): a page never
repeats or skips a row that was there when the first page was read.

Every value a caller gives goes into the statement as a bound parameter: a label key reaches the
database as a JSON path parameter, a name substring as a LIKE pattern with its wildcards escaped,
the cursor's parts as a number and a string it was checked to be. Nothing is ever spliced into SQL.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import math
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, literal, or_, select, true, tuple_

from asynctask_operator.archive.schema import tasks
from asynctask_operator.core.labelselectors import Term, parse

MAX_LIMIT = 1000
DEFAULT_LIMIT = 50


class BadQuery(ValueError):
    """A history query the archive refuses: the message names the parameter and what is wrong."""


@dataclasses.dataclass(frozen=True)
class HistoryQuery:
    """What a history page asks for: every filter optional, ANDed together."""

    namespaces: tuple[str, ...] | None = None
    """The namespaces to read (the caller may read each); None: every one; ``()``: none."""
    type: str | None = None
    queue: str | None = None
    phase: str | None = None
    reason: str | None = None
    label_selector: str | None = None
    """Equality-based, as Kubernetes' (``app=web,tier!=db,canary,!legacy``)."""
    since: float | None = None
    """Created at or after (epoch seconds)."""
    until: float | None = None
    """Created at or before (epoch seconds)."""
    q: str | None = None
    """A substring of the task's name."""
    limit: int = DEFAULT_LIMIT
    cursor: str | None = None
    """The ``next_cursor`` of the previous page; None for the first."""


@dataclasses.dataclass(frozen=True)
class Position:
    """The sort key of a row: where the next page starts (after it)."""

    created: float
    uid: str


def encode_cursor(position: Position) -> str:
    text = json.dumps([position.created, position.uid], separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> Position:
    """The position a cursor names; :class:`BadQuery` for anything that is not a cursor of ours."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        created, uid = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, TypeError, binascii.Error, UnicodeError):
        raise BadQuery("continue: not a cursor this archive gave (start again without it)") from None
    if isinstance(created, bool) or not isinstance(created, int | float) or not math.isfinite(created):
        raise BadQuery("continue: not a cursor this archive gave (start again without it)")
    if not isinstance(uid, str) or len(uid) > 253:
        raise BadQuery("continue: not a cursor this archive gave (start again without it)")
    return Position(float(created), uid)


def label_clause(term: Term) -> ColumnElement[bool]:
    """One selector term over the ``labels`` JSON column (``->>`` in PostgreSQL, ``json_extract`` in SQLite)."""
    key, op, value = term
    field: ColumnElement[str] = tasks.c.labels[key].as_string()
    if op == "=":
        return field == value
    if op == "!=":  # Kubernetes: a task without the label matches too
        return or_(field.is_(None), field != value)
    if op == "exists":
        return field.is_not(None)
    return field.is_(None)


def selector_terms(selector: str | None) -> list[Term]:
    if not selector:
        return []
    try:
        return parse(selector)
    except ValueError as exc:
        raise BadQuery(f"labelSelector: {exc}") from None


def namespace_clause(namespaces: tuple[str, ...] | None) -> ColumnElement[bool]:
    if namespaces is None:
        return true()
    if len(namespaces) == 1:
        return tasks.c.namespace == namespaces[0]
    return tasks.c.namespace.in_(namespaces)  # () gives IN (), which no row matches


def where(query: HistoryQuery) -> list[ColumnElement[bool]]:
    """The filters of a query as SQL conditions (without the cursor)."""
    out = [namespace_clause(query.namespaces)]
    for column, value in (
        ("type", query.type),
        ("queue", query.queue),
        ("phase", query.phase),
        ("reason", query.reason),
    ):
        if value:
            out.append(tasks.c[column] == value)
    out.extend(label_clause(term) for term in selector_terms(query.label_selector))
    if query.since is not None:
        out.append(tasks.c.created >= query.since)
    if query.until is not None:
        out.append(tasks.c.created <= query.until)
    if query.q:
        out.append(tasks.c.name.contains(query.q.lower(), autoescape=True))
    return out


def check_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LIMIT:
        raise BadQuery(f"limit: from 1 to {MAX_LIMIT}, not {limit}")
    return limit


def page_statement(query: HistoryQuery, columns: Any = None) -> Select[Any]:
    """The SELECT of one page: ``limit + 1`` rows (the one more says whether another page follows)."""
    conditions = where(query)
    if query.cursor:
        after = decode_cursor(query.cursor)
        conditions.append(tuple_(tasks.c.created, tasks.c.uid) < tuple_(literal(after.created), literal(after.uid)))
    return (
        select(*(columns if columns is not None else tasks.columns))
        .where(and_(*conditions))
        .order_by(tasks.c.created.desc(), tasks.c.uid.desc())
        .limit(check_limit(query.limit) + 1)
    )
