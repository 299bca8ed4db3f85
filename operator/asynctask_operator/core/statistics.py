"""Figures over a set of tasks: counts, success rate, durations and queue waits (issue 16, item 8),
finishes per hour and failures by reason (the console's Statistics page).

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
from collections.abc import Iterable, Mapping, Sequence
from typing import Literal

GroupBy = Literal["type", "queue"]
FINISHED = ("Succeeded", "Failed", "Cancelled")
HOUR = 3600.0
UNKNOWN_REASON = "Unknown"
"""The reason counted for a Failed task whose status gives none."""


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
    finished: float | None = None
    """When it finished (``status.completionTime``)."""
    reason: str | None = None
    """``status.reason``: why it failed, for a Failed task."""


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


def _within(moment: float, since: float | None, until: float) -> bool:
    return (since is None or moment >= since) and moment <= until


def summarize(
    tasks: Iterable[TaskFacts], *, since: float | None, until: float, group_by: GroupBy | None = None
) -> dict[str, Figures]:
    """Figures of the tasks created in ``[since, until]``: one group ``""``, or one per type or queue."""
    chosen = [t for t in tasks if _within(t.created, since, until)]
    groups: dict[str, list[TaskFacts]] = {}
    if group_by is None:
        groups[""] = chosen
    for task in chosen if group_by is not None else ():
        groups.setdefault(task.type if group_by == "type" else task.queue, []).append(task)
    return {name: figures(members) for name, members in sorted(groups.items())}


def _hour_of(moment: float) -> float:
    """The start of the UTC hour ``moment`` falls in (epoch seconds count UTC, so hours align)."""
    return math.floor(moment / HOUR) * HOUR


def finished_per_hour(
    tasks: Iterable[TaskFacts], since: float | None, until: float, *, max_buckets: int = 168
) -> list[tuple[float, int]]:
    """Tasks finished per UTC hour, as ``(hour start, count)``: from the hour of the first finish in
    ``[since, until]`` through the hour of ``until``, every hour present (0 when none finished in it),
    at most ``max_buckets`` hours (the latest). With no finish in the window, only ``until``'s hour.

    >>> facts = [TaskFacts("t", "q", "Succeeded", created=0.0, finished=f) for f in (3700.0, 3800.0, 11000.0)]
    >>> finished_per_hour(facts, since=None, until=11000.0)
    [(3600.0, 2), (7200.0, 0), (10800.0, 1)]
    """
    counts: dict[float, int] = {}
    for t in tasks:
        if t.finished is not None and _within(t.finished, since, until):
            counts[_hour_of(t.finished)] = counts.get(_hour_of(t.finished), 0) + 1
    return per_bucket(counts, until, max_buckets=max_buckets)


def per_bucket(
    counts: Mapping[float, int], until: float, *, width: float = HOUR, max_buckets: int = 168
) -> list[tuple[float, int]]:
    """Counts by the start of their bucket (a UTC hour, or a day with ``width=86400``), as a list
    from the first bucket counted through ``until``'s, every bucket present, at most ``max_buckets``
    (the latest): what :func:`finished_per_hour` gives, from counts made elsewhere (the archive's SQL).

    >>> per_bucket({3600.0: 2, 10800.0: 1}, until=11000.0)
    [(3600.0, 2), (7200.0, 0), (10800.0, 1)]
    """
    last = math.floor(until / width) * width
    first = max(min(counts, default=last), last - (max(max_buckets, 1) - 1) * width)
    out = [0] * (round((last - first) / width) + 1)
    for start, count in counts.items():
        index = round((start - first) / width)
        if 0 <= index < len(out):  # not a bucket older than those kept
            out[index] += count
    return [(first + index * width, count) for index, count in enumerate(out)]


def failures_by_reason(tasks: Iterable[TaskFacts], since: float | None, until: float) -> list[tuple[str, int]]:
    """The Failed tasks created in ``[since, until]`` (as :func:`summarize` chooses them), counted by
    reason, most first, ties by name; a task without a reason counts as ``"Unknown"``.

    >>> facts = [TaskFacts("t", "q", "Failed", created=0.0, reason=r) for r in ("BackoffLimit", None, "Deadline", "")]
    >>> failures_by_reason(facts, since=None, until=10.0)
    [('Unknown', 2), ('BackoffLimit', 1), ('Deadline', 1)]
    """
    counts: dict[str, int] = {}
    for t in tasks:
        if t.phase == "Failed" and _within(t.created, since, until):
            reason = t.reason or UNKNOWN_REASON
            counts[reason] = counts.get(reason, 0) + 1
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))
