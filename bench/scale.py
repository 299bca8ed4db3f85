"""N AsyncTasks present, mostly finished: sync, memory, restart, duplicates, CPU per task.

    python -m bench.scale [--n 10000] [--running 0.02] [--burst 500] [--burst-rate 50] [--bursts 3]
                          [--idle 10] [--json PATH]

1. Templates: the operator runs one task to Succeeded and leaves one Running (with a
   running pod), so the cloned objects carry exactly the status this operator writes.
   Then bursts of B tasks (created at R per second, Jobs completed, all Succeeded),
   ``--bursts`` of them one after the other, with nothing else present measure operator
   CPU per task (the median of the bursts).
2. The operator stops. N tasks are put straight into the API server's store (faster
   than N POSTs): 98% Succeeded a moment ago with a TTL of a week, their Jobs complete and
   pods Succeeded; 2% Running, their Jobs active and pods running.
3. The operator starts: time until it logs ``synced`` (its initial listing) and until
   it has converged (no request and under 10% of a core for 2 s: every watch event
   and every queued reconcile handled), its CPU and RSS then.
4. ``kill -9``, start again: the same figures after a crash; then its CPU and
   requests over ``--idle`` seconds with nothing to do (a hot loop would show here).
5. The same bursts, now with N present: CPU per task again (it should not grow).

It proves, by counting the operator's requests from step 3 on: no Job created for a
task that already has its Job (a duplicate), and no write to a finished task (nor to
a running one: nothing about them changed). Exits 1 if either happened.
"""

from __future__ import annotations

import asyncio
import collections
import json
import statistics
import time
from collections.abc import Sequence
from typing import Any

from asynctask_operator.adapters.kube import ASYNCTASKS, JOBS, PODS
from asynctask_operator.testing.cluster import NS
from asynctask_operator.testing.emulator import ApiServerEmulator
from asynctask_operator.testing.hits import Hit
from bench.common import (
    TASKTYPE_SPEC,
    Bench,
    JobPlayer,
    PhaseLog,
    create_tasks,
    emit,
    emulator,
    parser,
    progress,
    quiet,
    table,
    utc_now,
    wait_for,
    workdir,
)

WEEK = 7 * 24 * 3600
TEMPLATES = {"done": "tmpl-done", "run": "tmpl-run"}


async def make_templates(bench: Bench, phases: PhaseLog) -> None:
    """One task Succeeded (pod Succeeded), one Running (pod running), by the operator itself."""
    c = bench.cluster
    for name in TEMPLATES.values():
        await c.create_task(name, {"type": "bench", "ttlSecondsAfterFinished": WEEK})
    for name in TEMPLATES.values():
        await wait_for(lambda n=name: phases.time_of(n, "Running") is not None, 30, f"{name} Running")  # type: ignore[misc]
    await c.job_succeeds(f"{TEMPLATES['done']}-1")
    await c._pod(f"{TEMPLATES['run']}-1", "Running", {"running": {"startedAt": utc_now()}})
    await wait_for(lambda: phases.time_of(TEMPLATES["done"], "Succeeded") is not None, 30, "template Succeeded")


def prefill(k: ApiServerEmulator, n: int, running_share: float) -> dict[str, list[str]]:
    """Clone the templates into ``n`` tasks (with their Jobs and pods) straight into the API server's store."""
    running = round(n * running_share)
    groups = {"done": [f"done-{i:05d}" for i in range(n - running)], "run": [f"run-{i:05d}" for i in range(running)]}
    for kind, template in TEMPLATES.items():
        job = f"{template}-1"
        originals = [(ASYNCTASKS, template), (JOBS, job), (PODS, f"{job}-pod")]
        text = json.dumps([k.model.get(resource, NS, name) for resource, name in originals])
        for name in groups[kind]:
            clones = json.loads(text.replace(template, name))
            for (resource, _), obj in zip(originals, clones, strict=True):
                k.model.put(resource, obj)  # as it is, with a new resourceVersion (and its event)
    return groups


async def burst(bench: Bench, phases: PhaseLog, prefix: str, count: int, rate: float | None) -> dict[str, Any]:
    """``count`` tasks created (at ``rate`` per second, or 16 at a time as fast as possible), their Jobs
    completed as they appear: CPU per task until idle again.

    At a rate below saturation each task is handled alone, as in a steady flow; as fast as possible,
    how many events one reconcile takes in depends on how fast kmock answers, which depends on how
    many objects it holds: the figure then moves with the emulator, not only the operator."""
    names = [f"{prefix}-{i:04d}" for i in range(count)]
    stats = bench.stats
    await quiet(bench.k, stats, window=1.0, timeout=120)
    cpu0, t0 = stats.cpu_seconds(), time.monotonic()
    await create_tasks(bench, names, {"type": "bench", "ttlSecondsAfterFinished": WEEK}, 16, rate)
    done = await progress(
        lambda: sum(phases.time_of(n, "Succeeded") is not None for n in names),
        count,
        30,
        f"{prefix} Succeeded",
        bench.operator,
    )
    end = await quiet(bench.k, stats, window=2.0, timeout=120)
    cpu = stats.cpu_seconds() - cpu0
    return {
        "tasks": count,
        "all_succeeded": done,
        "seconds": round(end - t0, 2),
        "cpu_ms_per_task": round(cpu / count * 1000, 2),
    }


