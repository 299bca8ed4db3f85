"""What one decision works on: the observed world in, a draft of the status, the decision out.

:func:`~asynctask_operator.core.lifecycle.decide` and its steps read an :class:`Observed`,
edit a :class:`Draft` of the task's status, and return the :class:`Decision` the draft adds
up to: the writes to make, in the order the reconciler's ``apply()`` makes them, and what
each write means (the Events to post and the metrics it counts, :mod:`.effects`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from asynctask_operator.core import callbacks
from asynctask_operator.core import conditions as cond
from asynctask_operator.core.config import CoreConfig
from asynctask_operator.core.effective import effective_spec
from asynctask_operator.core.effects import EventNote, MetricDelta, effects_of
from asynctask_operator.core.models import (
    AsyncTask,
    AsyncTaskStatus,
    Attempt,
    Condition,
    EffectiveSpec,
    FairTurn,
    KeyWait,
    TaskType,
)
from asynctask_operator.core.observed import JobView, PodView
from asynctask_operator.core.reporting import Reported
from asynctask_operator.core.timestamps import stamp

MAX_ATTEMPTS_KEPT = 10


@dataclasses.dataclass(frozen=True)
class Admission:
    """What the task's queue says: a slot (and its concurrency key) is reserved for it, or why it waits."""

    granted: bool = True
    reason: str = "Queued"
    message: str = ""
    key_wait: KeyWait | None = None  # waiting for a busy concurrency key: which, and who held it
    refused: bool = False  # CancelNewest: its key is busy, the task ends (reason and message say so)
    fairness: FairTurn | None = None  # in a fair queue: its group (and, granted, its turn)
    request: Callable[[EffectiveSpec], Admission] | None = dataclasses.field(default=None, compare=False, repr=False)
    """Asks the queue for a slot, at the moment the task is ready to start, with what is in force for
    it (its queue's key, its concurrency key); its answer replaces this one. The one call
    :func:`~asynctask_operator.core.lifecycle.decide` makes out of the core: an in-memory reservation
    (Kueue's "assume"), no I/O, so that a task that is not ready never holds a slot and the decision
    is made once. ``None``: this answer is final."""

    def ask(self, effective: EffectiveSpec) -> Admission:
        return self if self.granted or self.request is None else self.request(effective)


@dataclasses.dataclass(frozen=True)
class Observed:
    """Everything :func:`decide` may look at."""

    task: AsyncTask
    tasktype: TaskType | None
    types_synced: bool  # False until the TaskType cache has been filled once
    jobs: Mapping[int, JobView]  # this task's Jobs by attempt (owned by its uid)
    pods: Mapping[str, Sequence[PodView]]  # pods by the name of their Job
    now: dt.datetime
    jitter_sample: float = 0.5
    admission: Admission = Admission()
    reported: Reported | None = None  # progress/result the running attempt posted
    callback_outcome: callbacks.DeliveryOutcome | None = None  # how the last callback delivery went
    superseded_by: str | None = None  # a newer task with its key and policy CancelInProgress


@dataclasses.dataclass(frozen=True)
class Decision:
    status: AsyncTaskStatus | None = None  # the new status, when it differs
    create_job: dict[str, Any] | None = None
    delete_job: str | None = None
    delete_task: bool = False
    requeue_after: float | None = None  # seconds until something is due
    wants_admission: bool = False  # ready to start an attempt, waiting for its queue
    send_callback: callbacks.CallbackSend | None = None  # deliver this once the status is written
    events: tuple[EventNote, ...] = ()  # Kubernetes Events to post once the status is written
    metrics: tuple[MetricDelta, ...] = ()  # what the status write counts, once it is written
    held: bool = False  # an attempt's Job runs, its status written later (the short-attempt window)

    @property
    def writes(self) -> bool:
        return bool(self.status or self.create_job or self.delete_job or self.delete_task)


def after(moment: dt.datetime, seconds: float) -> dt.datetime:
    """``seconds`` after ``moment``; the end of time when that is past it (a delay without a cap)."""
    try:
        return moment + dt.timedelta(seconds=seconds)
    except OverflowError:
        return dt.datetime.max.replace(microsecond=0, tzinfo=dt.UTC)


class Draft:
    """A mutable copy of the status that one decision edits."""

    def __init__(self, obs: Observed, config: CoreConfig) -> None:
        self.obs = obs
        self.config = config
        self.now = stamp(obs.now)
        self.fields: dict[str, Any] = obs.task.status.model_dump()
        self.create_job: dict[str, Any] | None = None
        self.delete_job: str | None = None
        self.delete_task = False
        self.wants_admission = False
        self.send_callback: callbacks.CallbackSend | None = None
        self.due: list[dt.datetime] = []
        self.held = False  # the status is not written this time (the short-attempt window)

    # -- reading
    @property
    def phase(self) -> str:
        return str(self.fields.get("phase") or "Pending")

    @property
    def attempt(self) -> int:
        return max(int(self.fields.get("attempt") or 0), 0)  # (a status edited by hand can say anything)

    def status(self) -> AsyncTaskStatus:
        return AsyncTaskStatus.model_validate(self.fields)

    def effective(self) -> EffectiveSpec:
        if self.fields.get("effective"):
            return EffectiveSpec.model_validate(self.fields["effective"])
        return effective_spec(self.obs.task, self.obs.tasktype, self.config)

    # -- writing
    def set(self, **values: Any) -> None:
        self.fields.update(values)

    def condition(self, type_: str, status: bool, reason: str, message: str) -> None:
        current = [Condition.model_validate(c) for c in self.fields.get("conditions") or ()]  # not the whole status
        updated = cond.set_condition(
            current, type_, status, reason, message, self.now, self.obs.task.metadata.generation
        )
        self.fields["conditions"] = [c.model_dump() for c in updated]

    def move(self, phase: str, reason: str, message: str) -> None:
        self.set(phase=phase, reason=reason, message=message, observed_generation=self.obs.task.metadata.generation)
        if phase != "Running":
            self.condition(cond.RUNNING, False, reason, message)

    def record_attempt(self, attempt: Attempt) -> None:
        attempts = [a for a in self.fields.get("attempts") or () if a["attempt"] != attempt.attempt]
        attempts.append(attempt.model_dump())
        self.fields["attempts"] = attempts[-MAX_ATTEMPTS_KEPT:]

    def last_attempt(self) -> Attempt | None:
        attempts = self.fields.get("attempts") or []
        if attempts and attempts[-1]["attempt"] == self.attempt:
            return Attempt.model_validate(attempts[-1])
        return None

    def hold(self, until: dt.datetime) -> None:
        """Write none of the status this time; look again at ``until`` (the short-attempt window)."""
        self.held = True
        self.due.append(until)

    def decision(self) -> Decision:
        new = self.status()
        changed = new if new != self.obs.task.status and not self.held else None
        requeue = None
        if self.due and not self.delete_task:
            requeue = max(0.0, min((d - self.obs.now).total_seconds() for d in self.due))
        events, metrics = effects_of(self.obs.task, changed, self.obs.now) if changed else ((), ())
        return Decision(
            status=changed,
            create_job=self.create_job,
            delete_job=self.delete_job,
            delete_task=self.delete_task,
            requeue_after=requeue,
            wants_admission=self.wants_admission,
            send_callback=self.send_callback,
            events=events,
            metrics=metrics,
            held=self.held,
        )
