"""Checks only the operator can make: a TaskType's payload schema, and a payload against it."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import jsonschema.exceptions
import jsonschema.validators
import referencing.exceptions

from asynctask_operator.core.models import TaskType


class Refusal(Exception):
    """A task or TaskType that cannot run: ``reason`` is the status reason, ``message`` says why and what to
    fix, ``pointer`` the JSON pointer (RFC 6901) of the task's field at fault, within its ``spec``, when one is."""

    def __init__(self, reason: str, message: str, pointer: str | None = None) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message
        self.pointer = pointer


def json_pointer(*parts: str | int) -> str:
    """RFC 6901: ``json_pointer("payload", "a/b", 0)`` is ``/payload/a~1b/0``.

    >>> json_pointer("payload", "a/b", "c~d", 0)
    '/payload/a~1b/c~0d/0'
    """
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def payload_size(payload: Any) -> int:
    """Bytes of the compact JSON the container receives in ASYNCTASK_PAYLOAD."""
    return len(encode_payload(payload).encode())


def encode_payload(payload: Any) -> str:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, sort_keys=True)


def check_payload_schema(schema: dict[str, Any] | None) -> None:
    """Raise :class:`Refusal` (InvalidTaskType) when ``spec.payloadSchema`` is not a valid JSON Schema."""
    if schema is None:
        return
    cls = _validator_class(schema)
    try:
        cls.check_schema(schema)
    except jsonschema.exceptions.SchemaError as exc:
        path = "/".join(str(p) for p in exc.absolute_path) or "(root)"
        raise Refusal(
            "InvalidTaskType", f"spec.payloadSchema is not a valid JSON Schema at {path}: {exc.message}"
        ) from None


def check_payload(tasktype: TaskType, payload: Any, limit_bytes: int) -> None:
    """Raise :class:`Refusal` when the payload is too large or breaks the type's schema.

    The one check of a payload: the operator makes it before the first attempt, the gateway and the
    kubectl plugin at submission (so a bad payload is refused at once, naming its field)."""
    size = payload_size(payload)
    if size > limit_bytes:
        raise Refusal(
            "PayloadTooLarge",
            f"spec.payload is {size} bytes as JSON, over the limit of {limit_bytes}; "
            "pass a reference (for example an object-store URL) instead of the data",
            json_pointer("payload"),
        )
    schema = tasktype.spec.payload_schema
    if schema is None:
        return
    check_payload_schema(schema)
    try:
        error = jsonschema.exceptions.best_match(_validator_class(schema)(schema).iter_errors(payload))
    except referencing.exceptions.Unresolvable as exc:  # remote references are never fetched
        raise Refusal(
            "InvalidTaskType",
            f"spec.payloadSchema has a $ref that does not resolve within the schema: {_clip(str(exc))}",
        ) from None
    except RecursionError:
        raise Refusal("InvalidTaskType", "spec.payloadSchema has a $ref that refers back to itself") from None
    if error is not None:
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
        raise Refusal(
            "InvalidPayload",
            f"spec.payload{where} does not match TaskType {tasktype.metadata.name} payloadSchema: {error.message}",
            json_pointer("payload", *error.absolute_path, *_missing(error)),
        )


def _missing(error: jsonschema.exceptions.ValidationError) -> list[str]:
    """For a ``required`` error (reported at the object that lacks the property): the first property missing,
    so the pointer names the field to add, not its parent."""
    if error.validator != "required" or not isinstance(error.instance, dict):
        return []
    required = error.validator_value if isinstance(error.validator_value, list) else []
    absent = [name for name in required if isinstance(name, str) and name not in error.instance]
    return absent[:1]


def check_job_template(template: dict[str, Any]) -> None:
    """Raise :class:`Refusal` (InvalidTaskType) when ``spec.jobTemplate`` has a part the Job is built from
    (labels, annotations, containers and their env) of the wrong type.

    The CRD schema keeps most of a JobTemplateSpec as written (the API server checks it for real
    when the Job is created); the parts the operator edits must at least have the right shape."""

    def shape(value: Any, kind: type, where: str, optional: bool = True) -> Any:
        if value is None and optional:
            return kind()
        if not isinstance(value, kind):
            what = "an object" if kind is dict else "a list" if kind is list else "a string"
            found = "null" if value is None else type(value).__name__
            raise Refusal("InvalidTaskType", f"spec.jobTemplate.{where} must be {what}, not {found}")
        return value

    meta = shape(template.get("metadata"), dict, "metadata")
    shape(meta.get("labels"), dict, "metadata.labels")
    shape(meta.get("annotations"), dict, "metadata.annotations")
    pod = shape(shape(template.get("spec"), dict, "spec").get("template"), dict, "spec.template")
    shape(
        shape(pod.get("metadata"), dict, "spec.template.metadata").get("labels"), dict, "spec.template.metadata.labels"
    )
    pod_spec = shape(pod.get("spec"), dict, "spec.template.spec")
    for field in ("containers", "initContainers"):
        for i, container in enumerate(shape(pod_spec.get(field), list, f"spec.template.spec.{field}")):
            where = f"spec.template.spec.{field}[{i}]"
            for j, env in enumerate(shape(shape(container, dict, where, False).get("env"), list, f"{where}.env")):
                shape(shape(env, dict, f"{where}.env[{j}]", False).get("name"), str, f"{where}.env[{j}].name", False)


def _validator_class(schema: dict[str, Any]) -> type[jsonschema.protocols.Validator]:
    """The validator of the draft ``$schema`` names (2020-12 when it names none)."""
    if not isinstance(schema.get("$schema", ""), str):
        raise Refusal("InvalidTaskType", "spec.payloadSchema.$schema must be a string: the URI of a JSON Schema draft")
    return jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)


def _clip(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
