"""Admission throughput and latency: N AsyncTasks created as fast as a client can.

    python -m bench.throughput [--n 1000] [--rate R] [--queue-concurrency C] [--json PATH]
    python -m bench.throughput --kubeconfig PATH [--n 1000] [--json PATH]   # a real cluster

Against kmock (the default), it reports:

- tasks admitted per second: N / (last Job created - first task created);
- create -> Job created latency p50/p95/p99, both moments taken where kmock stores
  the object (the task's POST and the operator's Job POST);
- operator CPU seconds per 1,000 tasks (utime + stime of its process, from the first
  task created until it is idle again), and its peak RSS (VmHWM).

Without ``--queue-concurrency`` nothing completes the Jobs: the run ends when every
task is Running (the Job created and the status written). With it, every task names
one TaskQueue of that concurrency, the benchmark plays the Job controller (each Job
completes as soon as it appears), and the run ends when every task has Succeeded:
the figure is then the admission rate through a limited queue (and the latency
includes the wait in the queue). ``--rate R`` creates R tasks per second instead of
as fast as possible, to measure latency below saturation.

With ``--kubeconfig`` it runs against a real cluster: installs the CRDs, runs the
operator (this machine, ``--namespace`` a fresh namespace), a TaskType whose Job runs
busybox ``true``, creates N tasks and waits until all have Succeeded; then creates N
bare Jobs of the same pod template in another namespace with a plain client, waits
until all have completed, and reports our end-to-end rate as a ratio of theirs (the
target of docs/design.md §5.4 is >= 0.8). Both namespaces are deleted at the end (``--keep`` keeps them);
the CRDs stay installed.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import functools
import json
import re
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from asynctask_operator.testing.hits import Hit
from asynctask_operator.testing.jobrunner import JobRunner
from bench.common import (
    TASKTYPE_SPEC,
    Bench,
    BenchError,
    JobPlayer,
    PhaseLog,
    ProcStats,
    add_objects_option,
    add_window_option,
    create_tasks,
    emit,
    emulator,
    parser,
    percentile,
    progress,
    quiet,
    rounded,
    table,
    window_args,
    workdir,
)

QUEUE = "bench"


def job_owner(job: str) -> str:
    """The task of Job ``<task>-<attempt>``."""
    return job.rsplit("-", 1)[0]


class Timeline:
    """When kmock stored each task and each task's first Job (and when each Job completed)."""

    def __init__(self) -> None:
        self.created: dict[str, float] = {}
        self.job_created: dict[str, float] = {}
        self.job_completed: dict[str, float] = {}  # task -> when the benchmark completed its Job
        self.conflicts = 0

    def on_hit(self, hit: Hit, request: Any) -> None:
        if hit.verb != "create" or not hit.name:
            return
        if hit.resource == "asynctasks" and not hit.operator and hit.status == 200:
            self.created.setdefault(hit.name, hit.t)
        elif hit.resource == "jobs" and hit.operator:
            if hit.status == 200:
                self.job_created.setdefault(job_owner(hit.name), hit.t)
            elif hit.status == 409:
                self.conflicts += 1

    def max_active_jobs(self) -> int:
        """Most Jobs created and not yet completed at any moment (with a queue: at most its concurrency)."""
        events = sorted([(t, 1) for t in self.job_created.values()] + [(t, -1) for t in self.job_completed.values()])
        active = peak = 0
        for _, delta in events:
            active += delta
            peak = max(peak, active)
        return peak


