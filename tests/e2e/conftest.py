"""End-to-end fixtures: the CRDs, a fresh namespace and the operator, against a real cluster.

The tests run only when ``ASYNCTASK_E2E_KUBECONFIG`` names a kubeconfig (otherwise
they are collected and reported as skipped). The cluster must be Kubernetes 1.31 or newer and able
to run ``busybox:1.36`` (pre-load it into kind to save the pulls).

Optional environment:

- ``ASYNCTASK_E2E_ARTIFACTS``: a folder for ``operator.log`` (default: a pytest tmp dir).
- ``ASYNCTASK_E2E_KEEP_ON_FAILURE=1``: keep the test namespace when a test failed, to look
  at it (``kubectl -n asynctask-e2e-... get at,jobs,pods``).
- ``ASYNCTASK_E2E_REPORT_HOST``: an address of this machine that pods reach (on kind: the
  IPv4 gateway of the ``kind`` Docker network). The operator, which runs here and serves
  HTTP on a free port of every address, then gets ``--report-url http://<it>:<port>``, so
  tasks can report progress and results. Unset: no ``--report-url``, and results come only
  from termination messages.
"""

from __future__ import annotations

import functools
import os
import pathlib
import re
import socket
import subprocess
import sys
from collections.abc import Generator, Iterator

import kubernetes.client
import kubernetes.config
import pytest
from kubernetes.client import ApiClient, ApiException

from tests.e2e.helpers import (
    ARTIFACTS_ENV,
    CRD_NAMES,
    KEEP_ON_FAILURE_ENV,
    KUBECONFIG_ENV,
    REPO_ROOT,
    REPORT_HOST_ENV,
    SKIP_REASON,
    Cluster,
    OperatorProcess,
    create_namespace,
    decode_json,
    wait_for,
)

MIN_KUBERNETES = (1, 31)
OPERATOR_KEY = pytest.StashKey[OperatorProcess]()
LOG_OFFSET_KEY = pytest.StashKey[int]()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Without a cluster, every end-to-end test is collected and reported as skipped."""
    if os.environ.get(KUBECONFIG_ENV):
        return
    here = pathlib.Path(__file__).resolve().parent
    skip = pytest.mark.skip(reason=SKIP_REASON)
    for item in items:
        if here in pathlib.Path(item.path).resolve().parents:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def kubeconfig() -> str:
    path = os.environ.get(KUBECONFIG_ENV)
    if not path:
        pytest.skip(SKIP_REASON)
    if not pathlib.Path(path).is_file():
        pytest.fail(f"{KUBECONFIG_ENV}={path} is not a file")
    return path


@pytest.fixture(scope="session")
def api_client(kubeconfig: str) -> Iterator[ApiClient]:
    client = kubernetes.config.new_client_from_config(config_file=kubeconfig)  # type: ignore[no-untyped-call]
    try:
        yield client
    finally:
        client.close()


def _check_server_version(client: ApiClient) -> None:
    version = decode_json(kubernetes.client.VersionApi(client).get_code(_preload_content=False))
    major = int(re.sub(r"\D", "", str(version.get("major", "0"))) or 0)
    minor = int(re.sub(r"\D", "", str(version.get("minor", "0"))) or 0)
    if (major, minor) < MIN_KUBERNETES:
        pytest.fail(
            f"the cluster runs Kubernetes {version.get('gitVersion')}; asynctask-operator needs "
            f"{MIN_KUBERNETES[0]}.{MIN_KUBERNETES[1]} or newer (its CRDs declare selectableFields)"
        )


def _install_crds(kubeconfig: str, client: ApiClient) -> None:
    """``asynctask-operator crds --apply``, then wait until the API server serves the CRDs."""
    done = subprocess.run(
        [sys.executable, "-m", "asynctask_operator", "crds", "--apply", "--kubeconfig", kubeconfig],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(f"`asynctask-operator crds --apply` exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    extensions = kubernetes.client.ApiextensionsV1Api(client)

    def established(name: str) -> bool | None:
        crd = decode_json(extensions.read_custom_resource_definition(name, _preload_content=False))
        conditions = {c.get("type"): c.get("status") for c in (crd.get("status") or {}).get("conditions") or ()}
        return True if conditions.get("Established") == "True" else None

    applied = set(re.findall(r"customresourcedefinition/(\S+)", done.stdout))
    for name in sorted(applied | set(CRD_NAMES)):
        wait_for(functools.partial(established, name), 60, f"CRD {name} to be Established")


def _free_port() -> int:
    """A TCP port free on every address of this machine (the operator binds 0.0.0.0)."""
    with socket.socket() as sock:
        sock.bind(("0.0.0.0", 0))
        return int(sock.getsockname()[1])


def _report_url(port: int) -> str | None:
    """``http://$ASYNCTASK_E2E_REPORT_HOST:<port>``, or None when that variable is unset."""
    host = os.environ.get(REPORT_HOST_ENV, "").strip()
    if not host:
        return None
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 address
    return f"http://{host}:{port}"


