"""docs/design.md §4.5: the Helm chart (charts/asynctask-operator).

Always run: the chart's CRDs are the generated ones, its RBAC rules file is the one
``asynctask_operator.rbac`` renders, its appVersion is the package's, and
values.schema.json accepts the defaults and refuses bad values (checked with jsonschema).

Run where ``helm-python-sdk`` installs (it bundles Helm's Go library; the test extra
installs it on Linux x86-64): the chart rendered by Helm itself, for the default values,
namespaced mode and bad values, and every rendered object validated against the
Kubernetes 1.31 OpenAPI schemas by ``kubernetes-validate`` (all but the Prometheus Operator's
ServiceMonitor and PrometheusRule, whose schemas it does not have).

Monitoring (``metrics.*``): the ServiceMonitor scrapes the Service's port, and every metric
that the alerts and the Grafana dashboard query is one ``adapters/metrics.py`` exports, with
labels it has.
"""

from __future__ import annotations

import copy
import json
import pathlib
import re
import tomllib
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest
import yaml

from asynctask_operator import rbac
from asynctask_operator.adapters.metrics import Metrics
from asynctask_operator.core.config import CoreConfig
from asynctask_operator.core.lifecycle import decide
from tests.unit.builders import at, observe, task
from tests.unit.story import ECHO

ROOT = pathlib.Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "asynctask-operator"
RELEASE, NAMESPACE = "asynctask", "asynctask-system"
FULLNAME = "asynctask-asynctask-operator"
KUBE_VERSION = "1.31.0"
SYNC_CRDS = "asynctask-operator crds --write crds/ && asynctask-operator crds --write charts/asynctask-operator/crds/"

Manifest = dict[str, Any]


def default_values() -> dict[str, Any]:
    values: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text())
    return values


