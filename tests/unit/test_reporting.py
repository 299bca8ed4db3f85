"""docs/design.md §3.2: report tokens, report bodies, and how progress and results reach the status."""

from __future__ import annotations

import datetime as dt

import pytest

from asynctask_operator.core.config import CoreConfig
from asynctask_operator.core.lifecycle import decide
from asynctask_operator.core.reporting import (
    BadReport,
    Reported,
    TokenRefused,
    mint_token,
    parse_progress,
    parse_result,
    result_from_termination_message,
    verify_token,
)
from tests.unit.builders import at, observe, task
from tests.unit.story import ECHO, Story, attempt_running, attempt_succeeded

KEY = b"k" * 32
CONFIG = CoreConfig(report_url="http://op:8080/", report_key=KEY, progress_interval_seconds=2)


@pytest.mark.parametrize(
    ("token", "namespace", "name", "uid", "running", "status"),
    [
        (mint_token(KEY, "ns", "t", "u1", 2), "ns", "t", "u1", 2, None),
        (mint_token(KEY, "ns", "t", "u1", 2), "ns", "t", "u1", 3, 409),  # a later attempt runs now
        (mint_token(KEY, "ns", "t", "u1", 2), "ns", "t", "u1", None, 409),  # finished
        (mint_token(KEY, "ns", "t", "u1", 2), "ns", "other", "u2", 2, 403),  # another task's token
        (mint_token(KEY, "ns", "t", "u0", 2), "ns", "t", "u1", 2, 403),  # an earlier task of that name
        (mint_token(b"x" * 32, "ns", "t", "u1", 2), "ns", "t", "u1", 2, 403),  # another key
        (mint_token(KEY, "ns", "t", "u1", 2)[:-1] + "A", "ns", "t", "u1", 2, 403),  # tampered
        (mint_token(KEY, "ns", "t", "u1", 2).replace(".2.", ".3."), "ns", "t", "u1", 3, 403),  # other attempt
        ("", "ns", "t", "u1", 2, 401),
        ("v1.two.abc", "ns", "t", "u1", 2, 401),
        ("v0.2.abc", "ns", "t", "u1", 2, 401),
    ],
    ids=[
        "good",
        "later-attempt",
        "finished",
        "other-task",
        "older-uid",
        "other-key",
        "tampered",
        "attempt-swapped",
        "empty",
        "attempt-not-number",
        "unknown-version",
    ],
)
def test_tokens(token: str, namespace: str, name: str, uid: str, running: int | None, status: int | None) -> None:
    if status is None:
        assert verify_token(KEY, token, namespace, name, uid, running) == running
    else:
        with pytest.raises(TokenRefused) as refused:
            verify_token(KEY, token, namespace, name, uid, running)
        assert refused.value.status == status and refused.value.message


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b'{"percent": 140}', "percent"),
        (b'{"percent": -1}', "percent"),
        (b'{"colour": "red"}', "colour"),
        (b"{nope", "not JSON"),
        (b"[40]", "JSON object"),
        (b'{"stepsDone": 6, "stepsTotal": 5}', "stepsDone"),
        (b'{"message": "' + b"x" * 2000 + b'"}', "message"),
    ],
)
def test_bad_progress_bodies_say_what_is_wrong(body: bytes, fragment: str) -> None:
    with pytest.raises(BadReport) as bad:
        parse_progress(body)
    assert bad.value.status == 400
    assert fragment in bad.value.message


def test_good_progress_body() -> None:
    report = parse_progress(
        b'{"percent": 40, "message": "encoding", "step": "encode", "stepsDone": 2, "stepsTotal": 5}'
    )
    assert (report.percent, report.step, report.steps_done, report.steps_total) == (40, "encode", 2, 5)


def test_results_over_the_limit_are_refused_not_truncated() -> None:
    assert parse_result(b'{"a": 1}', 100) == {"a": 1}
    with pytest.raises(BadReport) as bad:
        parse_result(b'{"a": "' + b"x" * 200 + b'"}', 100)
    assert bad.value.status == 413


