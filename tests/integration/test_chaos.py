"""Chaos: many tasks with planned outcomes while the operator is SIGKILLed and the API misbehaves.

SPEC 3.6 in one test. ``ASYNCTASK_CHAOS_TASKS`` tasks (default below) get a plan each,
drawn from a seeded random: succeed; fail once then succeed; fail with no retries left;
exit with a non-retryable code; fail until retries are exhausted; be cancelled while
running. A cluster driver plays the Job controller and the kubelet (each Job the operator
creates ends as its task's plan says, after a short random delay, or its task is
cancelled). Meanwhile the operator is killed (SIGKILL) and restarted several times at
random moments, and about 5 % of its API requests fail: 500, 503, 429 (with
Retry-After) and 409, half of them *after* the write was committed (kmock stores the
object, then the reaction answers the error: the "timed out after commit" case), plus
dropped connections (no answer at all: what a client sees of a request timeout; a real
timeout is not injected, as the operator has no setting to shorten its 30 s client
timeout) and slow answers. At the end every task must be in the phase its plan says, with its attempts
numbered 1..n without gaps, one Job per attempt, and no Job ever created twice.

The emulator here is kmock's, made a little more like a real API server where the test
depends on it: every write gets a new resourceVersion and a status write that names a
stale one is refused with 409 (the optimistic concurrency an operator relies on), a
watch sees every event after its initial listing (kmock's own can miss the events that
happen while it sends the listing), and a finished request is dropped from kmock's
request history (kmock matches every reaction against the whole history, which makes a
long test quadratic); the requests the checks need are recorded in a ledger instead.

Run it alone with ``pytest -m chaos``; leave it out with ``-m "not chaos"``. Reproduce a
run with ``ASYNCTASK_CHAOS_SEED``.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import itertools
import json
import os
import pathlib
import random
import time
from collections.abc import AsyncIterator
from typing import Any

import kmock
import pytest

from asynctask_operator.core.naming import job_name
from tests.integration.harness import AT, JOBS, NS, Cluster, Operator

TASKS = int(os.environ.get("ASYNCTASK_CHAOS_TASKS", "300"))
SEED = int(os.environ.get("ASYNCTASK_CHAOS_SEED", "20250301"))
FAULT_RATE = 0.05  # of the operator's API requests (watch streams excepted)
SLOW_RATE = 0.03  # answered late (but well within the client's timeout)
RESTARTS = (4, 6)  # SIGKILL + restart this many times (inclusive range)
CONVERGE_SECONDS = 90.0
RESYNC = os.environ.get("ASYNCTASK_CHAOS_RESYNC", "4")  # seconds: resyncs race with the workers too
TASK_API = "/apis/asynctask.dev/v1alpha1"

FAST = {"backoff": "Fixed", "baseSeconds": 1, "jitter": False}

# --------------------------------------------------------------------------- the plans


@dataclasses.dataclass(frozen=True)
class Plan:
    kind: str
    retry: dict[str, Any]
    exits: tuple[int | None, ...]  # per attempt: the exit code its Job ends with; None: cancel the task
    phase: str
    reason: str

    @property
    def attempts(self) -> int:
        return len(self.exits)

    @property
    def outcomes(self) -> list[str]:
        return ["Cancelled" if code is None else "Succeeded" if code == 0 else "Failed" for code in self.exits]


KINDS: list[tuple[Plan, int]] = [  # (plan, weight)
    (Plan("succeeds", {**FAST, "maxRetries": 1}, (0,), "Succeeded", "Completed"), 35),
    (Plan("fails-then-succeeds", {**FAST, "maxRetries": 1}, (1, 0), "Succeeded", "Completed"), 20),
    (Plan("fails-no-retries", {"maxRetries": 0}, (1,), "Failed", "PodFailed"), 10),
    (
        Plan(
            "non-retryable",
            {**FAST, "maxRetries": 2, "nonRetryableExitCodes": [3]},
            (3,),
            "Failed",
            "NonRetryableExitCode",
        ),
        10,
    ),
    (Plan("retries-exhausted", {**FAST, "maxRetries": 1}, (1, 1), "Failed", "RetriesExhausted"), 10),
    (Plan("cancelled", {**FAST, "maxRetries": 1}, (None,), "Cancelled", "Cancelled"), 15),
]


def make_plans(rng: random.Random, count: int) -> dict[str, Plan]:
    plans, weights = zip(*KINDS, strict=True)
    return {f"chaos-{i:04d}": rng.choices(plans, weights)[0] for i in range(count)}


# --------------------------------------------------------------------------- the API server


@dataclasses.dataclass(frozen=True)
class Fault:
    status: int  # 0: drop the connection without an answer
    committed: bool  # the write is stored before the error is answered
    delay: float = 0.0


ERRORS = (500, 503, 429, 409, 0)


class ChaosEmulator(kmock.KubernetesEmulator):
    """kmock's emulator with resourceVersions, gap-free watches, a ledger, and injected faults."""

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self.rng = random.Random(SEED + 1)
        self.faults_on = False
        self.faults: dict[int, Fault] = {}  # by id() of the request in flight
        self.injected: collections.Counter[str] = collections.Counter()
        self.requests: collections.Counter[str] = collections.Counter()  # the operator's, by method
        self.job_posts: collections.Counter[str] = collections.Counter()  # the operator's POSTs, per Job name
        self.job_creations: collections.Counter[str] = collections.Counter()  # POSTs that stored a new Job
        self.created_jobs: asyncio.Queue[str] = asyncio.Queue()
        self.conflicts = 0  # status writes refused for a stale resourceVersion
        self._rvs = itertools.count(10**6)
        self._writes = asyncio.Lock()
        # After-commit faults are kmock reactions: the emulator stores the write, then the reaction answers.
        for status in (500, 503, 409):
            self[self._picked(status, committed=True)] << status
        self[self._picked(429, committed=True)] << 429 << {"Retry-After": "1"}
        self[self._picked(0, committed=True)] << self._drop

    def _picked(self, status: int, committed: bool) -> Any:
        def criterion(request: kmock.Request) -> bool:
            fault = self.faults.get(id(request))
            return fault is not None and fault.status == status and fault.committed == committed

        return criterion

    @staticmethod
    def _drop(request: kmock.Request) -> bytes:
        raw = request._raw_request
        if raw is not None and raw.transport is not None:
            raw.transport.abort()
        return b""

    def _draw(self, request: kmock.Request) -> Fault | None:
        if not self.faults_on or request.resource is None or request.action == kmock.action.WATCH:
            return None
        if not request.headers.get("User-Agent", "").startswith("asynctask-operator"):
            return None
        self.requests[request.method.value.upper()] += 1
        roll = self.rng.random()
        delay = self.rng.uniform(0.1, 1.0) if self.rng.random() < SLOW_RATE else 0.0
        if roll >= FAULT_RATE:
            return Fault(200, True, delay) if delay else None
        write = request.action in (kmock.action.CREATE, kmock.action.UPDATE, kmock.action.DELETE)
        status = self.rng.choice(ERRORS if write else (500, 503, 429, 0))  # a read never meets a 409
        committed = write and (self.rng.random() < 0.5 or (status == 409 and request.action == kmock.action.CREATE))
        return Fault(status, committed, delay)  # (a create meets a 409 only when the object exists: AlreadyExists)

    async def _handle(self, request: kmock.Request) -> Any:
        try:
            return await self._handle_chaos(request)
        finally:
            self.faults.pop(id(request), None)
            try:
                self._requests.remove(request)
            except ValueError:
                pass

    async def _handle_chaos(self, request: kmock.Request) -> Any:
        fault = self._draw(request)
        if fault is not None:
            if fault.delay:
                await asyncio.sleep(fault.delay)
            if fault.status != 200:
                self.injected[f"{fault.status or 'drop'}{' after commit' if fault.committed else ''}"] += 1
            if fault.status != 200 and not fault.committed:
                if fault.status == 0:
                    self._drop(request)
                raise kmock.KubernetesError(status=fault.status or 500, reason="Injected", message="chaos")
            self.faults[id(request)] = fault
        if request.resource is None or request.action not in (kmock.action.CREATE, kmock.action.UPDATE):
            return await super()._handle(request)
        async with self._writes:  # check the resourceVersion and store as one step
            key = self._key(request)
            current = self.objects[key] if key in self.objects and not self.objects[key].deleted else None
            data = request.data if isinstance(request.data, dict) else {}
            meta = data.setdefault("metadata", {})
            ours = request.headers.get("User-Agent", "").startswith("asynctask-operator")
            precondition = meta.get("resourceVersion") if request.action == kmock.action.UPDATE and ours else None
            if precondition and current is not None and precondition != current["metadata"].get("resourceVersion"):
                self.conflicts += 1
                raise kmock.KubernetesError(
                    status=409,
                    reason="Conflict",
                    message="the object has been modified; please apply your changes to the latest version",
                )
            meta["resourceVersion"] = str(next(self._rvs))
            is_job = request.resource == JOBS and request.action == kmock.action.CREATE
            if is_job and ours:
                self.job_posts[key[2]] += 1
            created = is_job and current is None
            response = await super()._handle(request)
            if created:
                self.job_creations[key[2]] += 1
                self.created_jobs.put_nowait(key[2])
            return response

    @staticmethod
    def _key(request: kmock.Request) -> tuple[Any, str | None, str]:
        meta = (request.data or {}).get("metadata", {}) if isinstance(request.data, dict) else {}
        return (request.resource, request.namespace or meta.get("namespace"), request.name or meta.get("name"))

    async def _serve_watch(self, request: kmock.Request) -> AsyncIterator[Any]:
        """kmock's watch, but its place on the event bus is taken with the listing, not after sending it."""
        yield b""
        assert request.resource is not None
        bus = self._buses[request.resource]
        check = self._KubernetesEmulator__check  # type: ignore[attr-defined]
        async with self._lock:
            marker = await bus.mark()
            listing = [
                {"type": "ADDED", "object": obj.raw}
                for (resource, ns, name), obj in self.objects.items()
                if not obj.deleted and check(request, resource, ns, name, strict=False)
            ]
        try:
            for event in listing:
                yield event
            async for event in bus.stream(since=marker):
                meta = (event.get("object") or {}).get("metadata") or {}
                if check(request, request.resource, meta.get("namespace"), meta.get("name"), strict=False):
                    yield event
        finally:
            await bus.unmark(marker)


