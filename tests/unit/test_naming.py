"""docs/design.md §3.1: the Job of an attempt is `<task>-<attempt>`, shortened with a hash to stay within 63 characters."""

from __future__ import annotations

import re

import pytest

from asynctask_operator.core.naming import MAX_JOB_NAME, job_name, label_value

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
LONG = "nightly-report-for-the-accounting-department-of-the-northern-region"  # 67 characters


@pytest.mark.parametrize(
    ("task_name", "attempt", "expected"),
    [
        ("transcode-7f3a", 1, "transcode-7f3a-1"),
        ("transcode-7f3a", 12, "transcode-7f3a-12"),
        ("a.b", 2, "a.b-2"),
        ("x" * 61, 1, "x" * 61 + "-1"),  # exactly 63: kept as is
    ],
    ids=["short", "two-digit-attempt", "dotted", "exactly-63"],
)
def test_short_names_are_task_dash_attempt(task_name: str, attempt: int, expected: str) -> None:
    assert job_name(task_name, attempt) == expected


@pytest.mark.parametrize(
    "task_name",
    [
        LONG,
        "x" * 62,
        "a" * 253,
        "ends-in-separators-at-the-cut-point-" + "-" * 20 + "tail-of-the-name",
        "dots.at.the.cut.point.dots.at.the.cut.point.dots.at.the.cut.point.......x",
    ],
    ids=["long", "one-over", "max-length", "dashes-at-cut", "dots-at-cut"],
)
@pytest.mark.parametrize("attempt", [1, 10, 100], ids=["attempt-1", "attempt-10", "attempt-100"])
def test_long_names_fit_63_chars_and_stay_valid(task_name: str, attempt: int) -> None:
    name = job_name(task_name, attempt)
    assert len(name) <= MAX_JOB_NAME
    assert name.endswith(f"-{attempt}")
    assert DNS_LABEL.match(name), name
    assert re.search(rf"-[0-9a-f]{{8}}-{attempt}$", name), name  # shortened with a hash of the full name
    head = name[: -len(f"-{attempt}")].rsplit("-", 1)[0]
    assert not head.endswith(("-", ".")), name
    assert job_name(task_name, attempt) == name  # deterministic: the name is the lock


def test_long_names_sharing_a_prefix_get_distinct_job_names() -> None:
    first, second = LONG + "-alpha", LONG + "-bravo"
    assert job_name(first, 1) != job_name(second, 1)
    assert job_name(first, 1)[:40] == job_name(second, 1)[:40]  # readable: both keep the common prefix


def test_attempts_are_numbered_from_one() -> None:
    with pytest.raises(ValueError, match="from 1"):
        job_name("t", 0)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("video-transcode", "video-transcode"),
        ("a.b_c-D", "a.b_c-D"),
        ("", ""),
        ("has space/and:colon", "has-space-and-colon"),
        ("-leading-and-trailing-", "leading-and-trailing"),
    ],
    ids=["valid", "valid-mixed", "empty", "invalid-chars", "bad-ends"],
)
def test_label_value_keeps_valid_values_and_cleans_others(value: str, expected: str) -> None:
    assert label_value(value) == expected


@pytest.mark.parametrize(
    "value",
    ["a" * 64, "b" * 253, "report." * 40, "!!!"],
    ids=["64-chars", "253-chars", "dotted-long", "nothing-valid"],
)
def test_label_value_is_always_a_valid_label(value: str) -> None:
    out = label_value(value)
    assert out
    assert len(out) <= 63
    assert LABEL_VALUE.match(out), out
    assert label_value(value) == out


def test_long_label_values_sharing_a_prefix_stay_distinct() -> None:
    assert label_value("a" * 70 + "x") != label_value("a" * 70 + "y")
