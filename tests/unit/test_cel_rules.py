"""Every CEL rule in the CRDs compiles, and the transition rules accept and refuse what they should.

Evaluated with cel-python (standard CEL). Kubernetes adds functions of its own; the
rules here use none of them, so a standard evaluator gives the API server's answer.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import celpy
import pytest

from asynctask_operator.core.crds import all_crds


def rules(node: Any, path: str = "") -> Iterator[tuple[str, dict[str, str]]]:
    if isinstance(node, dict):
        for rule in node.get("x-kubernetes-validations", ()):
            yield path, rule
        for key, value in node.items():
            if key != "x-kubernetes-validations":
                yield from rules(value, f"{path}.{key}")
    elif isinstance(node, list):
        for item in node:
            yield from rules(item, path)


ALL_RULES = [(name, path, rule) for name, crd in all_crds().items() for path, rule in rules(crd)]


def evaluate(rule: str, new: Any, old: Any = None) -> bool:
    env = celpy.Environment()
    program = env.program(env.compile(rule))
    activation = {"self": celpy.json_to_cel(new)}
    if old is not None:
        activation["oldSelf"] = celpy.json_to_cel(old)
    return bool(program.evaluate(activation))


def test_there_are_rules_to_check() -> None:
    assert len(ALL_RULES) >= 3


@pytest.mark.parametrize(("crd", "path", "rule"), ALL_RULES, ids=[f"{c}{p}" for c, p, _ in ALL_RULES])
def test_rule_compiles_and_has_a_message(crd: str, path: str, rule: dict[str, str]) -> None:
    env = celpy.Environment()
    env.compile(rule["rule"])
    assert rule["message"] and "\n" not in rule["message"]


def at_spec_rule(field: str = "queue") -> str:
    spec = all_crds()["asynctask.dev_asynctasks.yaml"]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    [rule] = [r for r in spec["properties"]["spec"]["x-kubernetes-validations"] if r["fieldPath"] == f".{field}"]
    return str(rule["rule"])


@pytest.mark.parametrize(
    ("old", "new", "allowed"),
    [
        ({"type": "x"}, {"type": "x"}, True),
        ({"type": "x", "queue": "a"}, {"type": "x", "queue": "a", "priority": 5}, True),
        ({"type": "x", "queue": "a"}, {"type": "x", "queue": "b"}, False),
        ({"type": "x"}, {"type": "x", "queue": "b"}, False),
        ({"type": "x", "queue": "a"}, {"type": "x"}, False),
    ],
    ids=["unchanged", "other-field-changes", "changed", "added", "removed"],
)
def test_queue_cannot_change_after_creation(old: dict[str, Any], new: dict[str, Any], allowed: bool) -> None:
    assert evaluate(at_spec_rule(), new, old) is allowed


@pytest.mark.parametrize(("old", "new", "allowed"), [("a", "a", True), ("a", "b", False)])
def test_type_cannot_change(old: str, new: str, allowed: bool) -> None:
    assert evaluate("self == oldSelf", new, old) is allowed


@pytest.mark.parametrize(("value", "allowed"), [("Never", True), ("OnFailure", False), ("Always", False)])
def test_restart_policy_must_be_never(value: str, allowed: bool) -> None:
    [rule] = [r for _, p, r in ALL_RULES if p.endswith("restartPolicy")]
    assert evaluate(rule["rule"], value) is allowed


def st_spec() -> dict[str, Any]:
    crd = all_crds()["asynctask.dev_scheduledtasks.yaml"]
    spec: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    return spec


@pytest.mark.parametrize(
    ("schedule", "allowed"),
    [
        ("0 2 * * *", True),
        ("*/5 * * * *", True),
        ("0 9 * * MON-FRI", True),
        ("0,30 1-3 1,15 JAN,JUL 0", True),
        ("0  2 * * *", True),  # more than one space between fields
        ("0 0 L * *", True),
        ("@hourly", True),
        ("@daily", True),
        ("@midnight", True),
        ("@weekly", True),
        ("@monthly", True),
        ("@yearly", True),
        ("@annually", True),
        ("* * * *", False),
        ("0 0 0 * * *", False),
        ("@every 5m", False),
        ("@reboot", False),
        ("@Daily", False),
        ("every day", False),
        ("0 2 * * * ", False),
        (" 0 2 * * *", False),
        ("0\t2 * * *", False),
        ("0 2 * * *; rm", False),
    ],
)
def test_the_api_server_refuses_schedules_that_are_not_five_fields_or_a_macro(schedule: str, allowed: bool) -> None:
    [rule] = st_spec()["properties"]["schedule"]["x-kubernetes-validations"]
    assert evaluate(rule["rule"], schedule) is allowed


@pytest.mark.parametrize(
    ("zone", "allowed"),
    [
        ("UTC", True),
        ("Europe/Berlin", True),
        ("America/Argentina/Buenos_Aires", True),
        ("America/Port-au-Prince", True),
        ("Etc/GMT+5", True),
        ("../etc/passwd", False),
        ("/etc/localtime", False),
        ("Europe/", False),
        ("Europe Berlin", False),
    ],
)
def test_time_zone_pattern(zone: str, allowed: bool) -> None:
    pattern = st_spec()["properties"]["timeZone"]["pattern"]
    assert (re.search(pattern, zone) is not None) is allowed


def test_the_template_of_a_scheduled_task_may_change_its_type_and_queue() -> None:
    """AsyncTaskSpec's transition rules guard one task; under taskTemplate they would freeze the template."""
    template_spec = st_spec()["properties"]["taskTemplate"]["properties"]["spec"]
    found = list(rules(template_spec))
    assert all("oldSelf" not in rule["rule"] for _, rule in found)


