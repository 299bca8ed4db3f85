"""A task's log in the console, for a user whose Role names the task and its pod (``resourceNames``),
through the gateway's real HTTP client against kmock: ``kubectl logs`` asks ``get pods/log`` about the
pod by name, and so does the console."""

from __future__ import annotations

import contextlib
import html
from collections.abc import AsyncIterator
from typing import Any

import httpx
import kmock
import pytest

from asynctask_operator.testing.cluster import NS, Cluster
from tests.integration.served import Served, answer_reviews, serve
from tests.support.rbac import Rule, allowed, grant

API = "/apis/asynctask.dev/v1alpha1"
RULES = [
    Rule("carol", ("get", "patch"), "asynctasks", NS, names=("render",)),
    grant("carol", "get", "pods/log", NS, "render-1-x"),
    Rule("dave", ("get", "patch"), "asynctasks", NS, names=("render",)),
    grant("dave", "get", "pods/log", NS, "another-pod"),
]
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture()
async def gw(cluster: Cluster, kmock: kmock.KubernetesEmulator, kubeconfig: Any) -> AsyncIterator[Served]:
    answer_reviews(kmock, {"carol-token": "carol", "dave-token": "dave"}, lambda user, a: allowed(RULES, user, a))
    await cluster.create_task("render", {"type": "transcode"})
    attempt = {"attempt": 1, "job": "render-1", "startTime": "2026-12-03T10:00:00Z"}
    await cluster.patch(
        API, "asynctasks/render/status", {"status": {"phase": "Running", "attempt": 1, "attempts": [attempt]}}
    )
    labels = {"asynctask.dev/task": "render", "asynctask.dev/attempt": "1"}
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "render-1-x", "namespace": NS, "labels": labels}}
    await kmock.post(f"/api/v1/namespaces/{NS}/pods", json=pod)
    kmock["get", f"/api/v1/namespaces/{NS}/pods/render-1-x/log"] << b"frame 1 of 3\n"
    async with serve(kubeconfig) as served:
        yield served


@contextlib.asynccontextmanager
async def signed_in(gw: Served, token: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=gw.url, timeout=10) as client:
        answer = await client.post("/ui/login", content=f"token={token}", headers=FORM)
        assert answer.status_code == 303, answer.text
        yield client


async def test_a_role_naming_the_pod_reads_its_log(gw: Served) -> None:
    async with signed_in(gw, "carol-token") as client:
        page = await client.get(f"/ui/namespaces/{NS}/tasks/render")
        assert page.status_code == 200 and 'data-log="' in page.text  # the log viewer, not the RBAC banner
        log = await client.get(f"/ui/namespaces/{NS}/tasks/render/log")
        assert (log.status_code, log.text) == (200, "frame 1 of 3\n")


async def test_a_role_naming_another_pod_does_not(gw: Served) -> None:
    async with signed_in(gw, "dave-token") as client:
        page = await client.get(f"/ui/namespaces/{NS}/tasks/render")
        assert page.status_code == 200 and "does not allow you to get pods/log" in page.text
        log = await client.get(f"/ui/namespaces/{NS}/tasks/render/log")
        assert log.status_code == 403 and "get pods/log 'render-1-x'" in html.unescape(log.text)
