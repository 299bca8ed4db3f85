"""Resolve what is in force for a task: the task's field, else its TaskType's default, else the operator's."""

from __future__ import annotations

from typing import Any

from asynctask_operator.core.concurrency import resolve_concurrency
from asynctask_operator.core.config import CoreConfig
from asynctask_operator.core.models import (
    AsyncTask,
    AsyncTaskSpec,
    ConcurrencySpec,
    EffectiveSpec,
    RetryPolicy,
    TaskDefaults,
    TaskType,
    TtlStrategy,
)
from asynctask_operator.core.validation import Refusal


def merge_retry(*layers: RetryPolicy | None) -> RetryPolicy:
    """Field-wise merge, first layer wins: ``merge_retry(task, type, builtin)``."""
    merged: dict[str, Any] = {}
    for layer in layers:
        if layer is None:
            continue
        for key, value in layer.model_dump(exclude_none=True).items():
            merged.setdefault(key, value)
    return RetryPolicy(**merged)


def resolve_queue(admitted: str | None, asked: str | None, tasktype: TaskType | None, default_queue: str) -> str:
    """The queue of a task: the one its admission resolved (``status.effective.queue``: a TaskType
    changed since does not move it), else the one it asks for (``spec.queue``), else its TaskType's
    ``defaults.queue``, else the operator's default. The pieces, not the task: the admission
    ledger reads them from the wire form of every copy of a task, without parsing it."""
    defaults = tasktype.spec.defaults if tasktype else None
    return admitted or asked or (defaults.queue if defaults else None) or default_queue


def effective_queue(task: AsyncTask, tasktype: TaskType | None, config: CoreConfig) -> str:
    """:func:`resolve_queue` of a parsed task."""
    admitted = task.status.effective.queue if task.status.effective else None
    return resolve_queue(admitted, task.spec.queue, tasktype, config.default_queue)


TTL_FIELDS = {
    "Succeeded": "seconds_after_success",
    "Failed": "seconds_after_failure",
    "Cancelled": "seconds_after_cancelled",
}


def resolve_ttl_strategy(spec: AsyncTaskSpec, defaults: TaskDefaults) -> TtlStrategy | None:
    """The per-outcome TTLs in force: for each outcome, the task's ``ttlStrategy`` value; else, when the
    task sets ``ttlSecondsAfterFinished``, none (that flat value holds); else its type's ``ttlStrategy``
    value. The task's own word wins over its type's, and per outcome over flat at the same level::

        task {ttlStrategy: {secondsAfterSuccess: 10}}, type {ttlStrategy: {secondsAfterFailure: 60}}
        -> {secondsAfterSuccess: 10, secondsAfterFailure: 60}
    """
    values: dict[str, int] = {}
    for phase, field in TTL_FIELDS.items():
        own = spec.ttl_strategy.for_phase(phase) if spec.ttl_strategy else None
        if own is None and spec.ttl_seconds_after_finished is None and defaults.ttl_strategy is not None:
            own = defaults.ttl_strategy.for_phase(phase)
        if own is not None:
            values[field] = own
    return TtlStrategy(**values) if values else None


def effective_spec(task: AsyncTask, tasktype: TaskType | None, config: CoreConfig) -> EffectiveSpec:
    spec = task.spec
    defaults = (tasktype.spec.defaults if tasktype else None) or TaskDefaults()
    ttl = spec.ttl_seconds_after_finished
    if ttl is None:
        ttl = defaults.ttl_seconds_after_finished
    return EffectiveSpec(
        queue=resolve_queue(None, spec.queue, tasktype, config.default_queue),
        timeout_seconds=spec.timeout_seconds or defaults.timeout_seconds,
        deadline_seconds=spec.deadline_seconds or defaults.deadline_seconds,
        ttl_seconds_after_finished=config.default_ttl_seconds if ttl is None else ttl,
        ttl_strategy=resolve_ttl_strategy(spec, defaults),
        retry=merge_retry(spec.retry, defaults.retry, config.default_retry),
        callback=spec.callback or defaults.callback,
        concurrency=effective_concurrency(task, defaults),
    )


def effective_concurrency(task: AsyncTask, defaults: TaskDefaults) -> ConcurrencySpec | None:
    """The task's key (core/concurrency.py); None also when ``keyFrom`` cannot give one: the task is
    refused for that before it ever asks for a slot (``check_concurrency`` in its admission)."""
    try:
        return resolve_concurrency(task.spec.concurrency, defaults.concurrency, task.spec.payload, task.metadata.labels)
    except Refusal:
        return None


def effective_priority(task: AsyncTask, tasktype: TaskType | None) -> int:
    if task.spec.priority is not None:
        return task.spec.priority
    defaults = tasktype.spec.defaults if tasktype else None
    return (defaults.priority if defaults else None) or 0
