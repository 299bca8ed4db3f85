"""The operator as a process: the report key, leader election, the HTTP server, and kopf's frame.

kopf is the process frame and nothing more (ADR 0015): it logs in with the operator's
credentials, handles SIGINT/SIGTERM and runs the cleanup. It watches nothing — every kind
is listed and watched by the :class:`~asynctask_operator.controllers.informer.Informer` —
and, standalone, posts no Events, scans no CRDs or namespaces and runs no peering: no API
request of kopf's own, and no permission for it (tests/unit/test_rbac.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import secrets
import socket
from typing import Any

import kopf

from asynctask_operator.adapters import tracing
from asynctask_operator.adapters.api import Kube
from asynctask_operator.adapters.election import LeaderElector, label_own_pod
from asynctask_operator.adapters.http import HttpServer
from asynctask_operator.adapters.kubeconfig import credentials, load_configuration
from asynctask_operator.adapters.secrets import load_report_key
from asynctask_operator.adapters.tracing import SpanSink
from asynctask_operator.controllers.manager import Manager
from asynctask_operator.core.clocks import Clocks
from asynctask_operator.settings import OperatorSettings


def kopf_frame(settings: OperatorSettings, stop_flag: asyncio.Future[None]) -> kopf.OperatorRegistry:
    """Login and cleanup: the two handlers kopf runs for this operator."""
    registry = kopf.OperatorRegistry()

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        # The same kubeconfig/context (or in-cluster account) as the operator's own client:
        # kopf's stock login would read $KUBECONFIG as it was when the client library loaded.
        config = load_configuration(settings.kubeconfig, settings.context)
        return kopf.ConnectionInfo(**credentials(config))

    @kopf.on.cleanup(registry=registry)
    def settle_stop_flag(**_: Any) -> None:
        # Stopped by a signal, kopf would wait 5 s for its own waiter of this flag before exiting
        # (a "hung" task): every SIGTERM — a rollout, a handover — took 5 s longer than it needs.
        if not stop_flag.done():
            stop_flag.set_result(None)

    return registry


def kopf_settings() -> kopf.OperatorSettings:
    settings = kopf.OperatorSettings()
    settings.posting.enabled = False  # kopf's own Events would be API writes per log line
    settings.scanning.disabled = True  # no CRD/namespace scanning: fewer permissions, fewer requests
    return settings


async def run(
    api: Kube,
    settings: OperatorSettings,
    stop: asyncio.Event | None = None,
    *,
    frame: bool = True,
    clocks: Clocks | None = None,
    spans: SpanSink | None = None,
) -> None:
    """Run until stopped by a signal (kopf handles SIGINT/SIGTERM) or by ``stop``.

    ``frame=False``: without kopf (no login handler, no signal handlers), stopped by ``stop``
    or a lost Lease only: the operator inside a test's event loop. ``spans``: where finished spans go;
    default: the OTLP exporter the standard OTEL_* variables configure, or none (ADR 0020)."""
    if settings.core.report_url:
        key = await load_report_key(api, settings.report_key_namespace, settings.report_key_secret)
        settings = dataclasses.replace(settings, core=dataclasses.replace(settings.core, report_key=key))
    clocks = clocks or Clocks()
    spans = spans if spans is not None else tracing.from_env(os.environ)
    manager = Manager(api, settings, clocks=clocks, spans=spans)
    elector: LeaderElector | None = None
    if settings.leader_elect:
        elector = LeaderElector(
            api,
            settings.report_key_namespace,
            settings.lease_name,
            # pid 1 again after a container restart: the suffix makes each process a new candidate.
            f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}",
            lease_seconds=settings.lease_seconds,
            renew_deadline=settings.renew_deadline,
            retry_period=settings.retry_period,
            now=clocks.utcnow,
            monotonic=clocks.monotonic,
        )
    labelled = False  # this replica's pod carries asynctask.dev/leader (so a standby may be Ready)
    if elector is not None and settings.pod_name:
        labelled = await label_own_pod(api, settings.report_key_namespace, settings.pod_name, leading=False)

    def ready() -> bool:
        """The leader once its cache is filled; a standby when the Service cannot send it reports."""
        if elector is not None and not elector.leading:
            return labelled
        return "asynctasks" in manager.cache.synced

    server: HttpServer | None = None
    if settings.http_port:
        server = HttpServer(settings.http_port, manager.reports, ready=ready, metrics=manager.metrics.exposition)
        await server.start()
    if elector is not None:
        await elector.acquire()  # a standby waits here; its probes answer meanwhile
    versions = await manager.sync()
    if elector is not None and settings.pod_name:  # even if "false" failed: the Service must find the leader
        await label_own_pod(api, settings.report_key_namespace, settings.pod_name, leading=True)
    manager.metrics.leader.set(1)
    background = manager.background(versions)
    halt = asyncio.Event()
    deposed = asyncio.Event()  # the Lease was lost (not a shutdown)
    if stop is not None:
        background.append(asyncio.create_task(_forward(stop, halt)))
    if elector is not None:

        def lost() -> None:  # stop writing now, before the Lease can pass to a standby
            deposed.set()
            for task in background:
                task.cancel()
            manager.callbacks.cancel()
            manager.metrics.leader.set(0)
            halt.set()

        background.append(asyncio.create_task(elector.keep(on_lost=lost), name="lease"))
    stop_flag: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    relay = asyncio.create_task(_relay(halt, stop_flag))
    try:
        if frame:
            await kopf.operator(
                registry=kopf_frame(settings, stop_flag),
                settings=kopf_settings(),
                clusterwide=not settings.namespaces,
                namespaces=list(settings.namespaces),
                standalone=True,
                stop_flag=stop_flag,
            )
        else:
            await stop_flag
    finally:
        relay.cancel()
        if server is not None:
            await server.stop()
        for task in background:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*background, return_exceptions=True)
            await manager.callbacks.close()
        if elector is not None and elector.leading:  # stopped, not deposed: hand over at once
            await elector.release()
        if spans is not None:  # what is batched goes out before the process does
            await asyncio.to_thread(spans.shutdown)
    if deposed.is_set():
        raise SystemExit("lost the leader Lease: exiting, to come back as a standby")


async def _forward(source: asyncio.Event, target: asyncio.Event) -> None:
    await source.wait()
    target.set()


async def _relay(stop: asyncio.Event, flag: asyncio.Future[None]) -> None:
    await stop.wait()
    if not flag.done():
        flag.set_result(None)
