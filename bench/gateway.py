"""The HTTP gateway: submit latency beside the raw API create, status GETs from its cache, many SSE clients.

    python -m bench.gateway [--n 300] [--rate 100] [--streams 1000] [--json PATH]

The gateway runs as its own process (``asynctask-gateway``) against kmock's emulator, in this
process, as the operator's benchmarks run (bench/common.py); the API server's model answers the
TokenReviews and SubjectAccessReviews. Measured, each at ``--rate`` requests a second:

- ``raw``: ``KubeClient.create`` of an AsyncTask straight to kmock (what the gateway itself does);
- ``submit``: ``POST /v1/namespaces/default/tasks`` through the gateway (reviews cached after the first);
- ``get``: ``GET …/tasks/{name}`` of those tasks, from the gateway's cache, with httpx;
- ``get_wire``: the same GETs written and read by hand on kept-alive connections (:class:`Connections`):
  the gateway's own time and the loopback's, without the client library's;
- ``streams``: ``--streams`` clients follow one task's events; the task then succeeds; every client
  must see the terminal event, and the gateway must open no watch for them. The gateway's RSS is
  read from /proc with the streams open.

The latencies include this process's own client and kmock, on the same machine: they are an upper
bound of the gateway's overhead, compared side by side with ``raw``.
"""

from __future__ import annotations

import asyncio
import os
import pathlib
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import httpx

from asynctask_operator.adapters.kube import ASYNCTASKS, TASKTYPES
from asynctask_operator.adapters.kubeclient import KubeClient
from asynctask_operator.adapters.kubeconfig import load_configuration
from asynctask_operator.testing.cluster import NS, write_kubeconfig
from bench.common import (
    TASKTYPE_SPEC,
    ProcStats,
    emit,
    emulator,
    parser,
    percentile,
    rounded,
    table,
    task_body,
    tasktype_body,
    workdir,
)

TASKS = f"/v1/namespaces/{NS}/tasks"
TOKEN = "bench-token"
USER = {"Authorization": f"Bearer {TOKEN}"}  # a user the API server's reviews let do everything


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def paced(n: int, rate: float, call: Callable[[int], Awaitable[object]]) -> list[float]:
    """Seconds each of ``n`` calls took, started ``rate`` a second (not waiting for each other)."""
    start = time.monotonic()
    latencies: list[float] = []

    async def one(i: int) -> None:
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        began = time.perf_counter()
        await call(i)
        latencies.append(time.perf_counter() - began)

    await asyncio.gather(*(one(i) for i in range(n)))
    return latencies


def figures(latencies: Sequence[float]) -> dict[str, float | None]:
    return {
        "p50_ms": rounded(percentile(latencies, 50) * 1000, 2),
        "p99_ms": rounded(percentile(latencies, 99) * 1000, 2),
    }


async def run(n: int, rate: float, streams: int, work: pathlib.Path) -> dict[str, Any]:
    async with emulator() as k:
        k.model.reviews({TOKEN: ("bench", ())})
        kubeconfig = work / "kubeconfig"
        write_kubeconfig(kubeconfig, str(k.url))
        port = free_port()
        log = (work / "gateway.log").open("w")
        binary = pathlib.Path(sys.executable).with_name("asynctask-gateway")
        process = await asyncio.create_subprocess_exec(
            str(binary), "--kubeconfig", str(kubeconfig), "--namespace", NS, "--port", str(port), "--host",
            "127.0.0.1", "--rate-limit", "0", stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy(),
        )  # fmt: skip
        api = KubeClient(load_configuration(str(kubeconfig)))
        await api.create(TASKTYPES, NS, tasktype_body("t", TASKTYPE_SPEC))  # submissions of "t" are checked against it
        base = f"http://127.0.0.1:{port}"
        try:
            async with httpx.AsyncClient(base_url=base, timeout=60, limits=httpx.Limits(max_connections=200)) as client:
                for _ in range(600):
                    try:
                        if (await client.get("/readyz")).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    await asyncio.sleep(0.1)
                raw = await paced(n, rate, lambda i: api.create(ASYNCTASKS, NS, task_body(f"raw-{i}", {"type": "t"})))
                names: list[str] = []

                async def submit(i: int) -> None:
                    answer = await client.post(TASKS, json={"type": "t", "payload": {"i": i}}, headers=USER)
                    answer.raise_for_status()
                    names.append(answer.json()["name"])

                submitted = await paced(n, rate, submit)

                async def get(i: int) -> None:
                    (await client.get(f"{TASKS}/{names[i % len(names)]}", headers=USER)).raise_for_status()

                gets = await paced(n, rate, get)
                wire = await paced_on_the_wire(port, [f"{TASKS}/{names[i % len(names)]}" for i in range(n)], rate)
                watches = sum(1 for h in k.hits if h.verb == "watch" and h.resource == "asynctasks")
                followed = await follow(base, names[0], streams, k, process.pid)
                watches_after = sum(1 for h in k.hits if h.verb == "watch" and h.resource == "asynctasks")
        finally:
            process.terminate()
            await asyncio.wait_for(process.wait(), 30)
            log.close()
            api.close()
    return {
        "n": n,
        "rate": rate,
        "raw_create": figures(raw),
        "submit": figures(submitted),
        "get": figures(gets),
        "get_wire": figures(wire),
        "streams": {**followed, "extra_watches": watches_after - watches},
    }


