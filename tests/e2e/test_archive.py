"""The archive against a real cluster: a task runs, is archived with its log, and only then is deleted by
its (short) TTL; its record and log are in the database afterwards, and the gateway's API and console
read it back, log included, for a ServiceAccount whose Role allows what live reads need (issue 27).

A namespace of its own, served by an operator of its own with ``--archive-required`` (the session's
operator serves another namespace and holds nothing), ``asynctask-archive`` on this machine
recording that namespace into a SQLite file, and ``asynctask-gateway --archive-dsn`` reading it.
"""

from __future__ import annotations

import asyncio
import os
import pathlib
import signal
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import kubernetes.client
import pytest
from kubernetes.client import ApiClient

from asynctask_operator.archive import ArchiveReader, engine_of
from tests.e2e.helpers import (
    GC_TIMEOUT,
    KUBECONFIG_ENV,
    REPO_ROOT,
    SUCCESS_TIMEOUT,
    Cluster,
    OperatorProcess,
    create_namespace,
    load_example,
    one,
    task_body,
    wait_for,
)
from tests.e2e.test_gateway import gateway_process, token_for

pytestmark = pytest.mark.e2e


class ArchiverProcess:
    """``python -m asynctask_operator.archive`` recording one namespace into a SQLite file."""

    def __init__(self, kubeconfig: str, namespace: str, dsn: str, log_path: pathlib.Path) -> None:
        self.command = [sys.executable, "-m", "asynctask_operator.archive", "--kubeconfig", kubeconfig,
                        "--namespace", namespace, "--dsn", dsn, "--http-port", "0", "--log-format", "text",
                        "--batch-latency", "0.2"]  # fmt: skip
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT,
                                            env={**os.environ, "PYTHONUNBUFFERED": "1"})  # fmt: skip
        wait_for(lambda: "recording AsyncTasks" in self.log() or None, 60, "the archiver to start",
                 describe=lambda: self.log()[-5000:])  # fmt: skip

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


@pytest.fixture()
def archived(kubeconfig: str, api_client: ApiClient, tmp_path: pathlib.Path) -> Iterator[tuple[Cluster, str]]:
    """A namespace served by an operator with --archive-required, and the archiver recording it."""
    namespace = create_namespace(api_client, prefix="asynctask-e2e-archive")
    dsn = f"sqlite:///{tmp_path / 'archive.db'}"
    operator = OperatorProcess(kubeconfig, namespace, tmp_path / "operator.log", "--archive-required")
    archiver = ArchiverProcess(kubeconfig, namespace, dsn, tmp_path / "archive.log")
    try:
        operator.start()
        archiver.start()
        yield Cluster(api_client, namespace, operator), dsn
    finally:
        archiver.stop()
        operator.stop()
        kubernetes.client.CoreV1Api(api_client).delete_namespace(namespace, _preload_content=False)


def test_a_task_is_archived_with_its_log_then_deleted_by_its_ttl(archived: tuple[Cluster, str]) -> None:
    cluster, dsn = archived
    docs = load_example("hello")
    cluster.apply([one(docs, "TaskType", "hello")])
    body = task_body("kept", {"type": "hello", "payload": {"n": 1}, "ttlSecondsAfterFinished": 5})
    cluster.create(body)
    task = cluster.wait_for_phase("kept", {"Succeeded"}, SUCCESS_TIMEOUT)
    uid = task["metadata"]["uid"]
    cluster.wait_gone("AsyncTask kept (deleted by its TTL once archived)", lambda: cluster.get_task("kept"), GC_TIMEOUT)

    async def read() -> tuple[Any, Any]:
        engine = engine_of(dsn)
        try:
            reader = ArchiveReader(engine)
            return await reader.latest(cluster.namespace, "kept"), await reader.log(uid, 1)
        finally:
            await engine.dispose()

    row, log = asyncio.run(read())
    assert row is not None, "the task is gone and not in the archive"
    assert (row.uid, row.phase, row.attempts) == (uid, "Succeeded", 1)
    assert row.object["status"]["completionTime"]
    assert log is not None and log.error is None, log
    assert '"n":1' in log.text and "done" in log.text, log.text

    # Read back through the front doors, as a user whose Role allows the live reads (and nothing more).
    logs = kubernetes.client.V1PolicyRule(api_groups=[""], resources=["pods/log"], verbs=["get"])
    token = token_for(cluster, "archive-reader", ["get", "list"], logs)
    auth = {"Authorization": f"Bearer {token}"}
    log_path = pathlib.Path(dsn.removeprefix("sqlite:///")).parent / "gateway.log"
    with gateway_process(os.environ[KUBECONFIG_ENV], cluster.namespace, log_path, "--archive-dsn", dsn) as url:
        tasks = f"{url}/v1/namespaces/{cluster.namespace}"
        with httpx.Client(timeout=30) as client:
            answer = client.get(f"{tasks}/tasks/kept", headers=auth)
            assert answer.status_code == 200, answer.text
            body = answer.json()
            assert (body["archived"], body["uid"], body["phase"], body["percent"]) == (True, uid, "Succeeded", 100.0)
            history = client.get(f"{tasks}/history", headers=auth, params={"phase": "Succeeded"}).json()
            assert [t["uid"] for t in history["items"]] == [uid]
            kept = client.get(f"{tasks}/tasks/kept/log", headers=auth, params={"attempt": 1})
            assert kept.status_code == 200 and kept.headers["X-Log-Source"] == "archive", kept.text
            assert '"n":1' in kept.text
            client.post(f"{url}/ui/login", data={"token": token}, follow_redirects=False)
            page = client.get(f"{url}/ui/namespaces/{cluster.namespace}/tasks/kept")
            assert page.status_code == 200 and 'data-testid="archived"' in page.text, page.text[-2000:]
            listed = client.get(f"{url}/ui/history")
            assert "kept" in listed.text
