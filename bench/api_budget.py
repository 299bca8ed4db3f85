"""API requests per task, by path: success, retry, cancel, TTL.

    python -m bench.api_budget [--n 20] [--paths success,retry,...] [--archive] [--json PATH]

Runs N tasks through each path at once against kmock, playing the Job controller
and the kubelet, and counts the operator's own requests (its User-Agent) about each
task: requests name the task, its Job (``<task>-<attempt>``), or select the Job's
pods. Requests about no task (watches, the initial listings, TaskType status) are
listed apart.

- success: the Job completes.
- retry: ``maxRetries: 1``, Fixed 1 s backoff; the first Job fails, the second completes.
- cancel: ``spec.cancel: true`` while Running.
- ttl: ``ttlSecondsAfterFinished: 1``; the Job completes and the task is deleted.
- queued: through the TaskQueue ``budget`` of concurrency N/2, so about half the tasks wait
  for a slot (one ``Pending`` write each); its status writes are listed apart.
- keyed: ``spec.concurrency.key`` shared by pairs of tasks (limit 1), so one task of each
  pair waits for the key: the wait costs what a wait for a slot costs (one Pending write) plus
  the WaitingForKey Event; a task whose key is free costs 3, as one without a key.

Exits 1 when the budget of docs/design.md §5.4 is exceeded: more than 3 writes per task until
Succeeded on the success path, any write after Succeeded there, or more than 1 write
(the DELETE) after Succeeded on the TTL path.

``--archive``: the operator runs with ``--archive-required`` beside the archiver
(``asynctask-archive``, SQLite): the archiver's own requests are counted apart (its
User-Agent), and its writes per task may be 1 on every path (the ``asynctask.dev/archived``
mark); the operator's budget is the same.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Sequence
from typing import Any

from asynctask_operator.adapters.kube import JOBS
from asynctask_operator.testing.cluster import AT, NS
from asynctask_operator.testing.emulator import ApiServerEmulator
from asynctask_operator.testing.hits import Hit
from asynctask_operator.testing.jobrunner import JobRunner
from bench.common import (
    API,
    TASKTYPE_SPEC,
    Bench,
    PhaseLog,
    add_objects_option,
    add_window_option,
    emit,
    emulator,
    parser,
    percentile,
    quiet,
    rounded,
    table,
    wait_for,
    window_args,
    workdir,
)
from bench.task_costs import CostMeter

PATHS = ("success", "retry", "cancel", "ttl", "queued", "keyed")
TERMINAL = {
    "success": "Succeeded",
    "retry": "Succeeded",
    "cancel": "Cancelled",
    "ttl": "Succeeded",
    "queued": "Succeeded",
    "keyed": "Succeeded",
}
QUEUE = "budget"  # the queued path's TaskQueue (a name no path's tasks start with)
RETRY = {"maxRetries": 1, "backoff": "Fixed", "baseSeconds": 1, "jitter": False}
WAIT = 30.0  # seconds any one step may take

# What docs/operations.md promises, for the table (writes until the terminal phase + after it).
# The retry path: 3 + 4 for the retry (status Retrying, its Warning Event, the Job, status Running).
# Queued: 3, plus one Pending write for each task that waits (half of them). Keyed: the same, plus the
# WaitingForKey Event each waiting task posts (issue 28 asks for it); the key itself costs no write.
EXPECTED_WRITES = {
    "success": (3, 0),
    "retry": (7, 0),
    "cancel": (3, 1),
    "ttl": (3, 1),
    "queued": (3.5, 0),
    "keyed": (4, 0),
}
# With the short-attempt window (docs/adr/0029), each attempt that ends within it saves its Running write:
# success 2; retry 5 (Job, Retrying, its Event, Job, Succeeded); the cancel comes after Running is written.
EXPECTED_WITH_WINDOW = {
    "success": (2, 0),
    "retry": (5, 0),
    "cancel": (3, 1),
    "ttl": (2, 1),
    "queued": (2.5, 0),
    "keyed": (3, 0),
}


def expected(window: float) -> dict[str, tuple[float, int]]:
    return EXPECTED_WITH_WINDOW if window else EXPECTED_WRITES


class Driver:
    """Moves each task along its path, as a user, the Job controller and the kubelet would.

    With ``runner`` (``--objects real``) the cluster's controllers write what a real cluster writes
    for each Job and pod (:class:`~asynctask_operator.testing.jobrunner.JobRunner`); without, a pod
    and the Job's end in two writes (:class:`~asynctask_operator.testing.cluster.Cluster`). Each step
    waits for the Job itself, not for a phase: with a short-attempt window the ``Running`` write of a
    short attempt is never made."""

    def __init__(self, bench: Bench, phases: PhaseLog, runner: JobRunner | None) -> None:
        self.bench = bench
        self.c = bench.cluster
        self.phases = phases
        self.runner = runner

    async def until(self, name: str, phase: str, nth: int = 1) -> None:
        await wait_for(
            lambda: self.phases.time_of(name, phase, nth) is not None,
            WAIT,
            f"{name} {phase} (#{nth})",
            operator=self.bench.operator,
        )

    async def job(self, job: str, succeeded: bool = True, *, start_only: bool = False) -> None:
        """Wait for the operator's Job ``job``, then run it to its end (or only start it)."""
        model = self.bench.k.model
        await wait_for(lambda: (JOBS, NS, job) in model.objects, WAIT, f"Job {job}", operator=self.bench.operator)
        if self.runner is not None:
            await self.runner.start(job, NS)
            if not start_only:
                await self.runner.finish(job, NS, succeeded, 0 if succeeded else 1)
        elif not start_only:
            await (self.c.job_succeeds(job) if succeeded else self.c.job_fails(job))

    async def success(self, name: str) -> None:
        await self.c.create_task(name, {"type": "bench", "ttlSecondsAfterFinished": 3600})
        await self.job(f"{name}-1")
        await self.until(name, "Succeeded")

    async def retry(self, name: str) -> None:
        await self.c.create_task(name, {"type": "bench", "ttlSecondsAfterFinished": 3600, "retry": RETRY})
        await self.job(f"{name}-1", succeeded=False)
        await self.job(f"{name}-2")
        await self.until(name, "Succeeded")

    async def cancel(self, name: str) -> None:
        await self.c.create_task(name, {"type": "bench", "ttlSecondsAfterFinished": 3600})
        await self.job(f"{name}-1", start_only=True)
        await self.until(name, "Running")
        await self.c.patch(API, f"asynctasks/{name}", {"spec": {"cancel": True}})
        await self.until(name, "Cancelled")
        await wait_for(lambda: self.c.job_deleted(f"{name}-1"), WAIT, f"Job {name}-1 deleted")

    async def queued(self, name: str) -> None:
        await self.c.create_task(name, {"type": "bench", "ttlSecondsAfterFinished": 3600, "queue": QUEUE})
        await self.job(f"{name}-1")
        await self.until(name, "Succeeded")

    async def keyed(self, name: str) -> None:
        pair = int(name.rsplit("-", 1)[1]) // 2
        spec = {"type": "bench", "ttlSecondsAfterFinished": 3600, "concurrency": {"key": f"pair-{pair}"}}
        await self.c.create_task(name, spec)
        await self.job(f"{name}-1")
        await self.until(name, "Succeeded")

    async def ttl(self, name: str) -> None:
        await self.c.create_task(name, {"type": "bench", "ttlSecondsAfterFinished": 1})
        await self.job(f"{name}-1")
        await self.until(name, "Succeeded")
        objects = self.bench.k.objects
        await wait_for(lambda: objects[AT, NS, name].deleted, WAIT, f"{name} deleted by its TTL")


