"""What the API server spends validating our objects (issue 29): every write of an AsyncTask is checked
against its whole schema, CEL rules included. A status, which only the operator writes, carries no CEL
(its bounds in plain OpenAPI instead); every rule reads only values of a bounded size, so the API
server's cost estimate of each stays small; and the rules are counted, so one more is a decision."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest

from asynctask_operator.core.crds import all_crds
from asynctask_operator.core.models.concurrency import KEY_RULE

CRDS = all_crds()
RULES_PER_KIND = {  # spec only: each one's message names the field better than a schema error would
    "asynctask.dev_asynctasks.yaml": 5,  # queue, concurrency, type immutable; ttlStrategy; key characters
    "asynctask.dev_tasktypes.yaml": 4,
    "asynctask.dev_taskqueues.yaml": 1,
    "asynctask.dev_scheduledtasks.yaml": 3,
}


def schema(file: str) -> dict[str, Any]:
    node: dict[str, Any] = CRDS[file]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return node


def rules(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any], str]]:
    """(path, the node a rule is on, the rule), everywhere below ``node``."""
    for rule in node.get("x-kubernetes-validations") or ():
        yield path, node, rule["rule"]
    for name, sub in (node.get("properties") or {}).items():
        yield from rules(sub, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        yield from rules(node["items"], f"{path}[]")


def size_bound(node: dict[str, Any]) -> float:
    """The most bytes a value of ``node`` can hold (inf: unbounded): what a rule over it may have to read."""
    if node.get("x-kubernetes-preserve-unknown-fields"):
        return math.inf
    kind = node.get("type")
    if kind == "string":
        return float(node.get("maxLength", math.inf)) if "enum" not in node else max(len(e) for e in node["enum"])
    if kind in ("integer", "number", "boolean"):
        return 8
    if kind == "array":
        return node.get("maxItems", math.inf) * size_bound(node.get("items") or {})
    return sum(size_bound(sub) for sub in (node.get("properties") or {}).values())


@pytest.mark.parametrize("file", sorted(CRDS))
def test_a_status_carries_no_cel_rule(file: str) -> None:
    assert list(rules(schema(file)["properties"]["status"])) == []


@pytest.mark.parametrize("file", sorted(CRDS))
def test_the_rules_are_counted(file: str) -> None:
    assert len(list(rules(schema(file)))) == RULES_PER_KIND[file]


def read_bound(node: dict[str, Any], rule: str) -> float:
    """The most bytes ``rule`` on ``node`` reads: ``self`` whole, or only the fields it names (``self.x``)."""
    own = rule.replace("oldSelf", "")
    if re.search(r"\bself\b(?!\.)", own) or re.search(r"\bself\.\w+\(", own):  # self whole, or a method of it
        return size_bound(node)
    fields = set(re.findall(r"\bself\.(\w+)", own))
    return sum(size_bound(node["properties"][name]) for name in fields)


@pytest.mark.parametrize("file", sorted(CRDS))
def test_every_rule_reads_a_value_of_bounded_size(file: str) -> None:
    """The API server estimates a rule's cost from the largest value it may read; an unbounded
    string or list makes that estimate the request's size, at every write."""
    for path, node, rule in rules(schema(file)):
        assert read_bound(node, rule) <= 4096, f"{file} {path}: {rule} reads up to {read_bound(node, rule)} bytes"


def test_the_status_keeps_the_bounds_of_the_rules_it_does_not_carry() -> None:
    effective = schema("asynctask.dev_asynctasks.yaml")["properties"]["status"]["properties"]["effective"]
    validator = jsonschema.Draft202012Validator(
        {"type": "object", "properties": effective["properties"]}, format_checker=None
    )
    assert effective["properties"]["concurrency"]["properties"]["key"]["pattern"] == KEY_RULE
    assert effective["properties"]["ttlStrategy"]["minProperties"] == 1
    ok = {"ttlStrategy": {"secondsAfterSuccess": 5}, "concurrency": {"key": "video-42"}}
    assert list(validator.iter_errors(ok)) == []
    bad = {"ttlStrategy": {}, "concurrency": {"key": "two words"}}
    assert sorted(".".join(map(str, e.absolute_path)) + ": " + e.validator for e in validator.iter_errors(bad)) == [
        "concurrency.key: pattern",
        "ttlStrategy: minProperties",
    ]


def test_condition_lists_are_bounded() -> None:
    for file in CRDS:
        conditions = schema(file)["properties"]["status"]["properties"]["conditions"]
        assert conditions["maxItems"] == 16, file
