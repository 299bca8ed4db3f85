"""Chaos: many tasks with planned outcomes while the operator is SIGKILLed and the API misbehaves.

docs/design.md §3.6 in one test. ``ASYNCTASK_CHAOS_TASKS`` tasks (default below) get a plan each,
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

A third of the tasks also have a signed ``spec.callback`` to a receiver the test runs (its
own HTTP server: kmock's faults never touch it), which answers about one delivery in five
with a 503 and a few late; a fifth of those also select Running events. At the end each of
them has its terminal event (``<uid>.<phase>.<attempt>``) Delivered in ``status.callback``,
the receiver answered 200 to that webhook-id at least once, every delivery verifies
(Standard Webhooks signature) and is about an event that happened (to a task with a
callback, in the phase its id says), a Delivered record never went back, and no event was
delivered again more than LATE_SECONDS after its record said Delivered (and stayed so).
Duplicates are allowed (delivery is at least once: a crash between a delivery and the
status write that records it sends it again) and printed.

The emulator is the benchmarks' (``asynctask_operator/testing/emulator.py``): kmock made like a real API
server where the test depends on it (every write gets a new resourceVersion and a write of
the operator's that names a stale one is refused with 409, the optimistic concurrency an
operator relies on; a watch sees every event after its listing, or after the resourceVersion
it resumes from; a finished request is dropped from kmock's request history, which would make
a long test quadratic). :class:`ChaosEmulator` adds only the faults and a ledger of what the
checks need.

Two tasks in three also have a concurrency key (``spec.concurrency``, a mutex), ten keys in all, so the
mutex is held under the same crashes and faults: from the Jobs' own lifetimes as the emulator stored them
(created; completed, failed or deleted), **no two Jobs of one key were ever alive at once**, while every
task still ends as its plan says (0 lost, 0 duplicates).

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

import aiohttp.web
import kmock
import pytest
from standardwebhooks import Webhook

from asynctask_operator.core.naming import job_name
from asynctask_operator.testing.cluster import AT, JOBS, NS, Cluster
from asynctask_operator.testing.emulator import ApiServerEmulator, Key
from asynctask_operator.testing.hits import from_operator
from asynctask_operator.testing.operators import Operator
from tests.integration.test_callbacks import WHSEC, Delivery, create_secret, serving

TASKS = int(os.environ.get("ASYNCTASK_CHAOS_TASKS", "300"))
SEED = int(os.environ.get("ASYNCTASK_CHAOS_SEED", "20250301"))
FAULT_RATE = 0.05  # of the operator's API requests (watch streams excepted)
SLOW_RATE = 0.03  # answered late (but well within the client's timeout)
RESTARTS = (4, 6)  # SIGKILL + restart this many times (inclusive range)
CONVERGE_SECONDS = 90.0
RESYNC = os.environ.get("ASYNCTASK_CHAOS_RESYNC", "4")  # seconds: resyncs race with the workers too
TASK_API = "/apis/asynctask.dev/v1alpha1"
CALLBACK_SHARE = 1 / 3  # of the tasks: a callback to the test's receiver, signed
ALL_EVENTS_SHARE = 0.2  # of those: Running events too, not only the terminal one
ALL_EVENTS = ["Running", "Succeeded", "Failed", "Cancelled"]
TERMINAL_STATES = ("Delivered", "Failed", "Refused")
RECEIVER_503_RATE = 0.2  # of the deliveries the receiver gets
RECEIVER_503_MAX = 2  # per webhook-id: the operator's 6 deliveries per event are never used up
RECEIVER_SLOW_RATE = 0.05  # answered 200 after 0.3-2 s (the operator's delivery timeout is 10 s)
LATE_SECONDS = 5.0  # a delivery this long after its event was recorded Delivered (and stayed so) is a bug
CALLBACK_ARGS = ("--callback-allowed-host", "127.0.0.1", "--callback-backoff-seconds", "1")
KEYS = 10  # concurrency keys (mutexes) shared by two tasks in three

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


class ChaosEmulator(ApiServerEmulator):
    """The shared emulator (its resourceVersions, 409s, watches, request log) plus injected faults and
    a ledger of what the checks need: the operator's Job POSTs, the Jobs stored, callback states."""

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
        self.job_lives: dict[str, list[float]] = {}  # per Job: [created, ended] (time.monotonic(); ended: inf)
        # Per callback event id: (monotonic time, state) each time a stored task's status.callback changed state.
        self.callback_states: dict[str, list[tuple[float, str]]] = collections.defaultdict(list)
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

    async def _serve(self, request: kmock.Request) -> Any:
        try:
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
            if request.resource == JOBS and request.action == kmock.action.CREATE and from_operator(request):
                self.job_posts[self._name(request)[2]] += 1
            return await super()._serve(request)
        finally:
            self.faults.pop(id(request), None)
            if request.resource == AT and request.action in (kmock.action.CREATE, kmock.action.UPDATE):
                self._note_callback(self._name(request))

    def _stored(self, request: Any, key: Key, before: Any) -> None:
        if request.resource == JOBS and request.action == kmock.action.CREATE and before is None:
            self.job_creations[key[2]] += 1
            self.created_jobs.put_nowait(key[2])
            self.job_lives[key[2]] = [time.monotonic(), float("inf")]
        life = self.job_lives.get(key[2]) if request.resource == JOBS else None
        if life is not None and life[1] == float("inf"):
            after = self.stored(key)
            conditions = ((after or {}).get("status") or {}).get("conditions") or ()
            if after is None or any(c.get("type") in ("Complete", "Failed") for c in conditions):
                life[1] = time.monotonic()  # the Job ended: finished, or deleted

    def _note_callback(self, key: Key) -> None:
        """Keep when the stored status.callback of a task changed state (the written object is what counts)."""
        obj = self.stored(key)
        if obj is None:
            return
        record = (obj.get("status") or {}).get("callback") or {}
        if record.get("id") and record.get("state"):
            states = self.callback_states[record["id"]]
            if not states or states[-1][1] != record["state"]:
                states.append((time.monotonic(), record["state"]))

    def delivered_since(self, msg_id: str, moment: float) -> float | None:
        """Since when the event ``msg_id`` had been recorded Delivered without a change, at ``moment``."""
        current: tuple[float, str] | None = None
        for at, state in self.callback_states.get(msg_id, ()):
            if at > moment:
                break
            current = (at, state)
        return current[0] if current is not None and current[1] == "Delivered" else None


