"""The decision step for the task's callback: record each new event with the write that causes it.

A phase change that the task's ``spec.callback`` subscribes to becomes a record in
``status.callback`` in the same status write; how a delivery went is folded in; the next
delivery is asked for (:class:`~asynctask_operator.core.callbacks.CallbackSend`) when due.
"""

from __future__ import annotations

from asynctask_operator.core import callbacks
from asynctask_operator.core import conditions as cond
from asynctask_operator.core.draft import Draft
from asynctask_operator.core.models import CallbackStatus, EffectiveSpec
from asynctask_operator.core.timestamps import parse_stamp


def record_callback(draft: Draft) -> None:
    """Record a new callback event, fold in how a delivery went, and ask for the next delivery.

    The event is recorded in the status write of the phase change that caused it, so that
    neither can happen without the other. A finished task is not deleted by its TTL while
    its callback is still being delivered."""
    obs = draft.obs
    effective = draft.fields.get("effective")
    spec = EffectiveSpec.model_validate(effective).callback if effective else None
    raw = draft.fields.get("callback")
    record = CallbackStatus.model_validate(raw) if raw else None
    before = obs.task.status
    moved = (draft.phase, draft.attempt) != (before.phase or "Pending", max(before.attempt or 0, 0))
    if spec is not None and moved:
        event = callbacks.new_event(spec, obs.task.metadata.uid, draft.phase, draft.attempt, draft.now, record)
        if event is not None:
            record = event
            draft.condition(cond.CALLBACK_DELIVERED, False, "Pending", f"{event.event} event not delivered yet")
    outcome = obs.callback_outcome
    if (
        record is not None
        and outcome is not None
        and record.state in callbacks.OPEN_STATES
        and outcome.id == record.id
        and outcome.delivery == record.attempts + 1
    ):
        record = callbacks.after_delivery(record, outcome, spec, draft.config)
        if record.state == "Delivered":
            draft.condition(cond.CALLBACK_DELIVERED, True, "Delivered", f"{record.event} event delivered")
        elif record.state in ("Failed", "Refused"):
            draft.condition(cond.CALLBACK_DELIVERED, False, "Callback" + record.state, record.last_error or "")
    if record is not None and record.model_dump() != raw:
        draft.set(callback=record.model_dump())
    if record is None or record.state not in callbacks.OPEN_STATES:
        return
    draft.delete_task = False  # the TTL waits for the delivery to end (at most the retry schedule)
    due = parse_stamp(record.next_attempt_time)
    if due is not None and due > obs.now:
        draft.due.append(due)
        return
    if spec is None:  # a status edited by hand: nothing says where to send it
        return
    timeout = float(spec.timeout_seconds or draft.config.callback_timeout_seconds)
    draft.send_callback = callbacks.CallbackSend(
        namespace=obs.task.metadata.namespace,
        id=record.id,
        delivery=record.attempts + 1,
        url=spec.url,
        event=callbacks.cloud_event(obs.task, draft.status(), record),
        secret_ref=spec.secret_ref,
        headers_secret_ref=spec.headers_secret_ref,
        timeout_seconds=timeout,
        max_attempts=(spec.max_attempts or draft.config.callback_max_attempts),
    )
