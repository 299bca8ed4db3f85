"""What tests/unit/test_fuzz.py found, pinned down: each of these raised from decide() before.

An exception in decide() is not a failed task: the reconcile fails, is retried with
backoff, and the task stays where it was with no reason given (docs/design.md §2: "never a crash,
never a task left waiting without a reason"). Input the API server admits must end in a decision.
"""

from __future__ import annotations

from typing import Any

import pytest

from asynctask_operator.core.models import AsyncTaskStatus
from asynctask_operator.core.tasktypes import tasktype_status
from tests.unit.builders import at, task, tasktype
from tests.unit.story import Story, attempt_failed, attempt_succeeded

ECHO_TEMPLATE = {"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "busybox"}]}}}}


@pytest.mark.parametrize(
    "schema",
    [
        {"$ref": "#/$defs/missing"},
        {"properties": {"input": {"$ref": "https://schemas.example.com/input.json"}}},  # never fetched
        {"$ref": "urn:example:input"},
        {"$anchor": "me", "$ref": "#me"},
        {"$ref": "#"},
        {"$schema": 7},
        {"$schema": ["https://json-schema.org/draft/2020-12/schema"]},
    ],
    ids=["dangling-pointer", "remote-ref", "urn-ref", "ref-to-itself", "root-ref", "schema-int", "schema-list"],
)
def test_a_payload_schema_that_cannot_be_applied_fails_the_task_invalid_tasktype(schema: dict[str, Any]) -> None:
    story = Story(
        task("t").payload({"input": "s3://a"}).build(), tasktype=tasktype("echo").payload_schema(schema).build()
    )
    decision = story.step(5)
    assert decision.create_job is None
    assert (story.status.phase, story.status.reason) == ("Failed", "InvalidTaskType")
    assert "payloadSchema" in (story.status.message or "")


@pytest.mark.parametrize(
    ("where", "template"),
    [
        ("metadata.labels", {**ECHO_TEMPLATE, "metadata": {"labels": ["team=media"]}}),
        ("metadata.annotations", {**ECHO_TEMPLATE, "metadata": {"annotations": "x"}}),
        (
            "spec.template.metadata.labels",
            {"spec": {"template": {**ECHO_TEMPLATE["spec"]["template"], "metadata": {"labels": [1]}}}},
        ),
        (
            "spec.template.spec.containers[0].env",
            {"spec": {"template": {"spec": {"containers": [{"name": "main", "env": {"A": "b"}}]}}}},
        ),
        (
            "spec.template.spec.containers[0].env[0]",
            {"spec": {"template": {"spec": {"containers": [{"name": "main", "env": ["A=b"]}]}}}},
        ),
        (
            "spec.template.spec.containers[0].env[1].name",
            {"spec": {"template": {"spec": {"containers": [{"name": "main", "env": [{"name": "A"}, {"name": {}}]}]}}}},
        ),
        (
            "spec.template.spec.containers[0].env[0]",
            {"spec": {"template": {"spec": {"containers": [{"name": "main", "env": [None]}]}}}},
        ),
        (
            "spec.template.spec.containers[1]",
            {"spec": {"template": {"spec": {"containers": [{"name": "main"}, None]}}}},
        ),
        (
            "spec.template.spec.initContainers",
            {"spec": {"template": {"spec": {"containers": [{"name": "main"}], "initContainers": {"name": "init"}}}}},
        ),
    ],
    ids=[
        "labels-list",
        "annotations-string",
        "pod-labels-list",
        "env-object",
        "env-strings",
        "env-name-object",
        "env-null",
        "container-null",
        "init-object",
    ],
)
def test_a_job_template_of_the_wrong_shape_fails_the_task_and_the_type_is_not_ready(
    where: str, template: dict[str, Any]
) -> None:
    # The CRD keeps these parts as written (x-kubernetes-preserve-unknown-fields): the API server admits them.
    bad = tasktype("echo").template(template).build()
    story = Story(task("t").build(), tasktype=bad)
    story.step(5)
    assert (story.status.phase, story.status.reason) == ("Failed", "InvalidTaskType")
    assert f"spec.jobTemplate.{where}" in (story.status.message or "")
    status = tasktype_status(bad, at(5))
    assert status is not None and status.conditions is not None
    [ready] = status.conditions
    assert (ready.status, ready.reason) == ("False", "InvalidTaskType")


def _retrying() -> tuple[Story, dict[str, Any]]:
    story = Story(task("t").deadline(3600).retry(backoff="Fixed", base_seconds=10).build())
    story.step(5)
    story.step(30, **attempt_failed("t", 1))
    return story, {}


def _finishing() -> tuple[Story, dict[str, Any]]:
    story = Story(task("t").build())
    story.step(5)
    return story, attempt_succeeded("t", 1)


def _finished() -> tuple[Story, dict[str, Any]]:
    story, finish = _finishing()
    story.step(30, **finish)
    return story, finish


@pytest.mark.parametrize(
    ("field", "scenario"),
    [
        ("next_retry_time", _retrying),  # read to know when the retry is due
        ("queued_time", _retrying),  # read for the deadline
        ("start_time", _finishing),  # read for the duration
        ("completion_time", _finished),  # read for the TTL
    ],
)
@pytest.mark.parametrize("value", ["yesterday", "2025-13-01T00:00:00Z", "2025-03-01T12:00:00"])
def test_a_status_time_that_cannot_be_read_is_taken_as_absent(field: str, scenario: Any, value: str) -> None:
    story, observed = scenario()
    story.task = story.task.model_copy(update={"status": story.status.model_copy(update={field: value})})
    story.decide(60, **observed)  # no exception: a time without a zone reads as UTC, an unreadable one as none


def test_a_negative_attempt_in_the_status_counts_as_none() -> None:
    story = Story(task("t").status(AsyncTaskStatus(attempt=-1)).build())
    decision = story.step(5)
    assert decision.create_job is not None and decision.create_job["metadata"]["name"] == "t-1"


def test_an_uncapped_exponential_backoff_waits_until_the_end_of_time_instead_of_overflowing() -> None:
    story = Story(task("t").retry(max_retries=100, backoff="Exponential", base_seconds=86400, max_seconds=0).build())
    story.step(5)
    story.task = story.task.model_copy(update={"status": story.status.model_copy(update={"attempt": 60})})
    decision = story.step(30, **attempt_failed("t", 60))
    assert story.status.phase == "Retrying"
    assert story.status.next_retry_time == "9999-12-31T23:59:59Z"
    assert decision.requeue_after is not None and decision.requeue_after > 10**11
