"""How a person sees a task, a queue and a schedule: the one reading every front door shows.

The HTTP API, the web console and the kubectl plugin (and the archive's history, which keeps
the same wire form) each build their answers from these views, so a figure means the same
everywhere (docs/concepts.md, "Reading a task"). A view is read once from the object's wire
form, the JSON dict the API server sends, without parsing it into the model: a console page
reads 10,000 of them. Times are epoch seconds; a figure that grows while the task runs takes
``now`` (``None``: only what is settled).

The rules:

- **percent**: 100 for a Succeeded task; otherwise the percent the task reported, or its steps
  done over steps total when it reported only steps; unknown otherwise (``progress`` keeps what
  the task itself said);
- **age**: from creation; **wait**: from entering the queue (creation, or the last manual retry)
  to the first start of an attempt since then; **duration**: from that first start to the finish
  (or now);
- **headline**: the progress message while Running, the status message otherwise;
- **attempt N of M**: M is the attempts this round may take (the first attempt since the last
  manual retry, plus ``maxRetries``), once admission has recorded them.

>>> view = TaskView.of({"metadata": {"name": "t", "namespace": "ns", "creationTimestamp": "2026-01-01T00:00:00Z"},
...     "spec": {"type": "x"}, "status": {"phase": "Running", "progress": {"stepsDone": 1, "stepsTotal": 4}}})
>>> view.percent, view.headline, view.age(1767225610.0)
(25.0, '', 10.0)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from asynctask_operator.core.idempotency import ANNOTATION_SUBMITTED_BY
from asynctask_operator.core.queueing import WaitingTask
from asynctask_operator.core.statistics import TaskFacts
from asynctask_operator.core.wire import Obj, number_in, queue_in, seconds_in, waiting_in

TERMINAL = frozenset({"Succeeded", "Failed", "Cancelled"})


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _dict(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def reported_percent(progress: Mapping[str, Any]) -> float | None:
    """The percent a task's progress report gives: its percent, else its steps done over total; clamped to 0-100."""
    value = number_in(progress.get("percent"))
    done, total = _count(progress.get("stepsDone")), _count(progress.get("stepsTotal"))
    if value is None and done is not None and total:
        value = 100.0 * done / total
    return None if value is None else max(0.0, min(100.0, value))


def _key_of(status: Mapping[str, Any], spec: Mapping[str, Any]) -> str:
    """The task's concurrency key: the one admission recorded (a TaskType's keyFrom resolved), else its own."""
    effective = _dict(status.get("effective"))
    for concurrency in (effective.get("concurrency"), spec.get("concurrency")):
        if isinstance(concurrency, dict) and isinstance(concurrency.get("key"), str):
            return str(concurrency["key"])
    return ""


@dataclasses.dataclass(frozen=True, slots=True)
class KeyWaitView:
    """What a Pending task waits for: its busy key, the key's limit, who held it when the wait began."""

    key: str
    limit: int
    holders: tuple[str, ...]

    @classmethod
    def of(cls, value: object) -> KeyWaitView | None:
        if not isinstance(value, dict) or not isinstance(value.get("key"), str):
            return None
        holders = _list(value.get("holders"))
        return cls(str(value["key"]), _count(value.get("limit")) or 1, tuple(str(h) for h in holders))

    @property
    def text(self) -> str:
        """``key video-42 (held by a, b)``."""
        held = f" (held by {', '.join(self.holders)})" if self.holders else ""
        return f"key {self.key}{held}"


