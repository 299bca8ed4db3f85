"""Fair admission inside a TaskQueue (core/fairness.py), and queue positions as a reader computes them
(core/positions.py): the order the ledger admits in is the order the positions show. Pure."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asynctask_operator.core.concurrency import KeyClaim
from asynctask_operator.core.fairness import Line, admission_order
from asynctask_operator.core.models import Fairness, TaskQueueSpec
from asynctask_operator.core.positions import WaitingTask, queue_positions
from asynctask_operator.core.queueing import AdmissionLedger, Seen
from tests.unit.builders import NAMESPACE, at, stamp

Q = (NAMESPACE, "q")


def created(seconds: float) -> str:
    return stamp(at(seconds))


# --------------------------------------------------------------------------- the line's order


def drain(line: Line[str]) -> list[str]:
    out = []
    while (name := line.admit_next()) is not None:
        out.append(name)
    return out


def test_tenant_b_behind_tenant_as_backlog_is_served_every_other_turn() -> None:
    """Tenant a's backlog of 1,000 was there first, and a task of a's was admitted last: b's 10 come
    one every other admission — b's last is the 20th admission, not the 1,010th."""
    line: Line[str] = Line(fair=True)
    line.record("a-running", ("a", 0))
    for i in range(1000):
        line.add(f"a{i:04}", admission_order(0, created(0), f"a{i:04}"), "a")
    for i in range(10):
        line.add(f"b{i:02}", admission_order(0, created(60), f"b{i:02}"), "b")
    order = drain(line)
    assert order[:20] == [x for i in range(10) for x in (f"b{i:02}", f"a{i:04}")]
    assert order[20:] == [f"a{i:04}" for i in range(10, 1000)]


@pytest.mark.parametrize(
    ("tasks", "turns", "expected"),
    [
        # (name, group, priority, seconds after creation)
        ([("a1", "a", 0, 0), ("a2", "a", 0, 1), ("b1", "b", 0, 5), ("c1", "c", 0, 3)], {}, ["a1", "c1", "b1", "a2"]),
        ([("a1", "a", 0, 0), ("a2", "a", 0, 1), ("b1", "b", 0, 5)], {"a": 4}, ["b1", "a1", "a2"]),
        ([("a1", "a", 0, 0), ("b1", "b", 0, 5), ("b2", "b", 0, 6)], {"a": 2, "b": 3}, ["a1", "b1", "b2"]),
        ([("a1", "a", 0, 0), ("a2", "a", 9, 1), ("b1", "b", 0, 5)], {"a": 4}, ["a2", "b1", "a1"]),
        ([("a1", "a", 0, 0), ("b1", "b", 1, 9), ("b2", "b", 1, 10)], {"b": 8}, ["b1", "b2", "a1"]),
    ],
    ids=["never-served-by-oldest-head", "least-recently-served-first", "served-earlier-goes-first",
         "priority-wins-across-levels", "priority-beats-the-rotation"],
)  # fmt: skip
def test_round_robin_within_a_priority(
    tasks: list[tuple[str, str, int, float]], turns: dict[str, int], expected: list[str]
) -> None:
    line: Line[str] = Line(fair=True)
    for group, turn in turns.items():
        line.record(f"{group}-before", (group, turn))
    for name, group, priority, seconds in tasks:
        line.add(name, admission_order(priority, created(seconds), name), group)
    assert drain(line) == expected


def test_without_fairness_the_line_is_priority_then_age_then_name() -> None:
    line: Line[str] = Line(fair=False)
    tasks = [(f"t{i:02}", (i * 7) % 3, (i * 13) % 17) for i in range(40)]
    for name, priority, seconds in tasks:
        line.add(name, admission_order(priority, created(seconds), name), None)
    expected = sorted(tasks, key=lambda t: admission_order(t[1], created(t[2]), t[0]))
    assert drain(line) == [t[0] for t in expected]


def test_a_turn_given_back_moves_its_group_up_again() -> None:
    line: Line[str] = Line(fair=True)
    line.record("old-b", ("b", 1))
    line.add("a1", admission_order(0, created(0), "a1"), "a")
    line.add("b1", admission_order(0, created(9), "b1"), "b")
    line.record("a-taken", ("a", 2))  # an a was admitted: b's turn
    line.record("a-taken", None)  # ... and given back (its Job could not be created)
    assert line.admit_next() == "a1"


# --------------------------------------------------------------------------- the positions are the ledger's order


@dataclasses.dataclass(frozen=True)
class World:
    waiting: list[WaitingTask]
    holders: list[WaitingTask]  # Running (a slot, and its key) or Retrying (its key only)
    past: list[WaitingTask]  # finished, with a turn
    concurrency: int | None
    fair: bool


def fairness(fair: bool) -> Fairness | None:
    return Fairness(by="Label", label="tenant") if fair else None


def claim(task: WaitingTask) -> KeyClaim | None:
    return KeyClaim(task.key, task.limit) if task.key else None


def seen(task: WaitingTask, phase: str, turn: int | None = None) -> Seen:
    recorded = task.turn if turn is None else turn
    kept = (task.group or "", recorded) if recorded is not None else None
    return Seen(Q, phase, False, claim(task), (task.creation_timestamp, task.name), kept)


