"""Resolve what is in force for a task: the task's field, else its TaskType's default, else the operator's."""

from __future__ import annotations

from typing import Any

from asynctask_operator.core.config import CoreConfig
from asynctask_operator.core.models import AsyncTask, EffectiveSpec, RetryPolicy, TaskDefaults, TaskType


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
        retry=merge_retry(spec.retry, defaults.retry, config.default_retry),
        callback=spec.callback or defaults.callback,
    )


def effective_priority(task: AsyncTask, tasktype: TaskType | None) -> int:
    if task.spec.priority is not None:
        return task.spec.priority
    defaults = tasktype.spec.defaults if tasktype else None
    return (defaults.priority if defaults else None) or 0
