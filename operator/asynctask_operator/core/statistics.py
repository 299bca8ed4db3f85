"""Figures over a set of tasks: counts, success rate, durations and queue waits (issue 16, item 8).

Pure: the caller gives the facts of each task (read from its cache) and the window; what the
answer covers is part of the answer, because the tasks a cache holds are only those still
present (finished tasks are deleted after their TTL).

>>> facts = [TaskFacts("t", "q", "Succeeded", created=0.0, started=2.0, duration=10.0)]
>>> summarize(facts, since=None, until=100.0)[""].success_rate
1.0
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence
from typing import Literal

GroupBy = Literal["type", "queue"]
FINISHED = ("Succeeded", "Failed", "Cancelled")


@dataclasses.dataclass(frozen=True)
class TaskFacts:
    """What the figures need of one task; times in epoch seconds."""

    type: str
    queue: str
    phase: str
    created: float
    queued: float | None = None
    started: float | None = None
    duration: float | None = None


@dataclasses.dataclass(frozen=True)
class Figures:
    total: int
    succeeded: int
    failed: int
    cancelled: int
    success_rate: float | None
    """Succeeded over finished; None when none finished."""
    mean_duration_seconds: float | None
    p50_duration_seconds: float | None
    p95_duration_seconds: float | None
    mean_queue_wait_seconds: float | None
    """From entering the queue (or creation) to the first start, over the tasks that started."""


@dataclasses.dataclass(frozen=True)
class Window:
    """The tasks created in ``[since, until]``; ``since`` is never before the oldest task present."""

    since: float | None
    until: float


def percentile(sorted_values: Sequence[float], fraction: float) -> float | None:
    """Nearest-rank percentile of an ascending sequence.

    >>> percentile([1.0, 2.0, 3.0, 4.0], 0.5), percentile([1.0, 2.0, 3.0, 4.0], 0.95), percentile([], 0.5)
    (2.0, 4.0, None)
    """
    if not sorted_values:
        return None
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


def figures(tasks: Sequence[TaskFacts]) -> Figures:
    counts = {phase: sum(1 for t in tasks if t.phase == phase) for phase in FINISHED}
    finished = sum(counts.values())
    durations = sorted(t.duration for t in tasks if t.duration is not None and t.phase in FINISHED)
    waits = [t.started - (t.queued if t.queued is not None else t.created) for t in tasks if t.started is not None]
    return Figures(
        total=len(tasks),
        succeeded=counts["Succeeded"],
        failed=counts["Failed"],
        cancelled=counts["Cancelled"],
        success_rate=counts["Succeeded"] / finished if finished else None,
        mean_duration_seconds=sum(durations) / len(durations) if durations else None,
        p50_duration_seconds=percentile(durations, 0.50),
        p95_duration_seconds=percentile(durations, 0.95),
        mean_queue_wait_seconds=sum(max(w, 0.0) for w in waits) / len(waits) if waits else None,
    )


def window_of(tasks: Iterable[TaskFacts], since: float | None, until: float) -> Window:
    """The window an answer covers: from ``since`` (but not before the oldest task present) to ``until``."""
    oldest = min((t.created for t in tasks), default=None)
    if oldest is None:
        return Window(since, until)
    return Window(oldest if since is None else max(since, oldest), until)


def summarize(
    tasks: Iterable[TaskFacts], *, since: float | None, until: float, group_by: GroupBy | None = None
) -> dict[str, Figures]:
    """Figures of the tasks created in ``[since, until]``: one group ``""``, or one per type or queue."""
    chosen = [t for t in tasks if (since is None or t.created >= since) and t.created <= until]
    groups: dict[str, list[TaskFacts]] = {}
    if group_by is None:
        groups[""] = chosen
    for task in chosen if group_by is not None else ():
        groups.setdefault(task.type if group_by == "type" else task.queue, []).append(task)
    return {name: figures(members) for name, members in sorted(groups.items())}
