"""ADR 0020: the adapter hands SpanRecords to the OpenTelemetry SDK with their own ids and times; the
reconciler exports the spans a status write ends once the write is accepted, and nothing without an
endpoint (not even the SDK's import)."""

from __future__ import annotations

import asyncio
import datetime as dt
import subprocess
import sys
from typing import Any

import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from asynctask_operator.adapters import tracing
from asynctask_operator.adapters.kube import ASYNCTASKS, JOBS, PODS, ApiError, Conflict
from asynctask_operator.controllers.manager import Manager
from asynctask_operator.controllers.workqueue import RequeueSoon
from asynctask_operator.core.tracing import SpanRecord, attempt_id, root_id
from asynctask_operator.settings import OperatorSettings
from asynctask_operator.testing.fakekube import FakeKube
from tests.support.otlp import OtlpReceiver
from tests.unit.test_apply import NS, SETTINGS, now, started, steps, task

T0 = dt.datetime(2025, 3, 1, 12, 0, 0, tzinfo=dt.UTC)
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def record(**fields: Any) -> SpanRecord:
    values: dict[str, Any] = {
        "name": "attempt",
        "trace_id": TRACE,
        "span_id": "00f067aa0ba902b7",
        "parent_id": "a3ce929d0e0e4736",
        "start": T0,
        "end": T0 + dt.timedelta(seconds=25),
        "attributes": {"asynctask.task": "t", "asynctask.attempt": 1},
        "status": "error",
        "description": "PodFailed",
        **fields,
    }
    return SpanRecord(**values)


def sdk() -> tuple[tracing.SdkSpans, InMemorySpanExporter]:
    memory = InMemorySpanExporter()
    return tracing.SdkSpans(SimpleSpanProcessor(memory), tracing.resource_of({})), memory


def test_a_record_becomes_a_span_with_its_own_ids_and_times() -> None:
    spans, memory = sdk()
    spans.export([record()])
    [span] = memory.get_finished_spans()
    assert (span.name, span.context.trace_id, span.context.span_id) == ("attempt", int(TRACE, 16), 0x00F067AA0BA902B7)
    assert span.parent is not None and span.parent.span_id == 0xA3CE929D0E0E4736 and not span.parent.is_remote
    assert (span.start_time, span.end_time) == (1740830400 * 10**9, 1740830425 * 10**9)
    assert dict(span.attributes or {}) == {"asynctask.task": "t", "asynctask.attempt": 1}
    assert (span.status.status_code, span.status.description) == (StatusCode.ERROR, "PodFailed")
    assert span.kind is SpanKind.INTERNAL
    assert span.resource.attributes["service.name"] == "asynctask-operator"
    assert span.instrumentation_scope is not None and span.instrumentation_scope.name == "asynctask_operator"


def test_a_root_under_a_remote_parent_with_tracestate() -> None:
    spans, memory = sdk()
    spans.export([record(name="task", status="ok", remote_parent=True, tracestate="vendor=x", kind="client")])
    [span] = memory.get_finished_spans()
    assert span.parent is not None and span.parent.is_remote
    assert span.context.trace_state.to_header() == "vendor=x"
    assert (span.status.status_code, span.kind) == (StatusCode.OK, SpanKind.CLIENT)


def test_unsampled_records_are_not_exported() -> None:
    spans, memory = sdk()
    spans.export([record(sampled=False), record(span_id="1111111111111111")])
    assert [s.context.span_id for s in memory.get_finished_spans()] == [0x1111111111111111]


def test_a_root_without_parent_is_a_root() -> None:
    spans, memory = sdk()
    spans.export([record(parent_id=None)])
    assert memory.get_finished_spans()[0].parent is None


@pytest.mark.parametrize(
    ("environ", "on"),
    [
        ({}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": " "}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"}, False),
    ],
    ids=["unset", "endpoint", "traces-endpoint", "blank", "sdk-disabled", "exporter-none"],
)
def test_the_standard_variables_turn_the_exporter_on_and_off(environ: dict[str, str], on: bool) -> None:
    spans = tracing.from_env(environ)
    assert (spans is not None) is on
    if spans is not None:
        spans.shutdown()  # nothing queued: no request is made


@pytest.mark.parametrize(
    ("environ", "endpoint"),
    [
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, "http://c:4318/v1/traces"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318/"}, "http://c:4318/v1/traces"),
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://t/x"},
            "http://t/x",
        ),
    ],
)
def test_the_traces_endpoint_follows_the_otlp_http_rule(environ: dict[str, str], endpoint: str) -> None:
    assert tracing.traces_endpoint(environ) == endpoint


