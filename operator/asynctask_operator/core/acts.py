"""What a person's act writes: one merge patch per act, the same from every front door.

The HTTP gateway and the kubectl plugin both cancel, retry, pause and run things; what each
act is, for the operator to see it, is decided here once (docs/design.md §2.3 and §2.5).
"""

from __future__ import annotations

from typing import Any

from asynctask_operator.core.models import TERMINAL_PHASES
from asynctask_operator.core.naming import ANNOTATION_RUN_NOW

Patch = dict[str, Any]

RETRY_ANNOTATION = "asynctask.dev/retry-requested"
RETRYABLE_PHASES = frozenset({"Failed", "Cancelled"})
"""The phases a retry starts again from; in any other a retry request is not honoured."""


def actionable(task: dict[str, Any], action: str) -> str | None:
    """``None`` when ``action`` (cancel or retry) applies to the task (its wire form), else why it
    does not: cancel an unfinished task not already being cancelled; retry a Failed or Cancelled one."""
    phase = str((task.get("status") or {}).get("phase") or "Pending")
    if action == "cancel":
        if phase in TERMINAL_PHASES:
            return f"is {phase}: nothing to cancel"
        if (task.get("spec") or {}).get("cancel"):
            return "is already being cancelled"
        return None
    if phase not in RETRYABLE_PHASES:
        return f"is {phase}: only Failed or Cancelled tasks can be retried"
    return None


def cancel_task() -> Patch:
    return {"spec": {"cancel": True}}


def retry_task(requested: str) -> Patch:
    """A new ``requested`` value asks for a new round. ``spec.cancel`` is cleared with it: a task that
    still asks to be cancelled is not run again (the lifecycle honours a retry only without it)."""
    return {"metadata": {"annotations": {RETRY_ANNOTATION: requested}}, "spec": {"cancel": None}}


def pause_queue(paused: bool) -> Patch:
    return {"spec": {"paused": paused}}


def suspend_schedule(suspend: bool) -> Patch:
    return {"spec": {"suspend": suspend}}


def run_schedule_now(value: str) -> Patch:
    """A new value of ``asynctask.dev/run-now`` creates one run."""
    return {"metadata": {"annotations": {ANNOTATION_RUN_NOW: value}}}