async def run_kmock(
    n: int,
    folder: str | None,
    queue_concurrency: int | None,
    rate: float | None,
    client_concurrency: int,
    stall: float = 30.0,
    job_seconds: float = 0.0,
    keys: int | None = None,
    objects: str = "real",
    window: float = 0.0,
) -> dict[str, Any]:
    wd = workdir(folder, "throughput")
    async with emulator(real_objects=objects == "real") as k:
        bench = Bench(k, wd, *window_args(window))
        phases = PhaseLog(k)
        timeline = Timeline()
        k.listeners.append(timeline.on_hit)
        await bench.cluster.create_tasktype("bench", TASKTYPE_SPEC)
        spec: dict[str, Any] = {"type": "bench", "ttlSecondsAfterFinished": 3600}
        if queue_concurrency is not None:
            await bench.cluster.create_queue(QUEUE, {"concurrency": queue_concurrency})
            spec["queue"] = QUEUE
        await bench.start()
        player: JobPlayer | JobRunner | None = None
        if queue_concurrency is not None and objects == "real":
            player = JobRunner(k.model, run_seconds=job_seconds)
        elif queue_concurrency is not None:
            player = JobPlayer(k, run_seconds=job_seconds)
            k.listeners.append(lambda hit, _: _completed(hit, timeline))
        target = "Succeeded" if player is not None else "Running"
        names = [f"t{i:06d}" for i in range(n)]
        stats = bench.stats
        try:
            cpu0 = stats.cpu_seconds()
            keyed = (lambda i: {**spec, "concurrency": {"key": f"key-{i % keys}"}}) if keys else spec
            await create_tasks(bench, names, keyed, client_concurrency, rate)
            # A task that makes no progress for `stall` seconds while others are done is stuck.
            await progress(lambda: phases.reached[target], n, stall, f"{n} tasks {target}", bench.operator)
            if player is not None and player.errors:
                raise BenchError(f"completing Jobs failed: {player.errors[0]!r}")
            idle = await quiet(k, stats, window=2.0, timeout=60)
            cpu = stats.cpu_seconds() - cpu0
            peak_rss, rss = stats.peak_rss_mb(), stats.rss_mb()
        finally:
            if player is not None:
                await player.close()
            await bench.stop()
    if isinstance(player, JobRunner):
        timeline.job_completed.update({job_owner(job): t for job, t in player.completed.items()})
    first = min(timeline.created.values())
    latencies = [timeline.job_created[name] - timeline.created[name] for name in names if name in timeline.job_created]
    stuck = [name for name in names if phases.time_of(name, target) is None]
    finishing = [
        done - timeline.job_completed[name]
        for name in names
        if name in timeline.job_completed and (done := phases.time_of(name, "Succeeded")) is not None
    ]
    last_job = max(timeline.job_created.values())
    last_created = max(timeline.created.values())
    return {
        "bench": "throughput",
        "target": "kmock",
        "objects": objects,
        "short_attempt_seconds": window,
        "n": n,
        "queue_concurrency": queue_concurrency,
        "keys": keys,
        "rate": rate,
        "client_concurrency": client_concurrency,
        "stall_s": stall,
        "job_seconds": job_seconds if queue_concurrency is not None else None,
        "created_per_s": round(n / max(last_created - first, 1e-9), 1),
        "admitted_per_s": round(n / max(last_job - first, 1e-9), 1),
        "latency_s": {
            "p50": rounded(percentile(latencies, 50)),
            "p95": rounded(percentile(latencies, 95)),
            "p99": rounded(percentile(latencies, 99)),
            "max": rounded(max(latencies)),
        },
        "job_complete_to_succeeded_s": {
            "p50": rounded(percentile(finishing, 50)),
            "p99": rounded(percentile(finishing, 99)),
            "max": rounded(max(finishing, default=float("nan"))),
        }
        if player is not None
        else None,
        "stuck": len(stuck),
        "stuck_tasks": stuck[:20],
        "status_conflicts": sum(
            1 for h in k.hits if h.operator and h.status == 409 and h.resource == "asynctasks/status"
        ),
        "all_done_s": round((phases_done(phases, names, target) or idle) - first, 3),
        "operator_cpu_s_per_1000": round(cpu / n * 1000, 3),
        "operator_peak_rss_mb": round(peak_rss, 1),
        "operator_rss_mb": round(rss, 1),
        "operator_watch_events_per_task": round(sum(h.events for h in k.hits if h.operator) / n, 2),
        "operator_watch_kb_per_task": round(
            sum(h.received for h in k.hits if h.operator and h.verb == "watch") / n / 1024, 1
        ),
        "operator_answer_kb_per_task": round(
            sum(h.received for h in k.hits if h.operator and h.verb != "watch") / n / 1024, 1
        ),
        "max_active_jobs": timeline.max_active_jobs() if player is not None else None,
        "job_conflicts": timeline.conflicts,
        "operator_log": str(bench.operator.logfile),
    }