async def test_spans_reach_the_endpoint_the_given_variables_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """Over real OTLP/HTTP to a receiver, with the process's own OTEL variables unset: the ones given win."""
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    async with OtlpReceiver() as receiver:
        spans = tracing.from_env({"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint})
        assert spans is not None
        spans.export([record()])
        assert await asyncio.to_thread(spans.flush, 5000)
        await asyncio.to_thread(spans.shutdown)
    [got] = receiver.spans
    assert (got.trace_id, got.span_id, got.parent_id) == (TRACE, "00f067aa0ba902b7", "a3ce929d0e0e4736")
    assert (got.start_ns, got.end_ns, got.status_code) == (1740830400 * 10**9, 1740830425 * 10**9, 2)


def test_the_service_name_is_the_operators_unless_otel_service_name_says() -> None:
    assert tracing.resource_of({}).attributes["service.name"] == "asynctask-operator"
    assert tracing.resource_of({"OTEL_SERVICE_NAME": "jobs"}).attributes["service.name"] == "jobs"


def test_without_an_endpoint_the_sdk_is_not_even_imported() -> None:
    code = (
        "import os, sys\n"
        "os.environ.pop('OTEL_EXPORTER_OTLP_ENDPOINT', None); os.environ.pop('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', None)\n"
        "from asynctask_operator.controllers import process\n"
        "from asynctask_operator.adapters import tracing\n"
        "assert tracing.from_env(os.environ) is None\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --------------------------------------------------------------------------- the reconciler


class Collected:
    def __init__(self) -> None:
        self.spans: list[SpanRecord] = []

    def export(self, spans: Any) -> None:
        self.spans.extend(spans)

    def shutdown(self) -> None:
        pass


async def traced(*tasks: dict[str, Any]) -> tuple[FakeKube, Manager, Collected]:
    api, _ = await started(*tasks)
    sink = Collected()
    runtime = Manager(api, SETTINGS, spans=sink)
    await runtime.sync()
    api.requests.clear()
    return api, runtime, sink


async def finish_job(api: FakeKube, name: str) -> None:
    """The Job controller and the kubelet: the attempt's pod exited 0, its Job completed."""
    pod = await api.create(
        PODS, NS, {"metadata": {"name": f"{name}-p", "labels": {"batch.kubernetes.io/job-name": name}}}
    )
    terminated = {"terminated": {"exitCode": 0, "reason": "Completed"}}
    await api.patch(
        PODS,
        NS,
        pod["metadata"]["name"],
        {"status": {"phase": "Succeeded", "containerStatuses": [{"name": "main", "state": terminated}]}},
        subresource="status",
    )
    stamp = now().strftime("%Y-%m-%dT%H:%M:%SZ")
    status = {"succeeded": 1, "completionTime": stamp, "conditions": [{"type": "Complete", "status": "True"}]}
    await api.patch(JOBS, NS, name, {"status": status}, subresource="status")


async def test_the_spans_a_write_ends_are_exported_after_it_and_tracing_adds_no_request() -> None:
    api, runtime, sink = await traced(task("t"))
    await runtime.tasks.reconcile((NS, "t"), now())
    assert steps(api) == [("create", "jobs"), ("patch", "asynctasks/status")]  # as without tracing
    assert [s.name for s in sink.spans] == ["queue wait"]
    uid = api.get_object(ASYNCTASKS, NS, "t")["metadata"]["uid"]  # type: ignore[index]
    job = api.of(JOBS, NS)[0]
    env = {e["name"]: e["value"] for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["TRACEPARENT"].split("-")[2] == attempt_id(uid, 1)

    await finish_job(api, job["metadata"]["name"])
    runtime.cache.put_job(api.get_object(JOBS, NS, job["metadata"]["name"]))  # type: ignore[arg-type]
    for pod in api.of(PODS, NS):
        runtime.cache.put_pod(pod)
    api.requests.clear()
    await runtime.tasks.reconcile((NS, "t"), now())
    assert steps(api) == [("patch", "asynctasks/status")]
    assert [s.name for s in sink.spans] == ["queue wait", "attempt", "task"]
    assert [s.parent_id for s in sink.spans] == [root_id(uid, 1), root_id(uid, 1), None]


async def test_a_refused_status_write_exports_nothing() -> None:
    api, runtime, sink = await traced(task("t"))
    api.fail("patch", "asynctasks", Conflict(409, "Conflict", "the object has been modified"))
    with pytest.raises(RequeueSoon):  # decided again on fresh data
        await runtime.tasks.reconcile((NS, "t"), now())
    api.fail("patch", "asynctasks", ApiError(500, "InternalError", "etcd timed out"))
    with pytest.raises(ApiError):
        await runtime.tasks.reconcile((NS, "t"), now())
    assert sink.spans == []
    await runtime.tasks.reconcile((NS, "t"), now())
    assert [s.name for s in sink.spans] == ["queue wait"]  # once, by the write that was accepted


async def test_an_exporter_that_fails_does_not_fail_the_reconcile() -> None:
    class Broken(Collected):
        def export(self, spans: Any) -> None:
            raise RuntimeError("collector on fire")

    api, _ = await started(task("t"))
    runtime = Manager(api, OperatorSettings(http_port=0), spans=Broken())
    await runtime.sync()
    await runtime.tasks.reconcile((NS, "t"), now())
    assert api.get_object(ASYNCTASKS, NS, "t")["status"]["phase"] == "Running"  # type: ignore[index]


def test_the_worker_of_task_authors_md_continues_the_attempts_span() -> None:
    """docs/task-authors.md, Tracing: the propagator reads TRACEPARENT/TRACESTATE; the worker's span is a child."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    from asynctask_operator.core.tracing import ANNOTATION_TRACEPARENT, ANNOTATION_TRACESTATE, attempt_env
    from tests.unit.builders import task as task_builder

    obj = (
        task_builder("t")
        .annotation(ANNOTATION_TRACEPARENT, f"00-{TRACE}-00f067aa0ba902b7-01")
        .annotation(ANNOTATION_TRACESTATE, "vendor=x")
        .build()
    )
    environ = attempt_env(obj, 2)
    carrier = {"traceparent": environ["TRACEPARENT"], "tracestate": environ["TRACESTATE"]}
    parent = TraceContextTextMapPropagator().extract(carrier)
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    with provider.get_tracer("transcoder").start_as_current_span("transcode", context=parent):
        pass
    [span] = memory.get_finished_spans()
    assert span.context.trace_id == int(TRACE, 16)
    assert span.parent is not None and span.parent.span_id == int(attempt_id(obj.metadata.uid, 2), 16)
    assert span.context.trace_state.to_header() == "vendor=x"
