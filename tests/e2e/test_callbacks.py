"""Callbacks against a real cluster (docs/design.md §3.4): a signed CloudEvent reaches a receiver this test runs.

The operator runs on this machine (see conftest), so a receiver on this machine's loopback
is reachable from it; the conftest allows ``127.0.0.1`` past the SSRF guard for that. The
signing key lives in a real Secret the operator reads through the API server.
"""

from __future__ import annotations

import base64
import http.server
import json
import secrets
import threading
from collections.abc import Iterator
from typing import Any

import kubernetes.client
import pytest
from standardwebhooks import Webhook

from tests.e2e.helpers import SUCCESS_TIMEOUT, Cluster, Obj, condition_of, load_example, one, renamed, status_of

pytestmark = pytest.mark.e2e

CALLBACK_TIMEOUT = 60.0


class Receiver:
    """An HTTP server on 127.0.0.1 in a thread: records every POST, answers 200."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, str], bytes]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.lock:
                    receiver.received.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def to(self, path: str) -> list[tuple[str, dict[str, str], bytes]]:
        with self.lock:
            return [r for r in self.received if r[0] == path]


@pytest.fixture()
def receiver() -> Iterator[Receiver]:
    rx = Receiver()
    rx.thread.start()
    try:
        yield rx
    finally:
        rx.server.shutdown()
        rx.server.server_close()


def _task(name: str, callback: Obj) -> Obj:
    task = renamed(one(load_example("hello"), "AsyncTask", "hello"), name)
    task["spec"]["callback"] = callback
    return task


def test_a_signed_cloudevent_reaches_the_receiver(cluster: Cluster, receiver: Receiver) -> None:
    whsec = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    kubernetes.client.CoreV1Api(cluster.client).create_namespaced_secret(
        cluster.namespace,
        kubernetes.client.V1Secret(
            metadata=kubernetes.client.V1ObjectMeta(name="hook-signing"), string_data={"secret": whsec}
        ),
    )
    cluster.apply([one(load_example("hello"), "TaskType", "hello")])
    url = f"http://127.0.0.1:{receiver.port}/hooks/signed"
    cluster.apply([_task("hello-callback", {"url": url, "secretRef": {"name": "hook-signing", "key": "secret"}})])

    task = cluster.wait_for_phase("hello-callback", {"Succeeded"}, SUCCESS_TIMEOUT)

    def delivered() -> Obj | None:
        current = cluster.get_task("hello-callback") or {}
        return current if (status_of(current).get("callback") or {}).get("state") == "Delivered" else None

    task = cluster.wait(
        delivered, CALLBACK_TIMEOUT, "the callback to be Delivered", describe=lambda: cluster.describe("hello-callback")
    )
    record = status_of(task)["callback"]
    got = receiver.to("/hooks/signed")
    assert got, f"the receiver got nothing; status.callback: {record}"
    _, headers, body = got[-1]
    event = Webhook(whsec).verify(body, headers)  # raises if the signature or timestamp is wrong
    assert headers["webhook-id"] == record["id"] == event["id"]
    assert headers["content-type"].startswith("application/cloudevents+json")
    assert event["type"] == "dev.asynctask.task.succeeded"
    assert event["source"] == f"/namespaces/{cluster.namespace}/asynctasks/hello-callback"
    assert event["data"]["uid"] == task["metadata"]["uid"] and event["data"]["phase"] == "Succeeded"
    assert event["data"]["completionTime"] == status_of(task)["completionTime"]
    assert record["attempts"] == len(got) and record["lastStatusCode"] == 200
    condition = condition_of(task, "CallbackDelivered")
    assert condition is not None and condition["status"] == "True", json.dumps(status_of(task), indent=1)


def test_the_cloud_metadata_address_is_refused(cluster: Cluster) -> None:
    cluster.apply([one(load_example("hello"), "TaskType", "hello")])
    url = "http://169.254.169.254/latest/meta-data/"
    cluster.apply([_task("hello-ssrf", {"url": url})])
    cluster.wait_for_phase("hello-ssrf", {"Succeeded"}, SUCCESS_TIMEOUT)

    def refused() -> Obj | None:
        record = status_of(cluster.get_task("hello-ssrf") or {}).get("callback") or {}
        return record if record.get("state") in ("Refused", "Delivered", "Failed") else None

    record = cluster.wait(refused, CALLBACK_TIMEOUT, "the callback to be refused")
    assert record["state"] == "Refused", record
    assert "link-local" in record["lastError"], record

    def event_posted() -> bool | None:  # the Event follows the status write
        return True if any(e.get("reason") == "CallbackRefused" for e in cluster.events_about({"hello-ssrf"})) else None

    cluster.wait(event_posted, 30, "a CallbackRefused Event on hello-ssrf")
