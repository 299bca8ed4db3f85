"""The aggregated API's cost at the gateway: a history page through the aggregation port (mutual TLS) beside
the same page through the main port.

    python -m bench.aggregated [--n 10000] [--runs 300] [--json PATH]

One process: the gateway over the fake API server (its SubjectAccessReviews and TokenReviews answered at
once, then cached as in production), a SQLite archive of ``--n`` finished tasks in one namespace, both
ports on 127.0.0.1 with uvicorn, and an httpx client. ``--runs`` times each, newest 50:

Each GET is written and read by hand on a kept-alive connection (:class:`Wire`: an HTTP client library
spends its own milliseconds):

- ``main``: ``GET /v1/namespaces/media/history?limit=50`` with a bearer token;
- ``aggregated``: ``GET /apis/archive.asynctask.dev/v1alpha1/namespaces/media/archivedtasks?limit=50`` with the
  front proxy's client certificate and ``X-Remote-User`` (the kube-apiserver keeps its connections to an
  APIService's server alive);
- ``aggregated_table``: the same as ``kubectl get archivedtasks`` asks it (Accept: a Table);
- ``aggregated_handshake``: the same with a new connection each time: the TLS handshake with client
  certificate verification, paid once per connection.

The kube-apiserver's own hop (its authentication, then the proxying) is not here: it is the same for
every aggregated API (metrics-server's, say). The client shares the process: the figures are an upper bound.
"""

from __future__ import annotations

import asyncio
import pathlib
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import trustme
import uvicorn

from asynctask_operator.adapters.listening import listen
from asynctask_operator.archive.database import engine_of, migrate
from asynctask_operator.archive.records import row_of
from asynctask_operator.archive.writes import upsert_tasks
from asynctask_operator.core.clocks import Clocks
from asynctask_operator.gateway.access import Gateway
from asynctask_operator.gateway.aggregation import aggregated_app, client_ca_file
from asynctask_operator.gateway.aggregation import server_config as aggregation_config
from asynctask_operator.gateway.app import create_app
from asynctask_operator.gateway.cli import server_config
from asynctask_operator.gateway.frontproxy import FrontProxy
from asynctask_operator.gateway.settings import GatewaySettings
from asynctask_operator.testing.fakekube import FakeKube
from bench.common import emit, parser, percentile, rounded, table, workdir

NS = "media"
T0 = 1_779_000_000.0
PAGE = 50
LIST = f"/apis/archive.asynctask.dev/v1alpha1/namespaces/{NS}/archivedtasks?limit={PAGE}"
HISTORY = f"/v1/namespaces/{NS}/history?limit={PAGE}"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
IDENTITY = {"X-Remote-User": "alice", "X-Remote-Group": "team-media"}


def finished(i: int) -> dict[str, Any]:
    created = T0 + i
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(created))
    end = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(created + 20))
    return {
        "metadata": {"name": f"t-{i:06d}", "namespace": NS, "uid": f"u-{i:06d}", "resourceVersion": str(i),
                     "creationTimestamp": stamp, "labels": {"app": f"app-{i % 7}"}},
        "spec": {"type": f"type-{i % 5}", "queue": "default", "payload": {"n": i}},
        "status": {"phase": "Succeeded" if i % 9 else "Failed", "reason": "Completed", "attempt": 1,
                   "startTime": stamp, "completionTime": end, "durationSeconds": 20.0, "result": {"n": i}},
    }  # fmt: skip


async def fill(dsn: str, n: int) -> None:
    engine = engine_of(dsn)
    try:
        await migrate(engine)
        for start in range(0, n, 1000):
            async with engine.begin() as conn:
                await upsert_tasks(conn, [row_of(finished(i), T0 + n) for i in range(start, min(n, start + 1000))])
    finally:
        await engine.dispose()


class Wire:
    """One HTTP/1.1 connection (TLS with ``context``), kept alive, a GET written and read by hand."""

    def __init__(self, port: int, context: ssl.SSLContext | None = None) -> None:
        self.port = port
        self.context = context
        self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def get(self, path: str, headers: dict[str, str]) -> int:
        if self.streams is None:
            self.streams = await asyncio.open_connection("127.0.0.1", self.port, ssl=self.context)
        reader, writer = self.streams
        lines = [f"GET {path} HTTP/1.1", "Host: gateway", *(f"{k}: {v}" for k, v in headers.items()), "", ""]
        writer.write("\r\n".join(lines).encode())
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(int(h.split(b":", 1)[1]) for h in head.split(b"\r\n") if h.lower().startswith(b"content-length:"))
        await reader.readexactly(length)
        return int(head.split(b" ", 2)[1])

    async def close(self) -> None:
        if self.streams is not None:
            self.streams[1].close()
            self.streams = None


