"""metav1.Condition lists, updated without churning lastTransitionTime."""

from __future__ import annotations

from collections.abc import Sequence

from asynctask_operator.core.models import Condition

ADMITTED = "Admitted"
RUNNING = "Running"
SUCCEEDED = "Succeeded"
FAILED = "Failed"
CALLBACK_DELIVERED = "CallbackDelivered"
KEY_ACQUIRED = "KeyAcquired"


def set_condition(
    conditions: Sequence[Condition],
    type_: str,
    status: bool,
    reason: str,
    message: str,
    now: str,
    generation: int | None,
) -> list[Condition]:
    """Return ``conditions`` with ``type_`` set; the transition time moves only when the status does."""
    wanted = "True" if status else "False"
    previous = get_condition(conditions, type_)
    since = previous.last_transition_time if previous is not None and previous.status == wanted else now
    updated = Condition(
        type=type_,
        status=wanted,
        reason=reason,
        message=message,
        last_transition_time=since,
        observed_generation=generation,
    )
    if previous is None:
        return [*conditions, updated]
    return [updated if c.type == type_ else c for c in conditions]


def get_condition(conditions: Sequence[Condition] | None, type_: str) -> Condition | None:
    return next((c for c in conditions or () if c.type == type_), None)
