"""docs/design.md §2.1: a TaskType's status says Ready when its payload schema is usable; nothing is written when unchanged."""

from __future__ import annotations

import pytest

from asynctask_operator.core.models import TaskType
from asynctask_operator.core.tasktypes import tasktype_status
from tests.unit.builders import at, tasktype

VALID = tasktype("echo").payload_schema({"type": "object"}).generation(3).build()
INVALID = tasktype("echo").payload_schema({"type": "strnig"}).generation(3).build()


@pytest.mark.parametrize(
    ("obj", "status", "reason", "says"),
    [
        (VALID, "True", "Valid", "valid"),
        (tasktype("echo").generation(3).build(), "True", "Valid", "valid"),
        (INVALID, "False", "InvalidTaskType", "spec.payloadSchema is not a valid JSON Schema"),
    ],
    ids=["valid-schema", "no-schema", "invalid-schema"],
)
def test_ready_condition(obj: TaskType, status: str, reason: str, says: str) -> None:
    new = tasktype_status(obj, at(5))
    assert new is not None
    assert new.observed_generation == 3
    [ready] = new.conditions or []
    assert (ready.type, ready.status, ready.reason) == ("Ready", status, reason)
    assert says in ready.message
    assert ready.last_transition_time == "2025-03-01T12:00:05Z"
    assert ready.observed_generation == 3


def test_unchanged_status_is_not_written_again() -> None:
    first = tasktype_status(VALID, at(5))
    again = tasktype("echo").payload_schema({"type": "object"}).generation(3).status(first).build()
    assert tasktype_status(again, at(60)) is None


def test_a_fix_flips_ready_and_moves_the_transition_time() -> None:
    broken = tasktype_status(INVALID, at(5))
    fixed = tasktype("echo").payload_schema({"type": "object"}).generation(4).status(broken).build()
    new = tasktype_status(fixed, at(60))
    assert new is not None
    [ready] = new.conditions or []
    assert (ready.status, ready.last_transition_time, new.observed_generation) == ("True", "2025-03-01T12:01:00Z", 4)


def test_a_new_generation_with_the_same_verdict_keeps_the_transition_time() -> None:
    first = tasktype_status(VALID, at(5))
    bumped = tasktype("echo").payload_schema({"type": "object"}).generation(4).status(first).build()
    new = tasktype_status(bumped, at(60))
    assert new is not None
    [ready] = new.conditions or []
    assert (ready.last_transition_time, new.observed_generation) == ("2025-03-01T12:00:05Z", 4)