async def timed(call: Callable[[], Awaitable[int]], runs: int) -> dict[str, float | None]:
    for _ in range(5):  # warm: the reviews cached, the statements compiled
        assert await call() == 200
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        status = await call()
        times.append((time.perf_counter() - started) * 1000)
        assert status == 200, status
    return {"p50_ms": rounded(percentile(times, 50)), "p99_ms": rounded(percentile(times, 99))}


async def serve(server: uvicorn.Server, sock: socket.socket) -> asyncio.Task[None]:
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:  # noqa: ASYNC110 (uvicorn has no event for it)
        await asyncio.sleep(0.01)
    return task


async def run(n: int, runs: int, work: pathlib.Path) -> dict[str, Any]:
    dsn = f"sqlite:///{work / 'archive.db'}"
    await fill(dsn, n)
    front, serving = trustme.CA(), trustme.CA()
    proxy_cert, leaf = (
        front.issue_cert("front-proxy-client", common_name="front-proxy-client"),
        serving.issue_cert("127.0.0.1"),
    )
    cert, key = work / "tls.crt", work / "tls.key"
    cert.write_bytes(b"".join(p.bytes() for p in leaf.cert_chain_pems))
    leaf.private_key_pem.write_to_path(str(key))
    fake = FakeKube()
    fake.reviews({"alice-token": ("alice", ("team-media",))}, lambda user, groups, attributes: user == "alice")
    settings = GatewaySettings(host="127.0.0.1", rate_limit=0.0, archive_dsn=dsn, aggregation_port=1,
                               aggregation_tls_cert=str(cert), aggregation_tls_key=str(key), console=False)  # fmt: skip
    gateway = Gateway.build(fake, settings, Clocks())
    proxy = FrontProxy(front.cert_pem.bytes().decode(), ("front-proxy-client",))
    main_sock, aggregation_sock = listen("127.0.0.1", 0), listen("127.0.0.1", 0)  # as asynctask-gateway binds them
    context = ssl.create_default_context()
    serving.configure_trust(context)
    proxy_cert.configure_cert(context)
    servers: list[uvicorn.Server] = []
    with client_ca_file(proxy) as ca:
        servers.append(uvicorn.Server(server_config(create_app(gateway, follow_api=False), settings)))
        servers.append(uvicorn.Server(aggregation_config(aggregated_app(gateway, proxy), settings, ca)))
        tasks = [await serve(servers[0], main_sock), await serve(servers[1], aggregation_sock)]
        try:
            main_port, aggregation_port = main_sock.getsockname()[1], aggregation_sock.getsockname()[1]
            main, aggregated = Wire(main_port), Wire(aggregation_port, context)
            bearer = {"Authorization": "Bearer alice-token"}
            result: dict[str, Any] = {"n": n, "runs": runs, "page": PAGE}
            try:
                result["main"] = await timed(lambda: main.get(HISTORY, bearer), runs)
                result["aggregated"] = await timed(lambda: aggregated.get(LIST, IDENTITY), runs)
                result["aggregated_table"] = await timed(
                    lambda: aggregated.get(LIST, IDENTITY | {"Accept": TABLE}), runs
                )

                async def fresh() -> int:
                    once = Wire(aggregation_port, context)
                    try:
                        return await once.get(LIST, IDENTITY)
                    finally:
                        await once.close()

                result["aggregated_handshake"] = await timed(fresh, max(runs // 3, 10))
            finally:
                await main.close()
                await aggregated.close()
        finally:
            for server in servers:
                server.should_exit = True
            await asyncio.gather(*tasks)
            if gateway.archive is not None:
                await gateway.archive.engine.dispose()
    return result


VARIANTS = ("main", "aggregated", "aggregated_table", "aggregated_handshake")


def main(argv: Sequence[str] | None = None) -> int:
    p = parser("The aggregated API at the gateway: a history page over mutual TLS beside the main port.", 10_000)
    p.add_argument("--runs", type=int, default=300, help="requests per variant (default 300)")
    args = p.parse_args(argv)
    work = workdir(args.workdir, "aggregated")
    work.mkdir(parents=True, exist_ok=True)
    result = asyncio.run(run(args.n, args.runs, work))
    rows = [(v, result[v]["p50_ms"], result[v]["p99_ms"]) for v in VARIANTS]
    emit([table(f"a history page of {PAGE}, {args.n} archived tasks (SQLite)", ["", "p50 ms", "p99 ms"], rows)],
         result, args.json)  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
