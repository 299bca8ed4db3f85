from __future__ import annotations

from tests.integration.harness import Cluster, Operator, eventually


async def test_task_runs_to_success(cluster: Cluster, operator: Operator) -> None:
    await cluster.create_tasktype("echo")
    await cluster.create_task("hello", {"type": "echo", "payload": {"n": 1}})
    await eventually(lambda: cluster.phase("hello") == "Running", what="Running")
    assert cluster.job_names() == ["hello-1"]
    await cluster.job_succeeds("hello-1")
    await eventually(lambda: cluster.phase("hello") == "Succeeded", what="Succeeded")
