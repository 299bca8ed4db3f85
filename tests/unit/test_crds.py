"""docs/design.md §2: the CRDs are generated from the models, structural, and checked in without drift."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from asynctask_operator.cli import crds_yaml
from asynctask_operator.core.crds import all_crds, asynctask_crd, tasktype_crd

CRDS_DIR = pathlib.Path(__file__).resolve().parents[2] / "crds"


@pytest.mark.parametrize("filename", sorted(crds_yaml()))
def test_checked_in_crds_match_the_models(filename: str) -> None:
    path = CRDS_DIR / filename
    assert path.exists(), f"{path} is missing: run `asynctask-operator crds --write crds/`"
    assert path.read_text() == crds_yaml()[filename], (
        f"crds/{filename} drifted from the pydantic models: run `asynctask-operator crds --write crds/`"
    )


def test_no_stray_crd_files() -> None:
    assert sorted(p.name for p in CRDS_DIR.glob("*.yaml")) == sorted(all_crds())


def test_generated_yaml_parses_back_to_the_crd() -> None:
    for filename, text in crds_yaml().items():
        assert yaml.safe_load(text) == all_crds()[filename]


# --------------------------------------------------------------------------- structural schema


def schema_of(crd: dict[str, Any]) -> dict[str, Any]:
    [version] = crd["spec"]["versions"]
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return schema


def nodes(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema node with its path (``.spec.retry.retryOn[]``)."""
    yield path, node
    for name, sub in (node.get("properties") or {}).items():
        yield from nodes(sub, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        yield from nodes(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from nodes(node["additionalProperties"], f"{path}{{}}")


def all_keys(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, sub in value.items():
            yield key
            yield from all_keys(sub)
    elif isinstance(value, list):
        for sub in value:
            yield from all_keys(sub)


CRDS = {"AsyncTask": asynctask_crd(), "TaskType": tasktype_crd()}
EVERY_CRD = {crd["spec"]["names"]["kind"]: crd for crd in all_crds().values()}  # new kinds are checked too


@pytest.mark.parametrize("kind", sorted(EVERY_CRD))
def test_every_node_is_typed_or_preserves_unknown_fields(kind: str) -> None:
    untyped = [
        path or "(root)"
        for path, node in nodes(schema_of(EVERY_CRD[kind]))
        if "type" not in node and node.get("x-kubernetes-preserve-unknown-fields") is not True
    ]
    assert untyped == []


@pytest.mark.parametrize("kind", sorted(EVERY_CRD))
def test_no_pydantic_leftovers_refs_unions_consts_or_titles(kind: str) -> None:
    forbidden = {"$ref", "$defs", "anyOf", "oneOf", "allOf", "const", "title"}
    assert forbidden & set(all_keys(schema_of(EVERY_CRD[kind]))) == set()


@pytest.mark.parametrize("kind", sorted(EVERY_CRD))
def test_no_null_defaults(kind: str) -> None:
    assert [p for p, node in nodes(schema_of(EVERY_CRD[kind])) if "default" in node and node["default"] is None] == []


# --------------------------------------------------------------------------- AsyncTask

AT_SCHEMA = schema_of(CRDS["AsyncTask"])
AT_SPEC = AT_SCHEMA["properties"]["spec"]
[AT_VERSION] = CRDS["AsyncTask"]["spec"]["versions"]


def test_spec_type_is_required() -> None:
    assert AT_SCHEMA["required"] == ["spec"]
    assert AT_SPEC["required"] == ["type"]


@pytest.mark.parametrize(
    ("field", "bounds"),
    [
        ("priority", {"minimum": -1000, "maximum": 1000}),
        ("timeoutSeconds", {"minimum": 1, "maximum": 31536000}),
        ("deadlineSeconds", {"minimum": 1, "maximum": 31536000}),
        ("ttlSecondsAfterFinished", {"minimum": 0, "maximum": 31536000}),
    ],
)
def test_numeric_bounds(field: str, bounds: dict[str, int]) -> None:
    node = AT_SPEC["properties"][field]
    assert node["type"] == "integer"
    assert {k: node[k] for k in bounds} == bounds


@pytest.mark.parametrize("outcome", ["secondsAfterSuccess", "secondsAfterFailure", "secondsAfterCancelled"])
def test_ttl_strategy_bounds_and_descriptions(outcome: str) -> None:
    """Each field is bounded like ttlSecondsAfterFinished and described (``kubectl explain`` shows it)."""
    strategy = AT_SPEC["properties"]["ttlStrategy"]
    node = strategy["properties"][outcome]
    assert (node["type"], node["minimum"], node["maximum"]) == ("integer", 0, 31536000)
    assert node["description"] and "ttlSecondsAfterFinished" in strategy["description"]
    tt = all_crds()["asynctask.dev_tasktypes.yaml"]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    defaults = tt["properties"]["spec"]["properties"]["defaults"]["properties"]
    assert defaults["ttlStrategy"]["properties"][outcome]["maximum"] == 31536000


def test_retry_policy_schema() -> None:
    retry = AT_SPEC["properties"]["retry"]["properties"]
    assert retry["maxRetries"]["minimum"] == 0
    assert retry["backoff"]["enum"] == ["Exponential", "Fixed"]
    assert retry["retryOn"]["items"]["enum"] == ["Failed", "Timeout", "PodError"]
    assert retry["retryOn"]["x-kubernetes-list-type"] == "set"


def test_spec_type_has_a_cel_transition_rule() -> None:
    [rule] = AT_SPEC["properties"]["type"]["x-kubernetes-validations"]
    assert rule["rule"] == "self == oldSelf"
    assert "spec.type is immutable" in rule["message"]


@pytest.mark.parametrize("field", ["queue", "concurrency"])
def test_spec_immutable_rules_are_on_the_spec_so_adding_or_removing_is_caught_too(field: str) -> None:
    [rule] = [r for r in AT_SPEC["x-kubernetes-validations"] if r["fieldPath"] == f".{field}"]
    assert f"spec.{field} is immutable" in rule["message"]
    assert f"has(oldSelf.{field})" in rule["rule"]


def test_payload_keeps_any_json() -> None:
    assert AT_SPEC["properties"]["payload"]["x-kubernetes-preserve-unknown-fields"] is True


def test_printer_columns() -> None:
    columns = {c["name"]: c for c in AT_VERSION["additionalPrinterColumns"]}
    assert [c["name"] for c in AT_VERSION["additionalPrinterColumns"] if not c.get("priority")] == [
        "Type",
        "Queue",
        "Phase",
        "Progress",
        "Attempt",
        "Age",
    ]
    assert columns["Message"]["priority"] == 1
    assert columns["Phase"]["jsonPath"] == ".status.phase"
    assert columns["Progress"]["jsonPath"] == ".status.progress.percent"
    assert columns["Age"]["type"] == "date"


def test_selectable_fields() -> None:
    assert AT_VERSION["selectableFields"] == [
        {"jsonPath": ".spec.type"},
        {"jsonPath": ".spec.queue"},
        {"jsonPath": ".status.phase"},
    ]


def test_status_defaults_to_pending_and_is_a_subresource() -> None:
    assert AT_SCHEMA["properties"]["status"]["default"] == {"phase": "Pending"}
    assert AT_SCHEMA["properties"]["status"]["properties"]["phase"]["enum"] == [
        "Pending",
        "Running",
        "Retrying",
        "Succeeded",
        "Failed",
        "Cancelled",
    ]
    assert AT_VERSION["subresources"] == {"status": {}}


def test_attempts_keep_at_most_ten() -> None:
    assert AT_SCHEMA["properties"]["status"]["properties"]["attempts"]["maxItems"] == 10


def test_conditions_are_a_map_keyed_by_type() -> None:
    conditions = AT_SCHEMA["properties"]["status"]["properties"]["conditions"]
    assert (conditions["x-kubernetes-list-type"], conditions["x-kubernetes-list-map-keys"]) == ("map", ["type"])
    assert set(conditions["items"]["required"]) >= {"type", "status", "reason", "lastTransitionTime"}


@pytest.mark.parametrize(
    ("kind", "plural", "short_names"),
    [("AsyncTask", "asynctasks", ["at", "atask"]), ("TaskType", "tasktypes", ["tt"])],
)
def test_names(kind: str, plural: str, short_names: list[str]) -> None:
    crd = CRDS[kind]
    assert crd["metadata"]["name"] == f"{plural}.asynctask.dev"
    assert crd["spec"]["scope"] == "Namespaced"
    assert crd["spec"]["names"]["shortNames"] == short_names
    assert crd["spec"]["versions"][0]["name"] == "v1alpha1"


# --------------------------------------------------------------------------- TaskType

TT_SPEC = schema_of(CRDS["TaskType"])["properties"]["spec"]


def test_tasktype_requires_a_pod_template_with_containers() -> None:
    job_template = TT_SPEC["properties"]["jobTemplate"]
    assert TT_SPEC["required"] == ["jobTemplate"]
    assert job_template["required"] == ["spec"]
    template = job_template["properties"]["spec"]["properties"]["template"]
    assert template["properties"]["spec"]["required"] == ["containers"]
    assert template["properties"]["spec"]["properties"]["containers"]["minItems"] == 1


def test_tasktype_refuses_a_restart_policy_other_than_never() -> None:
    pod_spec = TT_SPEC["properties"]["jobTemplate"]["properties"]["spec"]["properties"]["template"]["properties"]
    [rule] = pod_spec["spec"]["properties"]["restartPolicy"]["x-kubernetes-validations"]
    assert rule["rule"] == "self == 'Never'"


def test_tasktype_printer_columns() -> None:
    [version] = CRDS["TaskType"]["spec"]["versions"]
    assert [c["name"] for c in version["additionalPrinterColumns"]] == ["Image", "Queue", "Ready", "Age"]


# --------------------------------------------------------------------------- ScheduledTask

ST_CRD = EVERY_CRD["ScheduledTask"]
ST_SCHEMA = schema_of(ST_CRD)
ST_SPEC = ST_SCHEMA["properties"]["spec"]
[ST_VERSION] = ST_CRD["spec"]["versions"]


def test_scheduledtask_names() -> None:
    assert ST_CRD["metadata"]["name"] == "scheduledtasks.asynctask.dev"
    assert ST_CRD["spec"]["scope"] == "Namespaced"
    assert ST_CRD["spec"]["names"]["shortNames"] == ["st"]
    assert ST_VERSION["subresources"] == {"status": {}}


def test_scheduledtask_printer_columns() -> None:
    shown = [c for c in ST_VERSION["additionalPrinterColumns"] if not c.get("priority")]
    assert [c["name"] for c in shown] == [
        "Schedule",
        "TimeZone",
        "Suspend",
        "Active",
        "Last Schedule",
        "Next Schedule",
        "Age",
    ]
    columns = {c["name"]: c for c in shown}
    assert columns["Last Schedule"]["type"] == "date"
    # A future time as type date would print "<invalid>": the next fire is shown as written.
    assert columns["Next Schedule"] == {
        "name": "Next Schedule",
        "type": "string",
        "jsonPath": ".status.nextScheduleTime",
    }


def test_scheduledtask_spec_defaults_and_bounds() -> None:
    props = ST_SPEC["properties"]
    assert sorted(ST_SPEC["required"]) == ["schedule", "taskTemplate"]
    assert props["timeZone"]["default"] == "UTC"
    assert props["suspend"]["default"] is False
    assert props["concurrencyPolicy"] == {**props["concurrencyPolicy"], "default": "Allow"}
    assert props["concurrencyPolicy"]["enum"] == ["Allow", "Forbid", "Replace"]
    assert props["successfulTasksHistoryLimit"]["default"] == 3
    assert props["failedTasksHistoryLimit"]["default"] == 1
    assert props["startingDeadlineSeconds"]["minimum"] == 1
    assert "default" not in props["startingDeadlineSeconds"]


def test_task_template_is_the_asynctask_spec_without_its_transition_rules() -> None:
    template = ST_SPEC["properties"]["taskTemplate"]
    assert template["required"] == ["spec"]
    assert template["properties"]["spec"]["required"] == ["type"]
    assert set(template["properties"]["spec"]["properties"]) == set(AT_SPEC["properties"])
    assert "oldSelf" not in str(template)  # the template may change; the next run uses the new one
    assert template["properties"]["metadata"]["properties"]["labels"]["additionalProperties"] == {"type": "string"}


def test_scheduledtask_status_fields() -> None:
    status = ST_SCHEMA["properties"]["status"]["properties"]
    assert set(status) >= {
        "lastScheduleTime",
        "nextScheduleTime",
        "lastSuccessfulTime",
        "active",
        "missedRuns",
        "counts",
        "conditions",
    }
    assert set(status["counts"]["properties"]) == {"succeeded", "failed", "skipped"}
    assert status["active"]["items"] == {"type": "string"}
