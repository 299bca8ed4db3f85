"""The archive: fill, ingest, history pages deep and shallow, statistics over 30 days, archiver RSS.

    python -m bench.archive [--n 1000000] [--sqlite-n 100000] [--ingest 20000] [--rss-tasks 5000]
                            [--runs 200] [--dsn postgresql://...] [--json PATH]

1. PostgreSQL (its own server, started here as the test suite does, unless ``--dsn``): N finished
   tasks (bench/archive_data.py: 20 namespaces of uneven size, 10 types, 5 queues, 90 days) are
   loaded with COPY, rows made by the archiver's own mapping (records.row_of), then ANALYZE.
2. Ingest: ``--ingest`` more tasks through the recorder's own write path (Recorder.write: rows,
   one attempt log each read and compressed, one upsert per batch of 200, the marks), against an
   API that answers at once: finished tasks per second, sustained; and the same with
   ``--record-phases`` (three rows per task).
3. History, in the largest namespace, newest first, ``--runs`` times each: page 1 and page 1,000
   (50 a page, the cursor walked there first) with ``phase=Succeeded`` and ``tier=backend``; page 1
   of a selective filter (``phase=Failed``, ``app=app-07``); p50 and p99.
4. Statistics over the last 30 days grouped by type (one namespace, then all), p50 and p99; the
   EXPLAIN of each statement is printed with ``--explain``.
5. SQLite: ``--sqlite-n`` tasks through the write path; the same history pages.
6. The archiver process (``asynctask-archive``, SQLite) against kmock with ``--rss-tasks`` finished
   tasks present: time to archive and mark them all, and its peak RSS.

No figure is asserted: docs/performance.md records them (and how they were run).
"""

from __future__ import annotations

import asyncio
import json
import pathlib
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from asynctask_operator.archive import ArchiveReader, HistoryQuery, Scope
from asynctask_operator.archive.backlog import Backlog, Pending
from asynctask_operator.archive.database import engine_of, migrate
from asynctask_operator.archive.history import page_statement
from asynctask_operator.archive.metrics import ArchiveMetrics
from asynctask_operator.archive.recorder import Recorder
from asynctask_operator.archive.records import row_of
from asynctask_operator.archive.schema import tasks as tasks_table
from asynctask_operator.archive.settings import ArchiveSettings
from asynctask_operator.archive.writes import upsert_tasks
from asynctask_operator.testing.postgres import PostgresServer
from bench.archive_data import DAY, tasks
from bench.common import emit, percentile, rounded, table, workdir

PAGE = 50
DEEP = 1000
NOW = 1_780_000_000.0  # 2026-05-28: the data's "now"


