"""The archive read back through the front doors, on a real cluster (issue 27, item 4): a task runs, is archived
with its log, is deleted by its short TTL, and then ``kubectl asynctask get/describe/logs/history`` (the
plugin as a process, with the test kubeconfig's own user: a client certificate on kind) and the gateway's
HTTP API (a ServiceAccount's token) read it back, logs included.

The plugin reads through the real kube-apiserver's API aggregation: the test registers the APIService
``v1alpha1.archive.asynctask.dev`` itself, pointing at a Service without a selector whose EndpointSlice is
this machine (``ASYNCTASK_E2E_REPORT_HOST``, an address the cluster reaches, as the report tests use),
where ``asynctask-gateway --aggregation-port`` runs with a certificate for the Service's name from a test
CA (the APIService's caBundle). The gateway reads the real front-proxy settings from
kube-system/extension-apiserver-authentication. An APIService is cluster-wide: where one of that name
exists already (the chart's), the test skips rather than take it over.
"""

from __future__ import annotations

import base64
import json
import os
import pathlib
import shutil
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import kubernetes.client
import pytest
import trustme
from kubernetes.client import ApiClient, ApiException

from tests.e2e.helpers import (
    GC_TIMEOUT,
    REPORT_HOST_ENV,
    SUCCESS_TIMEOUT,
    Cluster,
    OperatorProcess,
    create_namespace,
    load_example,
    one,
    task_body,
    wait_for,
)
from tests.e2e.test_archive import ArchiverProcess
from tests.e2e.test_gateway import free_port, token_for

pytestmark = pytest.mark.e2e

API_SERVICE = "v1alpha1.archive.asynctask.dev"
SERVICE = "asynctask-e2e-aggregation"
BIN = pathlib.Path(sys.executable).parent


class GatewayProcess:
    """``asynctask-gateway`` for one namespace, reading the archive, with its aggregation port."""

    def __init__(self, kubeconfig: str, namespace: str, dsn: str, cert: str, key: str, log: pathlib.Path) -> None:
        self.port, self.aggregation_port = free_port(), free_port()
        self.command = [str(BIN / "asynctask-gateway"), "--kubeconfig", kubeconfig, "--namespace", namespace,
                        "--host", "0.0.0.0", "--port", str(self.port), "--archive-dsn", dsn,
                        "--aggregation-port", str(self.aggregation_port), "--aggregation-tls-cert", cert,
                        "--aggregation-tls-key", key, "--rate-limit", "0"]  # fmt: skip
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(self.command, stdout=out, stderr=subprocess.STDOUT, env=os.environ.copy())

        def ready() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(f"the gateway exited {self.process.returncode}:\n{self.text()}")
            try:
                return httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        wait_for(ready, 60, "the gateway ready", describe=self.text)

    def text(self) -> str:
        return self.log.read_text(errors="replace")[-5000:] if self.log.exists() else ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()


def register(client: ApiClient, namespace: str, host: str, port: int, ca: trustme.CA) -> None:
    """A Service without a selector whose endpoint is this machine's aggregation port, and the APIService."""
    core = kubernetes.client.CoreV1Api(client)
    service: Any = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": SERVICE},
               "spec": {"ports": [{"name": "aggregation", "port": 443, "targetPort": port, "protocol": "TCP"}]}}  # fmt: skip
    core.create_namespaced_service(namespace, service)
    slice_: Any = {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": SERVICE, "labels": {"kubernetes.io/service-name": SERVICE}},
        "addressType": "IPv6" if ":" in host else "IPv4",
        "endpoints": [{"addresses": [host], "conditions": {"ready": True}}],
        "ports": [{"name": "aggregation", "port": port, "protocol": "TCP"}],
    }  # fmt: skip
    kubernetes.client.DiscoveryV1Api(client).create_namespaced_endpoint_slice(namespace, slice_)
    api_service: Any = {
        "apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService", "metadata": {"name": API_SERVICE},
        "spec": {"group": "archive.asynctask.dev", "version": "v1alpha1", "groupPriorityMinimum": 1000,
                 "versionPriority": 15, "service": {"name": SERVICE, "namespace": namespace, "port": 443},
                 "caBundle": base64.b64encode(ca.cert_pem.bytes()).decode()},
    }  # fmt: skip
    kubernetes.client.ApiregistrationV1Api(client).create_api_service(api_service)


