"""Progress and results reported by running tasks, through the operator's real HTTP endpoint."""

from __future__ import annotations

import json
import pathlib
import socket
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import kmock
import pytest

from asynctask_operator.testing.cluster import NS, Cluster, operator_requests
from asynctask_operator.testing.operators import Operator, eventually

SECRETS = kmock.resource("", "v1", "secrets")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture()
async def reporting(cluster: Cluster, kubeconfig: pathlib.Path, tmp_path: pathlib.Path) -> AsyncIterator[Operator]:
    port = free_port()
    op = Operator(
        kubeconfig,
        tmp_path / "operator.log",
        "--http-port", str(port),
        "--report-url", f"http://127.0.0.1:{port}",
        "--progress-interval", "2",
        "--result-limit", "2048",
    )  # fmt: skip
    op.port = port  # type: ignore[attr-defined]
    await op.start()
    yield op
    await op.stop()


def env_of(cluster: Cluster, job: str) -> dict[str, str]:
    container = cluster.job(job)["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e["value"] for e in container["env"]}


async def post(url: str, token: str | None, body: Any, raw: bytes | None = None) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    data = raw if raw is not None else json.dumps(body).encode()
    async with aiohttp.ClientSession() as session, session.post(url, data=data, headers=headers) as resp:
        return resp.status, await resp.json()


async def running_task(cluster: Cluster, name: str) -> tuple[str, str]:
    await cluster.create_task(name, {"type": "echo"})
    await eventually(lambda: cluster.phase(name) == "Running", what=f"{name} Running")
    env = env_of(cluster, f"{name}-1")
    return env["ASYNCTASK_REPORT_URL"], env["ASYNCTASK_REPORT_TOKEN"]


def progress_writes(k: kmock.KubernetesEmulator, name: str) -> int:
    path = f"/apis/asynctask.dev/v1alpha1/namespaces/{NS}/asynctasks/{name}/status"
    return sum(
        1
        for request in k
        if request.url.path == path
        and request.method.value == "PATCH"
        and "progress" in ((request.data or {}).get("status") or {})
    )


async def test_pods_get_a_report_url_and_token_and_the_key_lives_in_a_secret(
    cluster: Cluster, reporting: Operator, kmock: kmock.KubernetesEmulator
) -> None:
    await cluster.create_tasktype("echo")
    url, token = await running_task(cluster, "envy")
    assert url == f"http://127.0.0.1:{reporting.port}/v1/namespaces/{NS}/asynctasks/envy"  # type: ignore[attr-defined]
    assert token.startswith("v1.1.")
    secret = kmock.objects[SECRETS, NS, "asynctask-report-key"]
    assert secret["data"]["key"]
    assert token not in str(cluster.task("envy")), "the token must not leak into status"


async def test_a_hundred_progress_posts_cost_at_most_one_write_per_interval(
    cluster: Cluster, reporting: Operator, kmock: kmock.KubernetesEmulator
) -> None:
    await cluster.create_tasktype("echo")
    url, token = await running_task(cluster, "busy")
    for i in range(100):
        status, _ = await post(f"{url}/progress", token, {"percent": i, "message": f"step {i}"})
        assert status == 202
    await eventually(lambda: (cluster.status("busy").get("progress") or {}).get("percent") == 99, what="latest wins")
    # The first report is written at once, the latest after the 2 s interval: two writes, not a hundred.
    assert progress_writes(kmock, "busy") <= 2
    await cluster.job_succeeds("busy-1")
    await eventually(lambda: cluster.phase("busy") == "Succeeded", what="Succeeded")
    assert cluster.status("busy")["progress"]["percent"] == 99


async def test_final_progress_and_result_ride_on_the_terminal_write(cluster: Cluster, reporting: Operator) -> None:
    await cluster.create_tasktype("echo")
    url, token = await running_task(cluster, "done")
    body = {"percent": 40, "message": "encoding", "step": "encode", "stepsDone": 2, "stepsTotal": 5}
    assert (await post(f"{url}/progress", token, body))[0] == 202
    assert (await post(f"{url}/progress", token, {"percent": 100, "message": "done"}))[0] == 202
    assert (await post(f"{url}/result", token, {"url": "s3://out/a.mp4"}))[0] == 202
    await eventually(lambda: cluster.status("done").get("result") == {"url": "s3://out/a.mp4"}, what="result")
    await cluster.job_succeeds("done-1")
    await eventually(lambda: cluster.phase("done") == "Succeeded", what="Succeeded")
    status = cluster.status("done")
    assert status["progress"]["percent"] == 100
    assert status["result"] == {"url": "s3://out/a.mp4"}


async def test_result_from_the_termination_message(cluster: Cluster, reporting: Operator) -> None:
    await cluster.create_tasktype("echo")
    await running_task(cluster, "quietly")
    await cluster.job_succeeds("quietly-1", termination_message='{"rows": 42}')
    await eventually(lambda: cluster.phase("quietly") == "Succeeded", what="Succeeded")
    assert cluster.status("quietly")["result"] == {"rows": 42}


async def test_refusals_change_nothing(cluster: Cluster, reporting: Operator, kmock: kmock.KubernetesEmulator) -> None:
    await cluster.create_tasktype("echo")
    url, token = await running_task(cluster, "guarded")
    other_url, other_token = await running_task(cluster, "other")
    before = len([r for r in operator_requests(kmock) if r[0] == "PATCH" and "guarded" in r[1]])
    cases = [
        ("no token", None, {"percent": 1}, None, 401),
        ("malformed", "nonsense", {"percent": 1}, None, 401),
        ("tampered", token[:-2] + "xx", {"percent": 1}, None, 403),
        ("another task's token", other_token, {"percent": 1}, None, 403),
        ("percent 140", token, {"percent": 140}, None, 400),
        ("unknown field", token, {"percent": 1, "colour": "red"}, None, 400),
        ("not JSON", token, None, b"{nope", 400),
        ("not an object", token, None, b"[1, 2]", 400),
    ]
    for what, tok, body, raw, expected in cases:
        status, answer = await post(f"{url}/progress", tok, body, raw)
        assert status == expected, (what, status, answer)
        assert answer["message"], what
    status, answer = await post(f"{url}/result", token, {"blob": "x" * 4096})
    assert status == 413 and "limit" in answer["message"]
    await cluster.job_succeeds("guarded-1")
    await eventually(lambda: cluster.phase("guarded") == "Succeeded", what="Succeeded")
    status, answer = await post(f"{url}/progress", token, {"percent": 5})
    assert status == 409, answer  # the attempt has finished
    guarded = cluster.status("guarded")
    assert "progress" not in guarded and "result" not in guarded
    writes = [r for r in operator_requests(kmock) if r[0] == "PATCH" and "guarded" in r[1]]
    assert len(writes) - before == 1, "only the terminal write"
    assert other_url != url


async def test_the_key_survives_a_restart(cluster: Cluster, reporting: Operator) -> None:
    await cluster.create_tasktype("echo")
    url, token = await running_task(cluster, "steady")
    reporting.kill()
    await reporting.start()
    status, answer = await post(f"{url}/progress", token, {"percent": 7})
    assert status == 202, answer
    await eventually(lambda: (cluster.status("steady").get("progress") or {}).get("percent") == 7, what="progress")


async def test_the_shipped_client(cluster: Cluster, reporting: Operator, monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    from asynctask_operator import report

    await cluster.create_tasktype("echo")
    url, token = await running_task(cluster, "client")
    monkeypatch.setenv("ASYNCTASK_REPORT_URL", url)
    monkeypatch.setenv("ASYNCTASK_REPORT_TOKEN", token)
    argv = ["progress", "40", "encoding", "--step", "encode", "--steps", "2/5"]
    assert await asyncio.to_thread(report.main, argv) == 0
    assert await asyncio.to_thread(report.main, ["result", '{"url": "s3://out/a.mp4"}']) == 0
    assert await asyncio.to_thread(report.main, ["progress", "140"]) == 1  # refused: percent out of range
    await eventually(lambda: cluster.status("client").get("result") == {"url": "s3://out/a.mp4"}, what="result")
    progress = cluster.status("client")["progress"]
    assert (progress["percent"], progress["step"], progress["stepsDone"], progress["stepsTotal"]) == (
        40,
        "encode",
        2,
        5,
    )
    monkeypatch.delenv("ASYNCTASK_REPORT_URL")
    assert report.Reporter.from_env().progress(1) is False  # outside the operator: a no-op


async def test_health_and_metrics(cluster: Cluster, reporting: Operator) -> None:
    base = f"http://127.0.0.1:{reporting.port}"  # type: ignore[attr-defined]
    await cluster.create_tasktype("echo")
    await running_task(cluster, "fine")
    await cluster.job_succeeds("fine-1")
    await cluster.create_task("broken", {"type": "echo", "retry": {"maxRetries": 0}})
    await eventually(lambda: cluster.phase("broken") == "Running", what="Running")
    await cluster.job_fails("broken-1", exit_code=2)
    await eventually(lambda: cluster.phase("fine") == "Succeeded" and cluster.phase("broken") == "Failed", what="done")
    async with aiohttp.ClientSession() as session:
        for path in ("/healthz", "/readyz"):
            async with session.get(base + path) as resp:
                assert resp.status == 200, path
        async with session.get(base + "/metrics") as resp:
            assert resp.status == 200
            text = await resp.text()
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]

    def has(prefix: str, *labels: str) -> bool:
        return any(line.startswith(prefix) and all(label in line for label in labels) for line in lines)

    assert has("asynctask_tasks_created_total", 'namespace="default"', 'type="echo"')
    assert has("asynctask_tasks_finished_total", 'phase="Succeeded"', 'reason="Completed"', 'queue="default"')
    assert has("asynctask_tasks_finished_total", 'phase="Failed"', 'reason="PodFailed"')
    assert has("asynctask_attempts_total", 'outcome="Failed"')
    assert has("asynctask_task_duration_seconds_bucket", 'phase="Succeeded"')
    assert has("asynctask_queue_wait_seconds_count", 'queue="default"')
    assert has("asynctask_queue_running", 'queue="default"')
    assert has("asynctask_queue_oldest_pending_seconds", 'queue="default"')
    assert has("asynctask_leader 1.0")  # no election: this replica acts
    assert has("asynctask_api_requests_total", 'verb="create"', 'resource="jobs"', 'code="200"')
    assert has("asynctask_reconcile_seconds_count", 'kind="task"')
    assert not any('name="fine"' in line or "fine" in line.split("{")[-1] for line in lines), "no task names"
