"""The chart's aggregated API (``gateway.aggregation``): with the gateway reading the archive, the APIService
v1alpha1.archive.asynctask.dev naming the gateway Service's aggregation port, its caBundle the CA of the
certificate the port serves (made by the chart, or a Secret of one's own), the port and its flags, and the
RoleBinding to extension-apiserver-authentication-reader in kube-system; off otherwise; valid Kubernetes 1.31."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from asynctask_operator import rbac
from tests.unit.test_chart import KUBE_VERSION, NAMESPACE, Manifest, chart, helm, merged, render, schema, schema_errors
from tests.unit.test_gateway_chart import GATEWAY

__all__ = ["chart", "helm", "schema"]  # the fixtures, from the chart's tests

ARCHIVE = {"archive": {"enabled": True, "database": {"existingSecret": "archive-db"}}}
ON: dict[str, Any] = {"gateway": {"enabled": True}} | ARCHIVE
SERVICE_NAME = f"{GATEWAY}.{NAMESPACE}.svc"
READER = f"{GATEWAY}-{NAMESPACE}-archive-reader"
CA_PEM = base64.b64encode(b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n").decode()


def of_kind(objects: list[Manifest], kind: str) -> list[Manifest]:
    return [o for o in objects if o["kind"] == kind]


def gateway_pod(objects: list[Manifest]) -> dict[str, Any]:
    [deployment] = [o for o in of_kind(objects, "Deployment") if o["metadata"]["name"] == GATEWAY]
    pod: dict[str, Any] = deployment["spec"]["template"]["spec"]
    return pod


def aggregation_parts(objects: list[Manifest]) -> list[tuple[str, str]]:
    """What exists for the aggregated API alone: its APIService, its Secret, the RoleBinding in kube-system,
    the Service's and the container's port, the flag."""
    found = [("APIService", o["metadata"]["name"]) for o in of_kind(objects, "APIService")]
    found += [
        ("Secret", o["metadata"]["name"]) for o in of_kind(objects, "Secret") if "aggregation" in o["metadata"]["name"]
    ]
    found += [("RoleBinding", o["metadata"]["name"]) for o in of_kind(objects, "RoleBinding")
              if o["metadata"]["namespace"] == "kube-system"]  # fmt: skip
    found += [
        ("ClusterRole", o["metadata"]["name"])
        for o in of_kind(objects, "ClusterRole")
        if o["metadata"]["name"] == READER
    ]
    for service in of_kind(objects, "Service"):
        found += [("Service port", p["name"]) for p in service["spec"]["ports"] if p["name"] == "aggregation"]
    if any(o["metadata"]["name"] == GATEWAY for o in of_kind(objects, "Deployment")):
        main = gateway_pod(objects)["containers"][0]
        found += [("container port", p["name"]) for p in main["ports"] if p["name"] == "aggregation"]
        found += [("flag", a) for a in main["args"] if a == "--aggregation-port"]
    return sorted(found)


@pytest.mark.parametrize(
    "values",
    [
        {},
        {"gateway": {"enabled": True}},  # no archive: nothing to serve
        {"gateway": {"enabled": True}, "archive": {"enabled": True, "database": {"type": "sqlite"}}},  # not readable
        ARCHIVE,  # the archive without the gateway
        merged(ON, {"gateway": {"aggregation": {"enabled": False}}}),
    ],
    ids=["defaults", "gateway-only", "sqlite", "archive-only", "turned-off"],
)
def test_off_unless_the_gateway_reads_the_archive(chart: Any, values: dict[str, Any]) -> None:
    assert aggregation_parts(render(chart, values)) == []


def test_on_the_apiservice_names_the_gateways_aggregation_port_and_trusts_only_the_ca_of_its_certificate(
    chart: Any,
) -> None:
    objects = render(chart, ON)
    assert aggregation_parts(objects) == sorted([
        ("APIService", "v1alpha1.archive.asynctask.dev"), ("Secret", f"{GATEWAY}-aggregation"),
        ("RoleBinding", f"{GATEWAY}-{NAMESPACE}-auth-reader"), ("ClusterRole", READER), ("Service port", "aggregation"),
        ("container port", "aggregation"), ("flag", "--aggregation-port"),
    ])  # fmt: skip
    [api_service] = of_kind(objects, "APIService")
    spec = api_service["spec"]
    assert (spec["group"], spec["version"]) == ("archive.asynctask.dev", "v1alpha1")
    assert spec["service"] == {"name": GATEWAY, "namespace": NAMESPACE, "port": 443}
    assert "insecureSkipTLSVerify" not in spec
    [secret] = [o for o in of_kind(objects, "Secret") if o["metadata"]["name"] == f"{GATEWAY}-aggregation"]
    assert secret["type"] == "kubernetes.io/tls" and spec["caBundle"] == secret["data"]["ca.crt"]
    ca = x509.load_pem_x509_certificate(base64.b64decode(spec["caBundle"]))
    leaf = x509.load_pem_x509_certificate(base64.b64decode(secret["data"]["tls.crt"]))
    public_key = ca.public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    assert leaf.signature_hash_algorithm is not None
    public_key.verify(leaf.signature, leaf.tbs_certificate_bytes, padding.PKCS1v15(), leaf.signature_hash_algorithm)
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert SERVICE_NAME in names  # the name the API server checks: <service>.<namespace>.svc
    [service] = [o for o in of_kind(objects, "Service") if o["metadata"]["name"] == GATEWAY]
    [port] = [p for p in service["spec"]["ports"] if p["name"] == "aggregation"]
    assert (port["port"], port["targetPort"]) == (443, "aggregation")


def test_the_gateway_serves_it_with_that_certificate(chart: Any) -> None:
    pod = gateway_pod(render(chart, ON))
    [main] = pod["containers"]
    args = main["args"]
    flags = {args[i]: args[i + 1] for i, a in enumerate(args) if a.startswith("--aggregation")}
    assert flags == {
        "--aggregation-port": "8443",
        "--aggregation-tls-cert": "/etc/asynctask-gateway/aggregation/tls.crt",
        "--aggregation-tls-key": "/etc/asynctask-gateway/aggregation/tls.key",
    }
    assert {"name": "aggregation", "containerPort": 8443, "protocol": "TCP"} in main["ports"]
    [volume] = [v for v in pod["volumes"] if v["name"] == "aggregation"]
    assert volume["secret"]["secretName"] == f"{GATEWAY}-aggregation" and volume["secret"]["defaultMode"] == 0o440
    assert {"name": "aggregation", "mountPath": "/etc/asynctask-gateway/aggregation", "readOnly": True} in main[
        "volumeMounts"
    ]
    for probe in ("livenessProbe", "readinessProbe"):  # the kubelet has no front-proxy certificate
        assert main[probe]["httpGet"]["port"] == "http"


def test_the_role_binding_grants_only_the_standard_reader_in_kube_system(chart: Any) -> None:
    objects = render(chart, ON)
    [binding] = [o for o in of_kind(objects, "RoleBinding") if o["metadata"]["namespace"] == "kube-system"]
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "extension-apiserver-authentication-reader"
    }  # fmt: skip
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": GATEWAY, "namespace": NAMESPACE}]
    [rule] = [r for r in rbac.GATEWAY_RULES if r.scope == "kube-system"]  # the table says what the Role gives
    assert (rule.resources, rule.verbs, rule.resource_names) == (
        ("configmaps",),
        ("get",),
        (rbac.FRONT_PROXY_CONFIGMAP,),
    )
    [role] = [o for o in of_kind(objects, "ClusterRole") if o["metadata"]["name"] == f"{GATEWAY}-{NAMESPACE}"]
    assert not any("configmaps" in r["resources"] for r in role["rules"])  # never cluster-wide
    without = render(chart, merged(ON, {"rbac": {"create": False}}))
    assert not [o for o in of_kind(without, "RoleBinding") if o["metadata"]["namespace"] == "kube-system"]


def test_readers_of_live_tasks_may_ask_the_api_server_for_archived_ones(chart: Any) -> None:
    """The API server authorizes the path before it proxies: get/list archivedtasks, given to view, edit
    and admin as metrics-server's group is (the gateway then asks for the live rights)."""
    [reader] = [o for o in of_kind(render(chart, ON), "ClusterRole") if o["metadata"]["name"] == READER]
    assert reader["rules"] == [
        {
            "apiGroups": ["archive.asynctask.dev"],
            "resources": ["archivedtasks", "archivedtasks/log"],
            "verbs": ["get", "list"],
        }
    ]
    labels = reader["metadata"]["labels"]
    assert all(labels[f"rbac.authorization.k8s.io/aggregate-to-{role}"] == "true" for role in ("view", "edit", "admin"))
    alone = render(chart, merged(ON, {"gateway": {"aggregation": {"aggregateToDefaultRoles": False}}}))
    [reader] = [o for o in of_kind(alone, "ClusterRole") if o["metadata"]["name"] == READER]
    assert not any(k.startswith("rbac.authorization.k8s.io/aggregate-to-") for k in reader["metadata"]["labels"])