def available(client: ApiClient) -> bool | None:
    found = kubernetes.client.ApiregistrationV1Api(client).read_api_service(API_SERVICE)
    conditions = {c.type: c for c in (found.status.conditions or [])} if found.status else {}
    return True if "Available" in conditions and conditions["Available"].status == "True" else None


def conditions(client: ApiClient) -> str:
    found = kubernetes.client.ApiregistrationV1Api(client).read_api_service(API_SERVICE)
    return json.dumps([c.to_dict() for c in (found.status.conditions or [])], default=str) if found.status else ""


@pytest.fixture()
def served(kubeconfig: str, api_client: ApiClient, tmp_path: pathlib.Path) -> Iterator[tuple[Cluster, GatewayProcess]]:
    host = os.environ.get(REPORT_HOST_ENV, "").strip()
    if not host:
        pytest.skip(f"the API server must reach this machine's gateway: set {REPORT_HOST_ENV} to an address it reaches")
    registrations = kubernetes.client.ApiregistrationV1Api(api_client)
    try:
        registrations.read_api_service(API_SERVICE)
        pytest.skip(f"APIService {API_SERVICE} exists already (the chart's?): this test registers its own")
    except ApiException as exc:
        if exc.status != 404:
            raise
    namespace = create_namespace(api_client, prefix="asynctask-e2e-aggregated")
    ca = trustme.CA()
    leaf = ca.issue_cert(f"{SERVICE}.{namespace}.svc")
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    cert.write_bytes(b"".join(pem.bytes() for pem in leaf.cert_chain_pems))
    leaf.private_key_pem.write_to_path(str(key))
    dsn = f"sqlite:///{tmp_path / 'archive.db'}"
    operator = OperatorProcess(kubeconfig, namespace, tmp_path / "operator.log", "--archive-required")
    archiver = ArchiverProcess(kubeconfig, namespace, dsn, tmp_path / "archive.log")
    gateway = GatewayProcess(kubeconfig, namespace, dsn, str(cert), str(key), tmp_path / "gateway.log")
    try:
        operator.start()
        archiver.start()
        gateway.start()
        register(api_client, namespace, host, gateway.aggregation_port, ca)
        wait_for(lambda: available(api_client), 90, f"APIService {API_SERVICE} Available",
                 describe=lambda: conditions(api_client) + "\n" + gateway.text())  # fmt: skip
        yield Cluster(api_client, namespace, operator), gateway
    finally:
        try:
            registrations.delete_api_service(API_SERVICE)
        except ApiException:
            pass
        gateway.stop()
        archiver.stop()
        operator.stop()
        kubernetes.client.CoreV1Api(api_client).delete_namespace(namespace, _preload_content=False)


