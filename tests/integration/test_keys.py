"""Concurrency keys and fair admission through the real operator against kmock's emulator.

- CancelInProgress under a burst of 50 submissions of one key: every older task ends Cancelled
  (Superseded), exactly one Succeeded — the last — and no two of the key's Jobs ever lived at once,
  read from the Jobs' own creation and end (completion or deletion) as the emulator stored them.
- Fairness: tenant a has 1,000 tasks waiting when tenant b submits 10: b's are admitted every other
  admission (the 10th within the next 20), not after a's backlog; and the positions a front door
  computes from the objects (core.queueing.queue_positions) predicted that very order.

The emulator runs no controllers: the test plays the Job controller, completing each Job it lets run.
(The mutex under SIGKILLs is in the chaos test, tests/integration/test_chaos.py: its tasks have keys.)
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from typing import Any

import attrs
import pytest

from asynctask_operator.core.queueing import queue_positions
from asynctask_operator.core.wire import waiting_in
from asynctask_operator.testing.cluster import JOBS, NS, Cluster
from asynctask_operator.testing.emulator import ApiServerEmulator, Key
from asynctask_operator.testing.operators import Operator, eventually

TASK_API = "/apis/asynctask.dev/v1alpha1"
A_TASKS = int(os.environ.get("ASYNCTASK_FAIRNESS_TASKS", "1000"))


@attrs.define(kw_only=True)
class JobTimes(ApiServerEmulator):
    """The emulator, noting when each Job was created and when it ended (its Complete or Failed condition
    stored, or the Job deleted): the Jobs' own lifetimes, whatever the operator believes."""

    forget: bool = True  # thousands of requests: kmock's history would make each one slower
    created: dict[str, float] = attrs.field(factory=dict, init=False)
    ended: dict[str, float] = attrs.field(factory=dict, init=False)
    order: list[str] = attrs.field(factory=list, init=False)  # Jobs in the order they were created

    def _stored(self, request: Any, key: Key, before: Any) -> None:
        if key[0] != JOBS:
            return
        name, now, after = key[2], time.monotonic(), self.stored(key)
        if before is None and after is not None:
            self.created[name] = now
            self.order.append(name)
        conditions = ((after or {}).get("status") or {}).get("conditions") or ()
        finished = any(c.get("type") in ("Complete", "Failed") and c.get("status") == "True" for c in conditions)
        if (after is None or finished) and name not in self.ended:
            self.ended[name] = now


def overlaps(emulator: JobTimes, jobs: list[str]) -> list[str]:
    """Pairs of these Jobs whose lifetimes overlap (a Job not ended yet lives until now)."""
    spans = sorted((emulator.created[j], emulator.ended.get(j, float("inf")), j) for j in jobs)
    return [f"{a} and {b}" for (_, end_a, a), (start_b, _, b) in itertools.pairwise(spans) if start_b < end_a]


@pytest.mark.kmock(cls=JobTimes)
async def test_cancel_in_progress_under_a_burst_leaves_the_last_one_succeeded(
    cluster: Cluster, operator: Operator, kmock: JobTimes
) -> None:
    await cluster.create_tasktype("echo")
    names = [f"burst-{i:02d}" for i in range(50)]
    spec = {"type": "echo", "concurrency": {"key": "deploy-prod", "policy": "CancelInProgress"}}
    for name in names:  # as fast as a client can, one after the other
        await cluster.create_task(name, spec)
    # Every older task is superseded, whether it was running, waiting, or not yet looked at.
    await eventually(
        lambda: all(cluster.phase(n) == "Cancelled" for n in names[:-1]) and cluster.phase(names[-1]) == "Running",
        timeout=60,
        what="49 Cancelled and the last Running",
    )
    await cluster.job_succeeds(f"{names[-1]}-1")
    await eventually(lambda: cluster.phase(names[-1]) == "Succeeded", what="the last Succeeded")
    assert [n for n in names if cluster.phase(n) == "Succeeded"] == [names[-1]]
    for name in names[:-1]:
        status = cluster.status(name)
        assert status["reason"] == "Superseded", status
        assert status["message"].startswith("superseded by the newer task burst-"), status["message"]
    jobs = list(kmock.created)
    assert all(kmock.stored((JOBS, NS, j)) is None for j in jobs if j != f"{names[-1]}-1")  # all deleted
    assert not overlaps(kmock, jobs), f"two Jobs of one key alive at once: {overlaps(kmock, jobs)}"


@pytest.mark.kmock(cls=JobTimes)
async def test_a_tenant_with_ten_tasks_is_not_held_behind_anothers_thousand(
    cluster: Cluster, operator: Operator, kmock: JobTimes
) -> None:
    await cluster.create_tasktype("echo")
    # A queue of one: one admission at a time, so the Jobs are created in the order of admission (two
    # admitted together are reconciled side by side and may create their Jobs in either order).
    await cluster.create_queue("shared", {"concurrency": 1, "fairness": {"by": "Label", "label": "tenant"}})
    a = [f"a-{i:04d}" for i in range(A_TASKS)]
    b = [f"b-{i:02d}" for i in range(10)]

    async def submit(names: list[str], tenant: str) -> None:
        spec = {"type": "echo", "queue": "shared"}
        for start in range(0, len(names), 50):
            await asyncio.gather(
                *(cluster.create_task(n, spec, labels={"tenant": tenant}) for n in names[start : start + 50])
            )

    await submit(a, "a")
    await eventually(lambda: len(kmock.order) == 1, timeout=30, what="one of a's admitted")
    await submit(b, "b")
    await eventually(
        lambda: all((cluster.status(n).get("fairness") or {}).get("group") == "b" for n in b),
        timeout=60,
        what="b's tasks waiting in their group",
    )
    await eventually(
        lambda: sum(cluster.status(n).get("reason") == "Queued" for n in a) == len(a) - 1,
        timeout=60,
        what="a's backlog queued",
    )
    # What a front door shows now, from the objects alone.
    tasks = [cluster.task(n) for n in a + b]
    positions = queue_positions([w for w in map(waiting_in, tasks) if w is not None], {"shared": 1})
    predicted = [name for (_, name), _ in sorted(positions.items(), key=lambda kv: kv[1])]
    # Let the Jobs run: each completes as soon as it is created, the running one first.
    before = list(kmock.order)
    for job in before:
        await cluster.job_succeeds(job)
    admitted: list[str] = []
    while len(admitted) < 22:
        await eventually(lambda: len(kmock.order) > len(before) + len(admitted), timeout=30, what="the next admission")
        job = kmock.order[len(before) + len(admitted)]
        admitted.append(job.rsplit("-", 1)[0])
        await cluster.job_succeeds(job)
    places = [i for i, name in enumerate(admitted, 1) if name.startswith("b-")]
    assert places == list(range(1, 21, 2)), admitted  # b's 10 at every other admission: the last the 19th
    assert admitted == predicted[:22], "the positions computed from the objects are the order the operator admits in"