def task_names(path: str, n: int) -> list[str]:
    return [f"{path}-{i:04d}" for i in range(n)]


def path_of(hit: Hit) -> str | None:
    return path_of_name(hit.subject)


def path_of_name(subject: str) -> str | None:
    for path in PATHS:
        if subject.startswith(path + "-"):
            return path
    return None


def key(hit: Hit) -> str:
    return f"{hit.verb} {hit.resource}" + (" (kopf)" if hit.kopf else "")


ARCHIVE_AGENT = "asynctask-archive"


def archive_writes(k: ApiServerEmulator, n: int, paths: Sequence[str]) -> dict[str, float]:
    """The archiver's writes per task, by path (its marks; nothing else, if all is well)."""
    counts: collections.Counter[str] = collections.Counter()
    for hit in k.hits:
        if hit.agent.startswith(ARCHIVE_AGENT) and hit.write:
            counts[path_of(hit) or "other"] += 1
    return {path: round(counts[path] / n, 3) for path in (*paths, "other")}


def analyse(
    k: ApiServerEmulator, phases: PhaseLog, n: int, paths: Sequence[str], meter: CostMeter | None = None
) -> dict[str, Any]:
    hits = k.operator_hits()
    by_path: dict[str, list[Hit]] = collections.defaultdict(list)
    other: collections.Counter[str] = collections.Counter()
    for hit in hits:
        path = path_of(hit)
        if path is None:
            other[key(hit)] += 1
        else:
            by_path[path].append(hit)
    result: dict[str, Any] = {}
    for path in paths:
        counts = collections.Counter(key(h) for h in by_path[path])
        to_terminal = after_terminal = 0
        for hit in by_path[path]:
            if not hit.write:
                continue
            task = task_of(hit.subject, path)
            ended = phases.time_of(task, TERMINAL[path])
            if ended is not None and hit.t > ended:
                after_terminal += 1
            else:
                to_terminal += 1
        writes = sum(1 for h in by_path[path] if h.write)
        result[path] = {
            "tasks": n,
            "per_task": {name: round(count / n, 3) for name, count in sorted(counts.items())},
            "writes_per_task": round(writes / n, 3),
            "reads_per_task": round((len(by_path[path]) - writes) / n, 3),
            "writes_to_terminal_per_task": round(to_terminal / n, 3),
            "writes_after_terminal_per_task": round(after_terminal / n, 3),
            "conflicts": sum(1 for h in by_path[path] if h.status == 409),
            **(meter.per_task(path, by_path[path], n) if meter is not None else {}),
        }
    return {"paths": result, "other": dict(sorted(other.items()))}


