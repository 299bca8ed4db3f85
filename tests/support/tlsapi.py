"""A stand-in API server over HTTPS, with a certificate no client trusts: for kubeconfigs with
``insecure-skip-tls-verify`` (or one they trust, and client certificates it requires, as a real
API server's: :class:`TlsApiServer` with ``client_ca``).

It answers every listing with no objects, in three pages (so that one listing is several
requests), holds every watch open without an event until it stops, and answers anything else
404. Enough for the operator, the gateway and the kubectl plugin to start and run their
list/watch loops against it; it counts the requests it answered.
"""

from __future__ import annotations

import dataclasses
import http.server
import json
import pathlib
import ssl
import threading
import urllib.parse
from typing import Any

import trustme
import yaml

PAGES = 3


class _Handler(http.server.BaseHTTPRequestHandler):
    server: TlsApiServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.server.count(self)
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        if query.get("watch") == ["true"]:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.server.stopping.wait()
            return
        page = int((query.get("continue") or ["0"])[0])
        following = str(page + 1) if page + 1 < PAGES else ""
        meta = {"resourceVersion": "1", "continue": following}
        self._json(200, {"kind": "List", "apiVersion": "v1", "metadata": meta, "items": []})

    def do_POST(self) -> None:
        self.server.count(self)
        self._json(404, {"kind": "Status", "status": "Failure", "reason": "NotFound", "code": 404})

    do_PATCH = do_PUT = do_DELETE = do_POST

    def _json(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@dataclasses.dataclass(frozen=True)
class Seen:
    """One request as the server saw it: who sent it (the bearer token, the client certificate's CN)."""

    method: str
    path: str
    authorization: str | None
    client_cn: str | None


class TlsApiServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self, ca: trustme.CA, *, client_ca: trustme.CA | None = None, names: tuple[str, ...] = ("127.0.0.1",)
    ) -> None:
        """Serves a certificate of ``ca`` for ``names``; with ``client_ca``, requires a client
        certificate it issued (the TLS handshake fails without one)."""
        super().__init__(("127.0.0.1", 0), _Handler)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert(*names).configure_cert(context)
        if client_ca is not None:
            client_ca.configure_trust(context)
            context.verify_mode = ssl.CERT_REQUIRED
        self.socket = context.wrap_socket(self.socket, server_side=True)
        self.stopping = threading.Event()
        self.requests = 0
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.server_address[1]}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that goes (a process stopped mid-watch) is no error of the test's

    def count(self, request: _Handler) -> None:
        peer: Any = request.connection.getpeercert()  # type: ignore[attr-defined]  # an SSLSocket
        subject = dict(pair[0] for pair in peer["subject"]) if peer else {}
        seen = Seen(request.command, request.path, request.headers.get("Authorization"), subject.get("commonName"))
        with self._lock:
            self.requests += 1
            self.seen.append(seen)

    def __enter__(self) -> TlsApiServer:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stopping.set()
        self.shutdown()
        self.server_close()


def write_insecure_kubeconfig(path: pathlib.Path, url: str) -> None:
    """A kubeconfig for ``url`` that skips TLS verification, with a token, as development clusters' do."""
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "dev", "cluster": {"server": url, "insecure-skip-tls-verify": True}}],
                "users": [{"name": "dev", "user": {"token": "t0ken"}}],
                "contexts": [{"name": "dev", "context": {"cluster": "dev", "user": "dev", "namespace": "default"}}],
                "current-context": "dev",
            }
        )
    )