@pytest.mark.parametrize(
    ("strategy", "allowed"),
    [
        ({"secondsAfterSuccess": 60}, True),
        ({"secondsAfterFailure": 0}, True),
        ({"secondsAfterCancelled": 5, "secondsAfterSuccess": 1}, True),
        ({}, False),
    ],
    ids=["success", "failure-zero", "two", "empty"],
)
def test_a_ttl_strategy_sets_at_least_one_outcome(strategy: dict[str, Any], allowed: bool) -> None:
    found = {r["rule"] for _, p, r in ALL_RULES if p.endswith("ttlStrategy")}
    assert len(found) == 1  # the same rule on the task, its type's defaults and the status
    assert evaluate(found.pop(), strategy) is allowed


# --------------------------------------------------------------------------- concurrency keys and fairness: bad input


def schema_of(file: str, *path: str) -> dict[str, Any]:
    node: dict[str, Any] = all_crds()[file]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for name in path:
        node = node["properties"][name]
    return node


def _as_json_schema(node: Any) -> Any:
    """The structural schema as JSON Schema (the API server's checks but CEL; x-kubernetes-* dropped)."""
    if isinstance(node, list):
        return [_as_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    return {
        k: ({n: _as_json_schema(s) for n, s in v.items()} if k == "properties" else _as_json_schema(v))
        for k, v in node.items()
        if not k.startswith("x-kubernetes-") and k != "description"
    }


def refusals(schema: dict[str, Any], value: Any, where: str) -> list[str]:
    """What the API server answers to ``value`` at ``where``: schema errors (with the field's path, as the
    API server names it) and the messages of the CEL rules that do not hold."""
    import jsonschema

    found = [
        ".".join([where, *(str(p) for p in error.absolute_path)]) + f": {error.validator}"
        for error in jsonschema.Draft202012Validator(_as_json_schema(schema)).iter_errors(value)
    ]

    def walk(node: dict[str, Any], item: Any) -> Iterator[str]:
        for rule in node.get("x-kubernetes-validations", ()):
            if "oldSelf" not in rule["rule"] and not evaluate(rule["rule"], item):
                yield rule["message"]
        if isinstance(item, dict):
            for name, sub in (node.get("properties") or {}).items():
                if name in item:
                    yield from walk(sub, item[name])

    return found + list(walk(schema, value))


KEY_MESSAGE = "spec.concurrency.key must be letters, digits and - _ . : / (starting and ending with a letter or digit)"


@pytest.mark.parametrize(
    ("concurrency", "refused"),
    [
        ({"key": "video-42"}, []),
        ({"key": "tenant/acme:video_42.v2"}, []),
        ({"key": "k", "limit": 10000, "policy": "CancelNewest"}, []),
        ({"key": ""}, ["spec.concurrency.key: minLength", KEY_MESSAGE]),
        ({"key": "k" * 129}, ["spec.concurrency.key: maxLength"]),
        ({"key": "has space"}, [KEY_MESSAGE]),
        ({"key": "-leading"}, [KEY_MESSAGE]),
        ({"key": "trailing/"}, [KEY_MESSAGE]),
        ({"key": "k", "limit": 0}, ["spec.concurrency.limit: minimum"]),
        ({"key": "k", "limit": -3}, ["spec.concurrency.limit: minimum"]),
        ({"key": "k", "limit": 10001}, ["spec.concurrency.limit: maximum"]),
        ({"key": "k", "policy": "CancelInProgres"}, ["spec.concurrency.policy: enum"]),
        ({"key": "k", "policy": "Skip"}, ["spec.concurrency.policy: enum"]),
        ({"limit": 1}, ["spec.concurrency: required"]),
    ],
    ids=["key", "key-every-character", "limit-and-policy", "empty-key", "long-key", "space", "leading-dash",
         "trailing-slash", "limit-zero", "limit-negative", "limit-too-high", "policy-misspelt", "policy-unknown",
         "no-key"],
)  # fmt: skip
def test_a_tasks_concurrency_is_refused_naming_the_field(concurrency: dict[str, Any], refused: list[str]) -> None:
    schema = schema_of("asynctask.dev_asynctasks.yaml", "spec", "concurrency")
    assert refusals(schema, concurrency, "spec.concurrency") == refused


KEY_FROM_MESSAGE = (
    "defaults.concurrency.keyFrom must set exactly one of payload (a JSON pointer), label (a label name) "
    "or value (a constant key)"
)


@pytest.mark.parametrize(
    ("default", "refused"),
    [
        ({"keyFrom": {"payload": "/videoId"}}, []),
        ({"keyFrom": {"payload": "/a~1b/0"}, "limit": 2}, []),
        ({"keyFrom": {"label": "example.com/tenant"}, "policy": "CancelInProgress"}, []),
        ({"keyFrom": {"value": "nightly-report"}}, []),
        ({"keyFrom": {}}, [KEY_FROM_MESSAGE]),
        ({"keyFrom": {"payload": "/a", "label": "tenant"}}, [KEY_FROM_MESSAGE]),
        ({"keyFrom": {"payload": "videoId"}}, ["spec.defaults.concurrency.keyFrom.payload: pattern"]),
        ({"keyFrom": {"payload": "/bad~2escape"}}, ["spec.defaults.concurrency.keyFrom.payload: pattern"]),
        ({"keyFrom": {"label": "not a label"}}, ["spec.defaults.concurrency.keyFrom.label: pattern"]),
        ({"keyFrom": {"value": "two words"}}, [
            "defaults.concurrency.keyFrom.value must be letters, digits and - _ . : / (starting and ending with "
            "a letter or digit)"]),
        ({"keyFrom": {"value": "v"}, "limit": 0}, ["spec.defaults.concurrency.limit: minimum"]),
        ({"limit": 1}, ["spec.defaults.concurrency: required"]),
    ],
    ids=["payload", "escaped-pointer", "label", "value", "no-source", "two-sources", "pointer-without-slash",
         "bad-escape", "bad-label", "bad-value", "limit-zero", "no-key-from"],
)  # fmt: skip
def test_a_types_key_from_is_refused_naming_the_field(default: dict[str, Any], refused: list[str]) -> None:
    schema = schema_of("asynctask.dev_tasktypes.yaml", "spec", "defaults", "concurrency")
    assert refusals(schema, default, "spec.defaults.concurrency") == refused


@pytest.mark.parametrize(
    ("fairness", "refused"),
    [
        ({"by": "Key"}, []),
        ({"by": "Label", "label": "tenant"}, []),
        ({"by": "Label"}, ["fairness.label is required with by: Label, and only then"]),
        ({"by": "Key", "label": "tenant"}, ["fairness.label is required with by: Label, and only then"]),
        ({"by": "Namespace"}, ["spec.fairness.by: enum"]),
        ({}, ["spec.fairness: required"]),
    ],
    ids=["by-key", "by-label", "label-missing", "label-without-by-label", "by-unknown", "empty"],
)
def test_a_queues_fairness_is_refused_naming_the_field(fairness: dict[str, Any], refused: list[str]) -> None:
    schema = schema_of("asynctask.dev_taskqueues.yaml", "spec", "fairness")
    assert refusals(schema, fairness, "spec.fairness") == refused


@pytest.mark.parametrize(
    ("old", "new", "allowed"),
    [
        ({"type": "x", "concurrency": {"key": "a"}}, {"type": "x", "concurrency": {"key": "a"}, "priority": 1}, True),
        ({"type": "x", "concurrency": {"key": "a"}}, {"type": "x", "concurrency": {"key": "b"}}, False),
        ({"type": "x", "concurrency": {"key": "a"}}, {"type": "x", "concurrency": {"key": "a", "limit": 2}}, False),
        ({"type": "x"}, {"type": "x", "concurrency": {"key": "b"}}, False),
        ({"type": "x", "concurrency": {"key": "a"}}, {"type": "x"}, False),
    ],
    ids=["unchanged", "key-changed", "limit-changed", "added", "removed"],
)
def test_concurrency_cannot_change_after_creation(old: dict[str, Any], new: dict[str, Any], allowed: bool) -> None:
    assert evaluate(at_spec_rule("concurrency"), new, old) is allowed
