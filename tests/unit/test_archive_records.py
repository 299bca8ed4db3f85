"""A task's wire form as an archive row (archive/records.py): what each column holds, and that any
object with a uid maps to a storable row, whatever else it holds."""

from __future__ import annotations

import json

import pytest

from asynctask_operator.archive.records import Unkeyed, clean, newest, revision_of, row_of
from asynctask_operator.core.idempotency import ANNOTATION_SUBMITTED_BY
from asynctask_operator.core.tracing import ANNOTATION_TRACEPARENT
from tests.unit.archive_builders import T0, finished, row, when


def test_the_columns_of_a_finished_task() -> None:
    obj = finished("t", phase="Failed", reason="PodFailed", created=T0, wait=4.0, duration=12.0, rv=4711,
                   labels={"app": "web"}, attempt=2, queue="gpu", type="render")  # fmt: skip
    obj["metadata"]["annotations"] = {ANNOTATION_SUBMITTED_BY: "alice", "other": "x"}
    obj["spec"]["priority"] = 7
    r = row_of(obj, archived_at=T0 + 100)
    assert (r.uid, r.namespace, r.name, r.type, r.queue) == ("uid-team-a-t", "team-a", "t", "render", "gpu")
    assert (r.phase, r.reason, r.message, r.priority) == ("Failed", "PodFailed", "attempt 2 ended", 7)
    assert (r.labels, r.submitted_by, r.attempts, r.revision) == ({"app": "web"}, "alice", 2, 4711)
    assert (r.created, r.queued, r.started, r.finished) == (T0, T0, T0 + 4, T0 + 16)
    assert (r.duration_seconds, r.queue_wait_seconds, r.archived_at) == (12.0, 4.0, T0 + 100)
    assert r.trace_id is not None and len(r.trace_id) == 32
    assert r.note is None


def test_the_stored_object_is_the_whole_object_without_managed_fields() -> None:
    obj = finished("t", result={"rows": 3})
    obj["metadata"]["annotations"] = {"kubectl.kubernetes.io/last-applied-configuration": "{...}", "keep": "me"}
    stored = json.loads(row(obj).wire)
    assert "managedFields" not in stored["metadata"]
    assert stored["metadata"]["annotations"] == {"keep": "me"}
    assert stored["status"] == obj["status"] and stored["spec"] == obj["spec"]
    assert "managedFields" in obj["metadata"]  # the caller's object is not changed


def test_the_trace_id_is_the_one_a_traceparent_names() -> None:
    obj = finished("t")
    obj["metadata"]["annotations"] = {ANNOTATION_TRACEPARENT: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
    assert row(obj).trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"


def test_the_queue_wait_counts_from_the_queue_entry_and_never_below_zero() -> None:
    obj = finished("t", wait=3.0)
    obj["status"]["queuedTime"] = when(T0 + 10)  # queued again after it started (a retry round)
    assert row(obj).queue_wait_seconds == 0.0
    assert row(finished("u", wait=None)).queue_wait_seconds is None


@pytest.mark.parametrize(
    ("version", "revision"), [("123", 123), ("", 0), ("abc", 0), ("9" * 30, 0), (None, 0), ("-5", 0)]
)
def test_the_revision_is_the_resource_version_where_it_is_a_number(version: object, revision: int) -> None:
    assert revision_of({"metadata": {"resourceVersion": version}}) == revision


def test_newest_keeps_one_row_per_uid_the_latest_revision() -> None:
    a1, a2, b = row(finished("a", rv=5)), row(finished("a", rv=9)), row(finished("b", rv=1))
    assert sorted((r.uid, r.revision) for r in newest([a2, b, a1])) == [("uid-team-a-a", 9), ("uid-team-a-b", 1)]
    unnumbered = row(finished("a", rv="x"))
    assert [r.revision for r in newest([a2, unnumbered])] == [0]  # no order to compare: the later wins


@pytest.mark.parametrize(
    "meta", [None, {}, {"uid": "u"}, {"uid": "u", "namespace": "n"}, {"uid": 3, "namespace": "n", "name": "t"}]
)
def test_an_object_without_uid_namespace_and_name_is_refused(meta: object) -> None:
    with pytest.raises(Unkeyed):
        row_of({"metadata": meta}, 0.0)


@pytest.mark.parametrize(
    "status",
    [
        "Succeeded",
        [1, 2],
        {"phase": 3, "attempts": "many"},
        {"phase": "Failed", "attempts": [1, {"attempt": 1, "startTime": "yesterday"}], "effective": []},
        {"phase": "Succeeded", "attempt": "2", "durationSeconds": "long", "completionTime": 5},
        {"phase": None, "reason": {"nested": True}, "message": ["a"]},
    ],
)
def test_a_malformed_status_still_gives_a_row_and_a_note(status: object) -> None:
    obj = finished("t")
    obj["status"] = status
    r = row_of(obj, 0.0)
    assert r.uid == "uid-team-a-t"
    assert isinstance(r.phase, str) and isinstance(r.attempts, int)
    assert json.loads(r.wire)["status"] == status  # stored as it was, for whoever reads it later
    if not isinstance(status, dict) or ("attempts" in status and not isinstance(status["attempts"], list)):
        assert r.note


def test_text_loses_nul_and_unpaired_surrogates_and_the_object_stays_json() -> None:
    obj = finished("t", labels={"odd": "a\x00b", "k\udc80": "v"}, result={"text": "nul\x00 and \ud800 here"})
    obj["status"]["message"] = "bad\x00message"
    r = row(obj)
    assert r.message == "badmessage"
    assert r.labels == {"odd": "ab", "k?": "v"}
    r.wire.encode("utf-8")  # storable
    assert json.loads(r.wire)["status"]["result"]["text"] == "nul\x00 and \ud800 here"  # escaped, not lost
    assert clean("\x00") == "" and clean(5) == "5"


def test_a_huge_result_is_stored_whole() -> None:
    big = {"blob": "x" * 2_000_000}
    assert json.loads(row(finished("t", result=big)).wire)["status"]["result"] == big


def test_numbers_out_of_the_columns_range_are_left_out() -> None:
    obj = finished("t", attempt=1)
    obj["spec"]["priority"] = 2**40
    obj["status"]["attempt"] = True
    r = row(obj)
    assert (r.priority, r.attempts) == (None, 0)
