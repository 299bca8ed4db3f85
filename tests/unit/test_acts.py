"""core/acts.py: each act's patch, applied as the API server merges it, does what the lifecycle needs."""

from __future__ import annotations

from typing import Any

from asynctask_operator.core import acts
from asynctask_operator.core.lifecycle import decide
from asynctask_operator.core.models import AsyncTask
from asynctask_operator.testing.semantics import merge_patch
from tests.unit.builders import at, observe, task
from tests.unit.story import CONFIG, ECHO


def patched(obj: AsyncTask, patch: dict[str, Any]) -> AsyncTask:
    return AsyncTask.model_validate(merge_patch(obj.dump(), patch))


def test_a_retry_starts_a_task_cancelled_by_spec_cancel_again() -> None:
    stopped = task("t").cancel().status(phase="Cancelled", reason="Cancelled", completionTime="2025-03-01T12:00:00Z")
    obj = stopped.build()
    # Without the retry's patch, the task stays as it is.
    assert decide(observe(obj, now=at(10), tasktype=ECHO), CONFIG).status is None
    retried = patched(obj, acts.retry_task("1"))
    assert not retried.spec.cancel
    decision = decide(observe(retried, now=at(10), tasktype=ECHO), CONFIG)
    assert decision.status is not None
    assert (decision.status.phase, decision.status.reason) == ("Running", "JobCreated")


def test_a_cancel_is_seen_by_the_lifecycle() -> None:
    obj = patched(task("t").build(), acts.cancel_task())
    decision = decide(observe(obj, now=at(10), tasktype=ECHO), CONFIG)
    assert decision.status is not None and decision.status.phase == "Cancelled"


def test_the_queue_and_schedule_acts() -> None:
    assert acts.pause_queue(True) == {"spec": {"paused": True}}
    assert acts.suspend_schedule(False) == {"spec": {"suspend": False}}
    assert acts.run_schedule_now("x") == {"metadata": {"annotations": {"asynctask.dev/run-now": "x"}}}
