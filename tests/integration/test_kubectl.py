"""kubectl asynctask against kmock over HTTP: the real API client, watches and patches on the wire.

The test plays the operator (it writes the task's status); the plugin runs in this event loop.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import io
import json
import pathlib
from collections.abc import Callable
from typing import Any

import kmock
from rich.console import Console

from asynctask_operator.kubectl import run
from asynctask_operator.testing.cluster import AT, NS, Cluster
from asynctask_operator.testing.operators import eventually

AT_API = "/apis/asynctask.dev/v1alpha1"


@dataclasses.dataclass
class Result:
    code: int
    out: str
    err: str


async def kubectl(kubeconfig: pathlib.Path, *argv: str, out: Console | None = None) -> Result:
    out = out or Console(file=io.StringIO(), width=200, color_system=None)
    err = Console(file=io.StringIO(), width=200, color_system=None)
    code = await run([*argv, "-n", NS, "--kubeconfig", str(kubeconfig)], out=out, err=err, interactive=False)
    return Result(code, out.file.getvalue(), err.file.getvalue())  # type: ignore[attr-defined]


def plugin_requests(k: kmock.KubernetesEmulator) -> list[tuple[str, str]]:
    return [
        (str(r.method.value).upper(), r.url.path)
        for r in k
        if r.headers.get("User-Agent", "").startswith("kubectl-asynctask")
    ]


def more(count: Callable[[], int], than: int) -> bool:
    return count() > than


async def play(
    cluster: Cluster, k: kmock.KubernetesEmulator, name: str, *statuses: dict[str, Any], out: Console | None = None
) -> None:
    """The operator's part: once the plugin has created the task and watches it, write each status in turn
    (with ``out``, each once the plugin has printed the one before: kmock replays a watch's objects as
    they are now, so statuses written at once could be seen as only the last)."""
    await eventually(lambda: (AT, NS, name) in k.objects, 10, "the task is created")
    await eventually(lambda: any("watch=true" in str(r.url) for r in k), 10, "the plugin watches")

    def printed() -> int:
        return len(out.file.getvalue().splitlines()) if out is not None else 0  # type: ignore[attr-defined]

    if out is not None:
        await eventually(lambda: printed() >= 1, 10, "the first line")
    for status in statuses:
        before = printed()
        await cluster.patch(f"{AT_API}", f"asynctasks/{name}", {"status": status})
        if out is not None:  # each status is a change: one more line
            await eventually(functools.partial(more, printed, before), 10, f"a line for {status}")


RUNNING = {"phase": "Running", "reason": "Admitted", "attempt": 1}


async def test_submit_wait_prints_progress_and_exits_0_on_success(
    cluster: Cluster, kmock: kmock.KubernetesEmulator, kubeconfig: pathlib.Path
) -> None:
    await cluster.create_tasktype("video")
    progress = {**RUNNING, "progress": {"percent": 60, "message": "encoding", "stepsDone": 3, "stepsTotal": 5}}
    done = {"phase": "Succeeded", "reason": "Completed", "attempt": 1, "progress": {"percent": 100}}
    out = Console(file=io.StringIO(), width=200, color_system=None)
    operator = asyncio.create_task(play(cluster, kmock, "v1", RUNNING, progress, done, out=out))
    result = await asyncio.wait_for(
        kubectl(kubeconfig, "submit", "--type", "video", "--name", "v1", "--payload", '{"in": "a"}', "--wait", out=out),
        20,
    )
    await operator
    assert result.code == 0, result.err
    phases = [line.split()[1] for line in result.out.splitlines()]
    assert phases[0] == "Pending" and phases[-1] == "Succeeded", result.out
    assert any("60% step 3/5 attempt 1" in line and '"encoding"' in line for line in result.out.splitlines())
    assert kmock.objects[AT, NS, "v1"]["spec"] == {"type": "video", "payload": {"in": "a"}}
    assert result.err == "asynctask/v1 created\n"


async def test_submit_wait_exits_1_on_failure_with_the_reason(
    cluster: Cluster, kmock: kmock.KubernetesEmulator, kubeconfig: pathlib.Path
) -> None:
    await cluster.create_tasktype("video")
    failed = {
        "phase": "Failed",
        "reason": "NonRetryableExitCode",
        "attempt": 1,
        "error": {"code": "NonRetryableExitCode", "message": "container main exited with code 2: input not found"},
    }
    operator = asyncio.create_task(play(cluster, kmock, "v2", RUNNING, failed))
    result = await asyncio.wait_for(kubectl(kubeconfig, "submit", "--type", "video", "--name", "v2", "--wait"), 20)
    await operator
    assert result.code == 1
    assert (
        result.err.splitlines()[-1]
        == "v2 Failed (NonRetryableExitCode): container main exited with code 2: input not found"
    )


async def test_an_unknown_type_is_an_error_and_nothing_is_created(
    cluster: Cluster, kmock: kmock.KubernetesEmulator, kubeconfig: pathlib.Path
) -> None:
    result = await kubectl(kubeconfig, "submit", "--type", "nope", "--name", "x")
    assert (result.code, result.err) == (4, "error: no TaskType 'nope' in namespace 'default'\n")
    assert [m for m, _ in plugin_requests(kmock)] == ["GET"]


async def test_cancel_by_selector_patches_exactly_the_selected_tasks(
    cluster: Cluster, kmock: kmock.KubernetesEmulator, kubeconfig: pathlib.Path
) -> None:
    for name, app in (("w1", "web"), ("w2", "web"), ("d1", "db")):
        await cluster.create_task(name, {"type": "video"}, labels={"app": app})
        await cluster.patch(AT_API, f"asynctasks/{name}", {"status": {"phase": "Running"}})
    await cluster.create_task("w3", {"type": "video"}, labels={"app": "web"})
    await cluster.patch(AT_API, "asynctasks/w3", {"status": {"phase": "Succeeded"}})
    result = await kubectl(kubeconfig, "cancel", "-l", "app=web", "--yes")
    assert result.code == 0, result.err
    patches = [path for method, path in plugin_requests(kmock) if method == "PATCH"]
    assert patches == [f"{AT_API}/namespaces/{NS}/asynctasks/w1", f"{AT_API}/namespaces/{NS}/asynctasks/w2"]
    assert {n: bool(kmock.objects[AT, NS, n]["spec"].get("cancel")) for n in ("w1", "w2", "w3", "d1")} == {
        "w1": True,
        "w2": True,
        "w3": False,
        "d1": False,
    }


async def test_stats_over_a_prepared_set_of_tasks(
    cluster: Cluster, kmock: kmock.KubernetesEmulator, kubeconfig: pathlib.Path
) -> None:
    for name, phase, duration, reason in (
        ("s1", "Succeeded", 10, "Completed"),
        ("s2", "Succeeded", 30, "Completed"),
        ("s3", "Succeeded", 20, "Completed"),
        ("f1", "Failed", 5, "PodFailed"),
    ):
        await cluster.create_task(name, {"type": "video"})
        status = {"phase": phase, "reason": reason, "durationSeconds": duration}
        await cluster.patch(AT_API, f"asynctasks/{name}", {"status": status})
    await cluster.create_task("p1", {"type": "audio"})
    result = await kubectl(kubeconfig, "stats", "-o", "json", "--by", "type")
    assert result.code == 0, result.err
    answer = json.loads(result.out)
    figures = {g["key"]: g for g in answer["groups"]}
    assert (figures["video"]["total"], figures["video"]["successRate"]) == (4, 0.75)
    assert (figures["video"]["p50DurationSeconds"], figures["video"]["p95DurationSeconds"]) == (10, 30)
    assert (figures["audio"]["total"], figures["audio"]["successRate"]) == (1, None)
    assert answer["failuresByReason"] == {"PodFailed": 1}


async def test_logs_reads_the_attempts_pod_log_over_http(
    cluster: Cluster, kmock: kmock.KubernetesEmulator, kubeconfig: pathlib.Path
) -> None:
    await cluster.create_task("l1", {"type": "video"})
    await cluster.patch(AT_API, "asynctasks/l1", {"status": {"phase": "Succeeded", "attempt": 2}})
    for attempt in (1, 2):
        labels = {"asynctask.dev/task": "l1", "asynctask.dev/attempt": str(attempt)}
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": cluster._meta(f"l1-{attempt}-pod", labels=labels)}
        pod["status"] = {"phase": "Succeeded"}
        resp = await kmock.post(f"/api/v1/namespaces/{NS}/pods", json=pod)
        assert resp.status == 200
    kmock["get", f"/api/v1/namespaces/{NS}/pods/l1-2-pod/log"] << b"step 1 of 2 done\nstep 2 of 2 done\n"
    kmock["get", f"/api/v1/namespaces/{NS}/pods/l1-1-pod/log"] << b"first attempt\n"
    latest = await kubectl(kubeconfig, "logs", "l1")
    assert (latest.code, latest.out) == (0, "step 1 of 2 done\nstep 2 of 2 done\n"), latest.err
    first = await kubectl(kubeconfig, "logs", "l1", "--attempt", "1")
    assert (first.code, first.out) == (0, "first attempt\n"), first.err
    missing = await kubectl(kubeconfig, "logs", "l1", "--attempt", "3")
    assert (missing.code, missing.err) == (
        4,
        "error: no pod of attempt 3 of asynctask 'l1' (its pods may have been deleted)\n",
    )


async def test_wait_follows_the_real_operator_to_the_end(
    cluster: Cluster, operator: Any, kmock: kmock.KubernetesEmulator, kubeconfig: pathlib.Path
) -> None:
    """Not the test playing the operator: the operator's own status writes, read by the plugin's watch."""
    await cluster.create_tasktype("echo")
    await cluster.create_task("real", {"type": "echo", "retry": {"maxRetries": 1, "baseSeconds": 0, "jitter": False}})
    waiting = asyncio.create_task(kubectl(kubeconfig, "wait", "real", "--timeout", "30s"))
    await eventually(lambda: cluster.phase("real") == "Running", 15, "Running")
    await cluster.job_fails("real-1", exit_code=1)
    await eventually(lambda: cluster.has_job("real-2"), 15, "the retry's Job")
    await cluster.job_succeeds("real-2")
    result = await asyncio.wait_for(waiting, 30)
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert [line.split()[1] for line in lines][-1] == "Succeeded", result.out
    assert "Retrying" in [line.split()[1] for line in lines], result.out
    assert any("attempt 2/2" in line for line in lines), result.out
