"""Finished (and unfinished) AsyncTasks in wire form, as the archive receives them, and rows of them.

finished("t1", phase="Failed", reason="PodFailed", created=T0, duration=12.5, labels={"app": "web"})
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

from asynctask_operator.archive.records import TaskRow, row_of
from asynctask_operator.core.timestamps import stamp

Obj = dict[str, Any]
T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
NS = "team-a"


def when(seconds: float) -> str:
    return stamp(dt.datetime.fromtimestamp(seconds, dt.UTC))


def finished(
    name: str,
    *,
    namespace: str = NS,
    uid: str | None = None,
    type: str = "echo",
    queue: str = "default",
    phase: str = "Succeeded",
    reason: str | None = None,
    created: float = T0,
    wait: float | None = 5.0,
    duration: float | None = 10.0,
    labels: dict[str, str] | None = None,
    rv: int | str = 100,
    attempt: int = 1,
    result: Any = None,
) -> Obj:
    """A task that ran ``attempt`` attempts and ended in ``phase`` (None ``phase``: still Pending)."""
    started = created + wait if wait is not None else None
    done = (started or created) + duration if duration is not None else None
    status: Obj = {"phase": phase, "attempt": attempt, "queuedTime": when(created)}
    if phase != "Pending":
        status["reason"] = reason or {"Succeeded": "Completed", "Failed": "PodFailed", "Cancelled": "Cancelled"}.get(
            phase, "JobCreated"
        )
        status["message"] = f"attempt {attempt} ended"
    if started is not None:
        status["startTime"] = when(started)
        status["attempts"] = [
            {"attempt": n, "job": f"{name}-{n}", "startTime": when(started)} for n in range(1, attempt + 1)
        ]
    if done is not None and phase in ("Succeeded", "Failed", "Cancelled"):
        status["completionTime"] = when(done)
        status["durationSeconds"] = duration
    if reason is not None:
        status["reason"] = reason
    if result is not None:
        status["result"] = result
    status["effective"] = {"queue": queue}
    return {
        "apiVersion": "asynctask.dev/v1alpha1",
        "kind": "AsyncTask",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": uid or f"uid-{namespace}-{name}",
            "resourceVersion": str(rv),
            "creationTimestamp": when(created),
            "labels": labels or {},
            "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}],
        },
        "spec": {"type": type, "payload": {"n": 1}},
        "status": status,
    }


def row(obj: Obj, archived_at: float = T0 + 86400) -> TaskRow:
    return row_of(obj, archived_at)


def spread(n: int, seed: int = 7, *, namespaces: tuple[str, ...] = (NS, "team-b")) -> list[Obj]:
    """``n`` tasks of mixed namespaces, types, queues, phases, labels and times (ties included)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        phase = rng.choice(["Succeeded", "Succeeded", "Succeeded", "Failed", "Cancelled", "Running", "Pending"])
        has_duration = phase in ("Succeeded", "Failed", "Cancelled") and rng.random() > 0.1
        out.append(
            finished(
                f"task-{i:04d}",
                namespace=rng.choice(namespaces),
                type=rng.choice(["echo", "render", "report"]),
                queue=rng.choice(["default", "gpu", "batch"]),
                phase=phase,
                reason=rng.choice([None, None, "BackoffLimitExceeded", "DeadlineExceeded", ""])
                if phase == "Failed"
                else None,
                created=T0 + rng.choice([0, 60, 3600, 7200]) + rng.randrange(0, 5) * 600,
                wait=rng.choice([None, 0.0, 3.0, 40.0]) if phase != "Pending" else None,
                duration=float(rng.choice([1, 2, 2, 5, 30, 300, 3600])) if has_duration else None,
                labels={
                    k: v
                    for k, v in (("app", rng.choice(["web", "api"])), ("tier", rng.choice(["a", "b"])))
                    if rng.random() > 0.3
                },
                rv=1000 + i,
                attempt=rng.randint(1, 3),
            )
        )
    return out
