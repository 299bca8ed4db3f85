"""What a ScheduledTask does now, decided from what is observed and the time — nothing else.

:func:`decide_schedule` is the whole behaviour of a ScheduledTask as one pure function:
given the object, the AsyncTasks it owns and ``now``, it returns the tasks to create,
to cancel and to delete, the new status and when to look again. Like
:func:`~asynctask_operator.core.lifecycle.decide` it is level-based, so a replayed
event, a restart, or a second operator cannot make it run a fire time twice:

- A run is named ``<name>-<scheduled unix minute>``: the name is the lock. A fire time
  whose AsyncTask exists has started, whoever started it; creating it again is a 409.
- ``status.nextScheduleTime`` is the first fire time not yet handled. The fire times from
  it up to ``now`` are due: usually one (the clock woke us at it), more after downtime.
  Of those, at most the latest starts, and only within ``startingDeadlineSeconds``; the
  others are counted in ``status.missedRuns``.
- A spec change (a new ``metadata.generation``) and ``suspend`` restart the window at
  ``now``: a new schedule takes effect for its next fire time, and a resume does not
  run what fell due while suspended.
- ``status.active`` lists the unfinished runs; a run counts in ``status.counts`` when it
  leaves that list finished (or when a run nobody recorded is found finished).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from typing import Any

from asynctask_operator.core import archiving
from asynctask_operator.core import conditions as cond
from asynctask_operator.core.cron import Schedule, ScheduleError, fires_between, next_fire, parse_schedule, unix_minute
from asynctask_operator.core.models import (
    API_VERSION,
    AsyncTask,
    ScheduleCounts,
    ScheduledTask,
    ScheduledTaskStatus,
    TaskTemplateMeta,
)
from asynctask_operator.core.naming import (
    ANNOTATION_RUN_NOW,
    ANNOTATION_SCHEDULED_TIME,
    LABEL_SCHEDULED_TASK,
    RESERVED_LABEL_PREFIX,
    label_value,
    manual_run_name,
    scheduled_run_name,
)
from asynctask_operator.core.timestamps import parse_stamp, stamp

READY = "Ready"
INVALID_TASK_TEMPLATE = "InvalidTaskTemplate"
ONE_SECOND = dt.timedelta(seconds=1)


@dataclasses.dataclass(frozen=True)
class ScheduleObserved:
    """Everything :func:`decide_schedule` may look at."""

    scheduled: ScheduledTask
    children: Sequence[AsyncTask]  # the AsyncTasks this ScheduledTask owns (controller ownerReference, its uid)
    now: dt.datetime
    template_refused: str | None = None  # the API server refused the AsyncTask built from the template: why
    archive_required: bool = False  # a run beyond the history limits goes only once archived (core/archiving.py)


@dataclasses.dataclass(frozen=True)
class ScheduleDecision:
    status: ScheduledTaskStatus | None = None  # the new status, when it differs
    create: tuple[dict[str, Any], ...] = ()  # AsyncTask manifests
    cancel: tuple[str, ...] = ()  # AsyncTasks to cancel (concurrencyPolicy Replace)
    delete: tuple[tuple[str, str], ...] = ()  # (name, uid) of finished runs beyond the history limits
    wake_at: dt.datetime | None = None  # the next fire time: look again then
    notes: tuple[str, ...] = ()  # what happened that a person wants in the log: missed and skipped runs


def render_run(
    scheduled: ScheduledTask, name: str, scheduled_time: dt.datetime, run_now: str | None = None
) -> dict[str, Any]:
    """The AsyncTask of one run: the template, labelled with and owned by the ScheduledTask."""
    template = scheduled.spec.task_template
    meta = template.metadata or TaskTemplateMeta()
    labels = {k: v for k, v in (meta.labels or {}).items() if not k.startswith(RESERVED_LABEL_PREFIX)}
    labels[LABEL_SCHEDULED_TASK] = label_value(scheduled.metadata.name)
    annotations = {k: v for k, v in (meta.annotations or {}).items() if not k.startswith(RESERVED_LABEL_PREFIX)}
    annotations[ANNOTATION_SCHEDULED_TIME] = stamp(scheduled_time)
    if run_now is not None:
        annotations[ANNOTATION_RUN_NOW] = run_now
    return {
        "apiVersion": API_VERSION,
        "kind": "AsyncTask",
        "metadata": {
            "name": name,
            "namespace": scheduled.metadata.namespace,
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": [
                {
                    "apiVersion": API_VERSION,
                    "kind": "ScheduledTask",
                    "name": scheduled.metadata.name,
                    "uid": scheduled.metadata.uid,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": template.spec.dump(),
    }


class _Plan:
    """The decision being built: what one call of :func:`decide_schedule` edits."""

    def __init__(self, obs: ScheduleObserved) -> None:
        self.obs = obs
        status = obs.scheduled.status
        self.children = {c.metadata.name: c for c in obs.children}
        self.finished = {n: c for n, c in self.children.items() if c.finished}
        self.unfinished = {n: c for n, c in self.children.items() if not c.finished}
        old_active = set(status.active or ())
        self.to_count: set[str] = {n for n in old_active if n in self.finished}
        self.last_schedule = parse_stamp(status.last_schedule_time)
        self.last_run_now = status.last_run_now
        self.missed = status.missed_runs or 0
        self.skipped = (status.counts or ScheduleCounts()).skipped
        self.create: list[dict[str, Any]] = []
        self.started_fire: dt.datetime | None = None  # the fire time of the scheduled run in ``create``
        self.cancel: list[str] = []
        self.notes: list[str] = []

    @property
    def name(self) -> str:
        return self.obs.scheduled.metadata.name

    def adopt(self, name: str, fire: dt.datetime | None) -> None:
        """A run that exists already (started by an earlier call, or by another operator)."""
        if fire is not None and (self.last_schedule is None or fire > self.last_schedule):
            self.last_schedule = fire
        if name in self.finished:
            self.to_count.add(name)

    def start(self, name: str, fire: dt.datetime, run_now: str | None = None) -> None:
        self.create.append(render_run(self.obs.scheduled, name, fire, run_now))
        if run_now is None:
            self.started_fire = fire

    def last_schedule_time(self) -> dt.datetime | None:
        fires = [f for f in (self.last_schedule, self.started_fire) if f is not None]
        return max(fires) if fires else None


def decide_schedule(obs: ScheduleObserved) -> ScheduleDecision:
    """The runs to start, cancel and delete, and the new status (see the module docstring)."""
    scheduled, now = obs.scheduled, obs.now
    plan = _Plan(obs)
    try:
        schedule: Schedule | None = parse_schedule(scheduled.spec.schedule, scheduled.spec.time_zone)
        problem: ScheduleError | None = None
    except ScheduleError as exc:
        schedule, problem = None, exc
    deleting = scheduled.metadata.deletion_timestamp is not None

    if schedule is not None and not deleting:
        _fire_due(plan, schedule)
        _run_now(plan)
    if obs.template_refused is not None:
        _drop_creates(plan, obs.template_refused)

    next_time = next_fire(schedule, now) if schedule is not None else None
    status = _status(plan, next_time, problem)
    return ScheduleDecision(
        status=None if status == scheduled.status else status,
        create=tuple(plan.create),
        cancel=tuple(plan.cancel),
        delete=tuple(_beyond_history(plan)),
        wake_at=None if deleting else next_time,
        notes=tuple(plan.notes),
    )


def _window_start(obs: ScheduleObserved) -> dt.datetime | None:
    """Fire times strictly after this instant are due (None: none are, the window starts now)."""
    scheduled = obs.scheduled
    status = scheduled.status
    if scheduled.spec.suspend:
        return None
    if status.observed_generation is not None and status.observed_generation != scheduled.metadata.generation:
        return None  # the spec changed: its next fire time is the first one that counts
    handled_until = parse_stamp(status.next_schedule_time)
    if handled_until is not None:
        return handled_until - ONE_SECOND
    return parse_stamp(status.last_schedule_time) or parse_stamp(scheduled.metadata.creation_timestamp)


def _fire_due(plan: _Plan, schedule: Schedule) -> None:
    obs = plan.obs
    after = _window_start(obs)
    if after is None or after >= obs.now:
        return
    fires, cut = fires_between(schedule, after, obs.now)
    if not fires:
        return
    names = {fire: scheduled_run_name(plan.name, unix_minute(fire)) for fire in fires}
    for fire, name in names.items():
        if name in plan.children:
            plan.adopt(name, fire)
    latest = fires[-1]
    unstarted = [fire for fire, name in names.items() if name not in plan.children]
    runnable = latest if latest in unstarted else None
    deadline = obs.scheduled.spec.starting_deadline_seconds
    late = (obs.now - latest).total_seconds()
    if runnable is not None and deadline is not None and late > deadline:
        plan.notes.append(
            f"the run due at {stamp(latest)} is {late:.0f}s late, past startingDeadlineSeconds ({deadline}): not started"
        )
        runnable = None
    missed = len(unstarted) - (1 if runnable is not None else 0)
    if missed:
        plan.missed += missed
        more = "at least " if cut else ""
        plan.notes.append(
            f"{more}{missed} run(s) missed between {stamp(unstarted[0])} and {stamp(unstarted[-1])} "
            "(the operator was not running, or they were past startingDeadlineSeconds)"
        )
    if runnable is not None:
        _start_under_policy(plan, runnable, names[runnable])


def _start_under_policy(plan: _Plan, fire: dt.datetime, name: str) -> None:
    policy = plan.obs.scheduled.spec.concurrency_policy
    running = sorted(n for n, c in plan.unfinished.items() if c.metadata.deletion_timestamp is None)
    if running and policy == "Forbid":
        plan.skipped += 1
        plan.notes.append(
            f"the run due at {stamp(fire)} is skipped: concurrencyPolicy Forbid and {', '.join(running)} not finished"
        )
        return
    if running and policy == "Replace":
        plan.cancel = [n for n in running if not plan.unfinished[n].spec.cancel]
        plan.notes.append(
            f"concurrencyPolicy Replace: cancelling {', '.join(running)} for the run due at {stamp(fire)}"
        )
    plan.start(name, fire)


def _run_now(plan: _Plan) -> None:
    """``asynctask.dev/run-now``: each new value starts one run at once, whatever the policy or suspend."""
    value = plan.obs.scheduled.metadata.annotations.get(ANNOTATION_RUN_NOW)
    if not value or value == plan.last_run_now:
        return
    plan.last_run_now = value
    name = manual_run_name(plan.name, value)
    if name in plan.children:
        plan.adopt(name, None)
        return
    plan.start(name, plan.obs.now.replace(microsecond=0), run_now=value)
    plan.notes.append(f"run-now {value!r}: starting {name}")


def _drop_creates(plan: _Plan, why: str) -> None:
    """The API server refused the AsyncTask: the fire is handled (no retry loop), nothing starts.

    Cancels (concurrencyPolicy Replace) were sent before the create and stay sent."""
    refused = [c["metadata"]["name"] for c in plan.create]
    plan.create = []
    plan.started_fire = None
    plan.notes.append(f"the API server refused {', '.join(refused) or 'the run'}: {why}")


def _ready(plan: _Plan, problem: ScheduleError | None) -> tuple[bool, str, str]:
    scheduled = plan.obs.scheduled
    if problem is not None:
        return False, problem.reason, problem.message
    if plan.obs.template_refused is not None:
        return False, INVALID_TASK_TEMPLATE, f"the API server refused the AsyncTask: {plan.obs.template_refused}"
    current = cond.get_condition(scheduled.status.conditions, READY)
    if (
        current is not None
        and current.reason == INVALID_TASK_TEMPLATE
        and current.observed_generation == scheduled.metadata.generation
        and not plan.create
    ):
        return False, current.reason, current.message  # until a run is created again, or the spec changes
    where = f"{scheduled.spec.schedule!r} in {scheduled.spec.time_zone}"
    if scheduled.spec.suspend:
        return True, "Suspended", f"suspended: no runs start until spec.suspend is false (schedule {where})"
    return True, "Scheduled", f"runs on schedule {where}"


def _status(plan: _Plan, next_time: dt.datetime | None, problem: ScheduleError | None) -> ScheduledTaskStatus:
    obs = plan.obs
    scheduled = obs.scheduled
    old = scheduled.status
    counts = old.counts or ScheduleCounts()
    succeeded, failed = counts.succeeded, counts.failed
    for name in plan.to_count:
        if plan.finished[name].phase == "Succeeded":
            succeeded += 1
        else:
            failed += 1
    last_successful = old.last_successful_time
    for child in plan.finished.values():
        done = child.status.completion_time
        if child.phase == "Succeeded" and done and (last_successful is None or done > last_successful):
            last_successful = done
    created = {c["metadata"]["name"] for c in plan.create}
    active = sorted(set(plan.unfinished) | created)
    last_schedule = plan.last_schedule_time()
    ready, reason, message = _ready(plan, problem)
    conditions = cond.set_condition(
        old.conditions or [], READY, ready, reason, message, stamp(obs.now), scheduled.metadata.generation
    )
    return ScheduledTaskStatus(
        last_schedule_time=stamp(last_schedule) if last_schedule else None,
        next_schedule_time=stamp(next_time) if next_time else None,
        last_successful_time=last_successful,
        active=active or None,
        missed_runs=plan.missed,
        counts=ScheduleCounts(succeeded=succeeded, failed=failed, skipped=plan.skipped),
        last_run_now=plan.last_run_now,
        observed_generation=scheduled.metadata.generation,
        conditions=conditions,
    )


def _beyond_history(plan: _Plan) -> list[tuple[str, str]]:
    """Finished runs past ``successfulTasksHistoryLimit`` / ``failedTasksHistoryLimit``, oldest first."""
    spec = plan.obs.scheduled.spec
    out: list[tuple[str, str]] = []
    for limit, wanted in ((spec.successful_tasks_history_limit, True), (spec.failed_tasks_history_limit, False)):
        kept = [
            c
            for c in plan.finished.values()
            if (c.phase == "Succeeded") == wanted and c.metadata.deletion_timestamp is None
        ]
        kept.sort(key=_finish_order, reverse=True)  # newest first
        beyond = reversed(kept[limit:])
        if plan.obs.archive_required:  # the others wait for the archive's mark (its event wakes the schedule)
            beyond = (c for c in beyond if archiving.archived(c))
        out.extend((c.metadata.name, c.metadata.uid) for c in beyond)
    return out


def _finish_order(task: AsyncTask) -> tuple[str, str, str]:
    return (task.status.completion_time or "", task.metadata.creation_timestamp or "", task.metadata.name)
