from __future__ import annotations

import pathlib
from collections.abc import AsyncIterator

import kmock
import pytest

from asynctask_operator.testing.cluster import Cluster, declare_resources, write_kubeconfig
from asynctask_operator.testing.emulator import ApiServerEmulator, QuickShutdownServer
from asynctask_operator.testing.operators import InProcessOperator, Operator


@pytest.fixture()
def kmock_options(kmock_options: dict[str, object], request: pytest.FixtureRequest) -> dict[str, object]:
    # The shared emulator's server semantics, keeping kmock's request history (the tests read it), unless
    # a test names its own emulator.
    marker = request.node.get_closest_marker("kmock")
    if marker is None or "cls" not in marker.kwargs:
        kmock_options = {**kmock_options, "cls": ApiServerEmulator, "forget": False}
    return {**kmock_options, "server_cls": QuickShutdownServer}


@pytest.fixture()
async def cluster(kmock: kmock.KubernetesEmulator) -> Cluster:
    declare_resources(kmock)
    return Cluster(kmock)


@pytest.fixture()
def kubeconfig(kmock: kmock.KubernetesEmulator, tmp_path: pathlib.Path) -> pathlib.Path:
    path = tmp_path / "kubeconfig"
    write_kubeconfig(path, str(kmock.url))
    return path


@pytest.fixture()
async def operator(
    cluster: Cluster, kubeconfig: pathlib.Path, tmp_path: pathlib.Path, request: pytest.FixtureRequest
) -> AsyncIterator[Operator]:
    marker = request.node.get_closest_marker("operator_args")
    extra = tuple(marker.args) if marker else ()
    # A process only where the process is the point (a SIGKILL); in this event loop everywhere else.
    kind = Operator if request.node.get_closest_marker("process") else InProcessOperator
    op = kind(kubeconfig, tmp_path / "operator.log", *extra)
    await op.start()
    yield op
    await op.stop()
    if request.node.rep_call.failed if hasattr(request.node, "rep_call") else False:
        print(op.log()[-20000:])


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    report = yield
    setattr(item, "rep_" + report.when, report)
    return report