pytestmark = [pytest.mark.chaos, pytest.mark.kmock(cls=ChaosEmulator)]


# --------------------------------------------------------------------------- the test


class Chaos:
    def __init__(self, kubeconfig: pathlib.Path, logs: pathlib.Path) -> None:
        self.kubeconfig = kubeconfig
        self.logs = logs
        self.operator: Operator | None = None
        self.starts = 0

    async def start(self) -> None:
        self.starts += 1  # a log file per start: the harness re-reads its log while it waits for the sync
        self.operator = Operator(self.kubeconfig, self.logs / f"operator-{self.starts}.log", "--resync-seconds", RESYNC)
        await self.operator.start(timeout=60)

    async def crash(self) -> None:
        assert self.operator is not None and self.operator.proc is not None
        self.operator.kill()
        await self.operator.proc.wait()

    def log_tail(self, chars: int = 15000) -> str:
        return self.operator.log()[-chars:] if self.operator else ""


async def drive_jobs(emulator: ChaosEmulator, cluster: Cluster, plans: dict[str, Plan], problems: list[str]) -> None:
    """The Job controller and the kubelet: end each new Job as its task's plan says, a little later."""
    rng = random.Random(SEED + 2)
    running: set[asyncio.Task[None]] = set()

    async def finish(job: str, delay: float) -> None:
        await asyncio.sleep(delay)
        task, _, attempt_text = job.rpartition("-")
        plan, attempt = plans.get(task), int(attempt_text)
        if plan is None or attempt > plan.attempts:
            problems.append(f"unexpected Job {job}")
            return
        code = plan.exits[attempt - 1]
        try:
            if code is None:
                await cluster.patch(TASK_API, f"asynctasks/{task}", {"spec": {"cancel": True}})
            elif code == 0:
                await cluster.job_succeeds(job)
            else:
                await cluster.job_fails(job, exit_code=code)
        except Exception as exc:  # a Job gone under the driver is a finding, not a crash of the test
            problems.append(f"driver could not end Job {job}: {exc!r}")

    try:
        while True:
            job = await emulator.created_jobs.get()
            t = asyncio.create_task(finish(job, rng.uniform(0.05, 0.8)))
            running.add(t)
            t.add_done_callback(running.discard)
    finally:
        for t in running:
            t.cancel()


