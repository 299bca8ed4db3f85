"""The web console's task table over many tasks: server time and bytes of a page.

    python -m bench.console [--n 10000] [--requests 50] [--json PATH]

The gateway's application runs in this process with ``--n`` tasks in its cache (a realistic mix
of phases, types, queues, progress and labels in one namespace), a signed-in user whose reviews
answer at once (FakeKube), and requests made through the ASGI interface: the time measured is the
server's own (routing, authorization from the review cache, filtering, ordering, rendering),
without a network or a browser. Figures for:

- ``first``: the first page right after the cache filled (every row read from its object once);
- ``page``: the first page again (rows kept), p50 and p99 over ``--requests``;
- ``filtered``: ``?phase=Failed&type=t3``; ``sorted``: ``?sort=duration``; ``last``: the last page;
- ``bytes``: the first page's body, as sent (the console sends it uncompressed) and gzipped.

The targets (issue 17): the first page of 10,000 tasks in ≤ 300 ms server time and ≤ 200 KB.
"""

from __future__ import annotations

import asyncio
import gzip
import time
from collections.abc import Sequence
from typing import Any

import httpx

from asynctask_operator.core.clocks import Clocks
from asynctask_operator.gateway.access import Gateway
from asynctask_operator.gateway.app import create_app, freeze_cache
from asynctask_operator.gateway.settings import GatewaySettings
from asynctask_operator.testing.fakekube import FakeKube
from bench.common import emit, parser, percentile, rounded, table

NS = "media"
PHASES = ("Succeeded", "Succeeded", "Succeeded", "Failed", "Running", "Pending", "Cancelled")
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def task(i: int) -> dict[str, Any]:
    phase = PHASES[i % len(PHASES)]
    status: dict[str, Any] = {"phase": phase, "attempt": 1 + i % 3}
    if phase != "Pending":
        status |= {"startTime": "2026-12-01T10:00:00Z", "queuedTime": "2026-12-01T09:59:00Z"}
    if phase in ("Succeeded", "Failed", "Cancelled"):
        status |= {"completionTime": "2026-12-01T10:05:00Z", "durationSeconds": float(60 + i % 600)}
    if phase == "Running":
        status["progress"] = {"percent": i % 100, "stepsDone": i % 10, "stepsTotal": 10, "message": f"step {i % 10}"}
    if phase == "Failed":
        status |= {"reason": "BackoffLimitExceeded", "message": "the container exited with code 1"}
    return {
        "apiVersion": "asynctask.dev/v1alpha1",
        "kind": "AsyncTask",
        "metadata": {
            "name": f"task-{i:06d}",
            "namespace": NS,
            "uid": f"uid-{i}",
            "resourceVersion": str(1000 + i),
            "creationTimestamp": f"2026-12-01T{i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z",
            "labels": {"team": f"team-{i % 7}"},
        },
        "spec": {"type": f"t{i % 5}", "queue": f"q{i % 3}"},
        "status": status,
    }


async def timed(client: httpx.AsyncClient, url: str) -> tuple[float, httpx.Response]:
    start = time.perf_counter()
    answer = await client.get(url)
    elapsed = (time.perf_counter() - start) * 1000
    answer.raise_for_status()
    return elapsed, answer


async def measure(n: int, requests: int) -> dict[str, Any]:
    fake = FakeKube()
    fake.reviews({"bench-token": ("bench", ())})
    gateway = Gateway.build(fake, GatewaySettings(namespaces=(NS,), rate_limit=0.0), Clocks())
    app = create_app(gateway, follow_api=False)
    for store in gateway.stores:
        store.listing_done(set(), 0.0, NS)
    for i in range(n):
        gateway.tasks.event("ADDED", task(i))
    freeze_cache()  # as the gateway does once its caches are loaded
    assert len(gateway.tasks.objects) == n and fake.counter.total() == 0
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        signed = await client.post("/ui/login", content="token=bench-token", headers=FORM)
        assert signed.status_code == 303, signed.text
        first, page = await timed(client, "/ui/")
        assert page.text.count("<tr data-key=") == 50
        figures: dict[str, Any] = {"first": {"ms": rounded(first, 1)}}
        for label, url in (
            ("page", "/ui/"),
            ("filtered", "/ui/?phase=Failed&type=t3"),
            ("sorted", "/ui/?sort=duration"),
            ("last", f"/ui/?page={(n + 49) // 50}"),
        ):
            times = [(await timed(client, url))[0] for _ in range(requests)]
            figures[label] = {"p50_ms": rounded(percentile(times, 50), 1), "p99_ms": rounded(percentile(times, 99), 1)}
        body = page.content
        figures["bytes"] = {"html": len(body), "gzip": len(gzip.compress(body))}
        figures["reviews"] = {"api_requests": fake.counter.total()}  # the TokenReview and the SARs, cached
    figures["n"] = n
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    p = parser("the console's task table: server time and bytes of a page", 10_000)
    p.add_argument("--requests", type=int, default=50, help="requests per figure (default 50)")
    args = p.parse_args(argv)
    result = asyncio.run(measure(args.n, args.requests))
    rows = [("first page, cold", result["first"]["ms"], "-")] + [
        (label, result[label]["p50_ms"], result[label]["p99_ms"]) for label in ("page", "filtered", "sorted", "last")
    ]
    tables = [
        table(f"console: {args.n} tasks, server time (ms)", ("request", "p50 / once", "p99"), rows),
        table("first page, bytes", ("as sent", "gzipped"), [(result["bytes"]["html"], result["bytes"]["gzip"])]),
    ]
    emit(tables, result, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
