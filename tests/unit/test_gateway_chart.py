"""The chart's gateway (``gateway.*``): off by default; on, its Deployment, Service, ServiceAccount,
RBAC (from ``rbac.GATEWAY_RULES``) and PDB, valid Kubernetes 1.31, apart from the operator's pods;
HTTPS from a TLS Secret (``gateway.tls``), and a ServiceMonitor (``gateway.serviceMonitor``)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from asynctask_operator import rbac
from tests.unit.test_chart import CHART, FULLNAME, KUBE_VERSION, NAMESPACE, Manifest, chart, helm, render

__all__ = ["chart", "helm"]  # the fixtures, from the chart's tests

GATEWAY = f"{FULLNAME}-gateway"
ON: dict[str, Any] = {"gateway": {"enabled": True}}
TLS: dict[str, Any] = {"gateway": {"enabled": True, "tls": {"secretName": "gateway-tls"}}}
MONITORED: dict[str, Any] = {"gateway": {"enabled": True, "serviceMonitor": {"enabled": True}}}


def gateway_objects(objects: list[Manifest]) -> list[Manifest]:
    return [o for o in objects if o["metadata"]["labels"].get("app.kubernetes.io/component") == "gateway"]


def test_the_rules_file_is_generated_from_rbac_py() -> None:
    assert (CHART / "files" / "gateway-rules.yaml").read_text() == rbac.gateway_rules_yaml(), (
        "charts/asynctask-operator/files/gateway-rules.yaml is stale: run "
        "`python -m asynctask_operator.rbac --gateway --write charts/asynctask-operator/files/gateway-rules.yaml`"
    )


def test_off_by_default(chart: Any) -> None:
    assert gateway_objects(render(chart)) == []


def test_on_it_has_its_own_deployment_service_account_and_rules(chart: Any) -> None:
    objects = gateway_objects(render(chart, ON))
    assert sorted((o["kind"], o["metadata"]["name"]) for o in objects) == sorted(
        [(kind, GATEWAY) for kind in ("Deployment", "Service", "ServiceAccount", "PodDisruptionBudget")]
        + [("ClusterRole", f"{GATEWAY}-{NAMESPACE}"), ("ClusterRoleBinding", f"{GATEWAY}-{NAMESPACE}")]
    )
    [role] = [o for o in objects if o["kind"] == "ClusterRole"]
    assert role["rules"] == rbac.policy_rules("cluster", rules=rbac.GATEWAY_RULES) + rbac.policy_rules(
        "namespaced", rules=rbac.GATEWAY_RULES
    )
    [deployment] = [o for o in objects if o["kind"] == "Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == GATEWAY
    [main] = pod["containers"]
    assert main["command"] == ["asynctask-gateway"]
    assert main["args"] == ["--port", "8000", "--max-body-bytes", "262144", "--rate-limit", "20",
                            "--auth-failure-limit", "20", "--session-hours", "8"]  # fmt: skip
    assert "--allow-anonymous" not in main["args"] and "--trusted-header" not in main["args"]
    [service] = [o for o in objects if o["kind"] == "Service"]
    assert service["spec"]["sessionAffinity"] == "ClientIP"  # two replicas: the console's sign-ins stay on one


def test_the_console_can_be_turned_off(chart: Any) -> None:
    objects = gateway_objects(render(chart, {"gateway": {"enabled": True, "console": {"enabled": False}}}))
    [deployment] = [o for o in objects if o["kind"] == "Deployment"]
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--no-console" in args and "--session-hours" not in args
    [service] = [o for o in objects if o["kind"] == "Service"]
    assert "sessionAffinity" not in service["spec"]


def test_neither_deployment_selects_the_others_pods(chart: Any) -> None:
    objects = render(chart, ON)
    deployments = [o for o in objects if o["kind"] == "Deployment"]
    assert len(deployments) == 2
    for deployment in deployments:
        selector = deployment["spec"]["selector"]["matchLabels"]
        for other in deployments:
            labels = other["spec"]["template"]["metadata"]["labels"]
            selected = all(labels.get(k) == v for k, v in selector.items())
            assert selected is (other is deployment), (deployment["metadata"]["name"], other["metadata"]["name"])


def test_namespaced_install_gives_the_gateway_a_role_per_namespace(chart: Any) -> None:
    objects = gateway_objects(render(chart, ON | {"watchNamespaces": ["a", "b"]}))
    roles = sorted(o["metadata"]["namespace"] for o in objects if o["kind"] == "Role")
    assert roles == ["a", "b"]
    [cluster] = [o for o in objects if o["kind"] == "ClusterRole"]
    assert cluster["rules"] == rbac.policy_rules("cluster", rules=rbac.GATEWAY_RULES)  # the reviews only
    [deployment] = [o for o in objects if o["kind"] == "Deployment"]
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert [args[i + 1] for i, arg in enumerate(args) if arg == "--namespace"] == ["a", "b"]


def test_risky_modes_only_when_asked(chart: Any) -> None:
    values = {
        "gateway": {
            "enabled": True,
            "allowAnonymous": True,
            "trustedHeader": "X-Forwarded-User",
            "trustedGroupsHeader": "X-Forwarded-Groups",
            "trustedProxyHeader": "X-Forwarded-For",
            "authFailureLimit": 5,
            "replicas": 1,
            "cloudEventTypes": {"order.created": "fulfil"},
            "logProbes": True,
        }
    }
    objects = gateway_objects(render(chart, values))
    [deployment] = [o for o in objects if o["kind"] == "Deployment"]
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--allow-anonymous" in args and args[args.index("--trusted-header") + 1] == "X-Forwarded-User"
    assert args[args.index("--trusted-groups-header") + 1] == "X-Forwarded-Groups"
    assert args[args.index("--trusted-proxy-header") + 1] == "X-Forwarded-For"
    assert args[args.index("--auth-failure-limit") + 1] == "5"
    assert args[args.index("--cloudevent-type") + 1] == "order.created=fulfil"
    assert "--log-probes" in args
    assert "PodDisruptionBudget" not in {o["kind"] for o in objects}  # one replica: no PDB to block drains


@pytest.mark.parametrize("values", [{"gateway": {"enabled": "yes"}}, {"gateway": {"port": 0}},
                                    {"gateway": {"trustedHeader": "X User"}}, {"gateway": {"bogus": 1}},
                                    {"gateway": {"console": {"sessionHours": 0}}},
                                    {"gateway": {"tls": {"secretName": "Not_A_Name"}}},
                                    {"gateway": {"tls": {"secretName": "a", "ca": "b"}}},
                                    {"gateway": {"serviceMonitor": {"interval": "soon"}}},
                                    {"gateway": {"serviceMonitor": {"caKey": "ca crt"}}},
                                    {"gateway": {"serviceMonitor": {"bogus": 1}}}])  # fmt: skip
def test_helm_refuses_bad_gateway_values(chart: Any, helm: Any, values: dict[str, Any]) -> None:
    with pytest.raises(helm.HelmValuesError, match="schema"):
        render(chart, values)


@pytest.mark.parametrize("values", [ON, ON | {"watchNamespaces": ["a"]}, TLS])
def test_rendered_gateway_objects_are_valid_kubernetes_1_31(chart: Any, values: dict[str, Any]) -> None:
    validate = pytest.importorskip("kubernetes_validate", reason="kubernetes-validate is not installed")
    for obj in gateway_objects(render(chart, values)):
        if obj["kind"] == "ServiceMonitor":
            continue  # the Prometheus Operator's kind: kubernetes-validate has no schema for it
        validate.validate(yaml.safe_load(yaml.safe_dump(obj)), KUBE_VERSION, strict=True)


def pod_of(objects: list[Manifest]) -> dict[str, Any]:
    [deployment] = [o for o in objects if o["kind"] == "Deployment"]
    pod: dict[str, Any] = deployment["spec"]["template"]["spec"]
    return pod


def test_without_tls_it_serves_plain_http(chart: Any) -> None:
    objects = gateway_objects(render(chart, ON))
    [main] = pod_of(objects)["containers"]
    assert not any(arg.startswith("--tls") for arg in main["args"])
    assert [p["name"] for p in main["ports"]] == ["http"]
    for probe in (main["livenessProbe"], main["readinessProbe"]):
        assert probe["httpGet"]["port"] == "http" and probe["httpGet"]["scheme"] == "HTTP"
    assert [v["name"] for v in pod_of(objects)["volumes"]] == ["tmp"]


def test_with_a_tls_secret_it_serves_https_from_the_mounted_secret(chart: Any) -> None:
    objects = gateway_objects(render(chart, TLS))
    pod = pod_of(objects)
    [main] = pod["containers"]
    args = main["args"]
    cert, key = args[args.index("--tls-cert") + 1], args[args.index("--tls-key") + 1]
    [mount] = [m for m in main["volumeMounts"] if m["name"] == "tls"]
    assert mount["readOnly"] is True
    [volume] = [v for v in pod["volumes"] if v["name"] == "tls"]
    assert volume["secret"]["secretName"] == "gateway-tls"
    files = {f"{mount['mountPath']}/{item['path']}": item["key"] for item in volume["secret"]["items"]}
    assert files == {cert: "tls.crt", key: "tls.key"}  # the flags name the Secret's two files
    assert volume["secret"]["defaultMode"] == 0o440  # the key is not world-readable
    assert "fsGroup" in pod["securityContext"]  # ... and still readable by the gateway's user
    # The port says its protocol, and the probes, the Service and its target agree on it.
    assert [p["name"] for p in main["ports"]] == ["https"]
    for probe in (main["livenessProbe"], main["readinessProbe"]):
        assert probe["httpGet"]["port"] == "https" and probe["httpGet"]["scheme"] == "HTTPS"
    [service] = [o for o in objects if o["kind"] == "Service"]
    [port] = service["spec"]["ports"]
    assert port["name"] == "https" and port["targetPort"] == "https"


def test_no_gateway_service_monitor_unless_asked(chart: Any) -> None:
    assert "ServiceMonitor" not in {o["kind"] for o in gateway_objects(render(chart, ON))}
    off = {"gateway": {"enabled": False, "serviceMonitor": {"enabled": True}}}
    assert "ServiceMonitor" not in {o["kind"] for o in render(chart, off)}


def test_the_gateway_service_monitor_scrapes_the_gateway_service_only(chart: Any) -> None:
    values = {"gateway": MONITORED["gateway"] | {"serviceMonitor": {"enabled": True, "labels": {"release": "prom"}}}}
    objects = render(chart, values | {"metrics": {"serviceMonitor": {"enabled": True}}})
    [monitor] = [o for o in gateway_objects(objects) if o["kind"] == "ServiceMonitor"]
    assert monitor["metadata"]["name"] == GATEWAY and monitor["metadata"]["namespace"] == NAMESPACE
    assert monitor["metadata"]["labels"]["release"] == "prom"
    spec = monitor["spec"]
    selector = spec["selector"]["matchLabels"]
    services = [o for o in objects if o["kind"] == "Service"]
    selected = [o["metadata"]["name"] for o in services if selector.items() <= o["metadata"]["labels"].items()]
    assert selected == [GATEWAY]  # not the operator's Services
    assert spec["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    [endpoint] = spec["endpoints"]
    [service] = [o for o in services if o["metadata"]["name"] == GATEWAY]
    assert endpoint["port"] == service["spec"]["ports"][0]["name"] == "http"
    assert endpoint == {"port": "http", "path": "/metrics", "scheme": "http", "interval": "30s"}


def test_with_tls_the_gateway_service_monitor_verifies_the_certificate(chart: Any) -> None:
    values = {"gateway": TLS["gateway"] | MONITORED["gateway"]}
    [monitor] = [o for o in gateway_objects(render(chart, values)) if o["kind"] == "ServiceMonitor"]
    [endpoint] = monitor["spec"]["endpoints"]
    assert endpoint["port"] == "https" and endpoint["scheme"] == "https"
    assert endpoint["tlsConfig"] == {
        "serverName": f"{GATEWAY}.{NAMESPACE}.svc",  # Prometheus dials the pod's IP: the name to check
        "insecureSkipVerify": False,
        "ca": {"secret": {"name": "gateway-tls", "key": "ca.crt"}},
    }
    public = {"gateway": values["gateway"] | {"serviceMonitor": {"enabled": True, "caKey": ""}}}
    [monitor] = [o for o in gateway_objects(render(chart, public)) if o["kind"] == "ServiceMonitor"]
    assert monitor["spec"]["endpoints"][0]["tlsConfig"] == {
        "serverName": f"{GATEWAY}.{NAMESPACE}.svc",
        "insecureSkipVerify": False,
    }  # Prometheus' own roots


@pytest.mark.parametrize(
    ("archive", "reads"),
    [
        ({"enabled": True, "database": {"existingSecret": "archive-db", "secretKey": "url"}}, True),
        ({"enabled": True, "database": {"type": "sqlite"}}, False),  # one file on the archiver's volume
        ({"enabled": False}, False),
    ],
)
def test_with_the_archive_in_postgresql_the_gateway_reads_its_history(
    chart: Any, archive: dict[str, Any], reads: bool
) -> None:
    pod = pod_of(gateway_objects(render(chart, {**ON, "archive": archive})))
    [main] = pod["containers"]
    args = main["args"]
    assert ("--archive-dsn-file" in args) is reads
    if reads:
        [mount] = [m for m in main["volumeMounts"] if m["name"] == "archive"]
        [volume] = [v for v in pod["volumes"] if v["name"] == "archive"]
        files = {f"{mount['mountPath']}/{item['path']}": item["key"] for item in volume["secret"]["items"]}
        assert files == {args[args.index("--archive-dsn-file") + 1]: "url"}
        assert volume["secret"]["secretName"] == "archive-db" and volume["secret"]["defaultMode"] == 0o440