def check_outcomes(emulator: ChaosEmulator, cluster: Cluster, plans: dict[str, Plan]) -> list[str]:
    """Everything that is wrong at the end (empty when all is well)."""
    wrong: list[str] = []
    jobs_of: dict[str, set[str]] = collections.defaultdict(set)
    for resource, _, name in emulator.objects:
        if resource == JOBS:
            jobs_of[name.rpartition("-")[0]].add(name)
    for name, plan in plans.items():
        if (AT, NS, name) not in emulator.objects or emulator.objects[AT, NS, name].deleted:
            wrong.append(f"{name}: lost")
            continue
        status = cluster.status(name)
        where = f"{name} ({plan.kind})"
        if (status.get("phase"), status.get("reason")) != (plan.phase, plan.reason):
            wrong.append(f"{where}: {status.get('phase')}/{status.get('reason')}, planned {plan.phase}/{plan.reason}")
            continue
        attempts = status.get("attempts") or []
        numbers = [a.get("attempt") for a in attempts]
        if numbers != list(range(1, plan.attempts + 1)) or status.get("attempt") != plan.attempts:
            wrong.append(f"{where}: attempts {numbers} (attempt {status.get('attempt')}), planned {plan.attempts}")
        if [a.get("outcome") for a in attempts] != plan.outcomes:
            wrong.append(f"{where}: outcomes {[a.get('outcome') for a in attempts]}, planned {plan.outcomes}")
        expected_jobs = {job_name(name, n) for n in range(1, plan.attempts + 1)}
        if [a.get("job") for a in attempts] != sorted(expected_jobs, key=lambda j: int(j.rpartition("-")[2])):
            wrong.append(f"{where}: attempts name Jobs {[a.get('job') for a in attempts]}")
        if jobs_of[name] != expected_jobs:
            wrong.append(f"{where}: Jobs {sorted(jobs_of[name])}, planned {sorted(expected_jobs)}")
        for job in sorted(jobs_of[name]):
            if emulator.job_creations[job] != 1:
                wrong.append(f"{where}: Job {job} created {emulator.job_creations[job]} times")
            if emulator.job_posts[job] < 1:
                wrong.append(f"{where}: Job {job} exists but the operator never POSTed it")
            obj = emulator.objects[JOBS, NS, job]
            finished = not obj.deleted and any(
                c.get("type") in ("Complete", "Failed") for c in (obj.get("status") or {}).get("conditions") or ()
            )
            if plan.phase == "Cancelled" and not obj.deleted:
                wrong.append(f"{where}: Job {job} of a cancelled task was not deleted")
            elif plan.phase != "Cancelled" and obj.deleted:
                wrong.append(f"{where}: Job {job} was deleted (its pods and logs with it)")
            elif plan.phase != "Cancelled" and not finished:
                wrong.append(f"{where}: Job {job} never finished")
    return wrong


