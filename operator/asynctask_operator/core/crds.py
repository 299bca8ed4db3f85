"""CustomResourceDefinitions generated from the pydantic models.

``asynctask-operator crds`` prints them; ``crds/*.yaml`` is their checked-in copy and a
test fails when it drifts (regenerate with ``asynctask-operator crds --write crds/``).

Pydantic emits JSON Schema with ``$ref``/``anyOf``; the API server wants a structural
OpenAPI v3 schema: every node typed, no references, optional fields simply not
``required``. :func:`structural` does that translation.
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import BaseModel

from asynctask_operator.core.models import (
    GROUP,
    PLAIN,
    VERSION,
    AsyncTaskSpec,
    AsyncTaskStatus,
    ScheduledTaskSpec,
    ScheduledTaskStatus,
    TaskQueueSpec,
    TaskQueueStatus,
    TaskTypeSpec,
    TaskTypeStatus,
)

_KEEP = {
    "type",
    "description",
    "default",
    "enum",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "format",
    "required",
    "nullable",
}


def structural(model: type[BaseModel]) -> dict[str, Any]:
    """The structural OpenAPI schema of a model (validation mode, camelCase names)."""
    schema = model.model_json_schema(by_alias=True, mode="validation")
    defs = schema.pop("$defs", {})
    return _convert(schema, defs)


def _convert(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    if "x-asynctask-schema" in node:  # a hand-written schema for a field (e.g. jobTemplate)
        return copy.deepcopy(node["x-asynctask-schema"])
    if "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[-1]]
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return _convert(merged, defs)
    if "anyOf" in node:  # Optional[X] -> X; the field is simply not required
        options = [o for o in node["anyOf"] if o.get("type") != "null"]
        rest = {k: v for k, v in node.items() if k not in ("anyOf", "default") or (k == "default" and v is not None)}
        if len(options) == 1:
            return _convert({**options[0], **rest}, defs)
        raise ValueError(f"unsupported union in schema: {node}")

    out: dict[str, Any] = {k: v for k, v in node.items() if k in _KEEP}
    out.update({k: v for k, v in node.items() if k.startswith("x-kubernetes-")})
    if "const" in node:
        out["enum"] = [node["const"]]
    if out.get("default", "unset") is None:
        del out["default"]

    kind = node.get("type")
    if kind == "object" or "properties" in node:
        out["type"] = "object"
        props = node.get("properties", {})
        if props:
            out["properties"] = {name: _convert(sub, defs) for name, sub in props.items()}
        extra = node.get("additionalProperties")
        if isinstance(extra, dict) and extra:
            out["additionalProperties"] = _convert(extra, defs)
        elif not props and "x-kubernetes-preserve-unknown-fields" not in out:
            out["x-kubernetes-preserve-unknown-fields"] = True
        if not out.get("required"):
            out.pop("required", None)
    elif kind == "array":
        out["items"] = _convert(node.get("items", {}), defs)
    elif kind is None and "enum" not in out and "x-kubernetes-preserve-unknown-fields" not in out:
        out["x-kubernetes-preserve-unknown-fields"] = True  # Any
    return out


def _rules(node: Any, *, status: bool) -> Any:
    """Each CEL rule's plain equivalent (``cel(plain=...)``) dropped from it; in a status, each rule
    replaced by that equivalent, or by nothing.

    Only the operator writes a status, from a spec the API server has checked already, and every
    status write is validated against the whole schema: a rule there is cost with no refusal a user
    would ever see. Its plain OpenAPI equivalent keeps the same bound at no CEL cost."""
    if isinstance(node, list):
        return [_rules(item, status=status) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key != "x-kubernetes-validations":
            out[key] = _rules(value, status=status)
        elif not status:
            out[key] = [{k: v for k, v in rule.items() if k != PLAIN} for rule in value]
    if status:
        for rule in node.get("x-kubernetes-validations") or ():
            out.update(rule.get(PLAIN) or {})
    return out


def _crd(
    *,
    kind: str,
    plural: str,
    singular: str,
    short_names: list[str],
    spec_model: type[BaseModel],
    status_model: type[BaseModel],
    columns: list[dict[str, Any]],
    status_default: dict[str, Any] | None = None,
    selectable: list[str] = (),  # type: ignore[assignment]
    categories: list[str] = ("asynctask-all",),  # type: ignore[assignment]
) -> dict[str, Any]:
    status = _rules(structural(status_model), status=True)
    if status_default is not None:
        status["default"] = status_default
    version: dict[str, Any] = {
        "name": VERSION,
        "served": True,
        "storage": True,
        "subresources": {"status": {}},
        "additionalPrinterColumns": columns,
        "schema": {
            "openAPIV3Schema": {
                "type": "object",
                "description": f"{kind} of asynctask-operator: see docs/reference.md",
                "required": ["spec"],
                "properties": {
                    "apiVersion": {"type": "string"},
                    "kind": {"type": "string"},
                    "metadata": {"type": "object"},
                    "spec": _rules(structural(spec_model), status=False),
                    "status": status,
                },
            }
        },
    }
    if selectable:
        version["selectableFields"] = [{"jsonPath": path} for path in selectable]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": singular,
                "shortNames": short_names,
                "categories": list(categories),
            },
            "versions": [version],
        },
    }


def _col(name: str, path: str, type_: str = "string", priority: int = 0, **more: str) -> dict[str, Any]:
    col: dict[str, Any] = {"name": name, "type": type_, "jsonPath": path, **more}
    if priority:
        col["priority"] = priority
    return col


def asynctask_crd() -> dict[str, Any]:
    return _crd(
        kind="AsyncTask",
        plural="asynctasks",
        singular="asynctask",
        short_names=["at", "atask"],
        spec_model=AsyncTaskSpec,
        status_model=AsyncTaskStatus,
        # A task the operator has not written to yet reads as Pending (applied when the
        # API server reads the object), so "Pending" costs no API write.
        status_default={"phase": "Pending"},
        columns=[
            _col("Type", ".spec.type"),
            _col("Queue", ".status.effective.queue"),
            _col("Phase", ".status.phase"),
            _col("Progress", ".status.progress.percent", "integer"),
            _col("Attempt", ".status.attempt", "integer"),
            _col("Age", ".metadata.creationTimestamp", "date"),
            _col("Reason", ".status.reason", priority=1),
            _col("Message", ".status.message", priority=1),
        ],
        selectable=[".spec.type", ".spec.queue", ".status.phase"],
    )


def tasktype_crd() -> dict[str, Any]:
    return _crd(
        kind="TaskType",
        plural="tasktypes",
        singular="tasktype",
        short_names=["tt"],
        spec_model=TaskTypeSpec,
        status_model=TaskTypeStatus,
        columns=[
            _col("Image", ".spec.jobTemplate.spec.template.spec.containers[0].image"),
            _col("Queue", ".spec.defaults.queue"),
            _col("Ready", '.status.conditions[?(@.type=="Ready")].status'),
            _col("Age", ".metadata.creationTimestamp", "date"),
        ],
    )


def taskqueue_crd() -> dict[str, Any]:
    return _crd(
        kind="TaskQueue",
        plural="taskqueues",
        singular="taskqueue",
        short_names=["tq"],
        spec_model=TaskQueueSpec,
        status_model=TaskQueueStatus,
        columns=[
            _col("Concurrency", ".spec.concurrency", "integer"),
            _col("Running", ".status.running", "integer"),
            _col("Pending", ".status.pending", "integer"),
            _col("Paused", ".spec.paused", "boolean"),
            _col("Age", ".metadata.creationTimestamp", "date"),
            _col("Oldest Pending", ".status.oldestPendingSeconds", "integer", priority=1),
        ],
    )


def scheduledtask_crd() -> dict[str, Any]:
    crd = _crd(
        kind="ScheduledTask",
        plural="scheduledtasks",
        singular="scheduledtask",
        short_names=["st"],
        spec_model=ScheduledTaskSpec,
        status_model=ScheduledTaskStatus,
        columns=[
            _col("Schedule", ".spec.schedule"),
            _col("TimeZone", ".spec.timeZone"),
            _col("Suspend", ".spec.suspend", "boolean"),
            _col("Active", ".status.active"),
            _col("Last Schedule", ".status.lastScheduleTime", "date"),
            _col("Next Schedule", ".status.nextScheduleTime", "string"),
            _col("Age", ".metadata.creationTimestamp", "date"),
            _col("Ready", '.status.conditions[?(@.type=="Ready")].status', priority=1),
            _col("Missed", ".status.missedRuns", "integer", priority=1),
        ],
    )
    [version] = crd["spec"]["versions"]
    spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    # The template is the AsyncTask spec, but not its transition rules: those guard one task
    # against change, while a ScheduledTask's template may change freely (the next run uses it).
    spec["properties"]["taskTemplate"] = without_transition_rules(spec["properties"]["taskTemplate"])
    return crd


def without_transition_rules(node: Any) -> Any:
    """A copy of a schema without the CEL rules that compare with ``oldSelf``."""
    if isinstance(node, list):
        return [without_transition_rules(n) for n in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "x-kubernetes-validations":
            kept = [rule for rule in value if "oldSelf" not in rule["rule"]]
            if kept:
                out[key] = kept
        else:
            out[key] = without_transition_rules(value)
    return out


def all_crds() -> dict[str, dict[str, Any]]:
    """File name -> CRD object, in the order they should be applied."""
    return {
        "asynctask.dev_tasktypes.yaml": tasktype_crd(),
        "asynctask.dev_taskqueues.yaml": taskqueue_crd(),
        "asynctask.dev_asynctasks.yaml": asynctask_crd(),
        "asynctask.dev_scheduledtasks.yaml": scheduledtask_crd(),
    }
