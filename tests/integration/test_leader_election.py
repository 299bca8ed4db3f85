"""Two replicas with --leader-elect: one acts, the other takes over when it dies, no Job twice."""

from __future__ import annotations

import pathlib

import kmock

from tests.integration.harness import NS, Cluster, Operator, eventually, operator_requests

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
        assert holder.endswith(f"-{first.pid}")
        await cluster.create_tasktype("echo")
        await cluster.create_task("led", {"type": "echo"})
        await eventually(lambda: cluster.phase("led") == "Running", what="Running under the first leader")
        assert "synced" not in second.log(), "the standby must not act"

        first.kill()
        await eventually(lambda: "synced" in second.log(), timeout=20, what="the standby to take over")
        holder = kmock.objects[LEASES, NS, "asynctask-operator"]["spec"]["holderIdentity"]
        assert holder.endswith(f"-{second.pid}")
        await cluster.job_succeeds("led-1")
        await eventually(lambda: cluster.phase("led") == "Succeeded", what="finished by the new leader")
        await cluster.create_task("next", {"type": "echo"})
        await eventually(lambda: cluster.phase("next") == "Running", what="new work under the new leader")
        posts = [p for m, p in operator_requests(kmock) if m == "POST" and p == JOBS_PATH]
        assert len(posts) == 2 and cluster.job_names() == ["led-1", "next-1"]
    finally:
        await first.stop()
        await second.stop()
