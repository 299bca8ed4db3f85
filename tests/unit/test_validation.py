"""docs/design.md §2, §2.3: what only the operator can check — payload size, payload schema, the schema itself."""

from __future__ import annotations

from typing import Any

import pytest

from asynctask_operator.core.validation import Refusal, check_payload, check_payload_schema, payload_size
from tests.unit.builders import tasktype

SCHEMA = {
    "type": "object",
    "required": ["input"],
    "properties": {
        "input": {"type": "string", "pattern": "^s3://"},
        "items": {"type": "array", "items": {"type": "integer"}},
        "options": {"type": "object", "properties": {"preset": {"enum": ["720p", "1080p"]}}},
    },
}
TYPED = tasktype("video").payload_schema(SCHEMA).build()


@pytest.mark.parametrize(
    ("payload", "size"),
    [({"a": 1}, 7), ({"a": [1, 2]}, 11), (None, 4), ("é", 4), ({"b": " x "}, 11)],
    ids=["object", "no-spaces", "null", "utf-8-bytes", "spaces-in-values-count"],
)
def test_payload_size_is_compact_json_bytes(payload: Any, size: int) -> None:
    assert payload_size(payload) == size


@pytest.mark.parametrize(
    ("payload", "limit", "refused"),
    [
        ({"data": "x" * 10}, 21, False),  # {"data":"xxxxxxxxxx"} is exactly 21 bytes
        ({"data": "x" * 10}, 20, True),
        ({"data": "x" * 100_000}, 64 * 1024, True),
        ({"data": ["x"] * 3}, 24, False),  # pretty-printing would be larger; the compact form counts
    ],
    ids=["at-limit", "one-over", "large", "compact-counted"],
)
def test_payload_too_large(payload: Any, limit: int, refused: bool) -> None:
    if not refused:
        check_payload(tasktype("echo").build(), payload, limit)
        return
    with pytest.raises(Refusal) as caught:
        check_payload(tasktype("echo").build(), payload, limit)
    assert caught.value.reason == "PayloadTooLarge"
    assert f"over the limit of {limit}" in caught.value.message
    assert caught.value.pointer == "/payload"


@pytest.mark.parametrize(
    ("payload", "where", "pointer"),
    [
        ({"input": 42}, "spec.payload.input ", "/payload/input"),
        ({"input": "http://x"}, "spec.payload.input ", "/payload/input"),
        ({"input": "s3://a", "items": [1, "two", 3]}, "spec.payload.items[1] ", "/payload/items/1"),
        ({"input": "s3://a", "options": {"preset": "4k"}}, "spec.payload.options.preset ", "/payload/options/preset"),
        ({}, "spec.payload does not match", "/payload/input"),  # the pointer names the field to add
        ([1, 2], "spec.payload does not match", "/payload"),
    ],
    ids=["wrong-type", "pattern", "array-item", "nested-enum", "missing-required", "not-an-object"],
)
def test_invalid_payload_names_the_json_path(payload: Any, where: str, pointer: str) -> None:
    with pytest.raises(Refusal) as caught:
        check_payload(TYPED, payload, 64 * 1024)
    assert caught.value.reason == "InvalidPayload"
    assert where in caught.value.message
    assert "TaskType video payloadSchema" in caught.value.message
    assert caught.value.pointer == pointer


def test_a_matching_payload_passes() -> None:
    check_payload(TYPED, {"input": "s3://in/a.mp4", "items": [1], "options": {"preset": "720p"}}, 64 * 1024)


def test_size_is_checked_before_the_schema() -> None:
    with pytest.raises(Refusal, match="PayloadTooLarge"):
        check_payload(TYPED, {"input": 1, "pad": "x" * 100}, 50)


@pytest.mark.parametrize(
    "schema",
    [{"type": "strnig"}, {"properties": {"a": {"minimum": "zero"}}}, {"required": "input"}],
    ids=["bad-type", "nested-bad-keyword", "required-not-a-list"],
)
def test_invalid_payload_schema_is_invalid_tasktype(schema: dict[str, Any]) -> None:
    with pytest.raises(Refusal) as caught:
        check_payload_schema(schema)
    assert caught.value.reason == "InvalidTaskType"
    assert caught.value.message.startswith("spec.payloadSchema is not a valid JSON Schema")


def test_payload_against_an_invalid_schema_is_invalid_tasktype() -> None:
    broken = tasktype("video").payload_schema({"type": "strnig"}).build()
    with pytest.raises(Refusal, match="InvalidTaskType"):
        check_payload(broken, {"input": "s3://a"}, 64 * 1024)


@pytest.mark.parametrize("schema", [None, {}, SCHEMA], ids=["absent", "empty", "real"])
def test_valid_payload_schemas_pass(schema: dict[str, Any] | None) -> None:
    check_payload_schema(schema)
