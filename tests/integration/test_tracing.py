"""ADR 0020 through the real operator against kmock: it exports each task's spans over OTLP/HTTP to a
receiver the test runs, the Job of an attempt carries that attempt's span, tracing adds no API write,
and an operator SIGKILLed in the middle of a task still yields one whole trace, each span once."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

import kmock
import pytest

from asynctask_operator.testing.cluster import NS, Cluster, operator_writes
from asynctask_operator.testing.operators import Operator, eventually
from tests.support.otlp import OtlpReceiver

PARENT_TRACE, PARENT_SPAN = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
RETRY_ONCE = {"maxRetries": 1, "baseSeconds": 1, "jitter": False}


@pytest.fixture(autouse=True)
async def otlp(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[OtlpReceiver]:
    """Runs before the operator fixture (autouse), which then reads the variables: in this process, or
    inherited by the child process."""
    async with OtlpReceiver() as receiver:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
        monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")  # milliseconds: the batch goes out at once
        monkeypatch.delenv("OTEL_SDK_DISABLED", raising=False)
        yield receiver


def span_id(uid: str, kind: str, n: int) -> str:
    return hashlib.sha256(f"{uid}/{n}/{kind}".encode()).digest()[:8].hex()


def job_traceparent(cluster: Cluster, job: str) -> str:
    [container] = cluster.job(job)["spec"]["template"]["spec"]["containers"]
    return next(e["value"] for e in container["env"] if e["name"] == "TRACEPARENT")


async def test_a_task_joins_its_annotated_trace_and_tracing_adds_no_write(
    cluster: Cluster, operator: Operator, otlp: OtlpReceiver, kmock: kmock.KubernetesEmulator
) -> None:
    await cluster.create_tasktype("echo")
    annotations = {"asynctask.dev/traceparent": f"00-{PARENT_TRACE}-{PARENT_SPAN}-01"}
    await cluster.create_task("traced", {"type": "echo", "ttlSecondsAfterFinished": 3600}, annotations=annotations)
    await eventually(lambda: cluster.phase("traced") == "Running", what="Running")
    uid = cluster.task("traced")["metadata"]["uid"]
    attempt = span_id(uid, "attempt", 1)
    assert job_traceparent(cluster, "traced-1") == f"00-{PARENT_TRACE}-{attempt}-01"

    await cluster.job_succeeds("traced-1")
    await eventually(lambda: cluster.phase("traced") == "Succeeded", what="Succeeded")
    await eventually(lambda: len(otlp.spans) == 3, what=lambda: f"3 spans, got {otlp.spans}")
    root = span_id(uid, "task", 1)
    assert sorted((s.name, s.span_id, s.parent_id) for s in otlp.spans) == [
        ("attempt", attempt, root),
        ("queue wait", span_id(uid, "queue", 1), root),
        ("task", root, PARENT_SPAN),  # a child of the span that submitted it
    ]
    assert {(s.trace_id, s.service) for s in otlp.spans} == {(PARENT_TRACE, "asynctask-operator")}
    [task] = otlp.named("task")
    assert task.attributes["asynctask.outcome"] == "Succeeded" and task.attributes["asynctask.queue"] == "default"
    assert task.status_code == 1 and task.end_ns >= task.start_ns

    # The budget of test_lifecycle.py's success, unchanged: a Job and two status writes.
    writes = [w for w in operator_writes(kmock) if "tasktypes" not in w[1]]
    assert [m for m, _ in writes] == ["POST", "PATCH", "PATCH"]


@pytest.mark.process
async def test_a_kill_in_the_middle_of_a_task_still_yields_one_whole_trace(
    cluster: Cluster, operator: Operator, otlp: OtlpReceiver
) -> None:
    await cluster.create_tasktype("echo")
    await cluster.create_task("survivor", {"type": "echo", "retry": RETRY_ONCE})
    await eventually(lambda: cluster.phase("survivor") == "Running", what="Running")
    uid = cluster.task("survivor")["metadata"]["uid"]
    await eventually(lambda: bool(otlp.named("queue wait")), what="the queue wait exported")
    operator.kill()  # SIGKILL, while attempt 1 runs: its span, and the trace's root, are not ended yet

    await cluster.job_fails("survivor-1", exit_code=3)  # ends while nobody watches
    await operator.start()
    await eventually(lambda: cluster.has_job("survivor-2"), what="attempt 2 started after the restart")
    trace = hashlib.sha256(uid.encode()).digest()[:16].hex()
    assert job_traceparent(cluster, "survivor-2") == f"00-{trace}-{span_id(uid, 'attempt', 2)}-01"
    await cluster.job_succeeds("survivor-2")
    await eventually(lambda: cluster.phase("survivor") == "Succeeded", what="Succeeded")
    await eventually(lambda: bool(otlp.named("task")), what="the root exported")

    root = span_id(uid, "task", 1)
    assert sorted((s.name, s.span_id, s.parent_id) for s in otlp.spans) == sorted(
        [
            ("queue wait", span_id(uid, "queue", 1), root),
            ("attempt", span_id(uid, "attempt", 1), root),
            ("retry delay", span_id(uid, "retry", 1), root),
            ("attempt", span_id(uid, "attempt", 2), root),
            ("task", root, None),
        ]
    ), "each span exactly once, all in one tree"
    assert {s.trace_id for s in otlp.spans} == {trace}
    failed = next(s for s in otlp.named("attempt") if s.attributes["asynctask.attempt"] == 1)
    assert (failed.attributes["asynctask.exit_code"], failed.status_code) == (3, 2)
    [task] = otlp.named("task")
    assert all(task.start_ns <= s.start_ns and s.end_ns <= task.end_ns for s in otlp.spans), "nested in time"
    assert task.attributes["asynctask.namespace"] == NS
