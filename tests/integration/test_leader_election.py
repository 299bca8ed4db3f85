"""Two replicas with --leader-elect: one acts, the other takes over when it dies, no Job twice."""

from __future__ import annotations

import pathlib

import aiohttp
import kmock

from asynctask_operator.testing.cluster import NS, Cluster, operator_requests
from asynctask_operator.testing.operators import Operator, eventually
from tests.integration.test_reports import free_port

JOBS_PATH = f"/apis/batch/v1/namespaces/{NS}/jobs"
ELECT = ("--leader-elect", "--lease-duration", "3", "--renew-deadline", "2", "--retry-period", "0.5")
LEASES = kmock.resource("coordination.k8s.io", "v1", "leases")


async def test_one_leader_acts_and_a_standby_takes_over(
    cluster: Cluster, kubeconfig: pathlib.Path, tmp_path: pathlib.Path, kmock: kmock.KubernetesEmulator
) -> None:
    first = Operator(kubeconfig, tmp_path / "first.log", *ELECT)
    second = Operator(kubeconfig, tmp_path / "second.log", *ELECT)
    await first.start()
    await second.start(marker="waiting for Lease")
    try:
        holder = kmock.objects[LEASES, NS, "asynctask-operator"]["spec"]["holderIdentity"]
        assert f"-{first.pid}-" in holder
        await cluster.create_tasktype("echo")
        await cluster.create_task("led", {"type": "echo"})
        await eventually(lambda: cluster.phase("led") == "Running", what="Running under the first leader")
        assert "synced" not in second.log(), "the standby must not act"

        first.kill()
        await eventually(lambda: "synced" in second.log(), timeout=20, what="the standby to take over")
        holder = kmock.objects[LEASES, NS, "asynctask-operator"]["spec"]["holderIdentity"]
        assert f"-{second.pid}-" in holder
        await cluster.job_succeeds("led-1")
        await eventually(lambda: cluster.phase("led") == "Succeeded", what="finished by the new leader")
        await cluster.create_task("next", {"type": "echo"})
        await eventually(lambda: cluster.phase("next") == "Running", what="new work under the new leader")
        posts = [p for m, p in operator_requests(kmock) if m == "POST" and p == JOBS_PATH]
        assert len(posts) == 2 and cluster.job_names() == ["led-1", "next-1"]
    finally:
        await first.stop()
        await second.stop()


PODS = kmock.resource("", "v1", "pods")


async def _pod(k: kmock.KubernetesEmulator, name: str) -> None:
    body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": NS, "resourceVersion": "1"}}
    resp = await k.post(f"/api/v1/namespaces/{NS}/pods", json=body)
    assert resp.status == 200, await resp.text()


def _leader_label(k: kmock.KubernetesEmulator, pod: str) -> str | None:
    labels = (k.objects[PODS, NS, pod].get("metadata") or {}).get("labels") or {}
    return labels.get("asynctask.dev/leader")


async def _ready(port: int) -> int:
    async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}/readyz") as resp:
        return resp.status


async def test_every_replica_is_ready_the_leader_is_labelled_and_a_stopped_leader_hands_over_at_once(
    cluster: Cluster, kubeconfig: pathlib.Path, tmp_path: pathlib.Path, kmock: kmock.KubernetesEmulator
) -> None:
    # A Lease of 30 s: a takeover within a few seconds proves the stopped leader released it.
    slow_lease = ("--leader-elect", "--lease-duration", "30", "--renew-deadline", "20", "--retry-period", "0.5")
    await _pod(kmock, "op-first")
    await _pod(kmock, "op-second")
    ports = [free_port(), free_port()]
    first = Operator(
        kubeconfig, tmp_path / "first.log", *slow_lease, "--pod-name", "op-first", "--http-port", str(ports[0])
    )
    second = Operator(
        kubeconfig, tmp_path / "second.log", *slow_lease, "--pod-name", "op-second", "--http-port", str(ports[1])
    )
    await first.start()
    await second.start(marker="waiting for Lease")
    try:
        await eventually(lambda: _leader_label(kmock, "op-first") == "true", what="the leader's pod labelled true")
        await eventually(lambda: _leader_label(kmock, "op-second") == "false", what="the standby's pod labelled false")
        assert await _ready(ports[0]) == 200
        assert await _ready(ports[1]) == 200  # a standby is Ready: the Service's selector keeps reports away

        await first.stop()  # SIGTERM: a clean shutdown releases the Lease
        assert "released Lease" in first.log()
        await eventually(lambda: "synced" in second.log(), timeout=8, what="the standby to take over at once")
        await eventually(lambda: _leader_label(kmock, "op-second") == "true", what="the new leader's pod labelled")
        await cluster.create_tasktype("echo")
        await cluster.create_task("after", {"type": "echo"})
        await eventually(lambda: cluster.phase("after") == "Running", what="work under the new leader")
    finally:
        await first.stop()
        await second.stop()
