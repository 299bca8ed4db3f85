"""metav1.Conditions: lastTransitionTime moves only when the status does."""

from __future__ import annotations

import pytest

from asynctask_operator.core.conditions import get_condition, set_condition
from asynctask_operator.core.models import Condition

T0, T1 = "2025-03-01T12:00:00Z", "2025-03-01T12:05:00Z"
RUNNING = Condition(type="Running", status="True", reason="JobCreated", last_transition_time=T0)
ADMITTED = Condition(type="Admitted", status="True", reason="Admitted", last_transition_time=T0)


@pytest.mark.parametrize(
    ("status", "reason", "since"),
    [(True, "Progressing", T0), (False, "Completed", T1)],
    ids=["same-status-keeps-time", "flip-moves-time"],
)
def test_set_existing_condition(status: bool, reason: str, since: str) -> None:
    out = set_condition([ADMITTED, RUNNING], "Running", status, reason, "msg", T1, 2)
    assert out[0] == ADMITTED
    assert out[1] == Condition(
        type="Running",
        status="True" if status else "False",
        reason=reason,
        message="msg",
        last_transition_time=since,
        observed_generation=2,
    )


def test_a_new_condition_is_appended_with_now() -> None:
    out = set_condition([ADMITTED], "Failed", False, "Completed", "", T1, None)
    assert [c.type for c in out] == ["Admitted", "Failed"]
    assert (out[1].status, out[1].last_transition_time) == ("False", T1)


def test_get_condition() -> None:
    assert get_condition([ADMITTED, RUNNING], "Running") == RUNNING
    assert get_condition(None, "Running") is None
    assert get_condition([ADMITTED], "Running") is None