def merged(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Helm's coalescing of maps: overrides win, nested maps merge."""
    out = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out


# --------------------------------------------------------------------------- files kept in step


def test_chart_crds_are_exact_copies_of_the_generated_ones() -> None:
    top = {p.name: p.read_bytes() for p in (ROOT / "crds").glob("*.yaml")}
    chart = {p.name: p.read_bytes() for p in (CHART / "crds").glob("*.yaml")}
    assert sorted(chart) == sorted(top), f"charts/asynctask-operator/crds/ lists other CRDs than crds/: run {SYNC_CRDS}"
    for name, text in top.items():
        assert chart[name] == text, f"charts/asynctask-operator/crds/{name} differs from crds/{name}: run {SYNC_CRDS}"


def test_rules_file_is_generated_from_rbac_py() -> None:
    assert (CHART / "files" / "rules.yaml").read_text() == rbac.chart_rules_yaml(), (
        "charts/asynctask-operator/files/rules.yaml is stale: run "
        "`python -m asynctask_operator.rbac --write charts/asynctask-operator/files/rules.yaml`"
    )


def test_chart_metadata() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert chart["apiVersion"] == "v2"
    assert chart["appVersion"] == project["version"], "Chart.yaml appVersion must be pyproject's version"
    assert chart["kubeVersion"] == ">=1.31.0-0", "docs/design.md §1: selectableFields needs Kubernetes 1.31"


# --------------------------------------------------------------------------- values.schema.json


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((CHART / "values.schema.json").read_text())
    jsonschema.Draft7Validator.check_schema(loaded)
    return loaded


def schema_errors(schema: dict[str, Any], overrides: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft7Validator(schema)
    values = merged(default_values(), overrides)
    return [f"/{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(values)]


GOOD_VALUES: list[dict[str, Any]] = [
    {},
    {"watchNamespaces": ["team-a", "b2"]},
    {"defaultConcurrency": 5, "defaultTtlSeconds": 0},
    {"image": {"repository": "registry.example.com:5000/platform/asynctask-operator", "tag": "0.1.0-rc.1"}},
    {"image": {"digest": "sha256:" + "a" * 64}},
    {"reports": {"enabled": False}},
    {"reports": {"url": "https://reports.example.com/asynctask", "keySecret": "my.report-key"}},
    {"podDisruptionBudget": {"minAvailable": "50%"}},
    {"networkPolicy": {"enabled": True, "extraIngressFrom": [{"namespaceSelector": {}}]}},
    {"extraArgs": ["--workers", "32"], "logFormat": "text", "verbose": True},
    {"replicas": 1, "leaderElection": {"enabled": False}},
    {
        "replicas": 3,
        "leaderElection": {"leaseDurationSeconds": 30, "renewDeadlineSeconds": 20, "retryPeriodSeconds": 2.5},
    },
    {"metrics": {"serviceMonitor": {"enabled": True}, "prometheusRule": {"enabled": True}}},
    {
        "metrics": {
            "dashboard": {"enabled": True, "namespace": "monitoring", "annotations": {"grafana_folder": "Tasks"}}
        }
    },
    {
        "metrics": {
            "serviceMonitor": {"interval": "1m30s", "scrapeTimeout": "10s", "labels": {"release": "prom"}},
            "prometheusRule": {
                "labels": {"prometheus.example.com/rules": "main"},
                "selector": 'cluster="prod", job="asynctask"',
                "thresholds": {
                    "failureRatio": 1,
                    "failureMinFinished": 1,
                    "queueStalledFor": "1h",
                    "queueWaitSeconds": 0.5,
                    "apiErrorRatio": 0.01,
                },
            },
            "dashboard": {"labels": {}},
        }
    },
]

BAD_VALUES: list[tuple[dict[str, Any], str]] = [
    ({"replicas": 0}, "/replicas"),
    ({"replicas": "1"}, "/replicas"),
    ({"replicas": 1.5}, "/replicas"),
    ({"watchNamespaces": "team-a"}, "/watchNamespaces"),
    ({"watchNamespaces": ["Team_A"]}, "/watchNamespaces/0"),
    ({"watchNamespaces": ["a", "a"]}, "/watchNamespaces"),
    ({"watchNamespaces": ["x" * 64]}, "/watchNamespaces/0"),
    ({"image": {"tag": 1.0}}, "/image/tag"),
    ({"image": {"tag": "v1:bad"}}, "/image/tag"),
    ({"image": {"digest": "sha256:abc"}}, "/image/digest"),
    ({"image": {"pullPolicy": "Sometimes"}}, "/image/pullPolicy"),
    ({"defaultConcurrency": 0}, "/defaultConcurrency"),
    ({"defaultTtlSeconds": -1}, "/defaultTtlSeconds"),
    ({"logFormat": "xml"}, "/logFormat"),
    ({"reports": {"keySecret": "Not A Name"}}, "/reports/keySecret"),
    ({"reports": {"url": "ftp://x"}}, "/reports/url"),
    ({"httpPort": 0}, "/httpPort"),
    ({"service": {"port": 70000}}, "/service/port"),
    ({"leaderElection": {"enabled": "yes"}}, "/leaderElection/enabled"),
    ({"leaderElection": {"leaseDurationSeconds": 1}}, "/leaderElection/leaseDurationSeconds"),
    ({"leaderElection": {"leaseDurationSeconds": 15.5}}, "/leaderElection/leaseDurationSeconds"),
    ({"leaderElection": {"renewDeadlineSeconds": 0}}, "/leaderElection/renewDeadlineSeconds"),
    ({"leaderElection": {"retryPeriodSeconds": -1}}, "/leaderElection/retryPeriodSeconds"),
    ({"leaderElection": {"leaseName": "x"}}, "leaseName"),  # the Lease is named after the release
    ({"watchNamespace": ["a"]}, "watchNamespace"),  # a typo is refused, not ignored
    ({"serviceMonitor": {"enabled": True}}, "serviceMonitor"),  # it is metrics.serviceMonitor
    ({"callbacks": {"allowedCIDRs": ["10.0.0.0"]}}, "/callbacks/allowedCIDRs/0"),
    ({"callbacks": {"allowedHosts": ["http://hooks"]}}, "/callbacks/allowedHosts/0"),
    ({"callbacks": {"maxAttempts": 0}}, "/callbacks/maxAttempts"),
    ({"callbacks": {"timeoutSeconds": 0}}, "/callbacks/timeoutSeconds"),
    ({"callbacks": {"maxInFlight": 0}}, "/callbacks/maxInFlight"),
    ({"callbacks": {"allowedHost": ["a"]}}, "allowedHost"),  # a typo is refused
]

MONITORING_BAD_VALUES: list[tuple[dict[str, Any], str]] = [
    ({"metrics": {"serviceMonitor": {"enabled": "true"}}}, "/metrics/serviceMonitor/enabled"),
    ({"metrics": {"serviceMonitor": {"interval": 30}}}, "/metrics/serviceMonitor/interval"),
    ({"metrics": {"serviceMonitor": {"interval": "30"}}}, "/metrics/serviceMonitor/interval"),  # no unit
    ({"metrics": {"serviceMonitor": {"interval": ""}}}, "/metrics/serviceMonitor/interval"),
    ({"metrics": {"serviceMonitor": {"scrapeTimeout": "ten seconds"}}}, "/metrics/serviceMonitor/scrapeTimeout"),
    ({"metrics": {"serviceMonitor": {"labels": {"release": 1}}}}, "/metrics/serviceMonitor/labels/release"),
    ({"metrics": {"serviceMonitor": {"labels": {"bad key": "x"}}}}, "/metrics/serviceMonitor/labels"),
    ({"metrics": {"serviceMonitor": {"enable": True}}}, "enable"),  # a typo is refused
    ({"metrics": {"prometheusRule": {"labels": {"a": "x" * 64}}}}, "/metrics/prometheusRule/labels/a"),
    ({"metrics": {"prometheusRule": {"selector": '{job="x"}'}}}, "/metrics/prometheusRule/selector"),
    ({"metrics": {"prometheusRule": {"thresholds": {"failureRatio": 0}}}}, "failureRatio"),
    ({"metrics": {"prometheusRule": {"thresholds": {"failureRatio": 1.5}}}}, "failureRatio"),
    ({"metrics": {"prometheusRule": {"thresholds": {"failureRatio": "10%"}}}}, "failureRatio"),
    ({"metrics": {"prometheusRule": {"thresholds": {"failureMinFinished": 0}}}}, "failureMinFinished"),
    ({"metrics": {"prometheusRule": {"thresholds": {"queueStalledFor": "15 minutes"}}}}, "queueStalledFor"),
    ({"metrics": {"prometheusRule": {"thresholds": {"queueWaitSeconds": 0}}}}, "queueWaitSeconds"),
    ({"metrics": {"prometheusRule": {"thresholds": {"apiErrorRatio": -0.1}}}}, "apiErrorRatio"),
    ({"metrics": {"prometheusRule": {"thresholds": {"failureRate": 0.1}}}}, "failureRate"),
    ({"metrics": {"dashboard": {"namespace": "Monitoring"}}}, "/metrics/dashboard/namespace"),
    ({"metrics": {"dashboard": {"labels": {"grafana_dashboard": 1}}}}, "/metrics/dashboard/labels/grafana_dashboard"),
    ({"metrics": {"grafana": {"enabled": True}}}, "grafana"),
]
BAD_VALUES += MONITORING_BAD_VALUES


@pytest.mark.parametrize("overrides", GOOD_VALUES, ids=lambda v: json.dumps(v)[:60])
def test_schema_accepts(schema: dict[str, Any], overrides: dict[str, Any]) -> None:
    assert schema_errors(schema, overrides) == []


@pytest.mark.parametrize(("overrides", "field"), BAD_VALUES, ids=lambda v: json.dumps(v)[:60])
def test_schema_refuses(schema: dict[str, Any], overrides: dict[str, Any], field: str) -> None:
    errors = schema_errors(schema, overrides)
    assert errors, f"{overrides} was accepted"
    assert any(field in e for e in errors), errors


# --------------------------------------------------------------------------- rendered by Helm


@pytest.fixture(scope="module")
def helm() -> Any:
    return pytest.importorskip(
        "helm_python",
        reason="helm-python-sdk (Helm's Go library for Python) is not installed: it ships wheels for "
        "Linux x86-64 (installed by the test extra there), not for this platform",
    )


@pytest.fixture(scope="module")
def chart(helm: Any) -> Iterator[Any]:
    with helm.Chart.load(CHART) as loaded:
        yield loaded


def render(chart: Any, overrides: dict[str, Any] | None = None) -> list[Manifest]:
    rendered: dict[str, str] = chart.render(overrides or {}, name=RELEASE, namespace=NAMESPACE, is_install=True)
    return [
        doc
        for path, text in sorted(rendered.items())
        if not path.endswith("NOTES.txt")
        for doc in yaml.safe_load_all(text)
        if doc
    ]


def one(objects: list[Manifest], kind: str, namespace: str | None = None) -> Manifest:
    found = [o for o in objects if o["kind"] == kind and namespace in (None, o["metadata"].get("namespace"))]
    assert len(found) == 1, f"{len(found)} {kind} objects in {namespace}"
    return found[0]


def kinds(objects: list[Manifest]) -> list[tuple[str, str | None]]:
    return sorted((o["kind"], o["metadata"].get("namespace")) for o in objects)


def container(objects: list[Manifest]) -> dict[str, Any]:
    [main] = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    result: dict[str, Any] = main
    return result


def test_default_install_is_cluster_wide(chart: Any) -> None:
    objects = render(chart)
    assert kinds(objects) == [
        ("ClusterRole", None),
        ("ClusterRoleBinding", None),
        ("Deployment", NAMESPACE),
        ("PodDisruptionBudget", NAMESPACE),
        ("Role", NAMESPACE),  # the leader-election Lease, the leader label and the report-token Secret
        ("RoleBinding", NAMESPACE),
        ("Service", NAMESPACE),
        ("ServiceAccount", NAMESPACE),
    ]
    assert one(objects, "ClusterRole")["rules"] == rbac.policy_rules("namespaced")
    binding = one(objects, "ClusterRoleBinding")
    assert binding["roleRef"]["name"] == one(objects, "ClusterRole")["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": FULLNAME, "namespace": NAMESPACE}]
    assert one(objects, "Role")["rules"] == rbac.policy_rules("own-namespace", report_key_secret="asynctask-report-key")
    assert container(objects)["args"] == [
        "run",
        "--log-format", "json",
        "--http-port", "8080",
        "--default-ttl", "604800",
        "--report-url", f"http://{FULLNAME}.{NAMESPACE}.svc:8080",
        "--report-key-secret", "asynctask-report-key",
        "--callback-max-attempts", "6",
        "--callback-timeout", "10",
        "--callback-max-in-flight", "64",
        *LEADER_ARGS,
    ]  # fmt: skip


def test_the_e2e_chart_test_expects_the_report_url_a_task_pod_gets(chart: Any) -> None:
    """tests/e2e/test_chart.py (run on a real cluster only) asserts a task pod's ASYNCTASK_REPORT_URL: held here to
    the chart's --report-url and to the path the operator adds to it."""
    from tests.e2e import test_chart as e2e

    rendered = chart.render({}, name=e2e.RELEASE, namespace="asynctask-system", is_install=True)
    objects = [
        doc for path, text in rendered.items() if path.endswith(".yaml") for doc in yaml.safe_load_all(text) if doc
    ]
    args = container(objects)["args"]
    config = CoreConfig(report_url=args[args.index("--report-url") + 1], report_key=b"k" * 32)
    decision = decide(observe(task("hello").build(), now=at(5), tasktype=ECHO), config)
    assert decision.create_job is not None
    [main] = decision.create_job["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e["value"] for e in main["env"]}
    assert env["ASYNCTASK_REPORT_URL"] == e2e.expected_report_url("asynctask-system", "media", "hello")


LEADER_ARGS = [
    "--leader-elect",
    "--lease-name", FULLNAME,
    "--lease-duration", "15",
    "--renew-deadline", "10",
    "--retry-period", "2",
]  # fmt: skip


def test_two_replicas_elect_a_leader_by_default(chart: Any) -> None:
    objects = render(chart)
    assert one(objects, "Deployment")["spec"]["replicas"] == 2
    args = container(objects)["args"]
    start = args.index("--leader-elect")
    assert args[start : start + len(LEADER_ARGS)] == LEADER_ARGS
    [lease_rule] = [r for r in one(objects, "Role", NAMESPACE)["rules"] if r["apiGroups"] == ["coordination.k8s.io"]]
    assert lease_rule == {
        "apiGroups": ["coordination.k8s.io"],
        "resources": ["leases"],
        "verbs": ["get", "create", "patch"],
    }


def test_leader_election_timings_reach_the_args(chart: Any) -> None:
    timings = {"leaseDurationSeconds": 30, "renewDeadlineSeconds": 20, "retryPeriodSeconds": 2.5}
    args = container(render(chart, {"leaderElection": timings}))["args"]
    for flag, value in (("--lease-duration", "30"), ("--renew-deadline", "20"), ("--retry-period", "2.5")):
        assert args[args.index(flag) + 1] == value


def test_one_replica_without_leader_election(chart: Any) -> None:
    objects = render(chart, {"replicas": 1, "leaderElection": {"enabled": False}})
    deployment = one(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}  # never two acting operators during a rollout
    assert not [a for a in container(objects)["args"] if a.startswith("--lease") or a == "--leader-elect"]


def test_more_than_one_replica_needs_leader_election(chart: Any, helm: Any) -> None:
    with pytest.raises(helm.HelmError, match=r"replicas > 1 needs leaderElection\.enabled"):
        render(chart, {"replicas": 2, "leaderElection": {"enabled": False}})


@pytest.mark.parametrize(
    "timings",
    [
        {"renewDeadlineSeconds": 15},  # renew = lease
        {"renewDeadlineSeconds": 20},  # renew > lease
        {"retryPeriodSeconds": 10},  # retry = renew
        {"leaseDurationSeconds": 5},  # lease < renew
    ],
    ids=lambda v: json.dumps(v),
)
def test_leader_election_timings_must_be_ordered(chart: Any, helm: Any, timings: dict[str, Any]) -> None:
    with pytest.raises(helm.HelmError, match="retryPeriodSeconds < renewDeadlineSeconds < leaseDurationSeconds"):
        render(chart, {"leaderElection": timings})


def test_namespaced_install_has_a_role_per_namespace(chart: Any) -> None:
    objects = render(chart, {"watchNamespaces": ["a", "b"]})
    assert not [o for o in objects if o["kind"].startswith("Cluster")]
    for ns in ("a", "b"):
        assert one(objects, "Role", ns)["rules"] == rbac.policy_rules("namespaced")
        binding = one(objects, "RoleBinding", ns)
        assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": FULLNAME}
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": FULLNAME, "namespace": NAMESPACE}]
    assert one(objects, "Role", NAMESPACE)["rules"] == rbac.policy_rules(
        "own-namespace", report_key_secret="asynctask-report-key"
    )
    args = container(objects)["args"]
    assert args[args.index("--namespace") :][:4] == ["--namespace", "a", "--namespace", "b"]


def test_without_reports_no_secret_access(chart: Any) -> None:
    objects = render(chart, {"reports": {"enabled": False}})
    assert [o["metadata"]["namespace"] for o in objects if o["kind"] in ("Role", "RoleBinding")] == [NAMESPACE] * 2
    assert one(objects, "Role")["rules"] == [
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "create", "patch"]},
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["patch"]},
    ]  # the Lease and the leader label: no Secret at all
    assert one(objects, "Role")["rules"] == rbac.policy_rules("own-namespace", ["always"])
    assert not [a for a in container(objects)["args"] if a.startswith("--report")]


