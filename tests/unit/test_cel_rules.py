"""Every CEL rule in the CRDs compiles, and the transition rules accept and refuse what they should.

Evaluated with cel-python (standard CEL). Kubernetes adds functions of its own; the
rules here use none of them, so a standard evaluator gives the API server's answer.
"""

from __future__ import annotations

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


def at_spec_rule() -> str:
    spec = all_crds()["asynctask.dev_asynctasks.yaml"]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    [rule] = spec["properties"]["spec"]["x-kubernetes-validations"]
    return rule["rule"]


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
