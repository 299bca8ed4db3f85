"""status_patch: a JSON merge patch (RFC 7396) that really turns the old status into the new;
status_write: that patch, made on the copy the reconciler read."""

from __future__ import annotations

from typing import Any

import pytest

from asynctask_operator.core.patches import status_patch, status_write
from asynctask_operator.testing.semantics import merge_patch as apply_merge_patch

CASES: list[tuple[dict[str, Any], dict[str, Any], dict[str, Any]]] = [
    # a Delivered callback drops the error and the due time of the failed delivery before it
    (
        {
            "phase": "Succeeded",
            "callback": {"id": "a", "state": "Delivering", "lastError": "HTTP 503", "nextAttemptTime": "t"},
        },
        {"phase": "Succeeded", "callback": {"id": "a", "state": "Delivered", "lastStatusCode": 200}},
        {"callback": {"state": "Delivered", "lastStatusCode": 200, "lastError": None, "nextAttemptTime": None}},
    ),
    # a field gone at the top level
    ({"phase": "Retrying", "nextRetryTime": "t"}, {"phase": "Running"}, {"phase": "Running", "nextRetryTime": None}),
    # nested twice
    ({"a": {"b": {"c": 1, "d": 2}}}, {"a": {"b": {"c": 1}}}, {"a": {"b": {"d": None}}}),
    # lists are replaced whole
    ({"attempts": [{"n": 1}]}, {"attempts": [{"n": 1}, {"n": 2}]}, {"attempts": [{"n": 1}, {"n": 2}]}),
    # an object becoming a scalar, and back
    ({"result": {"x": 1}}, {"result": 5}, {"result": 5}),
    ({"result": 5}, {"result": {"x": 1}}, {"result": {"x": 1}}),
    # nothing changed
    ({"progress": {"percent": 5}}, {"progress": {"percent": 5}}, {}),
]


@pytest.mark.parametrize(("old", "new", "expected"), CASES)
def test_the_patch_is_minimal_and_applies_to_the_new_status(
    old: dict[str, Any], new: dict[str, Any], expected: dict[str, Any]
) -> None:
    patch = status_patch(old, new)
    assert patch == expected
    assert apply_merge_patch(old, patch) == new


def test_a_status_write_is_made_on_the_copy_read_and_unconditional_without_one() -> None:
    old, new = {"phase": "Pending"}, {"phase": "Running", "attempt": 1}
    assert status_write(old, new, "42") == {
        "metadata": {"resourceVersion": "42"},
        "status": {"phase": "Running", "attempt": 1},
    }
    for unread in (None, ""):
        assert status_write(old, new, unread) == {"status": {"phase": "Running", "attempt": 1}}