def test_a_secret_of_ones_own_needs_its_ca_bundle_or_cert_managers_injection(chart: Any, helm: Any) -> None:
    own = merged(ON, {"gateway": {"aggregation": {"tls": {"secretName": "agg-tls", "caBundle": CA_PEM}}}})
    objects = render(chart, own)
    [api_service] = of_kind(objects, "APIService")
    assert api_service["spec"]["caBundle"] == CA_PEM
    assert not [o for o in of_kind(objects, "Secret") if "aggregation" in o["metadata"]["name"]]  # none made
    [volume] = [v for v in gateway_pod(objects)["volumes"] if v["name"] == "aggregation"]
    assert volume["secret"]["secretName"] == "agg-tls"
    with pytest.raises(Exception, match=r"gateway\.aggregation\.tls\.caBundle"):
        render(chart, merged(ON, {"gateway": {"aggregation": {"tls": {"secretName": "agg-tls"}}}}))
    injected = merged(ON, {"gateway": {"aggregation": {
        "tls": {"secretName": "agg-tls"}, "annotations": {"cert-manager.io/inject-ca-from": f"{NAMESPACE}/agg"}}}})  # fmt: skip
    [api_service] = of_kind(render(chart, injected), "APIService")
    assert "caBundle" not in api_service["spec"]
    assert api_service["metadata"]["annotations"] == {"cert-manager.io/inject-ca-from": f"{NAMESPACE}/agg"}


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"gateway": {"aggregation": {"port": 0}}}, "port"),
        ({"gateway": {"aggregation": {"enabled": "yes"}}}, "enabled"),
        ({"gateway": {"aggregation": {"tls": {"caBundle": "not base64!"}}}}, "caBundle"),
        ({"gateway": {"aggregation": {"bogus": 1}}}, "bogus"),
    ],
)
def test_the_schema_refuses_bad_values(schema: dict[str, Any], overrides: dict[str, Any], field: str) -> None:
    errors = schema_errors(schema, overrides)
    assert errors and any(field in e for e in errors), errors


def test_rendered_objects_are_valid_kubernetes(chart: Any) -> None:
    validate = pytest.importorskip("kubernetes_validate", reason="kubernetes-validate is not installed")
    for obj in render(chart, ON):
        if obj["kind"] in ("APIService", "Secret", "Service", "Deployment", "RoleBinding", "ClusterRole"):
            validate.validate(obj, KUBE_VERSION, strict=True)
