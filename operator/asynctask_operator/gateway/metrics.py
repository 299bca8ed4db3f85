"""The gateway's Prometheus metrics, served at ``/metrics`` (no token: like the operator's, for scrapers).

- ``asynctask_gateway_requests_total{method, route, code}``: the route is its template
  (``/v1/namespaces/{ns}/tasks/{name}``), never a name, so the series stay bounded;
- ``asynctask_gateway_request_seconds{method, route}``: time to the answer's start (a stream's
  start, not its end);
- ``asynctask_gateway_event_streams``: open event streams (subscribers of the cache);
- ``asynctask_gateway_review_cache_total{review, result}``: TokenReview and SubjectAccessReview
  cache hits and misses.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from fastapi import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Receive, Scope, Send

from asynctask_operator.gateway.access import Gateway
from asynctask_operator.gateway.asgi import seeing_status

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)


class _StateCollector(Collector):
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    def collect(self) -> Iterable[GaugeMetricFamily | CounterMetricFamily]:
        streams = GaugeMetricFamily("asynctask_gateway_event_streams", "Open event streams (SSE clients)")
        streams.add_metric([], len(self.gateway.tasks.subscriptions))
        yield streams
        reviews = CounterMetricFamily(
            "asynctask_gateway_review_cache", "Review cache lookups", labels=["review", "result"]
        )
        for review, cache in (("token", self.gateway.reviews.users), ("access", self.gateway.reviews.decisions)):
            reviews.add_metric([review, "hit"], cache.hits)
            reviews.add_metric([review, "miss"], cache.misses)
        yield reviews


class GatewayMetrics:
    def __init__(self, gateway: Gateway) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "asynctask_gateway_requests",
            "HTTP requests answered, by route template and status code",
            ["method", "route", "code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "asynctask_gateway_request_seconds",
            "Time to the start of the answer",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_StateCollector(gateway))

    def answer(self) -> Response:
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)


class CountRequests:
    """Requests by method, route and code, and the time to each answer's first byte (an event stream's
    headers, not its hours). Plain ASGI, like every middleware of the gateway."""

    def __init__(self, app: ASGIApp, metrics: GatewayMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        def count(status: int) -> None:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            self.metrics.requests.labels(scope["method"], route, str(status)).inc()
            self.metrics.latency.labels(scope["method"], route).observe(time.perf_counter() - started)

        await seeing_status(self.app, scope, receive, send, count)
