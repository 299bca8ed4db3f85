"""TaskQueue: admission control (concurrency, start rate, pause) for the tasks that name it."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from asynctask_operator.core.models.base import API_VERSION, CONDITIONS_MAX, Condition, Model, ObjectMeta, k8s
from asynctask_operator.core.models.concurrency import BUSIEST_SHOWN, BusyKey, Fairness


class TaskQueueSpec(Model):
    """Admission control for the tasks that name this queue."""

    concurrency: int = Field(
        ge=0, le=100000, description="Most tasks Running at once; 0 holds every task (admits nothing)."
    )
    max_starts_per_minute: int | None = Field(
        None,
        ge=1,
        le=60000,
        description="Optional rate limit: admissions are spread evenly, one every 60/maxStartsPerMinute seconds.",
    )
    paused: bool | None = Field(None, description="true: admit nothing and keep the backlog.")
    fairness: Fairness | None = Field(
        None,
        description="Admit round-robin across groups (by concurrency key, or by a label such as a tenant's) "
        "within each priority, so one group's backlog does not hold the others back.",
    )


class TaskQueueStatus(Model):
    pending: int | None = None
    running: int | None = None
    oldest_pending_seconds: int | None = None
    waiting_for_key: int | None = Field(None, description="Of the pending tasks, those whose concurrency key is busy.")
    busiest_keys: list[BusyKey] | None = Field(
        None,
        max_length=BUSIEST_SHOWN,
        description=f"The {BUSIEST_SHOWN} keys of this queue's tasks with the most tasks waiting for them.",
    )
    observed_generation: int | None = None
    conditions: list[Condition] | None = Field(
        None, max_length=CONDITIONS_MAX, json_schema_extra=k8s(list_type="map", list_map_keys=["type"])
    )


class TaskQueue(Model):
    api_version: str = API_VERSION
    kind: Literal["TaskQueue"] = "TaskQueue"
    metadata: ObjectMeta
    spec: TaskQueueSpec
    status: TaskQueueStatus | None = None
