"""Builders for ScheduledTasks and their runs, and a small world that applies decisions.

    scheduled("nightly").schedule("0 2 * * *").policy("Forbid").build()   -> ScheduledTask
    run("nightly-29384720", "Succeeded", finished=utc(2026, 1, 5, 2, 3))  -> AsyncTask
    w = World(scheduled("nightly").build()); w.step(utc(2026, 1, 5, 2))   -> ScheduleDecision

Every ScheduledTask is created at ``CREATED`` (2026-01-05 00:00 UTC, a Monday); tests
pick ``now`` with :func:`utc`, so nothing depends on the wall clock.
"""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

from asynctask_operator.core.cron import unix_minute
from asynctask_operator.core.models import AsyncTask, ScheduledTask, ScheduledTaskStatus
from asynctask_operator.core.naming import scheduled_run_name
from asynctask_operator.core.schedule import ScheduleDecision, ScheduleObserved, decide_schedule
from tests.unit.builders import object_meta, stamp, task

CREATED = dt.datetime(2026, 1, 5, 0, 0, tzinfo=dt.UTC)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, second, tzinfo=dt.UTC)


def minutes(n: float) -> dt.timedelta:
    return dt.timedelta(minutes=n)


class ScheduledTaskBuilder:
    def __init__(self, name: str) -> None:
        self._meta: dict[str, Any] = object_meta(name, CREATED)
        self._spec: dict[str, Any] = {
            "schedule": "0 2 * * *",
            "taskTemplate": {"metadata": {"labels": {"report": "nightly"}}, "spec": {"type": "echo"}},
        }
        self._status: dict[str, Any] = {}

    def schedule(self, expression: str, time_zone: str | None = None) -> ScheduledTaskBuilder:
        self._spec["schedule"] = expression
        if time_zone is not None:
            self._spec["timeZone"] = time_zone
        return self

    def time_zone(self, name: str) -> ScheduledTaskBuilder:
        self._spec["timeZone"] = name
        return self

    def suspend(self, value: bool = True) -> ScheduledTaskBuilder:
        self._spec["suspend"] = value
        return self

    def policy(self, value: str) -> ScheduledTaskBuilder:
        self._spec["concurrencyPolicy"] = value
        return self

    def deadline(self, seconds: int) -> ScheduledTaskBuilder:
        self._spec["startingDeadlineSeconds"] = seconds
        return self

    def history(self, succeeded: int, failed: int) -> ScheduledTaskBuilder:
        self._spec["successfulTasksHistoryLimit"] = succeeded
        self._spec["failedTasksHistoryLimit"] = failed
        return self

    def template(self, metadata: dict[str, Any] | None = None, **spec: Any) -> ScheduledTaskBuilder:
        """The task template: ``template({"labels": {...}}, type="echo", payload={...})``."""
        self._spec["taskTemplate"] = {"spec": {"type": "echo", **spec}}
        if metadata is not None:
            self._spec["taskTemplate"]["metadata"] = metadata
        return self

    def run_now(self, value: str) -> ScheduledTaskBuilder:
        self._meta["annotations"]["asynctask.dev/run-now"] = value
        return self

    def created(self, when: dt.datetime) -> ScheduledTaskBuilder:
        self._meta["creationTimestamp"] = stamp(when)
        return self

    def generation(self, value: int) -> ScheduledTaskBuilder:
        self._meta["generation"] = value
        return self

    def deleting(self) -> ScheduledTaskBuilder:
        self._meta["deletionTimestamp"] = stamp(CREATED)
        return self

    def status(self, status: ScheduledTaskStatus | None = None, **fields: Any) -> ScheduledTaskBuilder:
        """Status fields in snake_case (times as datetimes or strings), or a whole status."""
        if status is not None:
            self._status = status.model_dump()
        for key, value in fields.items():
            self._status[key] = stamp(value) if isinstance(value, dt.datetime) else value
        return self

    def build(self) -> ScheduledTask:
        return ScheduledTask.model_validate(
            {"metadata": copy.deepcopy(self._meta), "spec": copy.deepcopy(self._spec), "status": self._status}
        )


def scheduled(name: str = "nightly") -> ScheduledTaskBuilder:
    return ScheduledTaskBuilder(name)


def run_name(fire: dt.datetime, owner: str = "nightly") -> str:
    return scheduled_run_name(owner, unix_minute(fire))


def run(
    name: str,
    phase: str = "Pending",
    *,
    finished: dt.datetime | None = None,
    cancel: bool = False,
    deleting: bool = False,
) -> AsyncTask:
    """A run of a ScheduledTask (the core does not look at owners: the controller picks the runs)."""
    builder = task(name).status(phase=phase, completion_time=stamp(finished) if finished else None)
    if cancel:
        builder = builder.cancel()
    if deleting:
        builder = builder.deleting()
    return builder.build()


def observe(
    obj: ScheduledTask, now: dt.datetime, *runs: AsyncTask, template_refused: str | None = None
) -> ScheduleObserved:
    return ScheduleObserved(scheduled=obj, children=runs, now=now, template_refused=template_refused)


class World:
    """A ScheduledTask and its runs; :meth:`step` decides and applies the decision as the operator would."""

    def __init__(self, obj: ScheduledTask, *runs: AsyncTask) -> None:
        self.scheduled = obj
        self.runs: dict[str, AsyncTask] = {r.metadata.name: r for r in runs}
        self.created: list[str] = []  # every run created, in order
        self.cancelled: list[str] = []
        self.deleted: list[str] = []

    def step(self, now: dt.datetime) -> ScheduleDecision:
        decision = decide_schedule(observe(self.scheduled, now, *self.runs.values()))
        for name in decision.cancel:
            self.runs[name] = self.runs[name].model_copy(
                update={"spec": self.runs[name].spec.model_copy(update={"cancel": True})}
            )
            self.cancelled.append(name)
        for manifest in decision.create:
            name = manifest["metadata"]["name"]
            self.runs.setdefault(name, run(name))
            self.created.append(name)
        if decision.status is not None:
            self.scheduled = self.scheduled.model_copy(update={"status": decision.status})
        for name, _ in decision.delete:
            self.runs.pop(name, None)
            self.deleted.append(name)
        return decision

    def finish(self, name: str, phase: str, when: dt.datetime) -> None:
        self.runs[name] = run(name, phase, finished=when)

    def change_spec(self, **spec: Any) -> None:
        """A spec edit: new fields (by alias or name), and a new metadata.generation."""
        new_spec = self.scheduled.spec.model_validate({**self.scheduled.spec.model_dump(), **spec})
        meta = self.scheduled.metadata.model_copy(update={"generation": self.scheduled.metadata.generation + 1})
        self.scheduled = self.scheduled.model_copy(update={"spec": new_spec, "metadata": meta})

    def annotate(self, key: str, value: str) -> None:
        meta = self.scheduled.metadata
        meta = meta.model_copy(update={"annotations": {**meta.annotations, key: value}})
        self.scheduled = self.scheduled.model_copy(update={"metadata": meta})

    @property
    def status(self) -> ScheduledTaskStatus:
        return self.scheduled.status