def task_of(subject: str, path: str) -> str:
    """The task a subject names: the task itself, or its Job ``<task>-<attempt>``."""
    prefix, _, rest = subject.partition("-")
    number = rest.split("-", 1)[0]
    return f"{prefix}-{number}"


def ttl_delays(k: ApiServerEmulator, phases: PhaseLog, n: int) -> list[float]:
    """Seconds from the Succeeded write to the operator's DELETE of each TTL task."""
    delays = []
    for hit in k.operator_hits():
        if hit.verb == "delete" and hit.resource == "asynctasks" and hit.name and hit.name.startswith("ttl-"):
            ended = phases.time_of(hit.name, "Succeeded")
            if ended is not None:
                delays.append(hit.t - ended)
    return delays


def retry_delays(k: ApiServerEmulator, phases: PhaseLog) -> list[float]:
    """Seconds from the Retrying write to the creation of the second attempt's Job (the backoff: 1 s)."""
    delays = []
    for hit in k.operator_hits():
        if hit.verb == "create" and hit.resource == "jobs" and hit.status == 200 and (hit.name or "").endswith("-2"):
            retrying = phases.time_of(hit.name.rsplit("-", 1)[0], "Retrying")  # type: ignore[union-attr]
            if retrying is not None:
                delays.append(hit.t - retrying)
    return delays