def dump_history(emulator: ChaosEmulator, path: pathlib.Path) -> None:
    """Every version of every object, for a post-mortem (``ASYNCTASK_CHAOS_DUMP=file.json``)."""
    history = {
        f"{resource.plural}/{name}": [None if v is None else v.raw for v in obj.history]
        for (resource, _, name), obj in emulator.objects.items()
    }
    path.write_text(json.dumps(history, indent=1, default=str))


async def test_chaos(cluster: Cluster, kmock: ChaosEmulator, kubeconfig: pathlib.Path, tmp_path: pathlib.Path) -> None:
    began = time.monotonic()
    rng = random.Random(SEED)
    plans = make_plans(rng, TASKS)
    restarts = rng.randint(*RESTARTS)
    problems: list[str] = []
    chaos = Chaos(kubeconfig, tmp_path)

    await cluster.create_tasktype("echo")
    await chaos.start()
    kmock.faults_on = True
    driver = asyncio.create_task(drive_jobs(kmock, cluster, plans, problems))
    try:
        names = list(plans)
        for start in range(0, len(names), 25):  # submitted in bursts, while the operator runs and crashes
            await asyncio.gather(
                *(cluster.create_task(n, {"type": "echo", "retry": plans[n].retry}) for n in names[start : start + 25])
            )
            await asyncio.sleep(0.05)
        for _ in range(restarts):
            await asyncio.sleep(rng.uniform(0.5, 4.0))
            await chaos.crash()
            await asyncio.sleep(rng.uniform(0.0, 1.0))  # the cluster goes on meanwhile
            await chaos.start()

        deadline = time.monotonic() + CONVERGE_SECONDS
        while True:
            waiting = [n for n in names if cluster.phase(n) not in ("Succeeded", "Failed", "Cancelled")]
            if not waiting and kmock.created_jobs.empty():
                break
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        await asyncio.sleep(float(RESYNC) + 0.5)  # and through a resync: nothing more may happen to them
        wrong = problems + check_outcomes(kmock, cluster, plans)
    finally:
        kmock.faults_on = False
        driver.cancel()
        await asyncio.gather(driver, return_exceptions=True)
        if chaos.operator is not None:
            await chaos.operator.stop()

    kinds = collections.Counter(p.kind for p in plans.values())
    print(
        f"chaos: {TASKS} tasks {dict(kinds)}, seed {SEED}, {restarts} SIGKILL+restarts, "
        f"faults injected {dict(kmock.injected)} ({sum(kmock.injected.values())}), "
        f"stale-resourceVersion 409s {kmock.conflicts}, Job POSTs {sum(kmock.job_posts.values())} "
        f"for {len(kmock.job_creations)} Jobs, operator requests {dict(kmock.requests)}, "
        f"{time.monotonic() - began:.1f}s"
    )
    if wrong:
        print(chaos.log_tail())
        if os.environ.get("ASYNCTASK_CHAOS_DUMP"):
            dump_history(kmock, pathlib.Path(os.environ["ASYNCTASK_CHAOS_DUMP"]))
    assert not wrong, f"{len(wrong)} problems:\n" + "\n".join(wrong[:40])