def _write(config: pytest.Config, title: str, text: str) -> None:
    """Print past pytest's output capture (a session teardown has no test report to attach to)."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None:
        sys.stderr.write(f"\n===== {title} =====\n{text}\n")
        return
    reporter.write_sep("=", title)
    reporter.write_line(text)


@pytest.fixture(scope="session")
def cluster(
    request: pytest.FixtureRequest,
    kubeconfig: str,
    api_client: ApiClient,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Cluster]:
    """A fresh namespace with the CRDs installed and the operator serving it."""
    _check_server_version(api_client)
    _install_crds(kubeconfig, api_client)
    namespace = create_namespace(api_client)
    artifacts = os.environ.get(ARTIFACTS_ENV)
    folder = pathlib.Path(artifacts) if artifacts else tmp_path_factory.mktemp("operator")
    folder.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    operator = OperatorProcess(
        kubeconfig, namespace, folder / "operator.log", http_port=port, report_url=_report_url(port)
    )
    failed_to_start = False
    try:
        try:
            operator.start()
        except BaseException:
            failed_to_start = True
            raise
        request.config.stash[OPERATOR_KEY] = operator
        yield Cluster(api_client, namespace, operator)
    finally:
        code = operator.stop()
        failed = failed_to_start or request.session.testsfailed > 0
        if failed:
            _write(
                request.config,
                f"operator log ({operator.log_path}, exit code {code})",
                operator.log()[-60000:],
            )
        if failed and os.environ.get(KEEP_ON_FAILURE_ENV):
            _write(request.config, "kept", f"namespace {namespace} kept for inspection ({KEEP_ON_FAILURE_ENV} is set)")
        else:
            try:
                kubernetes.client.CoreV1Api(api_client).delete_namespace(namespace, _preload_content=False)
            except ApiException as exc:
                _write(request.config, "cleanup", f"could not delete namespace {namespace}: {exc.status} {exc.reason}")


@pytest.fixture(autouse=True)
def _operator_health(request: pytest.FixtureRequest, cluster: Cluster) -> Iterator[None]:
    """Fail a test during which the operator died or logged a traceback ("never a crash")."""
    operator = cluster.operator
    assert operator is not None
    operator.assert_alive("before this test started")
    offset = len(operator.log())
    request.node.stash[LOG_OFFSET_KEY] = offset
    yield
    during = operator.log()[offset:]
    operator.assert_alive("during this test")
    if "Traceback" in during:
        pytest.fail(f"the operator logged a traceback during this test:\n{during[-15000:]}", pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Attach what the operator logged during a failed test to its report."""
    report = yield
    operator = item.config.stash.get(OPERATOR_KEY, None)
    if report.when == "call" and report.failed and operator is not None:
        offset = item.stash.get(LOG_OFFSET_KEY, 0)
        report.sections.append(("operator log during this test", operator.log()[offset:][-20000:]))
    return report