def test_report_key_secret_name_reaches_role_and_args(chart: Any) -> None:
    objects = render(chart, {"reports": {"keySecret": "my-key", "url": "https://r.example.com"}})
    [lease_rule, pod_rule, get_rule, create_rule] = one(objects, "Role")["rules"]
    assert lease_rule["resources"] == ["leases"] and pod_rule["resources"] == ["pods"]
    assert get_rule == {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"], "resourceNames": ["my-key"]}
    assert create_rule == {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]}
    args = container(objects)["args"]
    assert args[args.index("--report-key-secret") + 1] == "my-key"
    assert args[args.index("--report-url") + 1] == "https://r.example.com"


def test_values_become_flags(chart: Any) -> None:
    args = container(render(chart, {"defaultConcurrency": 3, "verbose": True, "extraArgs": ["--workers", "32"]}))[
        "args"
    ]
    assert args[args.index("--default-concurrency") + 1] == "3"
    assert args[-3:] == ["--verbose", "--workers", "32"]


def test_callback_values_become_flags(chart: Any) -> None:
    values = {
        "callbacks": {"allowedHosts": ["hooks.internal", "*.svc"], "allowedCIDRs": ["10.0.0.0/8"], "maxInFlight": 8}
    }
    args = container(render(chart, values))["args"]
    hosts = [args[i + 1] for i, a in enumerate(args) if a == "--callback-allowed-host"]
    assert hosts == ["hooks.internal", "*.svc"]
    assert args[args.index("--callback-allowed-cidr") + 1] == "10.0.0.0/8"
    assert args[args.index("--callback-max-in-flight") + 1] == "8"
    assert args[args.index("--callback-max-attempts") + 1] == "6"
    default_args = container(render(chart))["args"]
    assert "--callback-allowed-host" not in default_args and "--callback-allowed-cidr" not in default_args


