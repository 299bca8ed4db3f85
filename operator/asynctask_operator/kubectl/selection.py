"""Which tasks a command acts on, and what it makes of them: pure, table-tested.

- :func:`matches`: the ``--type``, ``--queue`` and ``--phase`` filters (the label selector goes to
  the API server);
- :func:`actionable`: whether ``cancel`` or ``retry`` can do anything to a task (cancel: not
  finished; retry: Failed or Cancelled, SPEC 2.3);
- :func:`exit_code`: what the finished tasks a command waited for mean to a script;
- :func:`facts` and :func:`waiting`: a task as the shared core functions (statistics, queue
  positions) read it, so the plugin and the gateway compute the same figures.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable, Sequence
from typing import Any

from asynctask_operator.core.queueing import WaitingTask
from asynctask_operator.core.statistics import TaskFacts
from asynctask_operator.core.timestamps import parse_stamp
from asynctask_operator.kubectl.errors import CANCELLED, FAILED, SUCCEEDED
from asynctask_operator.kubectl.render import finished, phase, task_queue

Obj = dict[str, Any]
PHASES = ("Pending", "Running", "Retrying", "Succeeded", "Failed", "Cancelled")
RETRYABLE = ("Failed", "Cancelled")


def matches(task: Obj, *, type_: str | None = None, queue: str | None = None, phases: Sequence[str] = ()) -> bool:
    spec = task.get("spec") or {}
    return (
        (type_ is None or spec.get("type") == type_)
        and (queue is None or task_queue(task) == queue)
        and (not phases or phase(task) in phases)
    )


def actionable(task: Obj, action: str) -> str | None:
    """``None`` when ``action`` (cancel or retry) applies to the task, else why it does not."""
    if action == "cancel":
        if finished(task):
            return f"is {phase(task)}: nothing to cancel"
        if (task.get("spec") or {}).get("cancel"):
            return "is already being cancelled"
        return None
    if phase(task) not in RETRYABLE:
        return f"is {phase(task)}: only Failed or Cancelled tasks can be retried"
    return None


def exit_code(tasks: Iterable[Obj], until: str = "Succeeded") -> int:
    """0 when every task Succeeded (or, ``until="finished"``, merely finished); else 1 if one Failed,
    else 2 if one was Cancelled."""
    phases = [phase(t) for t in tasks]
    if until == "finished":
        return SUCCEEDED
    if "Failed" in phases:
        return FAILED
    if "Cancelled" in phases:
        return CANCELLED
    return SUCCEEDED


def _seconds(text: str | None) -> float | None:
    moment = parse_stamp(text)
    return moment.timestamp() if moment else None


def facts(task: Obj) -> TaskFacts:
    """The task as :func:`~asynctask_operator.core.statistics.summarize` reads it (the gateway's reading too:
    the queue it was admitted to, the first attempt's start as the end of its queue wait)."""
    meta, status = task.get("metadata") or {}, task.get("status") or {}
    attempts = status.get("attempts") or []
    first = attempts[0].get("startTime") if attempts and attempts[0].get("startTime") else status.get("startTime")
    duration = status.get("durationSeconds")
    return TaskFacts(
        type=str((task.get("spec") or {}).get("type") or ""),
        queue=task_queue(task),
        phase=phase(task),
        created=_seconds(meta.get("creationTimestamp")) or 0.0,
        queued=_seconds(status.get("queuedTime")),
        started=_seconds(first),
        duration=float(duration) if isinstance(duration, int | float) else None,
    )


def waiting(task: Obj) -> WaitingTask | None:
    """The task as its queue's admission order sees it, while it waits for a slot (Pending, not cancelled)."""
    meta, spec = task.get("metadata") or {}, task.get("spec") or {}
    if phase(task) != "Pending" or spec.get("cancel") or meta.get("deletionTimestamp"):
        return None
    return WaitingTask(
        str(meta.get("name") or ""),
        task_queue(task),
        int(spec.get("priority") or 0),
        str(meta.get("creationTimestamp") or ""),
    )


def failure_reasons(tasks: Iterable[Obj]) -> dict[str, int]:
    """How many Failed tasks ended with each reason, the commonest first."""
    counts = collections.Counter(
        str((t.get("status") or {}).get("reason") or "Unknown") for t in tasks if phase(t) == "Failed"
    )
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
