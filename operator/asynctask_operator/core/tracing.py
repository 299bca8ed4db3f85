"""The trace of a task (ADR 0020): its ids, derived from the task, and its spans, read from its status.

Nothing here is random or remembered. The trace id is the first 16 bytes of sha256(uid), unless the
task's ``asynctask.dev/traceparent`` annotation (W3C Trace Context) names a trace to join; every span
id is 8 bytes of sha256(``uid/n/kind``); every start and end is a time the status holds. A restarted
operator, or another replica, therefore names and times every span as the first one would have, and
the Job of an attempt, re-created after a crash, carries the same ``TRACEPARENT``.

The spans of one round of a task (a manual retry starts a new round, and a new root)::

    task                      queuedTime (creation) ........................ completionTime
    ├── queue wait            queuedTime -> the round's first attempt starts
    ├── attempt 1             startTime -> finishTime (outcome, exit code, reason)
    ├── retry delay 1         attempt 1 ends -> attempt 2 starts (the backoff, and any wait for a slot)
    ├── attempt 2             ...
    └── callback delivery     one per delivery of a callback event: due -> answered (status code)

:func:`ended_spans` says which spans one status write ends: the reconciler exports those once the
write is accepted (as it posts Events and counts metrics), so a span is exported once per write that
ends it, and a refused write exports nothing.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import re
from collections.abc import Mapping
from typing import Literal

from asynctask_operator.core.models import TERMINAL_PHASES, AsyncTask, AsyncTaskStatus, Attempt, CallbackStatus
from asynctask_operator.core.timestamps import parse_stamp

ANNOTATION_TRACEPARENT = "asynctask.dev/traceparent"
ANNOTATION_TRACESTATE = "asynctask.dev/tracestate"
MAX_TRACESTATE = 512  # W3C: at most 32 members; vendors may cut a longer one anyway

_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-[ -~]*)?$")
_ZERO_TRACE, _ZERO_SPAN = "0" * 32, "0" * 16

SpanStatus = Literal["unset", "ok", "error"]
Attributes = dict[str, str | int]
ROOT_STATUS: dict[str, SpanStatus] = {"Succeeded": "ok", "Failed": "error"}  # Cancelled: neither


@dataclasses.dataclass(frozen=True)
class TraceParent:
    """A W3C ``traceparent``: ``00-<trace id>-<parent span id>-<flags>``, in lower-case hex."""

    trace_id: str
    span_id: str
    flags: str = "01"

    @property
    def sampled(self) -> bool:
        return bool(int(self.flags, 16) & 1)

    @property
    def header(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-{self.flags}"


def parse_traceparent(value: str | None) -> TraceParent | None:
    """The trace context of a ``traceparent`` value; ``None`` for one that is absent or malformed
    (the W3C rule: a receiver that cannot parse it starts a trace of its own)."""
    found = _TRACEPARENT.match((value or "").strip())
    if found is None:
        return None
    version, trace_id, span_id, flags, rest = found.groups()
    if version == "ff" or (version == "00" and rest) or trace_id == _ZERO_TRACE or span_id == _ZERO_SPAN:
        return None
    return TraceParent(trace_id, span_id, flags)


def valid_tracestate(value: str | None) -> str | None:
    """A ``tracestate`` worth passing on: printable ASCII, at most 512 characters; else ``None``."""
    text = (value or "").strip()
    if not text or len(text) > MAX_TRACESTATE or not all(" " <= c <= "~" for c in text):
        return None
    return text


def trace_annotations(traceparent: str | None, tracestate: str | None = None) -> dict[str, str]:
    """The annotations that make a new task join a trace (what the gateway and the kubectl plugin set
    from a request's ``traceparent``/``tracestate`` headers, or ``$TRACEPARENT``/``$TRACESTATE``)::

        trace_annotations("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
        -> {"asynctask.dev/traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}

    Nothing for a malformed ``traceparent`` (and no ``tracestate`` without one)."""
    parent = parse_traceparent(traceparent)
    if parent is None:
        return {}
    out = {ANNOTATION_TRACEPARENT: parent.header}
    state = valid_tracestate(tracestate)
    if state is not None:
        out[ANNOTATION_TRACESTATE] = state
    return out


# --------------------------------------------------------------------------- ids


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


def span_id(uid: str, kind: str, n: int | str = 0) -> str:
    """The id of one span of a task: 8 bytes of sha256(``uid/n/kind``), as 16 hex digits (never zero)."""
    value = _digest(f"{uid}/{n}/{kind}")[:8].hex()
    return value if value != _ZERO_SPAN else "0" * 15 + "1"


@dataclasses.dataclass(frozen=True)
class TaskTrace:
    """Where a task's spans go: its trace, the remote parent of its root spans, and what to pass on."""

    trace_id: str
    parent_id: str | None = None  # the annotation's span: the root's remote parent
    flags: str = "01"
    tracestate: str | None = None

    @property
    def sampled(self) -> bool:
        return bool(int(self.flags, 16) & 1)


def task_trace(task: AsyncTask) -> TaskTrace:
    """The trace of ``task``: the one its annotation names, else its own (first 16 bytes of sha256(uid))."""
    return trace_of(task.metadata.uid, task.metadata.annotations)


def trace_of(uid: str, annotations: Mapping[str, str]) -> TaskTrace:
    """:func:`task_trace` of a task's uid and annotations (its wire form, unparsed)."""
    parent = parse_traceparent(annotations.get(ANNOTATION_TRACEPARENT))
    state = valid_tracestate(annotations.get(ANNOTATION_TRACESTATE))
    if parent is not None:
        return TaskTrace(parent.trace_id, parent.span_id, parent.flags, state)
    own = _digest(uid)[:16].hex()
    return TaskTrace(own if own != _ZERO_TRACE else "0" * 31 + "1", tracestate=state)


def root_id(uid: str, first_attempt: int) -> str:
    """The root span of the round that starts with ``first_attempt`` (1 for the task's first round)."""
    return span_id(uid, "task", first_attempt)


def attempt_id(uid: str, attempt: int) -> str:
    return span_id(uid, "attempt", attempt)


def delivery_id(uid: str, event_id: str, delivery: int) -> str:
    return span_id(uid, f"callback/{event_id}", delivery)


def attempt_env(task: AsyncTask, attempt: int) -> dict[str, str]:
    """``TRACEPARENT`` (and ``TRACESTATE``) of an attempt's containers: its attempt span, as the
    OpenTelemetry "environment variables as context propagation carriers" specification names them."""
    trace = task_trace(task)
    env = {"TRACEPARENT": TraceParent(trace.trace_id, attempt_id(task.metadata.uid, attempt), trace.flags).header}
    if trace.tracestate:
        env["TRACESTATE"] = trace.tracestate
    return env


def delivery_context(task: AsyncTask, event_id: str, delivery: int) -> dict[str, str]:
    """The CloudEvents distributed-tracing extension of one delivery: its delivery span."""
    trace = task_trace(task)
    out = {
        "traceparent": TraceParent(
            trace.trace_id, delivery_id(task.metadata.uid, event_id, delivery), trace.flags
        ).header
    }
    if trace.tracestate:
        out["tracestate"] = trace.tracestate
    return out


# --------------------------------------------------------------------------- spans


@dataclasses.dataclass(frozen=True)
class SpanRecord:
    """One finished span, everything an exporter needs: ids, times, what it says. No payload, no result."""

    name: str
    trace_id: str
    span_id: str
    parent_id: str | None
    start: dt.datetime
    end: dt.datetime
    attributes: Attributes = dataclasses.field(default_factory=dict)
    status: SpanStatus = "unset"
    description: str = ""  # of an error status: the reason
    kind: Literal["internal", "client"] = "internal"
    remote_parent: bool = False  # the parent is the annotation's span, in another process
    sampled: bool = True
    tracestate: str | None = None


class _Builder:
    """The spans of one status of one task: the round's ids, and what every span says about the task."""

    def __init__(self, task: AsyncTask, status: AsyncTaskStatus) -> None:
        self.task, self.status = task, status
        self.trace = task_trace(task)
        self.uid = task.metadata.uid
        self.first = status.round.first_attempt if status.round else 1
        self.root = root_id(self.uid, self.first)
        self.common: Attributes = {
            "asynctask.namespace": task.metadata.namespace,
            "asynctask.task": task.metadata.name,
            "asynctask.type": task.spec.type,
        }
        if status.effective is not None:
            self.common["asynctask.queue"] = status.effective.queue

    def span(
        self,
        name: str,
        id_: str,
        start: dt.datetime,
        end: dt.datetime,
        attributes: Attributes | None = None,
        status: SpanStatus = "unset",
        description: str = "",
        kind: Literal["internal", "client"] = "internal",
    ) -> SpanRecord:
        """A child of the round's root; a start after the end (a status edited by hand) is moved to it."""
        return SpanRecord(
            name=name,
            trace_id=self.trace.trace_id,
            span_id=id_,
            parent_id=self.root,
            start=min(start, end),
            end=end,
            attributes={**self.common, **(attributes or {})},
            status=status,
            description=description,
            kind=kind,
            sampled=self.trace.sampled,
            tracestate=self.trace.tracestate,
        )

    def attempts(self) -> list[Attempt]:
        return sorted((a for a in self.status.attempts or () if a.attempt >= self.first), key=lambda a: a.attempt)


def spans_of(task: AsyncTask, status: AsyncTaskStatus | None = None) -> list[SpanRecord]:
    """Every span of the current round that ``status`` (default: the task's own) shows ended, but the
    callback deliveries (the status keeps only the latest; :func:`ended_spans` reads them).

    A pure function of the status: the same status gives the same spans, ids and times, in any process."""
    status = status if status is not None else task.status
    b = _Builder(task, status)
    attempts = b.attempts()
    out: list[SpanRecord] = []
    queued = parse_stamp(status.queued_time)
    done = parse_stamp(status.completion_time) if status.phase in TERMINAL_PHASES else None
    admitted = (parse_stamp(attempts[0].start_time) if attempts else None) or done
    if queued is not None and admitted is not None:
        out.append(b.span("queue wait", span_id(b.uid, "queue", b.first), queued, admitted))
    for n, attempt in enumerate(attempts):
        following = attempts[n + 1] if n + 1 < len(attempts) else None
        start, end = parse_stamp(attempt.start_time), parse_stamp(attempt.finish_time)
        if start is None or end is None or attempt.outcome is None:
            continue
        out.append(_attempt_span(b, attempt, start, end))
        if following is not None:
            resumed = parse_stamp(following.start_time)
            if resumed is not None:
                out.append(_retry_span(b, attempt, end, resumed))
        elif done is not None and status.reason in ("Cancelled", "DeadlineExceeded") and attempt.outcome != "Cancelled":
            out.append(_retry_span(b, attempt, end, done))  # ended while it waited to try again
    if done is not None:
        out.append(_root_span(b, done))
    return out


def _attempt_span(b: _Builder, attempt: Attempt, start: dt.datetime, end: dt.datetime) -> SpanRecord:
    attributes: Attributes = {"asynctask.attempt": attempt.attempt, "asynctask.outcome": attempt.outcome or ""}
    if attempt.reason:
        attributes["asynctask.reason"] = attempt.reason
    if attempt.exit_code is not None:
        attributes["asynctask.exit_code"] = attempt.exit_code
    attributes["k8s.job.name"] = attempt.job
    ok = attempt.outcome == "Succeeded"
    return b.span(
        "attempt",
        attempt_id(b.uid, attempt.attempt),
        start,
        end,
        attributes=attributes,
        status="ok" if ok else "error",
        description="" if ok else attempt.reason or attempt.outcome or "",
    )


def _retry_span(b: _Builder, attempt: Attempt, start: dt.datetime, end: dt.datetime) -> SpanRecord:
    return b.span(
        "retry delay",
        span_id(b.uid, "retry", attempt.attempt),
        start,
        end,
        attributes={"asynctask.attempt": attempt.attempt, "asynctask.reason": attempt.reason or ""},
    )


def _root_span(b: _Builder, done: dt.datetime) -> SpanRecord:
    status, meta = b.status, b.task.metadata
    start = parse_stamp(status.queued_time) if b.first > 1 else None
    start = start or parse_stamp(meta.creation_timestamp) or parse_stamp(status.queued_time) or done
    outcome = status.phase or ""
    attributes: Attributes = {
        "asynctask.uid": meta.uid,
        "asynctask.attempt": status.attempt or 0,
        "asynctask.outcome": outcome,
        "asynctask.reason": status.reason or "",
    }
    span = b.span(
        "task",
        b.root,
        start,
        done,
        attributes=attributes,
        status=ROOT_STATUS.get(outcome, "unset"),
        description=(status.reason or "") if outcome == "Failed" else "",
    )
    return dataclasses.replace(span, parent_id=b.trace.parent_id, remote_parent=b.trace.parent_id is not None)


def _delivery_span(task: AsyncTask, new: AsyncTaskStatus) -> SpanRecord | None:
    """The callback delivery that writing ``new`` records, if it records one."""
    record, before = new.callback, task.status.callback
    if record is None or record.attempts == 0:
        return None
    same = before is not None and before.id == record.id
    if same and before is not None and before.attempts >= record.attempts:
        return None
    end = parse_stamp(record.last_attempt_time)
    if end is None:
        return None
    start = _delivery_start(record, before if same else None) or end
    b = _Builder(task, new)
    attributes: Attributes = {
        "asynctask.attempt": record.task_attempt,
        "asynctask.callback.event": record.event,
        "asynctask.callback.delivery": record.attempts,
        "asynctask.outcome": record.state,
    }
    if record.last_status_code is not None:
        attributes["http.response.status_code"] = record.last_status_code
    ok = record.state == "Delivered"
    return b.span(
        "callback delivery",
        delivery_id(b.uid, record.id, record.attempts),
        start,
        end,
        attributes=attributes,
        kind="client",
        status="ok" if ok else "error",
        description="" if ok else f"HTTP {record.last_status_code}" if record.last_status_code else record.state,
    )


def _delivery_start(record: CallbackStatus, before: CallbackStatus | None) -> dt.datetime | None:
    """When the delivery was due: the event's time for the first, the retry time recorded before it else."""
    if record.attempts == 1:
        return parse_stamp(record.event_time)
    return parse_stamp(before.next_attempt_time) if before is not None else None


def ended_spans(task: AsyncTask, new: AsyncTaskStatus) -> list[SpanRecord]:
    """The spans that writing status ``new`` over the task's current status ends: the spans of ``new``
    that its current status does not show ended yet, and the callback delivery ``new`` records."""
    seen = {s.span_id for s in spans_of(task)}
    out = [s for s in spans_of(task, new) if s.span_id not in seen]
    delivery = _delivery_span(task, new)
    if delivery is not None:
        out.append(delivery)
    return out