def test_pod_is_restricted_and_probed(chart: Any) -> None:
    objects = render(chart)
    deployment = one(objects, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    main = container(objects)
    assert deployment["spec"]["replicas"] == 2
    # Only the leader is Ready: a rollout must not wait for a new (standby) pod to be Ready
    # before it stops the old leader, or it would never finish.
    assert deployment["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert main["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "runAsGroup": 10001,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert main["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert main["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert main["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    assert {"name": "tmp", "mountPath": "/tmp"} in main["volumeMounts"]
    assert {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}} in pod["volumes"]
    assert {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}} in main["env"]
    assert main["image"] == "asynctask-operator:0.1.0"
    assert one(objects, "Service")["spec"]["ports"] == [
        {"name": "http", "port": 8080, "targetPort": "http", "protocol": "TCP"}
    ]


def test_the_operator_pod_is_not_mistaken_for_a_task_pod(chart: Any) -> None:
    """The operator watches pods labelled managed-by=asynctask-operator; its own must not be."""
    labels = one(render(chart), "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert labels.get("app.kubernetes.io/managed-by") != "asynctask-operator"


def test_image_by_digest(chart: Any) -> None:
    digest = "sha256:" + "0" * 64
    assert container(render(chart, {"image": {"repository": "r.example.com/ato", "digest": digest}}))["image"] == (
        f"r.example.com/ato@{digest}"
    )


def test_a_pdb_by_default(chart: Any) -> None:
    """Every replica is Ready under leader election, so minAvailable 1 lets one be evicted at a time."""
    assert one(render(chart), "PodDisruptionBudget")["spec"]["minAvailable"] == 1
    assert not [
        o for o in render(chart, {"podDisruptionBudget": {"enabled": False}}) if o["kind"] == "PodDisruptionBudget"
    ]


def test_the_service_sends_reports_to_the_leader_and_every_replica_knows_its_pod(chart: Any) -> None:
    objects = render(chart)
    assert one(objects, "Service")["spec"]["selector"]["asynctask.dev/leader"] == "true"
    env = {e["name"]: e for e in container(objects)["env"]}
    assert env["POD_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    alone = render(chart, {"replicas": 1, "leaderElection": {"enabled": False}})
    assert "asynctask.dev/leader" not in one(alone, "Service")["spec"]["selector"]


def test_pdb_only_with_more_than_one_replica(chart: Any) -> None:
    one_replica = {"replicas": 1, "podDisruptionBudget": {"enabled": True}}
    assert not [o for o in render(chart, one_replica) if o["kind"] == "PodDisruptionBudget"]
    pdb = one(render(chart, {"podDisruptionBudget": {"enabled": True}}), "PodDisruptionBudget")
    assert pdb["spec"] == {
        "minAvailable": 1,
        "unhealthyPodEvictionPolicy": "AlwaysAllow",  # one not Ready (crash-looping) is always evictable
        "selector": {
            "matchLabels": {"app.kubernetes.io/name": "asynctask-operator", "app.kubernetes.io/instance": RELEASE}
        },
    }


def test_network_policy(chart: Any) -> None:
    policy = one(render(chart, {"networkPolicy": {"enabled": True}, "watchNamespaces": ["a"]}), "NetworkPolicy")
    [rule] = policy["spec"]["ingress"]
    [peer] = rule["from"]
    assert peer["podSelector"] == {"matchLabels": {"app.kubernetes.io/managed-by": "asynctask-operator"}}
    assert peer["namespaceSelector"]["matchExpressions"][0]["values"] == ["a"]
    assert rule["ports"] == [{"port": "http", "protocol": "TCP"}]


@pytest.mark.parametrize(("overrides", "field"), BAD_VALUES[:8], ids=lambda v: json.dumps(v)[:60])
def test_helm_refuses_bad_values_with_the_schema_message(
    chart: Any, helm: Any, overrides: dict[str, Any], field: str
) -> None:
    with pytest.raises(helm.HelmValuesError, match="schema") as refused:
        render(chart, overrides)
    assert field in str(refused.value)


def test_helm_lint_is_clean(helm: Any) -> None:
    report = helm.lint(CHART, strict=True, kube_version=f"v{KUBE_VERSION}")
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert not problems and not report["errors"], report


MONITORING_ON: dict[str, Any] = {
    "metrics": {
        "serviceMonitor": {"enabled": True},
        "prometheusRule": {"enabled": True},
        "dashboard": {"enabled": True},
    }
}
# The Prometheus Operator's custom resources: kubernetes-validate has no schema for them.
NOT_VALIDATED = {("monitoring.coreos.com/v1", "ServiceMonitor"), ("monitoring.coreos.com/v1", "PrometheusRule")}

RENDER_CASES: list[dict[str, Any]] = [
    {},
    {"watchNamespaces": ["a", "b"], "networkPolicy": {"enabled": True}},
    {"reports": {"enabled": False}, "defaultConcurrency": 2, "serviceAccount": {"annotations": {"a": "b"}}},
    {"replicas": 1, "leaderElection": {"enabled": False}, "podDisruptionBudget": {"enabled": True}},
    {"replicas": 3, "podDisruptionBudget": {"enabled": True}},
    MONITORING_ON,
]


@pytest.mark.parametrize("overrides", RENDER_CASES, ids=lambda v: json.dumps(v)[:60])
def test_rendered_objects_are_valid_kubernetes_1_31(chart: Any, overrides: dict[str, Any]) -> None:
    validate = pytest.importorskip("kubernetes_validate", reason="kubernetes-validate is not installed")
    objects = render(chart, overrides) + [yaml.safe_load(p.read_text()) for p in sorted((CHART / "crds").glob("*"))]
    for obj in objects:
        if obj["kind"] in ("Role", "ClusterRole"):
            assert obj["rules"], f"{obj['kind']}/{obj['metadata']['name']} grants nothing: leave it out"
        if (obj["apiVersion"], obj["kind"]) in NOT_VALIDATED:
            continue
        try:
            validate.validate(obj, KUBE_VERSION, strict=True)
        except validate.ValidationError as exc:
            pytest.fail(f"{obj['kind']}/{obj['metadata']['name']}: {exc.message} at {list(exc.path)}")


# --------------------------------------------------------------------------- monitoring (metrics.*)

MONITORING_KINDS = ("ServiceMonitor", "PrometheusRule", "ConfigMap")
ALERTS = {
    "AsyncTaskFailureRateHigh",
    "AsyncTaskQueueStalled",
    "AsyncTaskQueueBacklogOld",
    "AsyncTaskQueueWaitHigh",
    "AsyncTaskCallbackFailures",
    "AsyncTaskOperatorDown",
    "AsyncTaskOperatorNoLeader",
    "AsyncTaskApiErrorsHigh",
}
# Labels Prometheus adds to every series of a target (ServiceMonitor discovery), and `le` of buckets.
TARGET_LABELS = {"job", "namespace", "instance", "pod", "service", "container", "endpoint", "le"}
PROM_DURATION = re.compile(r"^([0-9]+(ms|s|m|h|d|w|y))+$")


def exported_metrics() -> dict[str, set[str]]:
    """{metric family name as queried: its label names}, from what adapters/metrics.py declares.

    Counters are queried with their ``_total`` suffix; histograms by their name (plus
    ``_bucket``/``_sum``/``_count``, which :func:`metric_problems` strips)."""
    metrics = Metrics()
    metrics.watch_queues(lambda: [("ns", "q", 1, 1, 30, 0, 0)])
    families: dict[str, set[str]] = {}
    for family in metrics.registry.collect():
        name = f"{family.name}_total" if family.type == "counter" else family.name
        families[name] = {label for sample in family.samples for label in sample.labels}
    for attribute in vars(metrics).values():  # labelled counters and histograms have no samples yet
        names = getattr(attribute, "_labelnames", None)
        if names is not None:
            base = attribute._name  # without _total
            key = f"{base}_total" if f"{base}_total" in families else base
            families.setdefault(key, set()).update(names)
    return families


METRIC = re.compile(r"\b(asynctask_[a-z_]+)\b(\{[^}]*\})?")
UP = re.compile(r"\bup\{")  # Prometheus' own series of each target: only target labels
MATCHER = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)")
GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")


def metric_problems(expr: str, exported: dict[str, set[str]]) -> list[str]:
    """What in a PromQL expression (crudely parsed) is not what the operator exports:
    unknown metric names, label matchers or grouping labels the metrics referenced do not have,
    unbalanced brackets."""
    problems: list[str] = []
    for opening, closing in ("()", "{}", "[]"):
        if expr.count(opening) != expr.count(closing):
            problems.append(f"unbalanced {opening}{closing}")
    labels_in_expr = set(TARGET_LABELS)
    referenced = METRIC.findall(expr)
    if not referenced and not UP.search(expr):
        problems.append("queries no asynctask_ metric (nor Prometheus' up)")
    for raw_name, selector in referenced:
        name = re.sub(r"_(bucket|sum|count)$", "", raw_name)
        if name not in exported:
            problems.append(f"{raw_name} is not exported by adapters/metrics.py")
            continue
        labels_in_expr |= exported[name]
        for label in MATCHER.findall(selector):
            if label not in exported[name] | TARGET_LABELS:
                problems.append(f"{raw_name} has no label {label!r} (it has {sorted(exported[name])})")
    for group in GROUPING.findall(expr):
        for label in filter(None, (g.strip() for g in group.split(","))):
            if label not in labels_in_expr:
                problems.append(f"grouping by {label!r}, which no metric of the expression has")
    return problems


def dashboard_of(objects: list[Manifest]) -> dict[str, Any]:
    configmap = one(objects, "ConfigMap")
    [(key, text)] = configmap["data"].items()
    assert key.endswith(".json")
    dashboard: dict[str, Any] = json.loads(text)
    return dashboard


def dashboard_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    panels: list[dict[str, Any]] = []
    for panel in dashboard["panels"]:
        panels.append(panel)
        panels.extend(panel.get("panels") or ())  # a collapsed row holds its panels
    return panels


def dashboard_exprs(dashboard: dict[str, Any]) -> dict[str, str]:
    """{where: PromQL} for every panel query and every query variable."""
    exprs = {
        f"panel {p['title']!r} {t['refId']}": t["expr"]
        for p in dashboard_panels(dashboard)
        for t in p.get("targets") or ()
    }
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]
            exprs[f"variable {variable['name']}"] = query["query"] if isinstance(query, dict) else query
    return exprs


def rule_exprs(objects: list[Manifest]) -> dict[str, str]:
    rule = one(objects, "PrometheusRule")
    return {r["alert"]: r["expr"] for group in rule["spec"]["groups"] for r in group["rules"]}


def test_the_metric_check_can_fail() -> None:
    """metric_problems must catch a metric the operator does not export, a label it lacks, a bad grouping."""
    exported = exported_metrics()
    assert metric_problems('sum(rate(asynctask_tasks_finished_total{phase="Failed"}[5m]))', exported) == []
    assert metric_problems("histogram_quantile(0.9, rate(asynctask_queue_wait_seconds_bucket[5m]))", exported) == []
    assert metric_problems("max(asynctask_queue_oldest_pending_secs)", exported) == [
        "asynctask_queue_oldest_pending_secs is not exported by adapters/metrics.py"
    ]
    assert metric_problems("rate(asynctask_task_created_total[5m])", exported)  # a typo
    [problem] = metric_problems('rate(asynctask_tasks_created_total{queue="a"}[5m])', exported)
    assert "no label 'queue'" in problem
    [problem] = metric_problems("sum by (result) (rate(asynctask_attempts_total[5m]))", exported)
    assert "grouping by 'result'" in problem
    assert metric_problems("sum(rate(asynctask_attempts_total[5m])", exported) == ["unbalanced ()"]


def test_exported_metrics_are_the_spec_families() -> None:
    """The metric families of docs/design.md §4.1, as the monitoring checks see them (a guard on exported_metrics itself)."""
    exported = exported_metrics()
    assert exported["asynctask_tasks_finished_total"] == {"namespace", "type", "queue", "phase", "reason"}
    assert exported["asynctask_callback_deliveries_total"] == {"namespace", "result"}
    assert exported["asynctask_queue_pending"] == {"namespace", "queue"}
    assert exported["asynctask_reconcile_seconds"] == {"kind"}
    assert {
        "asynctask_tasks_created_total",
        "asynctask_task_duration_seconds",
        "asynctask_queue_wait_seconds",
        "asynctask_attempts_total",
        "asynctask_queue_running",
        "asynctask_scheduled_runs_total",
        "asynctask_api_requests_total",
    } <= set(exported)


def test_no_monitoring_objects_by_default(chart: Any) -> None:
    assert not [o for o in render(chart) if o["kind"] in MONITORING_KINDS]


@pytest.mark.parametrize("which", ["serviceMonitor", "prometheusRule", "dashboard"])
def test_each_monitoring_object_alone(chart: Any, which: str) -> None:
    objects = render(chart, {"metrics": {which: {"enabled": True}}})
    kind = {"serviceMonitor": "ServiceMonitor", "prometheusRule": "PrometheusRule", "dashboard": "ConfigMap"}[which]
    assert [o["kind"] for o in objects if o["kind"] in MONITORING_KINDS] == [kind]


def test_service_monitor_scrapes_the_services_metrics_port(chart: Any) -> None:
    objects = render(chart, merged(MONITORING_ON, {"metrics": {"serviceMonitor": {"labels": {"release": "prom"}}}}))
    monitor = one(objects, "ServiceMonitor")
    [service] = [o for o in objects if o["kind"] == "Service" and o["metadata"]["name"] == f"{FULLNAME}-metrics"]
    main = next(o for o in objects if o["kind"] == "Service" and o["metadata"]["name"] == FULLNAME)
    # Every replica is scraped (the main Service selects only the leader), as job <fullname>.
    assert "asynctask.dev/leader" not in service["spec"]["selector"]
    assert service["spec"]["selector"].items() <= main["spec"]["selector"].items()
    assert not monitor["spec"]["selector"]["matchLabels"].items() <= main["metadata"]["labels"].items()
    assert service["metadata"]["labels"][monitor["spec"]["jobLabel"]] == FULLNAME
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["namespace"] == NAMESPACE
    assert monitor["metadata"]["labels"]["release"] == "prom"
    assert monitor["metadata"]["labels"]["app.kubernetes.io/instance"] == RELEASE
    spec = monitor["spec"]
    selector = spec["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items(), "the ServiceMonitor does not select the Service"
    assert spec["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    [endpoint] = spec["endpoints"]
    assert endpoint["port"] in [p["name"] for p in service["spec"]["ports"]]
    assert endpoint["path"] == "/metrics"
    assert endpoint["interval"] == "30s"
    assert "scrapeTimeout" not in endpoint  # Prometheus' default
    # Series keep their own `namespace` (the task's), not the operator's: the alerts group by it.
    assert endpoint["honorLabels"] is True
    timed = one(
        render(chart, {"metrics": {"serviceMonitor": {"enabled": True, "scrapeTimeout": "5s"}}}), "ServiceMonitor"
    )
    assert timed["spec"]["endpoints"][0]["scrapeTimeout"] == "5s"


def test_prometheus_rule_alerts(chart: Any) -> None:
    objects = render(chart, MONITORING_ON)
    rule = one(objects, "PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["metadata"]["namespace"] == NAMESPACE
    rules = [r for group in rule["spec"]["groups"] for r in group["rules"]]
    assert {r["alert"] for r in rules} == ALERTS
    assert len(rules) == len(ALERTS)
    for r in rules:
        assert set(r) <= {"alert", "expr", "for", "labels", "annotations"}, r["alert"]
        assert r["labels"]["severity"] in ("warning", "critical"), r["alert"]
        assert r["annotations"]["summary"] and r["annotations"]["description"], r["alert"]
        assert "for" not in r or PROM_DURATION.match(r["for"]), r["alert"]
        # Every series this rule reads is this release's (job="<fullname>" from the ServiceMonitor).
        selectors = re.findall(r"\b(?:asynctask_[a-z_]+|up)\{([^}]*)\}", r["expr"])
        assert selectors, r["alert"]
        assert all(f'job="{FULLNAME}"' in sel for sel in selectors), (r["alert"], r["expr"])
    exprs = rule_exprs(objects)
    assert 'phase="Failed"' in exprs["AsyncTaskFailureRateHigh"]
    assert "sum by (namespace)" in exprs["AsyncTaskFailureRateHigh"]
    assert "[15m]" in exprs["AsyncTaskFailureRateHigh"]
    assert 'result=~"failed|refused"' in exprs["AsyncTaskCallbackFailures"]
    assert 'code=~"5..|429|0"' in exprs["AsyncTaskApiErrorsHigh"]
    assert exprs["AsyncTaskOperatorDown"].strip() == f'absent(up{{job="{FULLNAME}"}} == 1)'
    assert "asynctask_queue_oldest_pending_seconds" in exprs["AsyncTaskQueueBacklogOld"]
    assert "> 3600" in exprs["AsyncTaskQueueBacklogOld"]
    assert "asynctask_leader" in exprs["AsyncTaskOperatorNoLeader"]


def test_prometheus_rule_thresholds_and_selector(chart: Any) -> None:
    thresholds = {
        "failureRatio": 0.5,
        "failureMinFinished": 20,
        "queueStalledFor": "1h",
        "queueWaitSeconds": 600,
        "apiErrorRatio": 0.2,
    }
    selector = 'cluster="prod", job="tasks"'
    objects = render(
        chart,
        {"metrics": {"prometheusRule": {"enabled": True, "thresholds": thresholds, "selector": selector}}},
    )
    rules = {r["alert"]: r for g in one(objects, "PrometheusRule")["spec"]["groups"] for r in g["rules"]}
    assert ") > 0.5\n" in rules["AsyncTaskFailureRateHigh"]["expr"]
    assert ">= 20" in rules["AsyncTaskFailureRateHigh"]["expr"]
    assert rules["AsyncTaskQueueStalled"]["for"] == "1h"
    assert rules["AsyncTaskQueueWaitHigh"]["expr"].rstrip().endswith("> 600")
    assert rules["AsyncTaskApiErrorsHigh"]["expr"].rstrip().endswith("> 0.2")
    for name, r in rules.items():
        assert FULLNAME not in r["expr"], name
        assert all(sel.startswith(selector) for sel in re.findall(r"\{([^}]*)\}", r["expr"])), (name, r["expr"])


def test_prometheus_templates_pass_through_helm(chart: Any) -> None:
    """Alert annotations keep Prometheus' {{ $labels.x }} / {{ $value }} for Prometheus to expand."""
    objects = render(chart, MONITORING_ON)
    rules = {r["alert"]: r for g in one(objects, "PrometheusRule")["spec"]["groups"] for r in g["rules"]}
    assert "{{ $labels.namespace }}" in rules["AsyncTaskFailureRateHigh"]["annotations"]["summary"]
    assert "{{ $value | humanizePercentage }}" in rules["AsyncTaskFailureRateHigh"]["annotations"]["description"]
    assert "{{ $labels.queue }}" in rules["AsyncTaskQueueStalled"]["annotations"]["summary"]


def test_dashboard_configmap(chart: Any) -> None:
    objects = render(chart, MONITORING_ON)
    configmap = one(objects, "ConfigMap")
    assert configmap["metadata"]["name"] == f"{FULLNAME}-dashboard"
    assert configmap["metadata"]["namespace"] == NAMESPACE
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert dashboard_of(objects) == json.loads((CHART / "files" / "dashboard.json").read_text())
    elsewhere = render(
        chart,
        {
            "metrics": {
                "dashboard": {
                    "enabled": True,
                    "namespace": "monitoring",
                    # Helm merges maps: null removes the default label.
                    "labels": {"dash": "yes", "grafana_dashboard": None},
                    "annotations": {"grafana_folder": "Tasks"},
                }
            }
        },
    )
    moved = one(elsewhere, "ConfigMap")
    assert moved["metadata"]["namespace"] == "monitoring"
    assert moved["metadata"]["labels"]["dash"] == "yes"
    assert "grafana_dashboard" not in moved["metadata"]["labels"]
    assert moved["metadata"]["annotations"] == {"grafana_folder": "Tasks"}


def test_dashboard_panels(chart: Any) -> None:
    dashboard = dashboard_of(render(chart, MONITORING_ON))
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert variables["namespace"]["type"] == "query"
    panels = [p for p in dashboard_panels(dashboard) if p["type"] != "row"]
    ids = [p["id"] for p in dashboard_panels(dashboard)]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in panels:
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]
    exprs = dashboard_exprs(dashboard)
    for where, expr in exprs.items():
        if where.startswith("panel") and ("asynctask_tasks_" in expr or "asynctask_queue_" in expr):
            assert 'namespace=~"$namespace"' in expr, f"{where} ignores the namespace variable: {expr}"
    everything = "\n".join(exprs.values())
    wanted = {
        "throughput": "rate(asynctask_tasks_created_total",
        "finished": "rate(asynctask_tasks_finished_total",
        "success rate": 'phase="Succeeded"',
        "duration p50": "histogram_quantile(0.5, sum by (le, type) (rate(asynctask_task_duration_seconds_bucket",
        "duration p95": "histogram_quantile(0.95, sum by (le, type) (rate(asynctask_task_duration_seconds_bucket",
        "pending": "asynctask_queue_pending",
        "running": "asynctask_queue_running",
        "queue wait p95": "histogram_quantile(0.95, sum by (le, namespace, queue) (rate(asynctask_queue_wait_seconds",
        "attempts": "sum by (outcome) (rate(asynctask_attempts_total",
        "callbacks": "sum by (result) (rate(asynctask_callback_deliveries_total",
        "api": "sum by (code) (rate(asynctask_api_requests_total",
        "reconcile": "rate(asynctask_reconcile_seconds_bucket",
    }
    missing = {what: text for what, text in wanted.items() if text not in everything}
    assert not missing, f"the dashboard lacks {missing}"


def test_alerts_and_dashboard_query_only_exported_metrics(chart: Any) -> None:
    objects = render(chart, MONITORING_ON)
    exported = exported_metrics()
    queries = {f"alert {k}": v for k, v in rule_exprs(objects).items()}
    queries.update(dashboard_exprs(dashboard_of(objects)))
    assert len(queries) > 20
    problems = {where: p for where, expr in queries.items() if (p := metric_problems(expr, exported))}
    assert not problems, json.dumps(problems, indent=1)


@pytest.mark.parametrize(("overrides", "field"), MONITORING_BAD_VALUES[:6], ids=lambda v: json.dumps(v)[:60])
def test_helm_refuses_bad_monitoring_values(chart: Any, helm: Any, overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(helm.HelmValuesError, match="schema") as refused:
        render(chart, overrides)
    assert field.rsplit("/", 1)[-1] in str(refused.value)