class Connections:
    """Kept-alive HTTP/1.1 connections to the gateway, written and read by hand: a GET's time is the
    gateway's own and the loopback's, without an HTTP client library's (httpx spends ~1-2 ms of
    Python per request on its side; the gateway answers a cached GET in ~1 ms of its own)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def get(self, path: str, headers: dict[str, str]) -> int:
        reader, writer = self.idle.pop() if self.idle else await asyncio.open_connection("127.0.0.1", self.port)
        lines = [f"GET {path} HTTP/1.1", "Host: gateway", *(f"{k}: {v}" for k, v in headers.items()), "", ""]
        writer.write("\r\n".join(lines).encode())
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = next(
            int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")
        )
        await reader.readexactly(length)
        self.idle.append((reader, writer))
        return status

    async def close(self) -> None:
        for _, writer in self.idle:
            writer.close()


async def paced_on_the_wire(port: int, paths: list[str], rate: float) -> list[float]:
    connections = Connections(port)

    async def get(i: int) -> None:
        status = await connections.get(paths[i], USER)
        assert status == 200, status

    try:
        return await paced(len(paths), rate, get)
    finally:
        await connections.close()


async def follow(base: str, name: str, streams: int, k: Any, pid: int) -> dict[str, Any]:
    pools = [httpx.AsyncClient(base_url=base, timeout=120) for _ in range(max(1, streams // 50))]
    seen: list[int] = []
    opened: list[int] = []
    all_open = asyncio.Event()

    async def one(pool: httpx.AsyncClient) -> None:
        async with pool.stream("GET", f"{TASKS}/{name}/events", headers=USER) as stream:
            opened.append(1)
            if len(opened) == streams:
                all_open.set()
            async for line in stream.aiter_lines():
                if line.startswith("data: ") and '"phase":"Succeeded"' in line:
                    seen.append(1)

    readers = [asyncio.create_task(one(pools[i % len(pools)])) for i in range(streams)]
    await asyncio.wait_for(all_open.wait(), 120)
    await asyncio.sleep(0.5)
    rss = ProcStats(pid).rss_mb()
    answer = await k.patch(  # through kmock's API, so that the gateway's watch sees it
        f"/apis/asynctask.dev/v1alpha1/namespaces/{NS}/asynctasks/{name}/status",
        json={"status": {"phase": "Succeeded"}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert answer.status == 200, await answer.text()
    began = time.monotonic()
    await asyncio.wait_for(asyncio.gather(*readers), 120)
    for pool in pools:
        await pool.aclose()
    return {"clients": streams, "saw_terminal": len(seen), "rss_mb": rounded(rss, 1),
            "all_ended_s": rounded(time.monotonic() - began, 2)}  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    p = parser("The HTTP gateway: submit and GET latency, SSE fan-out.", default_n=300)
    p.add_argument("--rate", type=float, default=100.0, help="requests a second (default 100)")
    p.add_argument("--streams", type=int, default=1000, help="concurrent SSE clients (default 1000)")
    args = p.parse_args(argv)
    work = workdir(args.workdir, "gateway")
    work.mkdir(parents=True, exist_ok=True)
    result = asyncio.run(run(args.n, args.rate, args.streams, work))
    rows = [(what, result[what]["p50_ms"], result[what]["p99_ms"])
            for what in ("raw_create", "submit", "get", "get_wire")]  # fmt: skip
    streams = result["streams"]
    tables = [
        table(f"latency at {args.rate:g}/s, n={args.n}", ["", "p50 ms", "p99 ms"], rows),
        table("SSE", ["clients", "saw terminal", "extra watches", "gateway RSS MB", "all ended s"],
              [(streams["clients"], streams["saw_terminal"], streams["extra_watches"], streams["rss_mb"],
                streams["all_ended_s"])]),
    ]  # fmt: skip
    emit(tables, result, args.json)
    ok = streams["saw_terminal"] == streams["clients"] and streams["extra_watches"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
