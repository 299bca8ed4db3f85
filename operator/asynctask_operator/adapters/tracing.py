"""Exports the spans the core derives from tasks (:class:`~asynctask_operator.core.tracing.SpanRecord`)
through the OpenTelemetry SDK: a ``BatchSpanProcessor`` in front of the OTLP/HTTP exporter (ADR 0020).

The SDK's own tracer would pick span ids at random and stamp times from the clock; here every id
and time comes from the record, so a span is the same whichever operator process exports it. The
SDK is imported only by :func:`from_env`, and only when an OTLP endpoint is configured: without
one the operator builds no exporter, starts no thread and works out no spans.

The standard variables configure it: ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``…_TRACES_ENDPOINT``),
``…_HEADERS``, ``…_TIMEOUT``, ``…_COMPRESSION``, ``…_CERTIFICATE``; ``OTEL_BSP_*`` for the batch;
``OTEL_SERVICE_NAME`` and ``OTEL_RESOURCE_ATTRIBUTES`` for the resource; ``OTEL_SDK_DISABLED=true``
or ``OTEL_TRACES_EXPORTER=none`` turn it off.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Protocol

from asynctask_operator import __version__
from asynctask_operator.core.tracing import SpanRecord

if TYPE_CHECKING:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor

logger = logging.getLogger(__name__)

SERVICE_NAME = "asynctask-operator"
SCOPE = "asynctask_operator"
ENDPOINTS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


class SpanSink(Protocol):
    """Where finished spans go: :class:`SdkSpans`, or a test's list."""

    def export(self, spans: Iterable[SpanRecord]) -> None: ...

    def shutdown(self) -> None: ...


def nanos(moment: dt.datetime) -> int:
    """Nanoseconds since the epoch, exactly (no float on the way)."""
    return (moment - _EPOCH) // dt.timedelta(microseconds=1) * 1000


def readable(record: SpanRecord, resource: Resource) -> ReadableSpan:
    """The SDK's finished span of ``record``, with the record's ids and times."""
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope
    from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState

    flags = TraceFlags(TraceFlags.SAMPLED if record.sampled else TraceFlags.DEFAULT)
    state = TraceState.from_header([record.tracestate]) if record.tracestate else TraceState()
    trace_id = int(record.trace_id, 16)
    parent = None
    if record.parent_id is not None:
        parent = SpanContext(trace_id, int(record.parent_id, 16), record.remote_parent, flags, state)
    code = {"ok": StatusCode.OK, "error": StatusCode.ERROR}.get(record.status, StatusCode.UNSET)
    return ReadableSpan(
        name=record.name,
        context=SpanContext(trace_id, int(record.span_id, 16), False, flags, state),
        parent=parent,
        resource=resource,
        attributes=dict(record.attributes),
        kind=SpanKind.CLIENT if record.kind == "client" else SpanKind.INTERNAL,
        status=Status(code, record.description or None) if code is StatusCode.ERROR else Status(code),
        start_time=nanos(record.start),
        end_time=nanos(record.end),
        instrumentation_scope=InstrumentationScope(SCOPE, __version__),
    )


class SdkSpans:
    """Hands each sampled record to an SDK span processor (which batches and exports it)."""

    def __init__(self, processor: SpanProcessor, resource: Resource) -> None:
        self.processor = processor
        self.resource = resource

    def export(self, spans: Iterable[SpanRecord]) -> None:
        for record in spans:
            if record.sampled:
                self.processor.on_end(readable(record, self.resource))

    def flush(self, timeout_millis: int = 30000) -> bool:
        return self.processor.force_flush(timeout_millis)

    def shutdown(self) -> None:
        """Export what is queued, then stop (the batch thread and the HTTP session)."""
        self.processor.shutdown()


def resource_of(environ: Mapping[str, str]) -> Resource:
    """service.name ``asynctask-operator`` (unless OTEL_SERVICE_NAME says), plus OTEL_RESOURCE_ATTRIBUTES."""
    from opentelemetry.sdk.resources import Resource

    return Resource.create(
        {"service.name": environ.get("OTEL_SERVICE_NAME") or SERVICE_NAME, "service.version": __version__}
    )


def traces_endpoint(environ: Mapping[str, str]) -> str | None:
    """Where spans are POSTed: ``…_TRACES_ENDPOINT`` as it is, else ``…_ENDPOINT`` + ``/v1/traces`` (the
    OTLP/HTTP rule); ``None`` when neither is set."""
    signal = environ.get(ENDPOINTS[0], "").strip()
    if signal:
        return signal
    base = environ.get(ENDPOINTS[1], "").strip()
    return base.rstrip("/") + "/v1/traces" if base else None


def enabled(environ: Mapping[str, str]) -> bool:
    """An OTLP endpoint is set and the standard switches do not turn traces off."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() == "none":
        return False
    return traces_endpoint(environ) is not None


def from_env(environ: Mapping[str, str]) -> SdkSpans | None:
    """The exporter the OTel variables configure; ``None`` when they configure none (or the ``otel`` extra
    is not installed: the operator runs on, without traces, and says so once)."""
    if not enabled(environ):
        return None
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as exc:
        logger.warning(
            "OTEL_EXPORTER_OTLP_ENDPOINT is set but the OpenTelemetry SDK is not installed (%s): "
            "install asynctask-operator[otel]; running without traces",
            exc,
        )
        return None
    # The endpoint is the one decided on here; the exporter and the processor read the rest of their
    # variables (headers, timeout, compression, certificates, batch sizes) from the process's environment.
    endpoint = traces_endpoint(environ)
    spans = SdkSpans(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)), resource_of(environ))
    logger.info("exporting traces over OTLP/HTTP to %s", endpoint)
    return spans
