"""The chart's ``tracing.*`` values (ADR 0020): each one the standard OTEL_* variable of the operator's
container, none of them without an endpoint; values.schema.json refuses what the exporter cannot use."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.unit.test_chart import chart, container, helm, render, schema, schema_errors

__all__ = ["chart", "helm", "schema"]  # the fixtures, from the chart's tests

OTLP = "http://otel-collector.observability.svc:4318"


def otel_env(objects: list[dict[str, Any]]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container(objects)["env"] if "OTEL" in e["name"]}


def test_no_tracing_variables_by_default(chart: Any) -> None:
    assert otel_env(render(chart)) == {}
    assert otel_env(render(chart, {"tracing": {"serviceName": "x", "headers": "a=b"}})) == {}  # no endpoint: off


def test_tracing_values_become_the_standard_variables(chart: Any) -> None:
    values = {
        "tracing": {
            "endpoint": OTLP,
            "headers": "x-token=abc",
            "serviceName": "tasks-eu",
            "resourceAttributes": {"k8s.cluster.name": "eu-1", "deployment.environment": "prod"},
            "compression": "gzip",
        }
    }
    assert otel_env(render(chart, values)) == {
        "OTEL_EXPORTER_OTLP_ENDPOINT": OTLP,
        "OTEL_EXPORTER_OTLP_HEADERS": "x-token=abc",
        "OTEL_SERVICE_NAME": "tasks-eu",
        "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=prod,k8s.cluster.name=eu-1",
        "OTEL_EXPORTER_OTLP_COMPRESSION": "gzip",
    }


def test_headers_from_a_secret_win_over_plain_headers(chart: Any) -> None:
    values = {"tracing": {"endpoint": OTLP, "headers": "a=b", "headersSecret": {"name": "otlp", "key": "headers"}}}
    assert otel_env(render(chart, values))["OTEL_EXPORTER_OTLP_HEADERS"] == {
        "secretKeyRef": {"name": "otlp", "key": "headers"}
    }


def test_rendered_with_tracing_is_valid_kubernetes(chart: Any) -> None:
    validate = pytest.importorskip("kubernetes_validate", reason="kubernetes-validate is not installed")
    values = {"tracing": {"endpoint": OTLP, "headersSecret": {"name": "otlp", "key": "headers"}}}
    deployment = next(o for o in render(chart, values) if o["kind"] == "Deployment")
    validate.validate(deployment, "1.31.0", strict=True)


GOOD = [
    {"tracing": {"endpoint": OTLP}},
    {"tracing": {"endpoint": "https://api.honeycomb.io", "headers": "x-honeycomb-team=k,x-b=2"}},
    {"tracing": {"endpoint": OTLP, "headersSecret": {"name": "otlp.headers", "key": "headers"}}},
    {"tracing": {"endpoint": OTLP, "compression": "gzip", "resourceAttributes": {"a": "b"}}},
]
BAD = [
    ({"tracing": {"endpoint": "collector:4317"}}, "/tracing/endpoint"),  # a scheme is needed
    ({"tracing": {"endpoint": "grpc://collector:4317"}}, "/tracing/endpoint"),
    ({"tracing": {"headers": "no-equals-sign"}}, "/tracing/headers"),
    ({"tracing": {"headersSecret": {"name": "otlp"}}}, "key"),
    ({"tracing": {"compression": "brotli"}}, "/tracing/compression"),
    ({"tracing": {"resourceAttributes": {"a": 1}}}, "/tracing/resourceAttributes/a"),
    ({"tracing": {"endpiont": OTLP}}, "endpiont"),  # a typo is refused
]


@pytest.mark.parametrize("overrides", GOOD, ids=lambda v: json.dumps(v)[:60])
def test_schema_accepts_tracing(schema: dict[str, Any], overrides: dict[str, Any]) -> None:
    assert schema_errors(schema, overrides) == []


@pytest.mark.parametrize(("overrides", "field"), BAD, ids=lambda v: json.dumps(v)[:60])
def test_schema_refuses_tracing(schema: dict[str, Any], overrides: dict[str, Any], field: str) -> None:
    errors = schema_errors(schema, overrides)
    assert any(field in e for e in errors), errors
