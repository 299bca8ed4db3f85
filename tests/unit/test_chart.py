"""SPEC 4: the Helm chart (charts/asynctask-operator).

Always run: the chart's CRDs are the generated ones, its RBAC rules file is the one
``asynctask_operator.rbac`` renders, its appVersion is the package's, and
values.schema.json accepts the defaults and refuses bad values (checked with jsonschema).

Run where ``helm-python-sdk`` installs (it bundles Helm's Go library; the test extra
installs it on Linux x86-64): the chart rendered by Helm itself, for the default values,
namespaced mode and bad values, and every rendered object validated against the
Kubernetes 1.31 OpenAPI schemas by ``kubernetes-validate``.
"""

from __future__ import annotations

import copy
import json
import pathlib
import tomllib
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest
import yaml

from asynctask_operator import rbac

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
    assert chart["kubeVersion"] == ">=1.31.0-0", "SPEC 1: selectableFields needs Kubernetes 1.31"


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
    ({"serviceMonitor": {"enabled": True}}, "serviceMonitor"),  # metrics are not built yet
]


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
        ("Role", NAMESPACE),  # the leader-election Lease and the report-token Secret
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
        *LEADER_ARGS,
    ]  # fmt: skip


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
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "create", "patch"]}
    ]  # the Lease only: no Secret at all
    assert one(objects, "Role")["rules"] == rbac.policy_rules("own-namespace", ["always"])
    assert not [a for a in container(objects)["args"] if a.startswith("--report")]


def test_report_key_secret_name_reaches_role_and_args(chart: Any) -> None:
    objects = render(chart, {"reports": {"keySecret": "my-key", "url": "https://r.example.com"}})
    [lease_rule, get_rule, create_rule] = one(objects, "Role")["rules"]
    assert lease_rule["resources"] == ["leases"]
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
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": "100%"},
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


def test_no_pdb_by_default(chart: Any) -> None:
    """Only the leader is Ready: minAvailable 1 would forbid evicting it, and so block draining its node."""
    assert not [o for o in render(chart) if o["kind"] == "PodDisruptionBudget"]


def test_pdb_only_with_more_than_one_replica(chart: Any) -> None:
    one_replica = {"replicas": 1, "podDisruptionBudget": {"enabled": True}}
    assert not [o for o in render(chart, one_replica) if o["kind"] == "PodDisruptionBudget"]
    pdb = one(render(chart, {"podDisruptionBudget": {"enabled": True}}), "PodDisruptionBudget")
    assert pdb["spec"] == {
        "minAvailable": 1,
        "unhealthyPodEvictionPolicy": "AlwaysAllow",  # a standby is never Ready: always evictable
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


RENDER_CASES: list[dict[str, Any]] = [
    {},
    {"watchNamespaces": ["a", "b"], "networkPolicy": {"enabled": True}},
    {"reports": {"enabled": False}, "defaultConcurrency": 2, "serviceAccount": {"annotations": {"a": "b"}}},
    {"replicas": 1, "leaderElection": {"enabled": False}, "podDisruptionBudget": {"enabled": True}},
    {"replicas": 3, "podDisruptionBudget": {"enabled": True}},
]


@pytest.mark.parametrize("overrides", RENDER_CASES, ids=lambda v: json.dumps(v)[:60])
def test_rendered_objects_are_valid_kubernetes_1_31(chart: Any, overrides: dict[str, Any]) -> None:
    validate = pytest.importorskip("kubernetes_validate", reason="kubernetes-validate is not installed")
    objects = render(chart, overrides) + [yaml.safe_load(p.read_text()) for p in sorted((CHART / "crds").glob("*"))]
    for obj in objects:
        if obj["kind"] in ("Role", "ClusterRole"):
            assert obj["rules"], f"{obj['kind']}/{obj['metadata']['name']} grants nothing: leave it out"
        try:
            validate.validate(obj, KUBE_VERSION, strict=True)
        except validate.ValidationError as exc:
            pytest.fail(f"{obj['kind']}/{obj['metadata']['name']}: {exc.message} at {list(exc.path)}")
