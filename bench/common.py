"""What every benchmark shares: the emulator serving, the operator process, /proc figures, output.

The benchmarks run the real operator process (``python -m asynctask_operator run``)
against the fake API server over HTTP, started in-process, as the integration tests do;
they import only the package (its testing kit, ``asynctask_operator.testing``) and ``bench/``.
The fake runs no controllers, so the benchmarks play them: by default with a real cluster's objects
and writes (``--objects real``: :class:`~asynctask_operator.testing.jobrunner.JobRunner`, the model's
``real_objects``), or as before issue 29 (``--objects plain``: :class:`JobPlayer`, one write per Job).
``ASYNCTASK_BENCH_OPERATOR_PATH=DIR`` runs the operator from another copy of the package (a "before").

The emulator is the chaos test's: :class:`~asynctask_operator.testing.emulator.ApiServerEmulator`
(kmock serving the API server model: resourceVersions and 409s, paging, watches from a
resourceVersion; forgotten requests) with its light log of every request
(:class:`~asynctask_operator.testing.emulator.Hit`, with the answer's status) and listeners
called after each answered request. Counting from that log is O(1) per request, unlike
iterating kmock's own request list, and a listener is how a benchmark learns the moment a Job
is created. (kmock's ``kmock[...] >> sink`` catcher cannot do this: a reaction without a
payload is disabled after the first request it sees, so it fires once.)
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import math
import os
import pathlib
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from typing import Any

import kmock

from asynctask_operator.core.crds import all_crds
from asynctask_operator.testing.apiserver import ApiServer
from asynctask_operator.testing.background import Background
from asynctask_operator.testing.cluster import Cluster, declare_resources, write_kubeconfig
from asynctask_operator.testing.emulator import ApiServerEmulator, QuickShutdownServer
from asynctask_operator.testing.hits import Hit
from asynctask_operator.testing.operators import Operator

API = "/apis/asynctask.dev/v1alpha1"
BATCH = "/apis/batch/v1"

# A TaskType whose Jobs the benchmarks complete by hand (kmock runs no pods).
TASKTYPE_SPEC: dict[str, Any] = {
    "jobTemplate": {
        "spec": {
            "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "busybox:1.36"}]}}
        }
    }
}


def declare_all(k: kmock.KubernetesEmulator) -> None:
    """The harness's resources, plus every CRD this operator version generates, Secrets and Events.

    (So a benchmark keeps working when a new kind is added before the harness knows it.)"""
    declare_resources(k)
    verbs = {"get", "list", "watch", "create", "update", "patch", "delete"}
    for crd in all_crds().values():
        spec, names = crd["spec"], crd["spec"]["names"]
        for version in spec["versions"]:
            key = f"{spec['group']}/{version['name']}/{names['plural']}"
            if key not in k.resources:
                k.resources[key] = kmock.ResourceInfo(
                    kind=names["kind"],
                    singular=names.get("singular"),
                    namespaced=spec["scope"] == "Namespaced",
                    verbs=verbs,
                    subresources=set(version.get("subresources") or {}),
                    shortnames=set(names.get("shortNames") or ()),
                )
    for key, kind in (("v1/secrets", "Secret"), ("v1/events", "Event")):
        if key not in k.resources:
            k.resources[key] = kmock.ResourceInfo(kind=kind, singular=kind.lower(), namespaced=True, verbs=verbs)


async def bookmarks(k: ApiServerEmulator, interval: float = 20.0) -> None:
    """Send a BOOKMARK on every watch stream every ``interval`` seconds, as an API server does
    (kmock sends none): an idle stream stays alive, and a client that reopens one resumes from
    a recent resourceVersion."""
    while True:
        await asyncio.sleep(interval)
        await k.bookmark_all()


@contextlib.asynccontextmanager
async def emulator(real_objects: bool = False) -> AsyncIterator[ApiServerEmulator]:
    """kmock serving on a loopback port, the operator's resources declared, bookmarks sent.

    ``real_objects``: objects as a real API server keeps them (``managedFields``, a Job's defaults;
    :class:`~asynctask_operator.testing.apiserver.ApiServer`)."""
    async with (
        ApiServerEmulator(model=ApiServer(real_objects=real_objects)) as k,
        kmock.Server(k, server_cls=QuickShutdownServer),
    ):
        declare_all(k)
        keepalive = asyncio.create_task(bookmarks(k))
        try:
            yield k
        finally:
            keepalive.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keepalive


async def create_tasks(
    bench: Bench,
    names: Sequence[str],
    spec: dict[str, Any] | Callable[[int], dict[str, Any]],
    concurrency: int,
    rate: float | None,
) -> None:
    """POST every task, ``concurrency`` at once, paced at ``rate`` per second when given (``spec``: the
    same for all, or the spec of the i-th task)."""
    sem = asyncio.Semaphore(concurrency)
    start = time.monotonic()

    async def one(i: int, name: str) -> None:
        if rate:
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        async with sem:
            await bench.cluster.create_task(name, spec(i) if callable(spec) else spec)

    await asyncio.gather(*(one(i, name) for i, name in enumerate(names)))


class PhaseLog:
    """Every phase the operator wrote on each task, with the time kmock answered the write.

    Read from the status patches themselves (a patch names the phase when it changes it)."""

    def __init__(self, k: ApiServerEmulator) -> None:
        self.history: dict[str, list[tuple[str, float]]] = {}
        self.reached: collections.Counter[str] = collections.Counter()  # tasks that reached each phase
        k.listeners.append(self._on_hit)

    def _on_hit(self, hit: Hit, request: Any) -> None:
        if not (hit.operator and hit.resource == "asynctasks/status" and hit.status == 200 and hit.name):
            return
        phase = ((request.data or {}).get("status") or {}).get("phase") if isinstance(request.data, dict) else None
        if phase:
            seen = self.history.setdefault(hit.name, [])
            if phase not in (p for p, _ in seen):
                self.reached[phase] += 1
            seen.append((phase, hit.t))

    def time_of(self, name: str, phase: str, nth: int = 1) -> float | None:
        """When ``name`` entered ``phase`` for the ``nth`` time (1: the first)."""
        times = [t for p, t in self.history.get(name, ()) if p == phase]
        return times[nth - 1] if len(times) >= nth else None

    def phase(self, name: str) -> str | None:
        seen = self.history.get(name)
        return seen[-1][0] if seen else None


# --------------------------------------------------------------------------- the operator


# After the harness's own options (tuned for tests), the operator's defaults again: the benchmarks
# measure the operator as it runs in production. The HTTP port stays off (benchmarks may run at once).
PRODUCTION_ARGS = ("--http-port", "0", "--queue-status-seconds", "5", "--unknown-type-grace", "10")


class Bench:
    """One benchmark's kmock, work folder, kubeconfig, and operator process."""

    def __init__(self, k: ApiServerEmulator, workdir: pathlib.Path, *operator_args: str) -> None:
        self.k = k
        self.cluster = Cluster(k)
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.kubeconfig = workdir / "kubeconfig"
        write_kubeconfig(self.kubeconfig, str(k.url))
        args = (*PRODUCTION_ARGS, *operator_args)
        self.operator = Operator(self.kubeconfig, workdir / "operator.log", *args, verbose=False)
        self.operator.pythonpath = os.environ.get("ASYNCTASK_BENCH_OPERATOR_PATH", "")

    async def start(self, timeout: float = 60) -> float:
        """Start the operator; return the seconds until it logged ``synced``."""
        t0 = time.monotonic()
        await self.operator.start(timeout)
        return time.monotonic() - t0

    @property
    def stats(self) -> ProcStats:
        return ProcStats(self.operator.pid)

    async def stop(self) -> None:
        """SIGKILL and wait: nothing is measured at shutdown (a graceful stop takes kopf ~5 s)."""
        self.operator.kill()
        if self.operator.proc is not None:
            await self.operator.proc.wait()


