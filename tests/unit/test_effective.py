"""docs/design.md §2.3: what is in force for a task — its own field, else its TaskType's default, else the operator's."""

from __future__ import annotations

from typing import Any

import pytest

from asynctask_operator.core.config import CoreConfig
from asynctask_operator.core.effective import effective_priority, effective_spec, merge_retry
from asynctask_operator.core.models import AsyncTask, RetryPolicy, TaskType, TtlStrategy
from asynctask_operator.core.retry import BUILTIN_RETRY
from tests.unit.builders import task, tasktype

CONFIG = CoreConfig(default_ttl_seconds=777, default_queue="fallback")
TYPE_DEFAULTS = tasktype("echo").defaults(
    queue="gpu", priority=5, timeout_seconds=60, deadline_seconds=600, ttl_seconds_after_finished=3600
)
FULL_TASK = task().queue("batch").priority(9).timeout(30).deadline(300).ttl(100)


@pytest.mark.parametrize(
    ("obj", "type_", "expected"),
    [
        (FULL_TASK.build(), TYPE_DEFAULTS.build(), ("batch", 30, 300, 100)),
        (task().build(), TYPE_DEFAULTS.build(), ("gpu", 60, 600, 3600)),
        (task().build(), tasktype("echo").build(), ("fallback", None, None, 777)),
        (task().build(), None, ("fallback", None, None, 777)),
        (task().ttl(0).build(), TYPE_DEFAULTS.build(), ("gpu", 60, 600, 0)),
        (task().build(), tasktype("echo").defaults(ttl_seconds_after_finished=0).build(), ("fallback", None, None, 0)),
    ],
    ids=["task-wins", "type-defaults", "operator-defaults", "unknown-type", "ttl-0-on-task", "ttl-0-on-type"],
)
def test_effective_spec_layers(
    obj: AsyncTask, type_: TaskType | None, expected: tuple[str, int | None, int | None, int]
) -> None:
    eff = effective_spec(obj, type_, CONFIG)
    assert (eff.queue, eff.timeout_seconds, eff.deadline_seconds, eff.ttl_seconds_after_finished) == expected


def strategy(obj: AsyncTask, type_: TaskType | None) -> dict[str, int] | None:
    resolved = effective_spec(obj, type_, CONFIG).ttl_strategy
    return resolved.dump() if resolved else None


def with_spec(obj: AsyncTask, **fields: Any) -> AsyncTask:
    return obj.model_copy(update={"spec": obj.spec.model_copy(update=fields)})


TYPE_STRATEGY = tasktype("echo").defaults(ttl_strategy={"seconds_after_failure": 60, "seconds_after_cancelled": 5})


@pytest.mark.parametrize(
    ("task_fields", "type_", "expected"),
    [
        ({}, tasktype("echo"), None),
        ({}, TYPE_STRATEGY, {"secondsAfterFailure": 60, "secondsAfterCancelled": 5}),
        (
            {"ttl_strategy": TtlStrategy(seconds_after_success=10, seconds_after_failure=1)},
            TYPE_STRATEGY,
            {"secondsAfterSuccess": 10, "secondsAfterFailure": 1, "secondsAfterCancelled": 5},
        ),
        ({"ttl_seconds_after_finished": 3600}, TYPE_STRATEGY, None),
        (
            {"ttl_seconds_after_finished": 3600, "ttl_strategy": TtlStrategy(seconds_after_success=0)},
            TYPE_STRATEGY,
            {"secondsAfterSuccess": 0},
        ),
    ],
    ids=["none", "type-strategy", "task-strategy-merged-per-outcome", "task-flat-ttl-beats-type", "task-both"],
)
def test_ttl_strategy_layers(task_fields: dict[str, Any], type_: Any, expected: dict[str, int] | None) -> None:
    """Per outcome: the task's ttlStrategy, else the task's ttlSecondsAfterFinished (no strategy), else the
    type's ttlStrategy; a task's own word wins over its type's."""
    assert strategy(with_spec(task().build(), **task_fields), type_.build()) == expected


@pytest.mark.parametrize(("phase", "expected"), [("Succeeded", 10), ("Failed", 60), ("Cancelled", 100)])
def test_ttl_for_an_outcome_falls_back_to_the_flat_ttl(phase: str, expected: int) -> None:
    obj = with_spec(
        task().ttl(100).build(), ttl_strategy=TtlStrategy(seconds_after_success=10, seconds_after_failure=60)
    )
    assert effective_spec(obj, None, CONFIG).ttl_for(phase) == expected


@pytest.mark.parametrize(
    ("obj", "type_", "expected"),
    [
        (FULL_TASK.build(), TYPE_DEFAULTS.build(), 9),
        (task().build(), TYPE_DEFAULTS.build(), 5),
        (task().priority(0).build(), TYPE_DEFAULTS.build(), 0),
        (task().priority(-3).build(), TYPE_DEFAULTS.build(), -3),
        (task().build(), None, 0),
    ],
    ids=["task-wins", "type-default", "explicit-zero-wins", "negative", "unknown-type"],
)
def test_effective_priority(obj: AsyncTask, type_: TaskType | None, expected: int) -> None:
    assert effective_priority(obj, type_) == expected


def test_builtin_retry_matches_the_spec() -> None:
    assert BUILTIN_RETRY.dump() == {
        "maxRetries": 3,
        "backoff": "Exponential",
        "baseSeconds": 10,
        "maxSeconds": 600,
        "jitter": True,
        "retryOn": ["Failed", "Timeout", "PodError"],
        "nonRetryableExitCodes": [],
    }


@pytest.mark.parametrize(
    ("task_retry", "type_retry", "expected"),
    [
        (None, None, {}),
        ({"max_retries": 1}, {"max_retries": 5, "base_seconds": 30}, {"max_retries": 1, "base_seconds": 30}),
        ({"jitter": False}, {"jitter": True, "backoff": "Fixed"}, {"jitter": False, "backoff": "Fixed"}),
        ({"max_retries": 0}, {"max_retries": 5}, {"max_retries": 0}),
        ({"retry_on": []}, {"retry_on": ["Timeout"]}, {"retry_on": []}),
        (None, {"non_retryable_exit_codes": [2, 3]}, {"non_retryable_exit_codes": [2, 3]}),
    ],
    ids=["all-builtin", "field-wise", "false-is-a-value", "zero-is-a-value", "empty-list-is-a-value", "type-only"],
)
def test_retry_is_merged_field_by_field(
    task_retry: dict[str, Any] | None, type_retry: dict[str, Any] | None, expected: dict[str, Any]
) -> None:
    t = task().retry(**task_retry) if task_retry is not None else task()
    tt = tasktype("echo").defaults(retry=type_retry) if type_retry is not None else tasktype("echo")
    merged = effective_spec(t.build(), tt.build(), CoreConfig()).retry
    assert merged == BUILTIN_RETRY.model_copy(update=expected)


def test_merge_retry_first_layer_wins_and_skips_missing_layers() -> None:
    merged = merge_retry(None, RetryPolicy(base_seconds=1), RetryPolicy(base_seconds=2, max_seconds=3))
    assert (merged.base_seconds, merged.max_seconds, merged.max_retries) == (1, 3, None)