async def bursts(
    bench: Bench, phases: PhaseLog, prefix: str, count: int, rate: float | None, repeat: int
) -> dict[str, Any]:
    """``repeat`` bursts one after the other: the median CPU per task, and each run's."""
    runs = [await burst(bench, phases, f"{prefix}{i}", count, rate) for i in range(repeat)]
    return {
        "tasks": count,
        "runs": repeat,
        "rate": rate,
        "all_succeeded": all(r["all_succeeded"] for r in runs),
        "seconds": round(sum(r["seconds"] for r in runs), 2),
        "cpu_ms_per_task": round(statistics.median(r["cpu_ms_per_task"] for r in runs), 2),
        "cpu_ms_per_task_runs": [r["cpu_ms_per_task"] for r in runs],
    }


async def converge(bench: Bench, n: int) -> dict[str, Any]:
    """Start the operator; how long until it synced and until it converged; its CPU and memory then."""
    k = bench.k
    since = len(k.hits)
    t0 = time.monotonic()
    synced = await bench.start(timeout=60 + n / 50)
    stats = bench.stats
    end = await quiet(k, stats, window=2.0, timeout=600)
    hits = k.operator_hits(since)
    return {
        "synced_s": round(synced, 2),
        "converged_s": round(end - t0, 2),
        "cpu_s": round(stats.cpu_seconds(), 2),
        "rss_mb": round(stats.rss_mb(), 1),
        "peak_rss_mb": round(stats.peak_rss_mb(), 1),
        "requests": len(hits),
        "writes": sum(h.write for h in hits),
        "requests_by_kind": dict(sorted(collections.Counter(f"{h.verb} {h.resource}" for h in hits).items())),
    }


async def idle_cpu(bench: Bench, seconds: float) -> dict[str, Any]:
    """CPU share and requests of the converged operator over ``seconds`` with nothing to do."""
    stats, k = bench.stats, bench.k
    since, cpu0 = len(k.hits), stats.cpu_seconds()
    await asyncio.sleep(seconds)
    return {
        "seconds": seconds,
        "cpu_percent": round((stats.cpu_seconds() - cpu0) / seconds * 100, 1),
        "requests": len(k.operator_hits(since)),
    }


def owner(hit: Hit, tasks: set[str]) -> str | None:
    """The prefilled task a request is about: by its name, its Job's, or the Job its pod listing selects."""
    subject = hit.subject
    if subject in tasks:
        return subject
    head = subject.rsplit("-", 1)[0]
    return head if head in tasks else None


def audit(k: ApiServerEmulator, since: int, groups: dict[str, list[str]]) -> dict[str, Any]:
    done, running = set(groups["done"]), set(groups["run"])
    everyone = done | running
    duplicates: list[str] = []
    writes_done: list[str] = []
    writes_running: list[str] = []
    for hit in k.operator_hits(since):
        task = owner(hit, everyone)
        if task is None or not hit.write:
            continue
        what = f"{hit.method} {hit.resource} {hit.subject} -> {hit.status}"
        if hit.verb == "create" and hit.resource == "jobs":
            duplicates.append(what)
        (writes_done if task in done else writes_running).append(what)
    return {
        "duplicate_job_creates": len(duplicates),
        "writes_to_finished": len(writes_done),
        "writes_to_running": len(writes_running),
        "examples": (duplicates + writes_done + writes_running)[:10],
    }