# --------------------------------------------------------------------------- /proc figures

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class ProcStats:
    """CPU seconds and memory of a (Linux) process, from /proc."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def cpu_seconds(self) -> float:
        """User + system CPU time of every thread of the process so far."""
        text = pathlib.Path(f"/proc/{self.pid}/stat").read_text()
        fields = text.rsplit(")", 1)[1].split()  # after "pid (comm)": field 3 onwards
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime: fields 14 and 15

    def _status_kb(self, key: str) -> int:
        for line in pathlib.Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
        raise KeyError(key)

    def rss_mb(self) -> float:
        return self._status_kb("VmRSS") / 1024

    def peak_rss_mb(self) -> float:
        """VmHWM: the largest resident set the process has had."""
        return self._status_kb("VmHWM") / 1024


# --------------------------------------------------------------------------- waiting


async def wait_for(
    check: Callable[[], bool], timeout: float, what: str, interval: float = 0.05, operator: Operator | None = None
) -> float:
    """Poll ``check`` until true; return the time it became true (monotonic). Fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return time.monotonic()
        if operator is not None and operator.proc is not None and operator.proc.returncode is not None:
            raise BenchError(f"the operator exited ({operator.proc.returncode}) while waiting for {what}")
        if time.monotonic() > deadline:
            raise BenchError(f"timed out after {timeout:.0f}s waiting for {what}")
        await asyncio.sleep(interval)


async def progress(
    count: Callable[[], int], goal: int, stall: float, what: str, operator: Operator | None = None
) -> bool:
    """Wait until ``count()`` reaches ``goal``; ``False`` if it stops growing for ``stall`` seconds first."""
    last, since = count(), time.monotonic()
    while last < goal:
        await asyncio.sleep(0.1)
        if operator is not None and operator.proc is not None and operator.proc.returncode is not None:
            raise BenchError(f"the operator exited ({operator.proc.returncode}) while waiting for {what}")
        now = count()
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since > stall:
            return False
    return True