def _completed(hit: Hit, timeline: Timeline) -> None:
    if not hit.operator and hit.resource == "jobs/status" and hit.verb == "patch" and hit.status == 200 and hit.name:
        timeline.job_completed.setdefault(job_owner(hit.name), hit.t)


def phases_done(phases: PhaseLog, names: Sequence[str], phase: str) -> float | None:
    times = [phases.time_of(name, phase) for name in names]
    return max(t for t in times if t is not None) if all(t is not None for t in times) else None


def render_kmock(r: dict[str, Any]) -> list[str]:
    mode = f"one TaskQueue, concurrency {r['queue_concurrency']}" if r["queue_concurrency"] else "no queue limit"
    if r.get("keys"):
        mode += f", {r['keys']} concurrency keys (limit 1)"
    pace = f"{r['rate']}/s" if r["rate"] else f"as fast as possible ({r['client_concurrency']} at once)"
    lat = r["latency_s"]
    rows = [
        ["tasks", r["n"]],
        ["created per second", r["created_per_s"]],
        ["admitted (Job created) per second", r["admitted_per_s"]],
        ["create -> Job created p50 (s)", lat["p50"]],
        ["create -> Job created p95 (s)", lat["p95"]],
        ["create -> Job created p99 (s)", lat["p99"]],
        ["create -> Job created max (s)", lat["max"]],
        ["first created -> all " + ("Succeeded" if r["queue_concurrency"] else "Running") + " (s)", r["all_done_s"]],
        ["operator CPU s per 1000 tasks", r["operator_cpu_s_per_1000"]],
        ["operator peak RSS (MB)", r["operator_peak_rss_mb"]],
        [
            "watch events / KB the operator received per task",
            f"{r['operator_watch_events_per_task']} / {r['operator_watch_kb_per_task']}",
        ],
        ["answers the operator received per task (KB)", r["operator_answer_kb_per_task"]],
        ["Job create conflicts (409)", r["job_conflicts"]],
    ]
    rows.append(["status write conflicts (409)", r["status_conflicts"]])
    rows.append([f"tasks stuck (no progress for {r['stall_s']:g} s)", r["stuck"]])
    if r["max_active_jobs"] is not None:
        rows.append(["most Jobs active at once", r["max_active_jobs"]])
        fin = r["job_complete_to_succeeded_s"]
        rows.append(["Job complete -> Succeeded p50 / p99 / max (s)", f"{fin['p50']} / {fin['p99']} / {fin['max']}"])
    title = f"Throughput against kmock ({r.get('objects', 'plain')} objects): {mode}; tasks created {pace}"
    return [table(title, ["figure", "value"], rows)]


# --------------------------------------------------------------------------- a real cluster


