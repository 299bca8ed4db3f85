"""Finished AsyncTasks as the operator leaves them, with a realistic spread, for the archive's benchmark.

Twenty namespaces of uneven size (the largest holds ~19 % of the tasks), ten types, five queues;
85 % Succeeded, 10 % Failed (four reasons), 5 % Cancelled; created over 90 days; queue waits and
durations drawn from exponential and log-normal distributions; labels ``app`` (50 values),
``tier`` (backend 50 %, frontend, batch) and ``team``; one to three attempts; each object the
status the operator writes (attempts, conditions, effective spec, a small result), ~2 KB of JSON.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from collections.abc import Iterator
from typing import Any

DAY = 86400.0
NAMESPACES = [f"team-{i:02d}" for i in range(20)]
NAMESPACE_WEIGHTS = [1 / (i + 1) ** 0.9 for i in range(20)]  # Zipf-like: a few big teams, a long tail
TYPES = ["transcode", "thumbnail", "report", "export", "import", "index", "backup", "email", "ml-train", "etl"]
QUEUES = ["default", "gpu", "batch", "interactive", "bulk"]
FAILURES = ["PodFailed", "RetriesExhausted", "DeadlineExceeded", "OOMKilled"]
TIERS = ["backend", "backend", "frontend", "batch"]


def stamp(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def finished_task(i: int, rng: random.Random, now: float, *, prefix: str = "t") -> dict[str, Any]:
    namespace = rng.choices(NAMESPACES, NAMESPACE_WEIGHTS)[0]
    kind = rng.choice(TYPES)
    queue = rng.choice(QUEUES)
    roll = rng.random()
    phase = "Succeeded" if roll < 0.85 else "Failed" if roll < 0.95 else "Cancelled"
    reason = {"Succeeded": "Completed", "Cancelled": "Cancelled"}.get(phase) or rng.choice(FAILURES)
    created = now - rng.uniform(0, 90 * DAY)
    wait = rng.expovariate(1 / 20)
    duration = round(min(math.exp(rng.gauss(3.0, 1.2)), 6 * 3600), 3)
    attempts = 1 if phase != "Failed" else rng.randint(1, 3)
    started = created + wait
    done = started + duration
    name = f"{prefix}-{i:07d}"
    uid = f"{i:08x}-0000-4000-8000-{rng.getrandbits(48):012x}"
    records = []
    for n in range(1, attempts + 1):
        outcome = phase if n == attempts else "Failed"
        records.append({"attempt": n, "job": f"{name}-{n}", "startTime": stamp(started), "finishTime": stamp(done),
                        "outcome": outcome, "exitCode": 0 if outcome == "Succeeded" else 1,
                        "reason": "Completed" if outcome == "Succeeded" else "PodFailed",
                        "message": "the Job completed" if outcome == "Succeeded" else "container main exited with code 1"})  # fmt: skip
    conditions = [
        {"type": kind_, "status": status, "reason": reason, "message": f"attempt {attempts} ended",
         "lastTransitionTime": stamp(done), "observedGeneration": 1}
        for kind_, status in (("Admitted", "True"), ("Running", "False"),
                              ("Succeeded", str(phase == "Succeeded")), ("Failed", str(phase == "Failed")))
    ]  # fmt: skip
    status: dict[str, Any] = {
        "phase": phase, "reason": reason, "message": f"attempt {attempts} ended: {reason}", "attempt": attempts,
        "attempts": records, "queuedTime": stamp(created), "startTime": stamp(started),
        "completionTime": stamp(done), "durationSeconds": duration,
        "effective": {"queue": queue, "priority": 0, "ttlSecondsAfterFinished": 604800,
                      "retry": {"maxRetries": 2, "backoff": "Exponential", "baseSeconds": 10, "maxSeconds": 600}},
        "round": {"firstAttempt": 1}, "observedGeneration": 1, "conditions": conditions,
    }  # fmt: skip
    if phase == "Succeeded":
        status["result"] = {"output": f"s3://results/{namespace}/{name}.json", "items": rng.randint(1, 10_000)}
    else:
        status["error"] = {"code": reason, "message": f"attempt {attempts} ended: {reason}"}
    return {
        "apiVersion": "asynctask.dev/v1alpha1",
        "kind": "AsyncTask",
        "metadata": {
            "name": name, "namespace": namespace, "uid": uid, "resourceVersion": str(1_000_000 + i),
            "generation": 1, "creationTimestamp": stamp(created),
            "labels": {"app": f"app-{rng.randrange(50):02d}", "tier": rng.choice(TIERS), "team": namespace},
            "annotations": {"asynctask.dev/submitted-by": f"system:serviceaccount:{namespace}:submitter"},
        },
        "spec": {"type": kind, "queue": queue, "payload": {"input": f"s3://inputs/{name}", "size": rng.randint(1, 10**9)}},
        "status": status,
    }  # fmt: skip


def tasks(n: int, now: float, *, seed: int = 20260301, start: int = 0, prefix: str = "t") -> Iterator[dict[str, Any]]:
    rng = random.Random(seed + start)
    for i in range(start, start + n):
        yield finished_task(i, rng, now, prefix=prefix)
