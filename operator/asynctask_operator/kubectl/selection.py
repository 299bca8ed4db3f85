"""Which tasks a command acts on, and what it makes of them: pure, table-tested.

- :func:`matches`: the ``--type``, ``--queue`` and ``--phase`` filters (the label selector goes to
  the API server);
- whether ``cancel`` or ``retry`` can do anything to a task: :func:`~asynctask_operator.core.acts.actionable`,
  the console's reading too;
- :func:`exit_code`: what the finished tasks a command waited for mean to a script;
- a task as the shared core functions (statistics, queue positions) read it: ``core/wire.py``,
  the gateway's reading too.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable, Sequence

from asynctask_operator.core.wire import Obj, queue_in
from asynctask_operator.kubectl.errors import CANCELLED, FAILED, SUCCEEDED
from asynctask_operator.kubectl.render import phase

PHASES = ("Pending", "Running", "Retrying", "Succeeded", "Failed", "Cancelled")


def matches(task: Obj, *, type_: str | None = None, queue: str | None = None, phases: Sequence[str] = ()) -> bool:
    spec = task.get("spec") or {}
    return (
        (type_ is None or spec.get("type") == type_)
        and (queue is None or queue_in(task) == queue)
        and (not phases or phase(task) in phases)
    )


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


def failure_reasons(tasks: Iterable[Obj]) -> dict[str, int]:
    """How many Failed tasks ended with each reason, the commonest first."""
    counts = collections.Counter(
        str((t.get("status") or {}).get("reason") or "Unknown") for t in tasks if phase(t) == "Failed"
    )
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