async def quiet(
    k: ApiServerEmulator, stats: ProcStats, window: float = 2.0, timeout: float = 120.0, cpu_share: float = 0.1
) -> float:
    """Wait until the operator made no request and used under ``cpu_share`` of a core for ``window`` s.

    Return the monotonic time its work ended: its last request, or when its CPU use
    dropped, whichever is later (both measured at 0.1 s resolution)."""
    deadline = time.monotonic() + timeout
    samples: list[tuple[float, float]] = []  # (time, cpu seconds)
    busy_until = time.monotonic()
    while True:
        now = time.monotonic()
        samples.append((now, stats.cpu_seconds()))
        if len(samples) >= 2 and samples[-1][1] - samples[-2][1] > cpu_share * (samples[-1][0] - samples[-2][0]):
            busy_until = now
        last = max(busy_until, k.last_operator_hit)
        if now - last >= window:
            return last
        if now > deadline:
            raise BenchError(f"the operator did not settle within {timeout:.0f}s")
        await asyncio.sleep(0.1)


class BenchError(Exception):
    pass


# --------------------------------------------------------------------------- playing the Job controller


class JobPlayer:
    """Completes every Job the operator creates, as the Job controller would (status Complete).

    Each Job completes ``run_seconds`` after it appears. No pod is created: a Job's Complete condition alone decides a success. Patches go
    through kmock's HTTP API (``concurrency`` at once), so the operator's watch sees them."""

    def __init__(
        self,
        k: ApiServerEmulator,
        concurrency: int = 16,
        names: Callable[[str], bool] | None = None,
        run_seconds: float = 0.0,
    ) -> None:
        self.cluster = Cluster(k)
        self.names = names
        self.run_seconds = run_seconds
        self._sem = asyncio.Semaphore(concurrency)
        self._background = Background()
        self.completed = 0
        self.errors = self._background.errors
        k.listeners.append(self._on_hit)

    def _on_hit(self, hit: Hit, request: Any) -> None:
        created = hit.operator and hit.verb == "create" and hit.resource == "jobs" and hit.status == 200
        if created and hit.name and (self.names is None or self.names(hit.name)):
            self._background.spawn(self._complete(hit.name))

    async def _complete(self, job: str) -> None:
        if self.run_seconds:
            await asyncio.sleep(self.run_seconds)
        async with self._sem:
            await self.cluster.patch(
                BATCH,
                f"jobs/{job}",
                {
                    "status": {
                        "startTime": utc_now(),
                        "succeeded": 1,
                        "completionTime": utc_now(),
                        "conditions": [{"type": "Complete", "status": "True"}],
                    }
                },
            )
            self.completed += 1

    async def close(self) -> None:
        await self._background.close()


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


# --------------------------------------------------------------------------- figures and output


def percentile(values: Sequence[float], p: float) -> float:
    """The ``p``-th percentile (nearest rank) of ``values``; NaN when there are none."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def rounded(value: float, digits: int = 3) -> float | None:
    return None if value is None or math.isnan(value) else round(value, digits)


def table(title: str, headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    cells = [[str(h) for h in headers]] + [[_cell(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = [title, "  ".join(h.ljust(w) for h, w in zip(cells[0], widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    for row in cells[1:]:
        lines.append("  ".join((v.rjust(w) if _numeric(v) else v.ljust(w)) for v, w in zip(row, widths, strict=True)))
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".") if value == value else "-"
    return str(value)


def _numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def emit(tables: Sequence[str], result: dict[str, Any], json_path: str | None) -> None:
    """Print the tables, then the result as one JSON object on one line (and write it to ``json_path``)."""
    for text in tables:
        print(text)
        print()
    line = json.dumps(result, sort_keys=True)
    print(line)
    sys.stdout.flush()
    if json_path:
        pathlib.Path(json_path).write_text(line + "\n")


def add_window_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--short-attempt-seconds",
        type=float,
        default=0.0,
        help="run the operator with this short-attempt window (docs/adr/0029; default 0: off, its default)",
    )


def window_args(seconds: float) -> tuple[str, ...]:
    return ("--short-attempt-seconds", f"{seconds:g}") if seconds else ()


def add_objects_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--objects",
        choices=("real", "plain"),
        default="real",
        help="real (default): objects with managedFields and a Job's defaults, the cluster's controllers played "
        "write by write (testing/jobrunner.py); plain: the objects as sent, a Job completed in one write "
        "(the benchmarks before issue 29)",
    )


def parser(description: str, default_n: int) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--n", type=int, default=default_n, help=f"number of tasks (default {default_n})")
    p.add_argument("--json", metavar="PATH", help="also write the result (one JSON object) to PATH")
    p.add_argument("--workdir", metavar="DIR", help="folder for the kubeconfig and operator.log (default: a temp dir)")
    return p


def workdir(path: str | None, name: str) -> pathlib.Path:
    if path:
        return pathlib.Path(path)
    return pathlib.Path(tempfile.mkdtemp(prefix=f"asynctask-bench-{name}-"))


def tasktype_body(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "asynctask.dev/v1alpha1", "kind": "TaskType", "metadata": {"name": name}, "spec": spec}


def task_body(name: str, spec: dict[str, Any], **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "asynctask.dev/v1alpha1",
        "kind": "AsyncTask",
        "metadata": {"name": name, **meta},
        "spec": spec,
    }