def ledger_order(world: World) -> list[str]:
    """What the operator admits, one holder ending at a time in the order they started."""
    ledger: AdmissionLedger[str] = AdmissionLedger()
    limit = world.concurrency if world.concurrency is not None else 100_000
    ledger.set_queue(Q, TaskQueueSpec(concurrency=limit, fairness=fairness(world.fair)))
    for task in world.past:
        ledger.observe(task.name, seen(task, "Succeeded"))
    holders = sorted(world.holders, key=lambda t: (t.started, t.name))
    for task in holders:
        ledger.observe(task.name, seen(task, task.phase))
    by_name = {t.name: t for t in world.waiting}
    for task in reversed(world.waiting):  # the order of the requests does not matter
        ledger.observe(task.name, seen(task, "Pending"))
        order = admission_order(task.priority, task.creation_timestamp, task.name)
        ledger.request(task.name, Q, order, 0.0, claim(task), {"tenant": task.group or ""})
    ends = [t.name for t in holders]
    admitted: list[str] = []
    while len(admitted) < len(world.waiting):
        batch, _ = ledger.admit(Q, 0.0)
        admitted += batch
        ends += batch
        if len(admitted) == len(world.waiting) or not ends:
            break
        name = ends.pop(0)
        task = by_name.get(name) or next(t for t in world.holders if t.name == name)
        turn = ledger.turn_of(name)
        ledger.observe(name, seen(task, "Succeeded", turn[1] if turn else None))
    return admitted


def positions_order(world: World) -> list[str]:
    tasks = world.waiting + world.holders + world.past
    concurrency = {"q": world.concurrency} if world.concurrency is not None else None
    positions = queue_positions(tasks, concurrency)
    assert sorted(positions.values()) == list(range(1, len(world.waiting) + 1))
    return [name for (_, name), _ in sorted(positions.items(), key=lambda kv: kv[1])]


@st.composite
def worlds(draw: st.DrawFn) -> World:
    fair = draw(st.booleans())
    keys = st.sampled_from((None, None, "k1", "k2", "k3"))
    groups = st.sampled_from(("a", "b", "c"))

    def task(name: str, phase: str, started: str = "") -> WaitingTask:
        group = draw(groups) if fair else None
        return WaitingTask(
            name, "q", draw(st.sampled_from((0, 0, 5))), created(draw(st.integers(0, 5))), phase,
            draw(keys), draw(st.sampled_from((1, 1, 2))), group, None, started,
        )  # fmt: skip

    waiting = [task(f"w{i:02}", "Pending") for i in range(draw(st.integers(0, 14)))]
    holders = []
    for i in range(draw(st.integers(0, 4))):
        phase = draw(st.sampled_from(("Running", "Running", "Retrying")))
        held = task(f"h{i}", phase, created(draw(st.integers(0, 5))))
        if phase == "Retrying" and held.key is None:
            continue
        turn = draw(st.one_of(st.none(), st.integers(0, 6))) if fair else None
        holders.append(dataclasses.replace(held, turn=turn))
    past = [
        dataclasses.replace(task(f"p{i}", "Succeeded"), turn=draw(st.integers(0, 6)))
        for i in range(draw(st.integers(0, 3)) if fair else 0)
    ]
    concurrency = draw(st.one_of(st.none(), st.integers(1, 4)))
    return World(waiting, holders, past, concurrency, fair)


@settings(max_examples=400, deadline=None)
@given(worlds())
def test_the_positions_are_the_order_the_ledger_admits_in(world: World) -> None:
    assert positions_order(world) == ledger_order(world)


def test_positions_place_a_task_behind_a_busy_key_after_those_that_can_start() -> None:
    waiting = [
        WaitingTask("x-old", "q", 0, created(0), key="x"),
        WaitingTask("y", "q", 0, created(5), key="y"),
        WaitingTask("plain", "q", 0, created(6)),
    ]
    holder = WaitingTask("x-holder", "q", 0, created(0), "Running", key="x", started=created(1))
    assert queue_positions([*waiting, holder]) == {("q", "y"): 1, ("q", "plain"): 2, ("q", "x-old"): 3}
    # A queue of one: the slot frees when x-holder ends, and so does x: the oldest goes first.
    assert queue_positions([*waiting, holder], {"q": 1}) == {("q", "x-old"): 1, ("q", "y"): 2, ("q", "plain"): 3}


def test_a_turn_given_at_admission_stands_while_copies_from_before_the_running_write_come() -> None:
    """The Job's creation is seen before the Running write that records the turn: that copy (Pending,
    a live Job, no turn) must not take the turn back, or the next admission reuses it."""
    ledger: AdmissionLedger[str] = AdmissionLedger()
    ledger.set_queue(Q, TaskQueueSpec(concurrency=1, fairness=fairness(True)))
    for name, tenant in (("a1", "a"), ("b1", "b"), ("b2", "b")):
        ledger.observe(name, Seen(Q, "Pending"))
        ledger.request(name, Q, admission_order(0, created(0), name), 0.0, None, {"tenant": tenant})
    assert ledger.admit(Q, 0.0)[0] == ["a1"]
    assert ledger.turn_of("a1") == ("a", 0)
    ledger.observe("a1", Seen(Q, "Pending", live_job=True))  # its Job, seen before its Running write
    assert ledger.turn_of("a1") == ("a", 0)
    ledger.observe("a1", Seen(Q, "Succeeded", turn=("a", 0)))
    assert ledger.admit(Q, 0.0)[0] == ["b1"]
    assert ledger.turn_of("b1") == ("b", 1)