def run_cluster(args: argparse.Namespace) -> dict[str, Any]:
    """Our end-to-end rate against N bare Jobs, on the cluster of ``args.kubeconfig``."""
    import kubernetes.client
    import kubernetes.config

    from asynctask_operator.testing.process import OperatorProcess

    n: int = args.n
    wd = workdir(args.workdir, "throughput-cluster")
    wd.mkdir(parents=True, exist_ok=True)
    # Plain dicts in and out (the client accepts them; Any spares the model classes' types).
    client = kubernetes.config.new_client_from_config(config_file=args.kubeconfig)  # type: ignore[no-untyped-call]
    core: Any = kubernetes.client.CoreV1Api(client)
    batch: Any = kubernetes.client.BatchV1Api(client)
    custom: Any = kubernetes.client.CustomObjectsApi(client)
    suffix = secrets.token_hex(3)
    ns_tasks, ns_jobs = f"asynctask-bench-{suffix}", f"asynctask-bench-jobs-{suffix}"
    pod_spec = {"restartPolicy": "Never", "containers": [{"name": "main", "image": args.image, "command": ["true"]}]}
    operator = OperatorProcess(args.kubeconfig, ns_tasks, wd / "operator.log", http_port=0)
    created_namespaces: list[str] = []
    try:
        _apply_crds(args.kubeconfig, client)
        for ns in (ns_tasks, ns_jobs):
            core.create_namespace({"metadata": {"name": ns, "labels": {"asynctask.dev/bench": "true"}}})
            created_namespaces.append(ns)
            _wait(functools.partial(_has_default_account, core, ns), 60, f"ServiceAccount default in {ns}")
        custom.create_namespaced_custom_object(
            "asynctask.dev",
            "v1alpha1",
            ns_tasks,
            "tasktypes",
            {
                "apiVersion": "asynctask.dev/v1alpha1",
                "kind": "TaskType",
                "metadata": {"name": "bench-true"},
                "spec": {"jobTemplate": {"spec": {"template": {"spec": pod_spec}}}},
            },
        )
        operator.start()
        assert operator.process is not None
        stats = ProcStats(operator.process.pid)

        # Ours: N AsyncTasks until all Succeeded.
        cpu0 = stats.cpu_seconds()

        def create_task(i: int) -> None:
            body = {
                "apiVersion": "asynctask.dev/v1alpha1",
                "kind": "AsyncTask",
                "metadata": {"name": f"t{i:06d}"},
                "spec": {"type": "bench-true", "ttlSecondsAfterFinished": 3600},
            }
            custom.create_namespaced_custom_object("asynctask.dev", "v1alpha1", ns_tasks, "asynctasks", body)

        def tasks_done() -> tuple[int, int]:
            items = custom.list_namespaced_custom_object("asynctask.dev", "v1alpha1", ns_tasks, "asynctasks")["items"]
            phases = [(t.get("status") or {}).get("phase") for t in items]
            return sum(p in ("Succeeded", "Failed", "Cancelled") for p in phases), sum(
                p in ("Failed", "Cancelled") for p in phases
            )

        ours = _push(n, create_task, tasks_done, args.client_concurrency, args.timeout, operator)
        cpu = stats.cpu_seconds() - cpu0
        peak_rss = stats.peak_rss_mb()

        # Theirs: N bare Jobs of the same pod template, created by a plain client, until all finished.
        def create_job(i: int) -> None:
            body = {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "metadata": {"name": f"j{i:06d}"},
                "spec": {"backoffLimit": 0, "template": {"spec": pod_spec}},
            }
            batch.create_namespaced_job(ns_jobs, body)

        def jobs_done() -> tuple[int, int]:
            raw = batch.list_namespaced_job(ns_jobs, _preload_content=False)
            items = json.loads(raw.data).get("items") or []
            finished = failed = 0
            for job in items:
                conditions = {
                    c.get("type")
                    for c in (job.get("status") or {}).get("conditions") or ()
                    if c.get("status") == "True"
                }
                finished += bool(conditions & {"Complete", "Failed"})
                failed += "Failed" in conditions
            return finished, failed

        bare = _push(n, create_job, jobs_done, args.client_concurrency, args.timeout, None)
    finally:
        operator.stop()
        if not args.keep:
            for ns in created_namespaces:
                try:
                    core.delete_namespace(ns, propagation_policy="Background")
                except kubernetes.client.ApiException as exc:
                    print(f"could not delete namespace {ns}: {exc.status} {exc.reason}", file=sys.stderr)
        client.close()
    return {
        "bench": "throughput",
        "target": "cluster",
        "n": n,
        "client_concurrency": args.client_concurrency,
        "asynctasks": ours,
        "bare_jobs": bare,
        "ratio": round(ours["per_s"] / bare["per_s"], 3) if bare["per_s"] else None,
        "operator_cpu_s_per_1000": round(cpu / n * 1000, 3),
        "operator_peak_rss_mb": round(peak_rss, 1),
        "namespaces": [ns_tasks, ns_jobs] if args.keep else [],
        "operator_log": str(operator.log_path),
    }


def _push(
    n: int,
    create: Callable[[int], None],
    done: Callable[[], tuple[int, int]],
    concurrency: int,
    timeout: float,
    operator: Any,
) -> dict[str, Any]:
    """Create N objects (``concurrency`` at once), then poll ``done`` (finished, failed) every second."""
    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(create, range(n)))
    created = time.monotonic() - t0
    deadline = t0 + timeout
    while True:
        finished, failed = done()
        if finished >= n:
            break
        if operator is not None:
            operator.assert_alive("during the benchmark")
        if time.monotonic() > deadline:
            raise BenchError(f"only {finished} of {n} finished within {timeout:.0f}s")
        time.sleep(1.0)
    elapsed = time.monotonic() - t0
    return {
        "created_s": round(created, 2),
        "all_finished_s": round(elapsed, 2),
        "per_s": round(n / elapsed, 2),
        "failed": failed,
    }