@pytest.mark.parametrize(
    ("message", "result"),
    [('{"rows": 42}', {"rows": 42}), ("done\n", "done"), ("", None), ("  ", None), ("[1, 2]", [1, 2])],
)
def test_result_from_the_termination_message(message: str, result: object) -> None:
    assert result_from_termination_message(message, 1024) == result


def test_jobs_get_the_report_url_and_a_token_for_their_attempt() -> None:
    decision = decide(observe(task("t").uid("u1").build(), now=at(5), tasktype=ECHO), CONFIG)
    assert decision.create_job is not None
    env = {e["name"]: e["value"] for e in decision.create_job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["ASYNCTASK_REPORT_URL"] == "http://op:8080/v1/namespaces/media/asynctasks/t"
    assert verify_token(KEY, env["ASYNCTASK_REPORT_TOKEN"], "media", "t", "u1", 1) == 1


def test_no_report_env_without_a_report_url() -> None:
    decision = decide(observe(task("t").build(), now=at(5), tasktype=ECHO), CoreConfig())
    assert decision.create_job is not None
    names = {e["name"] for e in decision.create_job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert "ASYNCTASK_REPORT_URL" not in names and "ASYNCTASK_REPORT_TOKEN" not in names


def reported(attempt: int = 1, percent: int = 40, written: float | None = None, **more: object) -> Reported:
    progress = {"percent": percent, "updateTime": "2025-03-01T12:00:10Z"}
    written_at = at(written) if written is not None else None
    return Reported(attempt=attempt, progress=progress, progress_written_at=written_at, **more)  # type: ignore[arg-type]


def running_story() -> Story:
    story = Story(task("t").build(), config=CONFIG)
    story.step(5)
    return story


@pytest.mark.parametrize(
    ("written", "now", "writes", "requeue"),
    [(None, 10, True, None), (9, 10, False, 1.0), (8, 10, True, None), (5, 10, True, None)],
    ids=["first-report-at-once", "within-interval-waits", "interval-passed", "long-ago"],
)
def test_progress_is_written_at_most_once_per_interval(
    written: float | None, now: float, writes: bool, requeue: float | None
) -> None:
    story = running_story()
    decision = story.decide(now, reported=reported(written=written), **attempt_running("t", 1))
    assert (decision.status is not None) is writes
    if writes:
        assert decision.status is not None and decision.status.progress is not None
        assert decision.status.progress.percent == 40
    else:
        assert decision.requeue_after == requeue


def test_the_same_progress_again_writes_nothing() -> None:
    story = running_story()
    story.step(10, reported=reported(), **attempt_running("t", 1))
    decision = story.decide(20, reported=reported(written=10), **attempt_running("t", 1))
    assert decision.status is None


def test_reports_of_another_attempt_are_ignored() -> None:
    story = running_story()
    decision = story.decide(10, reported=reported(attempt=2), **attempt_running("t", 1))
    assert decision.status is None


def test_a_result_is_written_at_once_with_the_pending_progress() -> None:
    story = running_story()
    decision = story.decide(
        10, reported=reported(written=9.5, result={"ok": True}, has_result=True), **attempt_running("t", 1)
    )
    assert decision.status is not None
    assert decision.status.result == {"ok": True}
    assert decision.status.progress is not None and decision.status.progress.percent == 40


def test_the_terminal_write_carries_the_final_progress_and_result() -> None:
    story = running_story()
    story.step(10, reported=reported(percent=10), **attempt_running("t", 1))
    final = reported(percent=100, written=10, result={"url": "s3://x"}, has_result=True)
    story.step(10.5, reported=final, **attempt_succeeded("t", 1))
    status = story.status
    assert (status.phase, status.result) == ("Succeeded", {"url": "s3://x"})
    assert status.progress is not None and status.progress.percent == 100


def test_a_reported_result_wins_over_the_termination_message() -> None:
    story = running_story()
    final = Reported(attempt=1, result={"from": "http"}, has_result=True)
    story.step(20, reported=final, **attempt_succeeded("t", 1))
    assert story.status.result == {"from": "http"}


def test_now_is_utc_in_progress() -> None:
    assert at(0).tzinfo == dt.UTC
