"""TaskQueue admission through the real operator: concurrency, order, pause, rate, restarts."""

from __future__ import annotations

import time

import kmock
import pytest

from asynctask_operator.testing.cluster import NS, Cluster, operator_requests
from asynctask_operator.testing.operators import Operator, eventually

JOBS_PATH = f"/apis/batch/v1/namespaces/{NS}/jobs"
TQ_API = "/apis/asynctask.dev/v1alpha1"


def created_jobs(k: kmock.KubernetesEmulator) -> list[str]:
    """Names of the Jobs the operator POSTed, in order (each name once)."""
    names: list[str] = []
    for request in k:
        if request.headers.get("User-Agent", "").startswith("asynctask-operator") and request.url.path == JOBS_PATH:
            name = (request.data or {}).get("metadata", {}).get("name")
            if request.method.value == "POST" and name not in names:
                names.append(name)
    return names


@pytest.mark.process
async def test_restart_mid_burst_never_exceeds_concurrency(
    cluster: Cluster, operator: Operator, kmock: kmock.KubernetesEmulator
) -> None:
    await cluster.create_tasktype("echo")
    await cluster.create_queue("two", {"concurrency": 2})
    names = [f"b{i:02d}" for i in range(10)]
    for name in names:
        await cluster.create_task(name, {"type": "echo", "queue": "two"})
    await eventually(lambda: len(created_jobs(kmock)) == 2, what="two admitted")
    operator.kill()
    await operator.start()
    await eventually(lambda: sum(cluster.status(n).get("reason") == "Queued" for n in names) == 8, what="8 queued")
    assert len(created_jobs(kmock)) == 2, "a restart must not admit more"
    first = created_jobs(kmock)[0]
    await cluster.job_succeeds(first)
    await eventually(lambda: len(created_jobs(kmock)) == 3, what="a third admitted after one finished")
    await eventually(lambda: sum(cluster.phase(n) == "Running" for n in names) == 2, what="two Running")
    jobs = created_jobs(kmock)
    assert len(jobs) == len(set(jobs))


async def test_queue_not_found_then_created(cluster: Cluster, operator: Operator) -> None:
    await cluster.create_tasktype("echo")
    await cluster.create_task("early", {"type": "echo", "queue": "later"})
    await eventually(lambda: cluster.status("early").get("reason") == "QueueNotFound", what="QueueNotFound")
    assert cluster.phase("early") == "Pending"
    await cluster.create_queue("later", {"concurrency": 1})
    await eventually(lambda: cluster.phase("early") == "Running", what="Running once the queue exists")


async def test_priority_change_reorders_a_pending_task(
    cluster: Cluster, operator: Operator, kmock: kmock.KubernetesEmulator
) -> None:
    await cluster.create_tasktype("echo")
    await cluster.create_queue("one", {"concurrency": 1})
    await cluster.create_task("first", {"type": "echo", "queue": "one"})
    await eventually(lambda: cluster.phase("first") == "Running", what="first Running")
    await cluster.create_task("old", {"type": "echo", "queue": "one"})
    await cluster.create_task("young", {"type": "echo", "queue": "one"})
    await eventually(lambda: cluster.status("young").get("reason") == "Queued", what="young queued")
    await cluster.patch(TQ_API, "asynctasks/young", {"spec": {"priority": 5}})
    await cluster.create_task("marker", {"type": "echo"})  # default queue: shows the patch was processed
    await eventually(lambda: cluster.phase("marker") == "Running", what="marker Running")
    await cluster.job_succeeds("first-1")
    await eventually(lambda: cluster.phase("young") == "Running", what="young admitted before old")
    assert cluster.phase("old") == "Pending"


async def test_refused_job_releases_the_slot(
    cluster: Cluster, operator: Operator, kmock: kmock.KubernetesEmulator
) -> None:
    await cluster.create_tasktype("echo")
    await cluster.create_queue("solo", {"concurrency": 1, "paused": True})
    await cluster.create_task("refused", {"type": "echo", "queue": "solo", "priority": 10})
    await cluster.create_task("next", {"type": "echo", "queue": "solo"})
    await eventually(lambda: cluster.status("next").get("reason") == "QueuePaused", what="paused")
    kmock["post", JOBS_PATH][:1] << 422
    await cluster.patch(TQ_API, "taskqueues/solo", {"spec": {"paused": False}})
    await eventually(lambda: cluster.phase("refused") == "Failed", what="refused task Failed")
    assert cluster.status("refused")["reason"] == "InvalidJobTemplate"
    await eventually(lambda: cluster.phase("next") == "Running", what="the slot went to the next task")


async def test_rate_limit_spreads_admissions(
    cluster: Cluster, operator: Operator, kmock: kmock.KubernetesEmulator
) -> None:
    await cluster.create_tasktype("echo")
    await cluster.create_queue("slow", {"concurrency": 10, "maxStartsPerMinute": 60})
    for i in range(3):
        await cluster.create_task(f"r{i}", {"type": "echo", "queue": "slow"})
    seen: dict[str, float] = {}

    def note() -> bool:
        for job in created_jobs(kmock):
            seen.setdefault(job, time.monotonic())
        return len(seen) == 3

    await eventually(note, timeout=10, what="three admitted")
    first, *_, last = sorted(seen.values())
    # 60 per minute: one start per second, so three starts take at least two seconds (a lower bound only).
    assert last - first >= 1.5, seen


async def test_queue_status_counts(cluster: Cluster, operator: Operator) -> None:
    await cluster.create_tasktype("echo")
    await cluster.create_queue("counted", {"concurrency": 1})
    for i in range(3):
        await cluster.create_task(f"q{i}", {"type": "echo", "queue": "counted"})
    await eventually(
        lambda: (
            cluster.queue_status("counted").get("pending") == 2 and cluster.queue_status("counted").get("running") == 1
        ),
        timeout=10,
        what="queue status pending=2 running=1",
    )


async def test_default_queue_with_configured_concurrency(
    cluster: Cluster, kubeconfig: object, tmp_path: object, kmock: kmock.KubernetesEmulator
) -> None:
    import pathlib

    op = Operator(pathlib.Path(str(kubeconfig)), pathlib.Path(str(tmp_path)) / "op.log", "--default-concurrency", "1")
    await op.start()
    try:
        await cluster.create_tasktype("echo")
        await cluster.create_task("d1", {"type": "echo"})
        await cluster.create_task("d2", {"type": "echo"})
        await eventually(lambda: cluster.status("d2").get("reason") == "Queued", what="d2 queued in default")
        await eventually(lambda: cluster.phase("d1") == "Running", what="d1 Running")
        assert not any(p.endswith("d2-1") for _, p in operator_requests(kmock))
    finally:
        await op.stop()
