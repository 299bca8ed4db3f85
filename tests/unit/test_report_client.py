"""The in-container Reporter retries while the operator cannot be reached (a leader handing over)."""

from __future__ import annotations

import http.server
import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from asynctask_operator import report
from asynctask_operator.core.retry import backoff
from asynctask_operator.report import Reporter, ReportError


class Server:
    """Answers each POST with the next status of ``script`` (the last repeats)."""

    def __init__(self, *script: int) -> None:
        self.script = list(script)
        self.posts: list[str] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.posts.append(self.path)
                code = outer.script.pop(0) if len(outer.script) > 1 else outer.script[0]
                body = json.dumps({"message": f"said {code}"}).encode()
                self.send_response(code)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1/namespaces/ns/asynctasks/t"


@pytest.fixture()
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    slept: list[float] = []
    monkeypatch.setattr(Reporter, "_sleep", staticmethod(slept.append))
    return slept


@pytest.fixture()
def serve() -> Iterator[Any]:
    servers: list[Server] = []

    def start(*script: int) -> Server:
        server = Server(*script)
        threading.Thread(target=server.httpd.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.httpd.shutdown()
        server.httpd.server_close()


def test_a_result_outlives_a_handover(serve: Any, sleeps: list[float]) -> None:
    server = serve(503, 503, 202)
    assert Reporter(server.url, "tok").result({"n": 1}) is True
    assert len(server.posts) == 3 and sleeps == [1.0, 2.0]


def test_a_refusal_is_not_retried(serve: Any, sleeps: list[float]) -> None:
    server = serve(409)
    with pytest.raises(ReportError) as raised:
        Reporter(server.url, "tok").result({"n": 1})
    assert (raised.value.status, raised.value.message) == (409, "said 409")
    assert len(server.posts) == 1 and sleeps == []


def test_progress_tries_twice_then_gives_up(serve: Any, sleeps: list[float]) -> None:
    server = serve(503)
    with pytest.raises(ReportError) as raised:
        Reporter(server.url, "tok").progress(10)
    assert raised.value.status == 503
    assert len(server.posts) == report.PROGRESS_ATTEMPTS and sleeps == [1.0]


def test_an_unreachable_operator_is_retried_then_reported(sleeps: list[float]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens once the socket is closed
    with pytest.raises(ReportError) as raised:
        Reporter(f"http://127.0.0.1:{port}/v1/x", "tok").result(1)
    assert raised.value.status == 0 and "cannot be reached" in raised.value.message
    assert sleeps == [backoff(n, 1.0, 30.0) for n in range(1, report.RESULT_ATTEMPTS)]  # 1, 2, 4, 8, 16, 30
    assert sleeps[-1] == 30.0
