"""The admission ledger's own cost: admissions per second with N tasks waiting, with and without keys.

    python -m bench.admission [--n 10000] [--keys 1000] [--concurrency 100] [--repeat 3] [--json PATH]

In process, no API server: the ledger (core/queueing.py) is what every admission goes through, so
its cost per admission is the part of an admission the keys and fairness can add to. Each variant:

1. N tasks ask for a slot (``request``), all in one TaskQueue of ``--concurrency``;
2. the queue is drained: admit, then each admitted task is observed ``Running`` and then
   ``Succeeded`` (what the intake tells the ledger), and so on until every task was admitted.

Variants: ``plain`` (no key: today's path), ``keys`` (N tasks over ``--keys`` keys, limit 1: ten
tasks per key wait behind each other), ``keys+fair`` (the same, the queue fair by key). It reports
admissions per second over the drain (the median of ``--repeat`` runs), µs per admission and per
request, and how long :func:`~asynctask_operator.core.queueing.queue_positions` takes for the same N
waiting tasks (what a gateway computes for a namespace, once per change of its cache).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from typing import Any

from asynctask_operator.core.concurrency import KeyClaim
from asynctask_operator.core.models import Fairness, TaskQueueSpec
from asynctask_operator.core.positions import WaitingTask, queue_positions
from asynctask_operator.core.queueing import AdmissionLedger, Seen, admission_order
from bench.common import emit, parser, table

Q = ("bench", "q")
VARIANTS = ("plain", "keyed", "keyed_fair")


def stamp(i: int) -> str:
    return f"2026-01-01T{i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z"


def claim_of(i: int, variant: str, keys: int) -> KeyClaim | None:
    return None if variant == "plain" else KeyClaim(f"key-{i % keys}")


def run(n: int, keys: int, concurrency: int, variant: str) -> dict[str, float]:
    ledger: AdmissionLedger[str] = AdmissionLedger()
    fairness = Fairness(by="Key") if variant == "keyed_fair" else None
    ledger.set_queue(Q, TaskQueueSpec(concurrency=concurrency, fairness=fairness))
    names = [f"t{i:06d}" for i in range(n)]
    began = time.perf_counter()
    for i, name in enumerate(names):
        ledger.request(name, Q, admission_order(0, stamp(i), name), 0.0, claim_of(i, variant, keys))
    requested = time.perf_counter() - began
    done, holding = 0, []
    began = time.perf_counter()
    while done < n:
        admitted, _ = ledger.admit(Q, 0.0)
        holding += admitted
        done += len(admitted)
        for name in holding:  # each ends: Running, then Succeeded (a turn recorded in a fair queue)
            i = int(name[1:])
            claim = claim_of(i, variant, keys)
            turn = ledger.turn_of(name)
            recorded = (str(turn[0]), turn[1]) if turn else None
            ledger.observe(name, Seen(Q, "Running", claim=claim, newness=(stamp(i), name), turn=recorded))
            ledger.observe(name, Seen(Q, "Succeeded", claim=claim, newness=(stamp(i), name), turn=recorded))
        holding = []
    drained = time.perf_counter() - began
    return {
        "admissions_per_s": n / drained,
        "us_per_admission": drained / n * 1e6,
        "us_per_request": requested / n * 1e6,
    }


def positions_cost(n: int, keys: int, concurrency: int, fair: bool) -> float:
    """Seconds for queue_positions over n waiting tasks over ``keys`` keys, ``concurrency`` running."""
    tasks = [
        WaitingTask(f"t{i:06d}", "q", 0, stamp(i), key=f"key-{i % keys}", group=f"key-{i % keys}" if fair else None)
        for i in range(n)
    ]
    tasks += [
        WaitingTask(f"r{i:04d}", "q", 0, stamp(i), "Running", key=f"key-{i % keys}", started=stamp(i))
        for i in range(min(concurrency, keys))
    ]
    began = time.perf_counter()
    positions = queue_positions(tasks, {"q": concurrency})
    assert len(positions) == n
    return time.perf_counter() - began


def main(argv: Sequence[str] | None = None) -> int:
    cli = parser(__doc__.split("\n\n")[0], default_n=10_000)
    cli.add_argument("--keys", type=int, default=1000, help="distinct keys (default 1000)")
    cli.add_argument("--concurrency", type=int, default=100, help="the queue's concurrency (default 100)")
    cli.add_argument("--repeat", type=int, default=3, help="runs of each variant; the median is reported")
    args = cli.parse_args(argv)
    result: dict[str, Any] = {"bench": "admission", "n": args.n, "keys": args.keys, "concurrency": args.concurrency}
    rows = []
    for variant in VARIANTS:
        runs = [run(args.n, args.keys, args.concurrency, variant) for _ in range(args.repeat)]
        median = {k: round(statistics.median(r[k] for r in runs), 2) for k in runs[0]}
        result[variant] = median
        rows.append([variant, median["admissions_per_s"], median["us_per_admission"], median["us_per_request"]])
    for fair in (False, True):
        seconds = statistics.median(
            positions_cost(args.n, args.keys, args.concurrency, fair) for _ in range(args.repeat)
        )
        result[f"positions_ms{'_fair' if fair else ''}"] = round(seconds * 1000, 1)
    text = table(
        f"Admission ledger: {args.n} tasks waiting, {args.keys} keys (limit 1), queue concurrency {args.concurrency}",
        ["variant", "admissions/s", "µs per admission", "µs per request"],
        rows,
    )
    positions = (
        f"queue_positions over {args.n} waiting tasks: {result['positions_ms']} ms, "
        f"{result['positions_ms_fair']} ms in a fair queue"
    )
    emit([text, positions], result, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
