"""What the archiver does with each copy of a task (archive/sink.py), and its bounded backlog
(archive/backlog.py): pure, no database."""

from __future__ import annotations

import itertools

import pytest

from asynctask_operator.archive.backlog import Backlog
from asynctask_operator.archive.sink import TaskSink, Want, wanted
from asynctask_operator.core.archiving import ANNOTATION_ARCHIVED, mark_in
from tests.unit.archive_builders import finished

Obj = dict[str, object]


def marked(obj: dict[str, object], value: str | None = None) -> dict[str, object]:
    meta = dict(obj["metadata"])  # type: ignore[call-overload]
    meta["annotations"] = {ANNOTATION_ARCHIVED: value if value is not None else mark_in(obj) or ""}
    return {**obj, "metadata": meta}


RUNNING = finished("t", phase="Running", duration=None)
DONE = finished("t", phase="Succeeded")

CASES = [
    ("finished, unmarked", DONE, False, False, None, Want.WRITE_AND_MARK),
    ("finished, marked", marked(DONE), False, False, None, Want.NOTHING),
    ("finished, marked for an earlier state", marked(DONE, "1/2020-01-01T00:00:00Z"), False, False, None,
     Want.WRITE_AND_MARK),
    ("finished and deleted, unmarked", DONE, True, False, None, Want.WRITE),
    ("finished and deleted, marked", marked(DONE), True, False, None, Want.NOTHING),
    ("unfinished and deleted", RUNNING, True, False, None, Want.WRITE),
    ("unfinished", RUNNING, False, False, None, Want.NOTHING),
    ("unfinished, phases recorded, a new phase", RUNNING, False, True, "Pending", Want.WRITE),
    ("unfinished, phases recorded, the same phase", RUNNING, False, True, "Running", Want.NOTHING),
    ("malformed status", {**DONE, "status": "broken"}, False, True, None, Want.WRITE),
]  # fmt: skip


@pytest.mark.parametrize(("what", "obj", "deleted", "phases", "last", "want"), CASES, ids=[c[0] for c in CASES])
def test_what_to_do_with_a_copy(what: str, obj: Obj, deleted: bool, phases: bool, last: str | None, want: Want) -> None:
    assert wanted(obj, deleted=deleted, record_phases=phases, last_phase=last) is want


def sink(capacity: int = 100, phases: bool = False) -> TaskSink:
    ticks = itertools.count()
    return TaskSink(Backlog(capacity), lambda: float(next(ticks)), record_phases=phases)


def test_a_burst_of_events_about_one_task_is_one_write_of_its_newest_copy() -> None:
    s = sink()
    for rv in (10, 12, 11):  # 11 arrives late
        s.event("MODIFIED", finished("t", rv=rv))
    [pending] = s.backlog.take(10)
    assert (pending.obj["metadata"]["resourceVersion"], pending.mark) == ("12", True)


def test_the_mark_of_a_task_being_written_leaves_nothing_to_write() -> None:
    s = sink()
    s.event("MODIFIED", DONE)
    s.event("MODIFIED", marked(DONE))  # another replica (or an earlier run) archived it
    assert len(s.backlog) == 0


def test_a_deletion_is_written_without_a_mark_even_when_the_backlog_is_full() -> None:
    s = sink(capacity=2)
    for i in range(3):
        s.listed(finished(f"t{i}"), 0.0)
    assert (len(s.backlog), s.backlog.overflowed, s.backlog.dropped) == (2, True, 1)
    s.event("DELETED", finished("gone", phase="Running", duration=None))
    assert len(s.backlog) == 3
    s.event("DELETED", finished("gone-too", phase="Running", duration=None))
    s.event("DELETED", finished("gone-three", phase="Running", duration=None))  # twice the capacity: no room
    assert (len(s.backlog), s.backlog.lost) == (4, 1)
    s.backlog.forget("uid-team-a-gone-too")
    assert [p.mark for p in s.backlog.take(3)] == [True, True, False]
    assert s.backlog.drained.is_set()  # overflowed and written out: time to list again
    s.backlog.relisted()
    assert not s.backlog.overflowed and not s.backlog.drained.is_set()


def test_a_batch_not_written_goes_back_in_front_unless_a_newer_copy_came() -> None:
    s = sink()
    for name in ("a", "b", "c"):
        s.listed(finished(name, rv=1), 0.0)
    batch = s.backlog.take(2)
    s.event("MODIFIED", finished("a", rv=2))  # while the batch was out
    s.listed(finished("d", rv=1), 0.0)
    s.backlog.give_back(batch)
    order = [(p.obj["metadata"]["name"], p.obj["metadata"]["resourceVersion"]) for p in s.backlog.take(10)]
    assert order == [("b", "1"), ("c", "1"), ("a", "2"), ("d", "1")]


def test_phases_are_written_once_each_with_record_phases() -> None:
    s = sink(phases=True)
    pending = finished("t", phase="Pending", wait=None, duration=None, rv=1)
    running = finished("t", phase="Running", duration=None, rv=2)
    s.event("ADDED", pending)
    s.backlog.take(10)
    s.event("MODIFIED", pending)  # a change that is not a phase change
    assert len(s.backlog) == 0
    s.event("MODIFIED", running)
    assert len(s.backlog.take(10)) == 1
    s.event("MODIFIED", finished("t", rv=3))
    assert s.backlog.take(10)[0].mark and "uid-team-a-t" not in s.phases


def test_a_task_without_a_uid_is_skipped() -> None:
    s = sink()
    obj = finished("t")
    obj["metadata"].pop("uid")
    s.event("MODIFIED", obj)
    assert len(s.backlog) == 0