@dataclasses.dataclass(frozen=True, slots=True)
class TaskView:
    """One task as every front door shows it (the module's rules)."""

    namespace: str
    name: str
    uid: str
    resource_version: str
    type: str
    queue: str
    priority: int
    labels: Mapping[str, str]
    submitted_by: str
    phase: str
    reason: str
    message: str
    """The status message: what the operator last said."""
    headline: str
    """What is happening, in words (the rule above)."""
    progress: Mapping[str, Any] | None
    """The progress as the task reported it, as it was reported."""
    percent: float | None
    steps_done: int | None
    steps_total: int | None
    step: str
    attempt: int
    """The attempt under way or last made; 0 before the first."""
    attempts_allowed: int | None
    """The highest attempt number this round may reach; None before admission records it."""
    created_time: str | None
    queued_time: str | None
    start_time: str | None
    completion_time: str | None
    next_retry_time: str | None
    created: float | None
    queued: float | None
    started: float | None
    finished: float | None
    recorded_duration: float | None
    cancel_requested: bool
    deleting: bool
    concurrency_key: str
    """Its concurrency key (the one admission recorded, else its own); ``""`` without one."""
    waiting_for_key: KeyWaitView | None
    """While it waits for a busy key: the key, its limit, and who held it when the wait began."""
    group: str
    """Its group in a fair queue's round robin; ``""`` otherwise."""
    waiting: WaitingTask | None
    """The task as its queue's admission order sees it (core/positions.py): while it waits for a slot or its key,
    while it holds them, or when it records a fairness turn; None when it counts for nothing there."""

    @classmethod
    def of(cls, obj: Obj) -> TaskView:
        meta = obj.get("metadata") or {}
        spec = obj.get("spec") or {}
        status = obj.get("status") or {}
        progress = status.get("progress") if isinstance(status.get("progress"), dict) else None
        phase = _text(status.get("phase")) or "Pending"
        percent = 100.0 if phase == "Succeeded" else reported_percent(progress or {})
        message = _text(status.get("message"))
        told = _text((progress or {}).get("message"))
        attempts = status.get("attempts") if isinstance(status.get("attempts"), list) else []
        start_time = _text(status.get("startTime")) or None
        if start_time is None and attempts and isinstance(attempts[0], dict):
            start_time = _text(attempts[0].get("startTime")) or None
        retries = _count(((status.get("effective") or {}).get("retry") or {}).get("maxRetries"))
        first = _count((status.get("round") or {}).get("firstAttempt")) or 1
        created_time = _text(meta.get("creationTimestamp")) or None
        queued_time = _text(status.get("queuedTime")) or None
        completion_time = _text(status.get("completionTime")) or None
        annotations = meta.get("annotations") or {}
        waiting = waiting_in(obj)
        fairness = _dict(status.get("fairness"))
        return cls(
            namespace=_text(meta.get("namespace")),
            name=_text(meta.get("name")),
            uid=_text(meta.get("uid")),
            resource_version=_text(meta.get("resourceVersion")),
            type=_text(spec.get("type")),
            queue=queue_in(obj),
            priority=_count(spec.get("priority")) or 0,
            labels=dict(meta.get("labels") or {}),
            submitted_by=_text(annotations.get(ANNOTATION_SUBMITTED_BY)),
            phase=phase,
            reason=_text(status.get("reason")),
            message=message,
            headline=(told or message) if phase == "Running" else message,
            progress=progress,
            percent=percent,
            steps_done=_count((progress or {}).get("stepsDone")),
            steps_total=_count((progress or {}).get("stepsTotal")),
            step=_text((progress or {}).get("step")),
            attempt=_count(status.get("attempt")) or 0,
            attempts_allowed=None if retries is None else first + retries,
            created_time=created_time,
            queued_time=queued_time,
            start_time=start_time,
            completion_time=completion_time,
            next_retry_time=_text(status.get("nextRetryTime")) or None,
            created=seconds_in(created_time),
            queued=seconds_in(queued_time) or seconds_in(created_time),
            started=seconds_in(start_time),
            finished=seconds_in(completion_time),
            recorded_duration=number_in(status.get("durationSeconds")),
            cancel_requested=spec.get("cancel") is True,
            deleting=bool(meta.get("deletionTimestamp")),
            concurrency_key=(waiting.key if waiting is not None else None) or _key_of(status, spec),
            waiting_for_key=KeyWaitView.of(status.get("waitingForKey")) if phase == "Pending" else None,
            group=_text(fairness.get("group")),
            waiting=waiting,
        )

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def terminal(self) -> bool:
        return self.phase in TERMINAL

    @property
    def waits(self) -> bool:
        """It waits in its queue's line (for a slot, or its concurrency key): it has a position."""
        return self.waiting is not None and self.waiting.waits

    def age(self, now: float) -> float | None:
        """Seconds since it was created."""
        return None if self.created is None else max(0.0, now - self.created)

    def wait(self, now: float | None) -> float | None:
        """Seconds from entering its queue to its first start; while it has not started, to now (``None``:
        unknown) or to its finish, if it ended without starting."""
        if self.queued is None:
            return None
        end = self.started if self.started is not None else self.finished if self.terminal else now
        return None if end is None else max(0.0, end - self.queued)

    def duration(self, now: float | None) -> float | None:
        """Seconds from its first start to its finish; while it runs, to now (``None``: unknown)."""
        if self.terminal and self.recorded_duration is not None:
            return self.recorded_duration
        if self.started is None:
            return None
        end = self.finished if self.terminal else now
        return None if end is None else max(0.0, end - self.started)

    @property
    def steps(self) -> str:
        """``2/5 encode``, ``2/5``, ``encode`` or ``""``."""
        count = f"{self.steps_done}/{self.steps_total}" if self.steps_done is not None and self.steps_total else ""
        return " ".join(part for part in (count, self.step) if part)

    @property
    def attempt_text(self) -> str:
        """``2/4`` (attempt 2 of at most 4), ``2`` before admission records the limit, ``""`` before one."""
        if not self.attempt:
            return ""
        return f"{self.attempt}/{self.attempts_allowed}" if self.attempts_allowed else str(self.attempt)

    def facts(self) -> TaskFacts:
        """The task as the statistics read it (:func:`~asynctask_operator.core.statistics.summarize`)."""
        return TaskFacts(
            type=self.type,
            queue=self.queue,
            phase=self.phase,
            created=self.created or 0.0,
            queued=self.queued,
            started=self.started,
            duration=self.duration(None),
            finished=self.finished,
            reason=self.reason or None,
        )