def plugin(kubeconfig: str, namespace: str, *argv: str) -> subprocess.CompletedProcess[str]:
    command = [str(BIN / "kubectl-asynctask"), *argv, "-n", namespace, "--kubeconfig", kubeconfig]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def test_a_task_past_its_ttl_is_read_back_by_the_plugin_and_the_gateway_logs_included(
    served: tuple[Cluster, GatewayProcess], kubeconfig: str, tmp_path: pathlib.Path
) -> None:
    cluster, gateway = served
    ns = cluster.namespace
    cluster.apply([one(load_example("hello"), "TaskType", "hello")])
    cluster.create(task_body("kept", {"type": "hello", "payload": {"n": 1}, "ttlSecondsAfterFinished": 5}))
    uid = cluster.wait_for_phase("kept", {"Succeeded"}, SUCCESS_TIMEOUT)["metadata"]["uid"]
    cluster.wait_gone("AsyncTask kept (deleted by its TTL once archived)", lambda: cluster.get_task("kept"), GC_TIMEOUT)

    # The plugin, as the kubeconfig's own user, through the API server.
    got = plugin(kubeconfig, ns, "get", "kept", "-o", "json")
    assert got.returncode == 0, got.stderr
    archived: dict[str, Any] = json.loads(got.stdout)
    assert (archived["kind"], archived["metadata"]["uid"], archived["status"]["phase"]) == (
        "ArchivedTask",
        uid,
        "Succeeded",
    )
    assert "asynctask/kept is archived" in got.stderr
    described = plugin(kubeconfig, ns, "describe", "kept")
    assert described.returncode == 0 and "Archived:" in described.stdout and "Logs kept:" in described.stdout, described
    log = plugin(kubeconfig, ns, "logs", "kept")
    assert log.returncode == 0, log.stderr
    assert '"n":1' in log.stdout and "done" in log.stdout, log.stdout
    history = plugin(kubeconfig, ns, "history")
    assert history.returncode == 0, history.stderr
    [row] = history.stdout.splitlines()[1:]
    assert row.split()[:2] == ["kept", "hello"] and "Succeeded" in row, history.stdout
    if shutil.which("kubectl"):  # kubectl's own get, through discovery, prints the gateway's Table
        listed = subprocess.run(["kubectl", "--kubeconfig", kubeconfig, "-n", ns, "get", "archivedtasks"],
                                capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
        assert listed.returncode == 0 and "kept" in listed.stdout and "Succeeded" in listed.stdout, listed

    # A user the API server lets through (get/list archivedtasks) but with no right on tasks reads none of
    # the archive: the gateway asks for that user, and the live rights decide.
    through = kubernetes.client.V1PolicyRule(
        api_groups=["archive.asynctask.dev"], resources=["archivedtasks", "archivedtasks/log"], verbs=["get", "list"]
    )
    nobody = token_for(cluster, "archive-nobody", [], through)
    server = cluster.client.configuration.host
    ca_file = cluster.client.configuration.ssl_ca_cert
    config = tmp_path / "nobody.kubeconfig"
    cluster_entry: dict[str, Any] = {"server": server} | (
        {"certificate-authority": ca_file} if ca_file else {"insecure-skip-tls-verify": True}
    )
    config.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": cluster_entry}], "users": [{"name": "u", "user": {"token": nobody}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
    }))  # fmt: skip
    refused = plugin(str(config), ns, "history")
    assert refused.returncode == 4, refused
    assert f"User 'system:serviceaccount:{ns}:archive-nobody' may not list asynctasks" in refused.stderr, refused

    # The gateway's HTTP API, with a ServiceAccount's token.
    reader = token_for(cluster, "archive-reader", ["get", "list"],
                       kubernetes.client.V1PolicyRule(api_groups=[""], resources=["pods/log"], verbs=["get"]))  # fmt: skip
    auth = {"Authorization": f"Bearer {reader}"}
    with httpx.Client(base_url=gateway.url, headers=auth, timeout=30) as client:
        task = client.get(f"/v1/namespaces/{ns}/tasks/kept")
        assert task.status_code == 200 and task.json()["archived"] is True and task.json()["uid"] == uid, task.text
        items = client.get(f"/v1/namespaces/{ns}/history").json()["items"]
        assert [t["name"] for t in items] == ["kept"]
        text = client.get(f"/v1/namespaces/{ns}/tasks/kept/log")
        assert text.status_code == 200 and text.headers["X-Log-Source"] == "archive" and '"n":1' in text.text, text.text


def test_the_api_server_aggregates_the_openapi_document_that_kubectl_explain_reads(
    served: tuple[Cluster, GatewayProcess], kubeconfig: str
) -> None:
    """The API server reads the gateway's /openapi/v3 and serves its document among its own; kubectl
    explain finds ArchivedTask there by its group-version-kind."""
    cluster, _ = served
    path = "/openapi/v3/apis/archive.asynctask.dev/v1alpha1"

    def aggregated() -> dict[str, Any] | None:
        api = cluster.client
        method, url, headers, _, _ = api.param_serialize("GET", path, header_params={"Accept": "application/json"},
                                                         auth_settings=["BearerToken"])  # fmt: skip
        answer = api.call_api(method, url, header_params=headers)
        data: bytes = answer.read()  # type: ignore[no-untyped-call]
        if answer.status in (404, 503):  # not aggregated yet
            return None
        assert answer.status == 200, (answer.status, data)
        document: dict[str, Any] = json.loads(data)
        return document

    document = wait_for(aggregated, 120, f"{path} served by the API server")
    kinds = {
        gvk["kind"]
        for schema in document["components"]["schemas"].values()
        for gvk in schema.get("x-kubernetes-group-version-kind", [])
    }
    assert {"ArchivedTask", "ArchivedTaskList"} <= kinds, sorted(kinds)
    if shutil.which("kubectl"):
        explained = subprocess.run(["kubectl", "--kubeconfig", kubeconfig, "explain", "archivedtasks.summary"],
                                   capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
        assert explained.returncode == 0 and "headline" in explained.stdout, explained
