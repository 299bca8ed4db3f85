"""TaskQueue: admission control (concurrency, start rate, pause) for the tasks that name it."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from asynctask_operator.core.models.base import API_VERSION, Condition, Model, ObjectMeta, k8s


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


class TaskQueueStatus(Model):
    pending: int | None = None
    running: int | None = None
    oldest_pending_seconds: int | None = None
    observed_generation: int | None = None
    conditions: list[Condition] | None = Field(None, json_schema_extra=k8s(list_type="map", list_map_keys=["type"]))


class TaskQueue(Model):
    api_version: str = API_VERSION
    kind: Literal["TaskQueue"] = "TaskQueue"
    metadata: ObjectMeta
    spec: TaskQueueSpec
    status: TaskQueueStatus | None = None