pytestmark = [pytest.mark.chaos, pytest.mark.kmock(cls=ChaosEmulator)]


# --------------------------------------------------------------------------- the callback receiver


@dataclasses.dataclass
class Received(Delivery):
    at: float = 0.0  # time.monotonic() when it arrived
    answer: int = 0

    @property
    def id(self) -> str:
        return self.headers.get("webhook-id", "")


class FlakyReceiver:
    """The tasks' webhook receiver: its own HTTP server (nothing of kmock's fault injection reaches it)
    with its own seeded random. About one delivery in five gets a 503 (at most RECEIVER_503_MAX per
    webhook-id), a few are answered late; every one is kept, with its arrival time and its answer."""

    def __init__(self) -> None:
        self.rng = random.Random(SEED + 4)
        self.deliveries: list[Received] = []
        self.refused: collections.Counter[str] = collections.Counter()
        self.slow = 0
        self.port = 0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def handle(self, request: aiohttp.web.Request) -> aiohttp.web.Response:
        at = time.monotonic()
        body = await request.read()
        got = Received(request.path, {k.lower(): v for k, v in request.headers.items()}, body, at)
        self.deliveries.append(got)
        if self.rng.random() < RECEIVER_503_RATE and self.refused[got.id] < RECEIVER_503_MAX:
            self.refused[got.id] += 1
            got.answer = 503
            return aiohttp.web.Response(status=503, text="receiver busy")
        if self.rng.random() < RECEIVER_SLOW_RATE:
            self.slow += 1
            await asyncio.sleep(self.rng.uniform(0.3, 2.0))
        got.answer = 200
        return aiohttp.web.Response(status=200, text="ok")