class InstantApi:
    """What the recorder asks of the API server, answered at once: one pod per attempt, a 2 KB log, marks."""

    def __init__(self) -> None:
        self.marks = 0
        self.line = "x" * 99

    async def list_objects(
        self, resource: Any, namespace: str | None = None, label_selector: str | None = None
    ) -> list[dict[str, Any]]:
        labels = dict(part.split("=", 1) for part in (label_selector or "").split(",") if "=" in part)
        return [{"metadata": {"name": f"{labels.get('asynctask.dev/task')}-pod", "labels": labels},
                 "spec": {"containers": [{"name": "main"}]}}]  # fmt: skip

    async def pod_log(self, namespace: str, name: str, **_: Any) -> AsyncIterator[str]:
        for _ in range(20):
            yield self.line

    async def patch(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        self.marks += 1
        return {}


async def timed(call: Callable[[], Awaitable[object]], runs: int) -> dict[str, float | None]:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        await call()
        times.append((time.perf_counter() - t0) * 1000)
    return {"p50_ms": rounded(percentile(times, 50), 2), "p99_ms": rounded(percentile(times, 99), 2)}


# --------------------------------------------------------------------------- filling


async def copy_fill(engine: AsyncEngine, n: int, chunk: int = 20_000) -> float:
    """PostgreSQL: ``n`` rows by COPY (the archiver's own rows); seconds."""
    columns = [c.name for c in tasks_table.columns]
    t0 = time.monotonic()
    stream = tasks(n, NOW)
    done = 0
    async with engine.connect() as conn:
        raw = (await conn.get_raw_connection()).driver_connection
        assert raw is not None
        while done < n:
            records = []
            for obj in (next(stream) for _ in range(min(chunk, n - done))):
                values = row_of(obj, NOW).values()
                values["labels"] = json.dumps(values["labels"])
                records.append(tuple(values[c] for c in columns))
            await raw.copy_records_to_table("tasks", records=records, columns=columns)
            done += len(records)
            print(f"  copied {done:,} of {n:,} ({done / (time.monotonic() - t0):,.0f} rows/s)", flush=True)
        await raw.execute("VACUUM ANALYZE tasks")
    return time.monotonic() - t0


async def write_fill(engine: AsyncEngine, n: int, batch: int = 500) -> float:
    """Any database: ``n`` rows through the upsert, ``batch`` per transaction; seconds."""
    t0 = time.monotonic()
    stream = tasks(n, NOW)
    for start in range(0, n, batch):
        rows = [row_of(next(stream), NOW) for _ in range(min(batch, n - start))]
        async with engine.begin() as conn:
            await upsert_tasks(conn, rows)
    return time.monotonic() - t0


async def ingest(engine: AsyncEngine, n: int, *, phases: bool, batch: int = 200) -> dict[str, Any]:
    """``n`` finished tasks through Recorder.write, in batches as the recorder takes them."""
    api = InstantApi()
    settings = ArchiveSettings(batch_size=batch)
    recorder = Recorder(engine, api, Backlog(batch), settings, ArchiveMetrics(), wall=lambda: NOW)  # type: ignore[arg-type]
    start = 2 * 10**7 if phases else 10**7  # uids of their own: each run inserts, none updates the other's
    objs = list(tasks(n, NOW, seed=99, start=start, prefix="ingest" + ("-phases" if phases else "")))
    t0 = time.monotonic()
    rows = 0
    for start in range(0, n, batch):
        part = objs[start : start + batch]
        if phases:  # Pending and Running first, each its own write, as the watch would see them
            for phase in ("Pending", "Running"):
                early = [_unfinished(o, phase) for o in part]
                await recorder.write([Pending(o["metadata"]["uid"], o, mark=False, seen=0.0) for o in early])
                rows += len(early)
        await recorder.write([Pending(o["metadata"]["uid"], o, mark=True, seen=0.0) for o in part])
        rows += len(part)
    seconds = time.monotonic() - t0
    return {"tasks": n, "seconds": round(seconds, 2), "tasks_per_s": round(n / seconds), "rows_per_s": round(rows / seconds),
            "marks": api.marks}  # fmt: skip


def _unfinished(obj: dict[str, Any], phase: str) -> dict[str, Any]:
    status = {
        k: v for k, v in obj["status"].items() if k not in ("completionTime", "durationSeconds", "result", "error")
    }
    meta = {
        **obj["metadata"],
        "resourceVersion": str(int(obj["metadata"]["resourceVersion"]) - (2 if phase == "Pending" else 1)),
    }
    return {**obj, "metadata": meta, "status": {**status, "phase": phase}}


# --------------------------------------------------------------------------- reading


async def biggest_namespace(engine: AsyncEngine) -> str:
    async with engine.connect() as conn:
        row = (
            await conn.execute(text("SELECT namespace FROM tasks GROUP BY namespace ORDER BY count(*) DESC LIMIT 1"))
        ).first()
    assert row is not None
    return str(row[0])


async def cursor_at(reader: ArchiveReader, query: HistoryQuery, page: int) -> tuple[str | None, int]:
    """The cursor of page ``page`` (walking there), and the pages there were on the way."""
    cursor = None
    for n in range(1, page):
        answer = await reader.page(HistoryQuery(**{**vars(query), "cursor": cursor}))
        if answer.next_cursor is None:
            return cursor, n
        cursor = answer.next_cursor
    return cursor, page


async def history(engine: AsyncEngine, namespace: str, runs: int, deep: int = DEEP) -> dict[str, Any]:
    reader = ArchiveReader(engine)
    broad = HistoryQuery(namespaces=(namespace,), phase="Succeeded", label_selector="tier=backend", limit=PAGE)
    narrow = HistoryQuery(namespaces=(namespace,), phase="Failed", label_selector="app=app-07", limit=PAGE)
    t0 = time.monotonic()
    cursor, reached = await cursor_at(reader, broad, deep)
    walk = time.monotonic() - t0
    deep_query = HistoryQuery(**{**vars(broad), "cursor": cursor})
    return {
        "namespace": namespace,
        "page_1": await timed(lambda: reader.page(broad), runs),
        f"page_{reached}": await timed(lambda: reader.page(deep_query), runs),
        "selective_page_1": await timed(lambda: reader.page(narrow), runs),
        "walk_seconds": round(walk, 2),
        "deep_page": reached,
    }


async def statistics(engine: AsyncEngine, namespace: str, runs: int) -> dict[str, Any]:
    reader = ArchiveReader(engine)
    one = Scope((namespace,), NOW - 30 * DAY, NOW)
    every = Scope(None, NOW - 30 * DAY, NOW)
    return {
        "by_type_one_namespace": await timed(lambda: reader.figures(one, "type"), runs),
        "by_type_all_namespaces": await timed(lambda: reader.figures(every, "type"), runs),
        "page_of_all": await timed(lambda: reader.statistics(one), max(runs // 4, 1)),
    }


async def explain(engine: AsyncEngine, namespace: str) -> dict[str, str]:
    """PostgreSQL's plans (EXPLAIN ANALYZE) of the history page and the statistics, with their values."""
    from asynctask_operator.archive.figures import figures_statement

    query = HistoryQuery(namespaces=(namespace,), phase="Succeeded", label_selector="tier=backend", limit=PAGE)
    selective = HistoryQuery(namespaces=(namespace,), phase="Failed", label_selector="app=app-07", limit=PAGE)
    scope = Scope((namespace,), NOW - 30 * DAY, NOW)
    statements = {
        "history page 1 (phase=Succeeded, tier=backend)": page_statement(query),
        "history page 1 (phase=Failed, app=app-07)": page_statement(selective),
        "statistics by type, 30 days": figures_statement(scope, "type"),
        "statistics by type, 30 days, every namespace": figures_statement(
            Scope(None, scope.since, scope.until), "type"
        ),
    }
    plans: dict[str, str] = {}
    async with engine.connect() as conn:
        for name, statement in statements.items():
            sql = str(statement.compile(conn.sync_engine, compile_kwargs={"literal_binds": True}))
            plans[name] = "\n".join(r[0] for r in await conn.execute(text("EXPLAIN (ANALYZE, BUFFERS) " + sql)))
    return plans


# --------------------------------------------------------------------------- the archiver process


async def archiver_rss(n: int, folder: pathlib.Path) -> dict[str, Any]:
    """The real archiver process, SQLite, against kmock with ``n`` finished tasks: time and peak RSS."""
    from asynctask_operator.adapters.kube import ASYNCTASKS
    from asynctask_operator.testing.archiving import ArchiverProcess
    from asynctask_operator.testing.cluster import write_kubeconfig
    from bench.common import ProcStats, declare_all, emulator

    async with emulator() as k:
        declare_all(k)
        for obj in tasks(n, time.time(), seed=7, prefix="rss"):
            k.model.put(ASYNCTASKS, obj)  # as it is, with a new resourceVersion (and its event)
        kubeconfig = folder / "kubeconfig"
        write_kubeconfig(kubeconfig, str(k.url))
        archiver = ArchiverProcess(kubeconfig, f"sqlite:///{folder / 'rss.db'}", folder / "archive.log",
                                   "--batch-size", "200")  # fmt: skip
        t0 = time.monotonic()
        await archiver.start(timeout=120)
        assert archiver.proc is not None
        stats = ProcStats(archiver.proc.pid)
        engine = engine_of(f"sqlite:///{folder / 'rss.db'}")
        try:
            while True:
                async with engine.connect() as conn:
                    written = int((await conn.execute(text("SELECT count(*) FROM tasks"))).scalar() or 0)
                marks = sum(1 for h in k.hits if h.verb == "patch" and h.resource == "asynctasks")
                if written >= n and marks >= n:
                    break
                if time.monotonic() - t0 > 900:
                    raise RuntimeError(f"archived {written} of {n} in 15 minutes")
                await asyncio.sleep(0.5)
            seconds = time.monotonic() - t0
            rss, peak = stats.rss_mb(), stats.peak_rss_mb()
        finally:
            await engine.dispose()
            await archiver.stop()
    return {"tasks": n, "seconds": round(seconds, 1), "tasks_per_s": round(n / seconds), "rss_mb": round(rss, 1),
            "peak_rss_mb": round(peak, 1)}  # fmt: skip


# --------------------------------------------------------------------------- the run


async def run(args: Any) -> dict[str, Any]:
    folder = workdir(args.workdir, "archive")
    result: dict[str, Any] = {"bench": "archive", "n": args.n, "sqlite_n": args.sqlite_n}
    server = None
    dsn = args.dsn
    if dsn is None:
        server = PostgresServer.find()
        if server is None:
            raise SystemExit("PostgreSQL is not installed here: give --dsn")
        server.start()
        server.psql("ALTER SYSTEM SET shared_buffers = '512MB'")
        server.stop()
        server.start()
        server.create_database("bench")
        dsn = server.dsn("bench")
    engine = engine_of(dsn, statement_timeout_ms=None)
    try:
        await migrate(engine)
        if args.n:
            print(f"filling PostgreSQL with {args.n:,} tasks (COPY)", flush=True)
            result["fill_seconds"] = round(await copy_fill(engine, args.n), 1)
        if args.ingest:
            print(f"ingesting {args.ingest:,} tasks through the recorder", flush=True)
            result["ingest"] = await ingest(engine, args.ingest, phases=False)
            result["ingest_with_phases"] = await ingest(engine, args.ingest // 2, phases=True)
        namespace = await biggest_namespace(engine)
        print(f"reading (namespace {namespace})", flush=True)
        result["history"] = await history(engine, namespace, args.runs)
        result["statistics"] = await statistics(engine, namespace, max(args.runs // 10, 5))
        async with engine.connect() as conn:
            result["rows"] = int((await conn.execute(text("SELECT count(*) FROM tasks"))).scalar() or 0)
            result["table_mb"] = round(
                int((await conn.execute(text("SELECT pg_total_relation_size('tasks')"))).scalar() or 0) / 2**20
            )
        if args.explain:
            result["plans"] = await explain(engine, namespace)
    finally:
        await engine.dispose()
        if server is not None:
            server.remove()
    if args.sqlite_n:
        path = folder / "bench.db"
        path.unlink(missing_ok=True)
        lite = engine_of(f"sqlite:///{path}")
        try:
            await migrate(lite)
            print(f"filling SQLite with {args.sqlite_n:,} tasks (the upsert)", flush=True)
            seconds = await write_fill(lite, args.sqlite_n)
            result["sqlite_fill"] = {"seconds": round(seconds, 1), "tasks_per_s": round(args.sqlite_n / seconds)}
            namespace = await biggest_namespace(lite)
            result["sqlite_history"] = await history(lite, namespace, args.runs, deep=100)
            result["sqlite_statistics"] = await statistics(lite, namespace, 5)
        finally:
            await lite.dispose()
    if args.rss_tasks:
        print(f"the archiver process against kmock with {args.rss_tasks:,} finished tasks", flush=True)
        result["archiver"] = await archiver_rss(args.rss_tasks, folder)
    return result


def render(result: dict[str, Any]) -> list[str]:
    out = []
    rows = []
    for source, key in (("PostgreSQL", "history"), ("SQLite", "sqlite_history")):
        if key in result:
            h = result[key]
            for name, figures in h.items():
                if isinstance(figures, dict):
                    rows.append([source, name, figures["p50_ms"], figures["p99_ms"]])
    for source, key in (("PostgreSQL", "statistics"), ("SQLite", "sqlite_statistics")):
        for name, figures in (result.get(key) or {}).items():
            rows.append([source, f"30 d statistics {name}", figures["p50_ms"], figures["p99_ms"]])
    out.append(table(f"Reads (N={result['n']:,} PostgreSQL, {result['sqlite_n']:,} SQLite; {PAGE} a page)",
                     ["database", "read", "p50 ms", "p99 ms"], rows))  # fmt: skip
    writes = []
    if "fill_seconds" in result:
        rate = result["n"] / result["fill_seconds"] if result["fill_seconds"] else None  # a tiny --n rounds to 0 s
        writes.append(["PostgreSQL COPY", result["n"], result["fill_seconds"], round(rate) if rate else "-"])
    for key, label in (("ingest", "recorder write path"), ("ingest_with_phases", "recorder, --record-phases")):
        if key in result:
            r = result[key]
            writes.append([label, r["tasks"], r["seconds"], r["tasks_per_s"]])
    if "sqlite_fill" in result:
        writes.append(
            [
                "SQLite upsert",
                result["sqlite_n"],
                result["sqlite_fill"]["seconds"],
                result["sqlite_fill"]["tasks_per_s"],
            ]
        )
    if "archiver" in result:
        a = result["archiver"]
        writes.append(
            [f"archiver process via kmock (peak RSS {a['peak_rss_mb']} MB)", a["tasks"], a["seconds"], a["tasks_per_s"]]
        )
    out.append(table("Writes", ["path", "tasks", "seconds", "tasks/s"], writes))
    for name, plan in (result.get("plans") or {}).items():
        out.append(f"EXPLAIN {name}:\n{plan}")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=1_000_000, help="tasks in PostgreSQL (default 1,000,000)")
    p.add_argument("--sqlite-n", type=int, default=100_000, help="tasks in SQLite (default 100,000)")
    p.add_argument("--ingest", type=int, default=20_000, help="tasks through the recorder's write path")
    p.add_argument("--rss-tasks", type=int, default=5000, help="finished tasks for the archiver process (0: skip)")
    p.add_argument("--runs", type=int, default=200, help="reads of each page")
    p.add_argument("--dsn", help="an existing PostgreSQL database (emptied first: a scratch one!)")
    p.add_argument("--explain", action="store_true", help="print PostgreSQL's plans")
    p.add_argument("--json", metavar="PATH")
    p.add_argument("--workdir", metavar="DIR")
    args = p.parse_args(argv)
    random.seed(1)
    result = asyncio.run(run(args))
    emit(render(result), result, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