async def run(
    n: int,
    running_share: float,
    burst_size: int,
    folder: str | None,
    idle_seconds: float = 10.0,
    burst_rate: float | None = 50.0,
    repeat: int = 3,
) -> dict[str, Any]:
    wd = workdir(folder, "scale")
    async with emulator() as k:
        bench = Bench(k, wd)
        phases = PhaseLog(k)
        player = JobPlayer(k, names=lambda job: job.startswith("burst-"))
        try:
            await bench.cluster.create_tasktype("bench", TASKTYPE_SPEC)
            await bench.start()
            await quiet(k, bench.stats, window=1.0, timeout=60)
            empty_rss = bench.stats.rss_mb()
            await make_templates(bench, phases)
            empty = await bursts(bench, phases, "burst-a", burst_size, burst_rate, repeat)
            await bench.stop()

            t0 = time.monotonic()
            groups = prefill(k, n, running_share)
            prefill_s = time.monotonic() - t0
            since = len(k.hits)

            first = await converge(bench, n)
            await bench.stop()  # kill -9
            restart = await converge(bench, n)
            idle = await idle_cpu(bench, idle_seconds)
            full = await bursts(bench, phases, "burst-b", burst_size, burst_rate, repeat)
            checks = audit(k, since, groups)
        finally:
            await player.close()
            await bench.stop()
    present = n + 2 + 2 * repeat * burst_size  # the prefilled, the templates, the bursts
    return {
        "bench": "scale",
        "n": n,
        "running": len(groups["run"]),
        "finished": len(groups["done"]),
        "tasks_present": present,
        "present_at_full_bursts": n + 2 + repeat * burst_size,
        "prefill_s": round(prefill_s, 2),
        "rss_empty_mb": round(empty_rss, 1),
        "kb_per_task": round((restart["rss_mb"] - empty_rss) * 1024 / n, 1),
        "first_start": first,
        "restart": restart,
        "idle": idle,
        "burst_empty": empty,
        "burst_full": full,
        "cpu_per_task_ratio": round(full["cpu_ms_per_task"] / empty["cpu_ms_per_task"], 2)
        if empty["cpu_ms_per_task"]
        else None,
        **checks,
        "ok": checks["duplicate_job_creates"] == 0 and checks["writes_to_finished"] == 0,
        "operator_log": str(bench.operator.logfile),
    }


def render(r: dict[str, Any]) -> list[str]:
    rows = []
    for label, key in (("first start", "first_start"), ("restart after kill -9", "restart")):
        s = r[key]
        rows.append(
            [
                label,
                s["synced_s"],
                s["converged_s"],
                s["cpu_s"],
                s["rss_mb"],
                s["peak_rss_mb"],
                s["requests"],
                s["writes"],
            ]
        )
    starts = table(
        f"{r['n']} AsyncTasks present ({r['finished']} Succeeded, {r['running']} Running), each with its Job and pod",
        ["start", "synced (s)", "converged (s)", "CPU (s)", "RSS (MB)", "peak RSS (MB)", "requests", "writes"],
        rows,
    )
    empty, full = r["burst_empty"], r["burst_full"]
    pace = f"{empty['rate']:g}/s" if empty["rate"] else "as fast as possible"
    cpu_table = table(
        f"Operator CPU per task: {empty['runs']} bursts of {empty['tasks']} tasks run to Succeeded, created {pace}",
        ["tasks present", "all Succeeded", "seconds", "CPU ms per task (median)", "each burst"],
        [
            [3, empty["all_succeeded"], empty["seconds"], empty["cpu_ms_per_task"], empty["cpu_ms_per_task_runs"]],
            [
                r["present_at_full_bursts"],
                full["all_succeeded"],
                full["seconds"],
                full["cpu_ms_per_task"],
                full["cpu_ms_per_task_runs"],
            ],
        ],
    )
    memory = (
        f"RSS with nothing present {r['rss_empty_mb']} MB; with {r['n']} tasks (after the restart) "
        f"{r['restart']['rss_mb']} MB: {r['kb_per_task']} KB per task (with its Job and pod)\n"
        f"idle after converging: {r['idle']['cpu_percent']}% of a core, {r['idle']['requests']} requests "
        f"in {r['idle']['seconds']:g} s"
    )
    verdict = (
        f"duplicate Job creates: {r['duplicate_job_creates']}; writes to finished tasks: {r['writes_to_finished']}; "
        f"writes to running tasks: {r['writes_to_running']}  => {'OK' if r['ok'] else 'FAILED'}"
    )
    if r["examples"]:
        verdict += "\n  " + "\n  ".join(r["examples"])
    return [starts, memory, cpu_table, verdict]


def main(argv: Sequence[str] | None = None) -> int:
    p = parser(__doc__.split("\n\n")[0], default_n=10000)
    p.add_argument("--running", type=float, default=0.02, help="share of the tasks Running (default 0.02)")
    p.add_argument("--burst", type=int, default=500, help="tasks per CPU-per-task burst (default 500)")
    p.add_argument("--idle", type=float, default=10.0, help="seconds the idle operator is watched (default 10)")
    p.add_argument(
        "--burst-rate",
        type=float,
        default=50.0,
        help="tasks per second in a burst (default 50; 0: as fast as possible)",
    )
    p.add_argument("--bursts", type=int, default=3, help="bursts at each size, their median is reported (default 3)")
    args = p.parse_args(argv)
    result = asyncio.run(
        run(args.n, args.running, args.burst, args.workdir, args.idle, args.burst_rate or None, max(args.bursts, 1))
    )
    emit(render(result), result, args.json)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
