"""The admission ledger counts a running task in the queue the reconciler says it is in.

The queue of a task is the one its admission resolved (``status.effective.queue``); a status
without ``effective`` (written by hand, or by an operator older than that field) falls back to
what is in force now: ``spec.queue``, else its TaskType's ``defaults.queue``, else the
operator's default. The ledger once skipped the TaskType: such a task ran in its type's queue
but was counted in the default one, and its own queue admitted one task too many.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from asynctask_operator.controllers.admission import Admissions
from asynctask_operator.controllers.cache import Cache
from asynctask_operator.controllers.intake import TaskIntake
from asynctask_operator.core.config import CoreConfig
from asynctask_operator.core.effective import effective_queue, effective_spec
from asynctask_operator.core.models import EffectiveSpec
from tests.unit.builders import NAMESPACE, TaskBuilder, task, tasktype

ECHO_IN_GPU = tasktype("echo").defaults(queue="gpu").build()


def wire(obj: BaseModel) -> dict[str, Any]:
    return obj.model_dump(by_alias=True, exclude_none=True, mode="json")


def admitted_to(queue: str) -> dict[str, Any]:
    """A ``status.effective`` as an admission to ``queue`` wrote it."""
    resolved = effective_spec(task().build(), None, CoreConfig())
    return EffectiveSpec.model_validate({**resolved.model_dump(), "queue": queue}).model_dump()


def ledger(*tasks: TaskBuilder, gpu_concurrency: int = 1) -> tuple[Admissions, TaskIntake]:
    """An empty cache that knows ECHO_IN_GPU and a TaskQueue gpu, then ``tasks`` taken in as the watch would."""
    cache = Cache()
    cache.put_tasktype(wire(ECHO_IN_GPU))
    admissions = Admissions(None, lambda key: None, lambda key, at: None)
    queue = {"metadata": {"name": "gpu", "namespace": NAMESPACE}, "spec": {"concurrency": gpu_concurrency}}
    admissions.on_queue("ADDED", queue)
    intake = TaskIntake(cache, admissions, lambda key: None, lambda key: None, lambda: "default")
    for builder in tasks:
        intake.take(wire(builder.build()))
    return admissions, intake


def running(admissions: Admissions) -> dict[str, int]:
    """How many tasks the ledger counts as running in each queue a test may use."""
    return {queue: admissions.ledger.counts((NAMESPACE, queue), 0).running for queue in ("gpu", "cpu", "default")}


@pytest.mark.parametrize(
    ("builder", "expected"),
    [
        (task("t").status(phase="Running", attempt=1), "gpu"),  # the TaskType's default
        (task("t").queue("cpu").status(phase="Running", attempt=1), "cpu"),  # the task's own
        (task("t").type("other").status(phase="Running", attempt=1), "default"),  # no TaskType: the operator's
        (task("t").status(phase="Running", attempt=1, effective=admitted_to("cpu")), "cpu"),  # what admission chose
    ],
    ids=["type-default", "spec-queue", "operator-default", "admitted"],
)
def test_a_running_task_is_counted_in_its_queue(builder: TaskBuilder, expected: str) -> None:
    admissions, _ = ledger(builder)
    assert running(admissions) == {queue: int(queue == expected) for queue in ("gpu", "cpu", "default")}
    obj = builder.build()  # and the reconciler, which asks that queue for a slot, says the same
    assert effective_queue(obj, ECHO_IN_GPU if obj.spec.type == "echo" else None, CoreConfig()) == expected


def test_a_running_task_without_effective_holds_its_types_queue_against_the_next() -> None:
    """gpu admits one at a time: while ``t`` runs there, ``u`` waits (it was admitted: a second task running)."""
    admissions, _ = ledger(task("t").status(phase="Running", attempt=1))
    assert not admissions.request((NAMESPACE, "u"), (NAMESPACE, "gpu"), 0, "2025-03-01T12:00:00Z")


def test_a_finished_or_deleted_task_frees_its_slot() -> None:
    finished, intake = ledger(task("t").status(phase="Running", attempt=1))
    intake.take(wire(task("t").status(phase="Succeeded", attempt=1).build()))
    deleted, intake = ledger(task("t").status(phase="Running", attempt=1))
    intake.gone((NAMESPACE, "t"))
    assert running(finished)["gpu"] == running(deleted)["gpu"] == 0