@pytest.fixture()
async def receiver() -> AsyncIterator[FlakyReceiver]:
    rx = FlakyReceiver()
    async with serving(rx.handle) as port:
        rx.port = port
        yield rx


def make_callbacks(rng: random.Random, names: list[str], receiver: FlakyReceiver) -> dict[str, dict[str, Any]]:
    """``spec.callback`` of the tasks that get one (a third of them), by task name."""
    chosen: dict[str, dict[str, Any]] = {}
    for name in names:
        if rng.random() >= CALLBACK_SHARE:
            continue
        callback: dict[str, Any] = {
            "url": receiver.url(f"/hook/{name}"),
            "secretRef": {"name": "hook-signing", "key": "secret"},
        }
        if rng.random() < ALL_EVENTS_SHARE:
            callback["events"] = ALL_EVENTS
        chosen[name] = callback
    return chosen


def callback_settled(cluster: Cluster, name: str) -> bool:
    """The task's terminal event is recorded and its delivery has ended (one way or another)."""
    status = cluster.status(name)
    record = status.get("callback") or {}
    return record.get("event") == status.get("phase") and record.get("state") in TERMINAL_STATES


# --------------------------------------------------------------------------- the test


class Chaos:
    def __init__(self, kubeconfig: pathlib.Path, logs: pathlib.Path) -> None:
        self.kubeconfig = kubeconfig
        self.logs = logs
        self.operator: Operator | None = None
        self.starts = 0

    async def start(self) -> None:
        self.starts += 1  # a log file per start: the harness re-reads its log while it waits for the sync
        log = self.logs / f"operator-{self.starts}.log"
        self.operator = Operator(self.kubeconfig, log, "--resync-seconds", RESYNC, *CALLBACK_ARGS)
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


