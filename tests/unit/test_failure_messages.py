"""docs/task-authors.md's table of failure messages is what the operator writes: one wording for every exit."""

from __future__ import annotations

import pathlib
import re
from typing import Any

import pytest

from tests.unit.builders import job, pod, task, terminated
from tests.unit.story import Story

DOC = pathlib.Path(__file__).resolve().parents[2] / "docs" / "task-authors.md"
WROTE = "input s3://in/a.mp4 not found"
STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"


def documented() -> dict[str, tuple[str, str]]:
    """The rows of the table under "Say why you failed": label -> (status.reason, status.message)."""
    text = DOC.read_text().split("**Say why you failed.**", 1)[1]
    rows = re.findall(r"^\| (.+?) \| `(\w+)` \| `(.+)` \|$", text, re.MULTILINE)
    return {label: (reason, message) for label, reason, message in rows}


def failed(attempt: int) -> dict[str, Any]:
    """The attempt's Job failed: its container exited 2 and wrote WROTE to its termination log."""
    return {
        "jobs": (job("t", attempt).failed().view(),),
        "pods": (pod(f"t-{attempt}").phase("Failed").container("main", terminated(2, message=WROTE)).view(),),
    }


def first_attempt_fails(**retry: Any) -> Story:
    story = Story(task("t").retry(**retry).build())
    story.step(5)
    story.step(30, **failed(1))
    return story


def every_attempt_fails(**retry: Any) -> Story:
    story, seconds = Story(task("t").retry(**retry).build()), 5.0
    story.step(seconds)
    while story.status.phase in ("Running", "Retrying"):
        seconds += 1000
        story.step(seconds, **failed(story.status.attempt or 1))
    return story


STORIES = {
    "attempt 1, retries left (phase `Retrying`)": lambda: first_attempt_fails(max_retries=3),
    "the last one allowed (`maxRetries: 3`)": lambda: every_attempt_fails(max_retries=3),
    "with `maxRetries: 0`": lambda: first_attempt_fails(max_retries=0),
    "with 2 in `nonRetryableExitCodes`": lambda: first_attempt_fails(max_retries=3, non_retryable_exit_codes=[2]),
}


def test_the_table_has_a_row_for_each_story() -> None:
    assert sorted(documented()) == sorted(STORIES)


@pytest.mark.parametrize("label", sorted(STORIES))
def test_each_documented_message_is_the_operators(label: str) -> None:
    reason, message = documented()[label]
    status = STORIES[label]().status
    assert status.reason == reason
    # The documented time of the next attempt is an example; the rest is word for word.
    assert re.fullmatch(re.escape(message).replace(re.escape("2026-01-02T15:04:15Z"), STAMP), status.message or "")
    [*_, last] = status.attempts or []
    assert (last.exit_code, last.message) == (2, f"container main exited with code 2: {WROTE}")
