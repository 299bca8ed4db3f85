"""Checks only the operator can make: a TaskType's payload schema, and a payload against it."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import jsonschema.exceptions
import jsonschema.validators

from asynctask_operator.core.models import TaskType


class Refusal(Exception):
    """A task or TaskType that cannot run: ``reason`` is the status reason, ``message`` says why and what to fix."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


def payload_size(payload: Any) -> int:
    """Bytes of the compact JSON the container receives in ASYNCTASK_PAYLOAD."""
    return len(encode_payload(payload).encode())


def encode_payload(payload: Any) -> str:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, sort_keys=True)


def check_payload_schema(schema: dict[str, Any] | None) -> None:
    """Raise :class:`Refusal` (InvalidTaskType) when ``spec.payloadSchema`` is not a valid JSON Schema."""
    if schema is None:
        return
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    try:
        cls.check_schema(schema)
    except jsonschema.exceptions.SchemaError as exc:
        path = "/".join(str(p) for p in exc.absolute_path) or "(root)"
        raise Refusal(
            "InvalidTaskType", f"spec.payloadSchema is not a valid JSON Schema at {path}: {exc.message}"
        ) from None


def check_payload(tasktype: TaskType, payload: Any, limit_bytes: int) -> None:
    """Raise :class:`Refusal` when the payload is too large or breaks the type's schema."""
    size = payload_size(payload)
    if size > limit_bytes:
        raise Refusal(
            "PayloadTooLarge",
            f"spec.payload is {size} bytes as JSON, over the limit of {limit_bytes}; "
            "pass a reference (for example an object-store URL) instead of the data",
        )
    schema = tasktype.spec.payload_schema
    if schema is None:
        return
    check_payload_schema(schema)
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    error = jsonschema.exceptions.best_match(cls(schema).iter_errors(payload))
    if error is not None:
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
        raise Refusal(
            "InvalidPayload",
            f"spec.payload{where} does not match TaskType {tasktype.metadata.name} payloadSchema: {error.message}",
        )