def _apply_crds(kubeconfig: str, client: Any) -> None:
    import kubernetes.client

    done = subprocess.run(
        [sys.executable, "-m", "asynctask_operator", "crds", "--apply", "--kubeconfig", kubeconfig],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise BenchError(f"`asynctask-operator crds --apply` exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    extensions: Any = kubernetes.client.ApiextensionsV1Api(client)

    def established(name: str) -> bool:
        raw = extensions.read_custom_resource_definition(name, _preload_content=False)
        conditions = (json.loads(raw.data).get("status") or {}).get("conditions") or ()
        return any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)

    for name in re.findall(r"customresourcedefinition/(\S+)", done.stdout):
        _wait(functools.partial(established, name), 60, f"CRD {name} Established")


def _has_default_account(core: Any, namespace: str) -> bool:
    import kubernetes.client

    try:
        core.read_namespaced_service_account("default", namespace, _preload_content=False)
    except kubernetes.client.ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True


def _wait(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise BenchError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.5)


def render_cluster(r: dict[str, Any]) -> list[str]:
    ours, bare = r["asynctasks"], r["bare_jobs"]
    rows = [
        ["AsyncTasks", r["n"], ours["created_s"], ours["all_finished_s"], ours["per_s"], ours["failed"]],
        ["bare Jobs", r["n"], bare["created_s"], bare["all_finished_s"], bare["per_s"], bare["failed"]],
    ]
    head = ["what", "n", "created in (s)", "all finished in (s)", "per second", "failed"]
    summary = (
        f"end-to-end rate ratio (AsyncTasks / bare Jobs): {r['ratio']} (target >= 0.8)\n"
        f"operator CPU s per 1000 tasks: {r['operator_cpu_s_per_1000']}; peak RSS {r['operator_peak_rss_mb']} MB"
    )
    return [table("End to end on a real cluster", head, rows), summary]


def main(argv: Sequence[str] | None = None) -> int:
    p = parser(__doc__.split("\n\n")[0], default_n=1000)
    p.add_argument("--queue-concurrency", type=int, help="put every task on one TaskQueue of this concurrency")
    p.add_argument("--keys", type=int, help="give task i the concurrency key key-(i mod KEYS), limit 1 (with a queue)")
    p.add_argument("--rate", type=float, help="create this many tasks per second (default: as fast as possible)")
    p.add_argument("--client-concurrency", type=int, default=32, help="creates in flight at once (default 32)")
    p.add_argument(
        "--job-seconds", type=float, default=0.0, help="with a queue: how long each Job runs before it completes"
    )
    p.add_argument("--kubeconfig", help="run against this real cluster instead of kmock")
    p.add_argument("--image", default="busybox:1.36", help="image of the Jobs on a real cluster (runs `true`)")
    p.add_argument("--timeout", type=float, default=3600, help="seconds each half may take on a real cluster")
    p.add_argument(
        "--stall",
        type=float,
        default=30,
        help="kmock: give up on tasks when none progressed for this long (default 30)",
    )
    p.add_argument("--keep", action="store_true", help="keep the namespaces on a real cluster")
    add_objects_option(p)
    add_window_option(p)
    args = p.parse_args(argv)
    if args.kubeconfig:
        result = run_cluster(args)
        emit(render_cluster(result), result, args.json)
        return 0
    result = asyncio.run(
        run_kmock(
            args.n,
            args.workdir,
            args.queue_concurrency,
            args.rate,
            args.client_concurrency,
            args.stall,
            args.job_seconds,
            args.keys,
            args.objects,
            args.short_attempt_seconds,
        )
    )
    emit(render_kmock(result), result, args.json)
    if result["stuck"]:
        print(f"{result['stuck']} task(s) stuck: {' '.join(result['stuck_tasks'])}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
