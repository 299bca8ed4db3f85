"""The gateway's access log, as its process writes it: one JSON line per request, no probe noise.

``asynctask-gateway`` runs against the stand-in API server of tests/support/tlsapi.py (it lists
nothing and holds its watches), is asked what kubelets, Prometheus and a person ask, and its
stderr is read line by line.
"""

from __future__ import annotations

import json
import pathlib
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import trustme

from tests.support.tlsapi import TlsApiServer, write_insecure_kubeconfig

GATEWAY = pathlib.Path(sys.executable).parent / "asynctask-gateway"
REQUEST_LOG = "asynctask_operator.gateway.requestlog"


@pytest.fixture()
def kubeconfig(tmp_path: pathlib.Path) -> Iterator[pathlib.Path]:
    with TlsApiServer(trustme.CA()) as api:
        path = tmp_path / "kubeconfig"
        write_insecure_kubeconfig(path, api.url)
        yield path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def logged(kubeconfig: pathlib.Path, *flags: str) -> list[dict[str, Any]]:
    """Start the gateway, probe it, scrape it, make one request of a person; every line it logged, as JSON."""
    port = free_port()
    command = [str(GATEWAY), "--kubeconfig", str(kubeconfig), "--host", "127.0.0.1", "--port", str(port), *flags]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:  # a process on a real socket: there is no clock to move
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:  # its caches are filled
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, "the gateway did not start"
            time.sleep(0.1)
        assert httpx.get(f"{url}/healthz", timeout=5).status_code == 200
        assert httpx.get(f"{url}/metrics", timeout=5).status_code == 200
        assert httpx.get(f"{url}/v1/namespaces/media/tasks", timeout=5).status_code == 401  # no token
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
    records = []
    for line in err.splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            pytest.fail(f"a line that is not JSON in the gateway's log: {line!r}")
    return records


def test_one_json_line_per_request_and_none_for_probes_or_scrapes(kubeconfig: pathlib.Path) -> None:
    records = logged(kubeconfig)
    requests = [r for r in records if r["logger"] == REQUEST_LOG]
    assert len(requests) == 1, records
    [request] = requests
    assert {k: request[k] for k in ("level", "method", "path", "status", "client")} == {
        "level": "info",
        "method": "GET",
        "path": "/v1/namespaces/media/tasks",
        "status": 401,
        "client": "127.0.0.1",
    }
    assert isinstance(request["duration_ms"], float)
    assert request["message"].startswith("GET /v1/namespaces/media/tasks 401 ")
    assert not [r for r in records if r["logger"] == "uvicorn.access"], records


def test_log_probes_logs_them_too(kubeconfig: pathlib.Path) -> None:
    paths = [r["path"] for r in logged(kubeconfig, "--log-probes") if r["logger"] == REQUEST_LOG]
    once = ("/healthz", "/metrics", "/v1/namespaces/media/tasks")
    assert {p: paths.count(p) for p in once} == dict.fromkeys(once, 1), paths
    assert paths.count("/readyz") >= 1