def check_callbacks(
    emulator: ChaosEmulator,
    cluster: Cluster,
    plans: dict[str, Plan],
    callbacks: dict[str, dict[str, Any]],
    receiver: FlakyReceiver,
) -> tuple[list[str], dict[str, int]]:
    """What is wrong with the callbacks at the end, and how many deliveries were duplicates."""
    wrong: list[str] = []
    uids = {cluster.task(name)["metadata"]["uid"]: name for name in callbacks if (AT, NS, name) in emulator.objects}
    by_id: dict[str, list[Received]] = collections.defaultdict(list)
    for got in receiver.deliveries:
        by_id[got.id].append(got)

    for name, callback in callbacks.items():
        if (AT, NS, name) not in emulator.objects:
            continue  # reported lost by check_outcomes
        status, plan = cluster.status(name), plans[name]
        uid, phase, attempt = cluster.task(name)["metadata"]["uid"], status.get("phase") or "", status.get("attempt")
        record = status.get("callback") or {}
        where = f"{name} ({plan.kind}, events {callback.get('events', 'default')})"
        base = f"{uid}.{phase.lower()}.{attempt}"
        msg_id = record.get("id") or ""
        if not (msg_id == base or msg_id.startswith(base + ".")) or record.get("event") != phase:
            wrong.append(f"{where}: status.callback is {record or None}, not the {phase} event {base}")
            continue
        if record.get("state") != "Delivered":
            wrong.append(f"{where}: callback {msg_id} {record.get('state')}: {record}")
        elif record.get("lastError") or record.get("nextAttemptTime"):
            # A merge patch merges nested objects: status_patch must null what the new record lacks,
            # or a Delivered record keeps an earlier delivery's (or event's) lastError/nextAttemptTime.
            wrong.append(f"{where}: a Delivered record with stale fields: {dict(record)}")
        answered = [got for got in by_id.get(msg_id, ()) if got.answer == 200]
        if not answered:
            wrong.append(f"{where}: the receiver never answered 200 to {msg_id} (got {len(by_id.get(msg_id, ()))})")
        for got in answered:
            data = got.event.get("data") or {}
            if (data.get("phase"), data.get("uid"), data.get("name"), got.event.get("id")) != (
                phase,
                uid,
                name,
                msg_id,
            ):
                wrong.append(f"{where}: delivery of {msg_id} says {got.event}")
        states = [state for _, state in emulator.callback_states.get(msg_id, ())]
        if ("Delivered" in states and states[-1] != "Delivered") or states.count("Delivered") > 1:
            wrong.append(f"{where}: status.callback {msg_id} went back from Delivered: {states}")

    duplicates = 0
    for msg_id, sent in by_id.items():
        first = sent[0]
        parts = msg_id.split(".")
        name = uids.get(parts[0], "?")
        planned, callback = plans.get(name), callbacks.get(name) or {}
        events = [e.lower() for e in callback.get("events") or ("Succeeded", "Failed", "Cancelled")]
        happened = planned is not None and len(parts) in (3, 4) and parts[2].isdigit() and parts[1] in events
        if happened and planned is not None:
            terminal = parts[1] == planned.phase.lower() and int(parts[2]) == planned.attempts
            happened = terminal or (parts[1] == "running" and 1 <= int(parts[2]) <= planned.attempts)
        if not happened or first.path != f"/hook/{name}":
            wrong.append(f"webhook-id {msg_id!r} to {first.path} is no event of a task with a callback")
        for delivery in sent:
            try:
                Webhook(WHSEC).verify(delivery.body, delivery.headers)
            except Exception as exc:
                wrong.append(f"delivery of {msg_id} at {delivery.at:.1f}: signature does not verify: {exc!r}")
            if delivery.event.get("id") != msg_id or (delivery.event.get("data") or {}).get("phase", "").lower() != (
                parts[1] if len(parts) > 1 else None
            ):
                wrong.append(f"delivery of {msg_id}: the body is about another event: {delivery.event}")
            since = emulator.delivered_since(msg_id, delivery.at)
            if since is not None and delivery.at - since > LATE_SECONDS:
                wrong.append(
                    f"{msg_id} delivered again {delivery.at - since:.1f}s after status.callback said Delivered"
                    f" (and did not change since): {emulator.callback_states[msg_id]}"
                )
        duplicates += max(sum(1 for d in sent if d.answer == 200) - 1, 0)
    stats = {
        "tasks": len(callbacks),
        "all-events tasks": sum(1 for c in callbacks.values() if "events" in c),
        "event ids": len(by_id),
        "deliveries": len(receiver.deliveries),
        "503s": sum(receiver.refused.values()),
        "slow": receiver.slow,
        "duplicates (200s beyond the first per id)": duplicates,
    }
    return wrong, stats


def task_spec(
    name: str, plans: dict[str, Plan], callbacks: dict[str, dict[str, Any]], keys: dict[str, str]
) -> dict[str, Any]:
    spec: dict[str, Any] = {"type": "echo", "retry": plans[name].retry}
    if name in callbacks:
        spec["callback"] = callbacks[name]
    if name in keys:
        spec["concurrency"] = {"key": keys[name]}
    return spec


def make_keys(names: list[str]) -> dict[str, str]:
    """Two tasks in three get one of the KEYS keys (limit 1)."""
    return {name: f"key-{i % KEYS}" for i, name in enumerate(names) if i % 3}


