"""The chart's archive (``archive.*``): off by default; on, the archiver's Deployment, ServiceAccount and
least-privilege RBAC (from ``rbac.ARCHIVE_RULES``), the database from an existing Secret or SQLite on a
volume, the operator's ``--archive-required``, its metrics and alerts, valid Kubernetes 1.31."""

from __future__ import annotations

import pathlib
from typing import Any

import pytest
import yaml

from asynctask_operator import rbac
from asynctask_operator.archive import cli
from asynctask_operator.archive.metrics import ArchiveMetrics
from tests.unit.test_chart import (
    CHART,
    FULLNAME,
    KUBE_VERSION,
    NAMESPACE,
    Manifest,
    chart,
    helm,
    metric_problems,
    render,
    rule_exprs,
)

__all__ = ["chart", "helm"]  # the fixtures, from the chart's tests

ARCHIVE = f"{FULLNAME}-archive"
ON: dict[str, Any] = {"archive": {"enabled": True, "database": {"existingSecret": "archive-db"}}}
SQLITE: dict[str, Any] = {"archive": {"enabled": True, "database": {"type": "sqlite"}}}


def archive_objects(objects: list[Manifest]) -> list[Manifest]:
    return [o for o in objects if o["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "archive"]


def pod(objects: list[Manifest]) -> dict[str, Any]:
    [deployment] = [o for o in archive_objects(objects) if o["kind"] == "Deployment"]
    spec: dict[str, Any] = deployment["spec"]["template"]["spec"]
    return spec


def operator_args(objects: list[Manifest]) -> list[str]:
    [deployment] = [o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == FULLNAME]
    args: list[str] = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    return args


def test_the_rules_file_is_generated_from_rbac_py() -> None:
    assert (CHART / "files" / "archive-rules.yaml").read_text() == rbac.archive_rules_yaml(), (
        "charts/asynctask-operator/files/archive-rules.yaml is stale: run "
        "`python -m asynctask_operator.rbac --archive --write charts/asynctask-operator/files/archive-rules.yaml`"
    )


def test_off_by_default(chart: Any) -> None:
    objects = render(chart)
    assert archive_objects(objects) == []
    assert "--archive-required" not in operator_args(objects)


def test_on_it_has_its_own_deployment_account_and_least_rights(chart: Any) -> None:
    objects = render(chart, ON)
    found = sorted((o["kind"], o["metadata"]["name"]) for o in archive_objects(objects))
    assert found == sorted(
        [("Deployment", ARCHIVE), ("ServiceAccount", ARCHIVE), ("Role", f"{ARCHIVE}-lease"),
         ("RoleBinding", f"{ARCHIVE}-lease"), ("ClusterRole", f"{ARCHIVE}-{NAMESPACE}"),
         ("ClusterRoleBinding", f"{ARCHIVE}-{NAMESPACE}")]
    )  # fmt: skip
    [cluster_role] = [o for o in objects if o["kind"] == "ClusterRole" and o["metadata"]["name"].startswith(ARCHIVE)]
    assert cluster_role["rules"] == rbac.policy_rules("namespaced", rules=rbac.ARCHIVE_RULES)
    [lease] = [o for o in objects if o["kind"] == "Role" and o["metadata"]["name"] == f"{ARCHIVE}-lease"]
    assert lease["rules"] == rbac.policy_rules("own-namespace", rules=rbac.ARCHIVE_RULES)
    assert lease["metadata"]["namespace"] == NAMESPACE
    spec = pod(objects)
    assert spec["serviceAccountName"] == ARCHIVE
    [main] = spec["containers"]
    assert main["command"] == ["asynctask-archive"]
    args = main["args"]
    assert args[args.index("--dsn-file") + 1] == "/etc/asynctask-archive/database/dsn"
    assert args[args.index("--retention") + 1] == "90d" and args[args.index("--log-limit") + 1] == "1048576"
    assert "--leader-elect" in args and args[args.index("--lease-name") + 1] == ARCHIVE
    assert "--dsn" not in args and not any("postgresql://" in a for a in args)  # never the URL itself
    [volume] = [v for v in spec["volumes"] if v["name"] == "database"]
    assert volume["secret"] == {"secretName": "archive-db", "defaultMode": 0o440,
                                "items": [{"key": "dsn", "path": "dsn"}]}  # fmt: skip
    assert "--archive-required" in operator_args(objects)


def test_the_flags_parse_as_the_archiver_reads_them(chart: Any, tmp_path: pathlib.Path) -> None:
    values = {"archive": ON["archive"] | {"retentionFor": {"audit": "365d"}, "recordPhases": True}}
    args = pod(render(chart, values))["containers"][0]["args"]
    secret = tmp_path / "dsn"
    secret.write_text("postgresql://archive:secret@db:5432/archive\n")
    args[args.index("--dsn-file") + 1] = str(secret)  # the mounted Secret's file, here
    settings = cli.settings_of(cli.parser().parse_args(args))
    assert settings.dsn == "postgresql://archive:secret@db:5432/archive"
    assert settings.retention_seconds == 90 * 86400 and settings.retention_overrides == (("audit", 365 * 86400.0),)
    assert settings.record_phases and settings.leader_elect and settings.http_port == 8081


def test_the_ttl_hold_can_be_left_off(chart: Any) -> None:
    objects = render(chart, {"archive": ON["archive"] | {"required": False}})
    assert archive_objects(objects) and "--archive-required" not in operator_args(objects)


def test_postgresql_needs_an_existing_secret(chart: Any, helm: Any) -> None:
    with pytest.raises(helm.HelmError, match=r"archive\.database\.existingSecret is required"):
        render(chart, {"archive": {"enabled": True}})


def test_sqlite_on_a_volume_of_its_own(chart: Any) -> None:
    objects = render(chart, SQLITE)
    [claim] = [o for o in archive_objects(objects) if o["kind"] == "PersistentVolumeClaim"]
    assert claim["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert claim["spec"]["resources"]["requests"]["storage"] == "10Gi"
    spec = pod(objects)
    args = spec["containers"][0]["args"]
    assert args[args.index("--dsn") + 1] == "sqlite:////var/lib/asynctask-archive/archive.db"
    [data] = [v for v in spec["volumes"] if v["name"] == "data"]
    assert data["persistentVolumeClaim"]["claimName"] == ARCHIVE
    [deployment] = [o for o in archive_objects(objects) if o["kind"] == "Deployment"]
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    trial = render(
        chart, {"archive": {"enabled": True, "database": {"type": "sqlite", "sqlite": {"persistence": False}}}}
    )
    assert next(v for v in pod(trial)["volumes"] if v["name"] == "data")["emptyDir"] == {}
    assert not [o for o in archive_objects(trial) if o["kind"] == "PersistentVolumeClaim"]
    claimed = {"archive": {"enabled": True, "database": {"type": "sqlite", "sqlite": {"existingClaim": "mine"}}}}
    objects = render(chart, claimed)
    assert (
        next(v for v in pod(objects)["volumes"] if v["name"] == "data")["persistentVolumeClaim"]["claimName"] == "mine"
    )


def test_sqlite_runs_one_replica(chart: Any, helm: Any) -> None:
    with pytest.raises(helm.HelmError, match=r"archive\.replicas must be 1"):
        render(chart, {"archive": SQLITE["archive"] | {"replicas": 2}})


def test_namespaced_install_gives_the_archiver_a_role_per_namespace(chart: Any) -> None:
    objects = archive_objects(render(chart, ON | {"watchNamespaces": ["a", "b"]}))
    roles = sorted(
        o["metadata"]["namespace"] for o in objects if o["kind"] == "Role" and o["metadata"]["name"] == ARCHIVE
    )
    assert roles == ["a", "b"]
    assert not [o for o in objects if o["kind"] == "ClusterRole"]
    args = pod(objects)["containers"][0]["args"]
    assert [args[i + 1] for i, arg in enumerate(args) if arg == "--namespace"] == ["a", "b"]


def archive_exported() -> dict[str, set[str]]:
    metrics = ArchiveMetrics()
    metrics.watch_backlog(lambda: 0, lambda: 0.0, lambda: 0)
    families: dict[str, set[str]] = {}
    for family in metrics.registry.collect():
        name = f"{family.name}_total" if family.type == "counter" else family.name
        families[name] = {label for sample in family.samples for label in sample.labels}
    return families


MONITORED = {"metrics": {"serviceMonitor": {"enabled": True}, "prometheusRule": {"enabled": True}}}


def test_its_alerts_query_what_the_archiver_exports(chart: Any) -> None:
    objects = render(chart, ON | MONITORED)
    exprs = rule_exprs(objects)
    archive = {k: v for k, v in exprs.items() if k.startswith("AsyncTaskArchive")}
    assert set(archive) == {"AsyncTaskArchiveLagging", "AsyncTaskArchiveBacklog", "AsyncTaskArchiveDown"}
    exported = archive_exported()
    for alert, expr in archive.items():
        assert metric_problems(expr, exported) == [], alert
        assert f'job="{ARCHIVE}"' in expr
    assert "> 900" in archive["AsyncTaskArchiveLagging"] and "> 1000" in archive["AsyncTaskArchiveBacklog"]
    assert not [k for k in rule_exprs(render(chart, MONITORED)) if k.startswith("AsyncTaskArchive")]


def test_its_metrics_are_scraped_as_the_job_the_alerts_select(chart: Any) -> None:
    objects = archive_objects(render(chart, ON | MONITORED))
    [service] = [o for o in objects if o["kind"] == "Service"]
    [monitor] = [o for o in objects if o["kind"] == "ServiceMonitor"]
    assert (
        service["metadata"]["labels"]["asynctask.dev/job"] == ARCHIVE
        and monitor["spec"]["jobLabel"] == "asynctask.dev/job"
    )
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert service["spec"]["ports"][0]["port"] == 8081


def test_network_policy_lets_only_the_named_peers_in(chart: Any) -> None:
    peers = [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]
    objects = render(chart, ON | {"networkPolicy": {"enabled": True, "extraIngressFrom": peers}})
    [policy] = [o for o in archive_objects(objects) if o["kind"] == "NetworkPolicy"]
    assert policy["spec"]["ingress"] == [{"ports": [{"port": "http", "protocol": "TCP"}], "from": peers}]
    closed = render(chart, ON | {"networkPolicy": {"enabled": True}})
    [policy] = [o for o in archive_objects(closed) if o["kind"] == "NetworkPolicy"]
    assert policy["spec"]["ingress"] == []


@pytest.mark.parametrize(
    "values",
    [
        {"archive": {"enabled": True, "retention": "ninety days"}},
        {"archive": {"database": {"type": "mysql"}}},
        {"archive": {"replicas": 3}},
        {"archive": {"alerts": {"lagSeconds": 0}}},
        {"archive": {"retentionFor": {"Not_A_Namespace": "1d"}}},
        {"archive": {"database": {"existingSecret": "Bad Name"}}},
        {"archive": {"bogus": 1}},
    ],
)
def test_helm_refuses_bad_archive_values(chart: Any, helm: Any, values: dict[str, Any]) -> None:
    with pytest.raises(helm.HelmValuesError, match="schema"):
        render(chart, values)


@pytest.mark.parametrize("values", [ON, ON | {"watchNamespaces": ["a"], "networkPolicy": {"enabled": True}}, SQLITE])
def test_rendered_archive_objects_are_valid_kubernetes_1_31(chart: Any, values: dict[str, Any]) -> None:
    validate = pytest.importorskip("kubernetes_validate", reason="kubernetes-validate is not installed")
    for obj in archive_objects(render(chart, values | MONITORED)):
        if obj["kind"] == "ServiceMonitor":
            continue
        validate.validate(yaml.safe_load(yaml.safe_dump(obj)), KUBE_VERSION, strict=True)