def check_budget(paths: dict[str, Any], archived: dict[str, float] | None = None, window: float = 0.0) -> list[str]:
    problems = []
    budget = expected(window)
    for path, writes in (archived or {}).items():
        if writes > (1 if path in PATHS else 0):
            problems.append(f"archiver, {path} path: {writes} writes per task > {1 if path in PATHS else 0}")
    success, ttl = paths.get("success"), paths.get("ttl")
    for path in ("queued", "keyed"):
        if path in paths and paths[path]["writes_per_task"] > budget[path][0] + 0.05:
            problems.append(f"{path} path: {paths[path]['writes_per_task']} writes per task > {budget[path][0]}")
    if success is None or ttl is None:
        return problems
    limit = budget["success"][0]
    if success["writes_to_terminal_per_task"] > limit:
        problems.append(
            f"success path: {success['writes_to_terminal_per_task']} writes per task until Succeeded > {limit}"
        )
    if success["writes_after_terminal_per_task"] > 0:
        problems.append(f"success path: {success['writes_after_terminal_per_task']} writes per task after Succeeded")
    if ttl["writes_after_terminal_per_task"] > 1:
        problems.append(f"ttl path: {ttl['writes_after_terminal_per_task']} writes per task after Succeeded > 1")
    return problems


async def run(
    n: int,
    folder: str | None,
    paths: Sequence[str] = PATHS,
    archive: bool = False,
    objects: str = "real",
    window: float = 0.0,
) -> dict[str, Any]:
    wd = workdir(folder, "api-budget")
    async with emulator(real_objects=objects == "real") as k:
        bench = Bench(k, wd, *(["--archive-required"] if archive else []), *window_args(window))
        phases = PhaseLog(k)
        meter = CostMeter(k, lambda name: path_of_name(name))
        runner = JobRunner(k.model, auto=False) if objects == "real" else None
        await bench.cluster.create_tasktype("bench", TASKTYPE_SPEC)
        await bench.cluster.create_queue(QUEUE, {"concurrency": max(n // 2, 1)})
        await bench.start()
        archiver = None
        if archive:
            from asynctask_operator.testing.archiving import ArchiverProcess

            archiver = ArchiverProcess(bench.kubeconfig, f"sqlite:///{wd / 'archive.db'}", wd / "archive.log")
            await archiver.start(timeout=60)
        driver = Driver(bench, phases, runner)
        t0 = time.monotonic()
        try:
            await asyncio.gather(
                *(getattr(driver, path)(name) for path in paths for name in task_names(path, n)),
            )
            # Anything the operator would still write (late or repeated writes) is counted too.
            await quiet(k, bench.stats, window=2.0, timeout=60)
        finally:
            await bench.stop()
            if archiver is not None:
                await archiver.stop()
        elapsed = time.monotonic() - t0
        result = analyse(k, phases, n, paths, meter)
        jobs_run = runner.started if runner is not None else 0
        cluster = (
            {f"{c} {v} {r}": round(count / jobs_run, 2) for (c, v, r), count in sorted(runner.writes.items())}
            if runner is not None and jobs_run
            else {}
        )
        archived = archive_writes(k, n, paths) if archive else None
        delays = ttl_delays(k, phases, n)
        backoffs = retry_delays(k, phases)
    problems = check_budget(result["paths"], archived, window)
    return {
        "bench": "api_budget",
        "n": n,
        "archive": archive,
        "objects": objects,
        "short_attempt_seconds": window,
        "cluster_writes_per_job": cluster,
        **({"archive_writes_per_task": archived} if archived is not None else {}),
        **result,
        "ttl_delete_seconds": {
            "p50": rounded(percentile(delays, 50)),
            "max": rounded(max(delays, default=float("nan"))),
        },
        "retry_delay_seconds": {
            "min": rounded(min(backoffs, default=float("nan"))),
            "p50": rounded(percentile(backoffs, 50)),
            "max": rounded(max(backoffs, default=float("nan"))),
        },
        "budget_ok": not problems,
        "budget_problems": problems,
        "seconds": round(elapsed, 2),
        "operator_log": str(bench.operator.logfile),
    }


def render(result: dict[str, Any]) -> list[str]:
    paths = result["paths"]
    columns = sorted({c for p in paths.values() for c in p["per_task"]}, key=lambda c: (c.split()[0] == "get", c))
    per_task = table(
        f"Operator API requests per task (N={result['n']} tasks per path)",
        ["path", *columns, "writes", "reads"],
        [
            [path, *(p["per_task"].get(c, 0) for c in columns), p["writes_per_task"], p["reads_per_task"]]
            for path, p in paths.items()
        ],
    )
    budget = table(
        "Writes per task: until the terminal phase + after it (expected per docs/operations.md)",
        ["path", "terminal", "until", "after", "expected", "409s"],
        [
            [
                path,
                TERMINAL[path],
                p["writes_to_terminal_per_task"],
                p["writes_after_terminal_per_task"],
                "{} + {}".format(*expected(result.get("short_attempt_seconds") or 0.0)[path]),
                p["conflicts"],
            ]
            for path, p in paths.items()
        ],
    )
    costs = ""
    if any("watch_events_per_task" in p for p in paths.values()):
        phases = sorted({ph for p in paths.values() for ph in p["task_bytes_by_phase"]}, key=_phase_order)
        costs = table(
            f"Bytes per task ({result.get('objects', 'plain')} objects): the operator's requests and their answers, "
            "the watch events it receives (tasks, Jobs, pods), the stored task after each phase",
            ["path", "request B", "answer B", "events task/job/pod", "event KB", *(f"task B {ph}" for ph in phases)],
            [
                [
                    path,
                    p["request_bytes_per_task"],
                    p["answer_bytes_per_task"],
                    "/".join(str(p["watch_events_per_task"].get(kind, 0)) for kind in ("task", "job", "pod")),
                    round(sum(p["watch_bytes_per_task"].values()) / 1024, 1),
                    *(p["task_bytes_by_phase"].get(ph, "-") for ph in phases),
                ]
                for path, p in paths.items()
            ],
        )
        if result.get("cluster_writes_per_job"):
            costs += "\n\n" + table(
                "The cluster's own writes per Job (Job controller, scheduler, kubelet; testing/jobrunner.py)",
                ["component, verb, resource", "per Job"],
                list(result["cluster_writes_per_job"].items()),
            )
    other = table(
        "Requests about no task (whole run)", ["request", "count"], [[k, v] for k, v in result["other"].items()]
    )
    if "archive_writes_per_task" in result:
        archived = result["archive_writes_per_task"]
        other = table(
            "The archiver's writes per task (asynctask.dev/archived marks), beside the operator's",
            ["path", "operator until + after", "archiver"],
            [[path, f"{paths[path].get('writes_to_terminal_per_task', paths[path].get('writes_per_task'))} + "
                    f"{paths[path].get('writes_after_terminal_per_task', 0)}",
              archived[path]] for path in paths],
        ) + "\n\n" + other  # fmt: skip
    ttl = result["ttl_delete_seconds"]
    verdict = "budget OK" if result["budget_ok"] else "BUDGET EXCEEDED: " + "; ".join(result["budget_problems"])
    back = result["retry_delay_seconds"]
    summary = (
        f"TTL 1 s: delete {ttl['p50']} s (p50), {ttl['max']} s (max) after Succeeded\n"
        f"retry backoff 1 s: next Job {back['min']} s (min), {back['p50']} s (p50), {back['max']} s (max) after Retrying\n"
        f"{verdict}"
    )
    return [per_task, budget, *([costs] if costs else []), other, summary]


def _phase_order(phase: str) -> int:
    order = ("created", "Pending", "Running", "Retrying", "Succeeded", "Failed", "Cancelled")
    return order.index(phase) if phase in order else len(order)


def main(argv: Sequence[str] | None = None) -> int:
    cli = parser(__doc__.split("\n\n")[0], default_n=20)
    cli.add_argument("--paths", default=",".join(PATHS), help=f"comma-separated, of {', '.join(PATHS)} (default: all)")
    cli.add_argument("--archive", action="store_true", help="with the archiver, and the operator's --archive-required")
    add_objects_option(cli)
    add_window_option(cli)
    args = cli.parse_args(argv)
    chosen = [p for p in args.paths.split(",") if p]
    unknown = sorted(set(chosen) - set(PATHS))
    if unknown:
        cli.error(f"unknown path(s): {', '.join(unknown)}")
    result = asyncio.run(run(args.n, args.workdir, chosen, args.archive, args.objects, args.short_attempt_seconds))
    emit(render(result), result, args.json)
    return 0 if result["budget_ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