def check_keys(emulator: ChaosEmulator, keys: dict[str, str]) -> tuple[list[str], dict[str, int]]:
    """Jobs of one key whose lifetimes overlap (from the emulator's clock, not the operator's view)."""
    wrong: list[str] = []
    by_key: dict[str, list[tuple[float, float, str]]] = collections.defaultdict(list)
    for job, (born, ended) in emulator.job_lives.items():
        key = keys.get(job.rpartition("-")[0])
        if key is not None:
            by_key[key].append((born, ended, job))
    for key, lives in sorted(by_key.items()):
        lives.sort()
        for (_, ended, job), (born, _, after) in itertools.pairwise(lives):
            if born < ended:
                wrong.append(f"{key}: Job {after} created {ended - born:.3f}s before Job {job} ended")
    return wrong, {key: len(lives) for key, lives in sorted(by_key.items())}


def dump_history(emulator: ChaosEmulator, path: pathlib.Path) -> None:
    """Every version of every object, for a post-mortem (``ASYNCTASK_CHAOS_DUMP=file.json``)."""
    history = {
        f"{resource.plural}/{name}": [None if v is None else v.raw for v in obj.history]
        for (resource, _, name), obj in emulator.objects.items()
    }
    path.write_text(json.dumps(history, indent=1, default=str))


async def test_chaos(
    cluster: Cluster,
    kmock: ChaosEmulator,
    kubeconfig: pathlib.Path,
    tmp_path: pathlib.Path,
    receiver: FlakyReceiver,
) -> None:
    began = time.monotonic()
    rng = random.Random(SEED)
    plans = make_plans(rng, TASKS)
    restarts = rng.randint(*RESTARTS)
    callbacks = make_callbacks(random.Random(SEED + 3), list(plans), receiver)
    keys = make_keys(list(plans))
    problems: list[str] = []
    chaos = Chaos(kubeconfig, tmp_path)

    await create_secret(kmock, "hook-signing", {"secret": WHSEC})
    await cluster.create_tasktype("echo")
    await chaos.start()
    kmock.faults_on = True
    driver = asyncio.create_task(drive_jobs(kmock, cluster, plans, problems))
    try:
        names = list(plans)
        for start in range(0, len(names), 25):  # submitted in bursts, while the operator runs and crashes
            burst = names[start : start + 25]
            await asyncio.gather(*(cluster.create_task(n, task_spec(n, plans, callbacks, keys)) for n in burst))
            await asyncio.sleep(0.05)
        for _ in range(restarts):
            await asyncio.sleep(rng.uniform(0.5, 4.0))
            await chaos.crash()
            await asyncio.sleep(rng.uniform(0.0, 1.0))  # the cluster goes on meanwhile
            await chaos.start()

        deadline = time.monotonic() + CONVERGE_SECONDS
        while True:
            waiting = [n for n in names if cluster.phase(n) not in ("Succeeded", "Failed", "Cancelled")]
            waiting += [n for n in callbacks if not callback_settled(cluster, n)]
            if not waiting and kmock.created_jobs.empty():
                break
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        # And through a resync: nothing more may happen to them (and a delivery of an event already
        # Delivered would come more than LATE_SECONDS after it).
        await asyncio.sleep(max(float(RESYNC), LATE_SECONDS) + 1.5)
        wrong = problems + check_outcomes(kmock, cluster, plans)
        callback_wrong, callback_stats = check_callbacks(kmock, cluster, plans, callbacks, receiver)
        wrong += callback_wrong
        key_wrong, jobs_per_key = check_keys(kmock, keys)
        wrong += key_wrong
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
    print(f"chaos callbacks: {callback_stats}")
    print(f"chaos keys: {len(keys)} tasks over {KEYS} keys, Jobs per key {jobs_per_key}")
    if wrong:
        print(chaos.log_tail())
        if os.environ.get("ASYNCTASK_CHAOS_DUMP"):
            dump_history(kmock, pathlib.Path(os.environ["ASYNCTASK_CHAOS_DUMP"]))
    assert not wrong, f"{len(wrong)} problems:\n" + "\n".join(wrong[:40])
