"""docs/design.md §2.2: who a TaskQueue admits next, how many at once, and how fast.

The ledger (:class:`AdmissionLedger`) is pure and takes the time as an argument, so every
scenario here is a sequence of calls at explicit moments: nothing sleeps. Tasks are
plain names; :class:`Line` spells a task's place in line as (priority, seconds after
creation) so a table says only what matters.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence

import pytest

from asynctask_operator.core.models import TaskQueueSpec
from asynctask_operator.core.queueing import (
    QUEUE_NOT_FOUND,
    QUEUE_PAUSED,
    QUEUED,
    AdmissionLedger,
    QueueCounts,
    QueueKey,
    TokenBucket,
    admission_order,
)
from tests.unit.builders import NAMESPACE, at, stamp

GPU: QueueKey = (NAMESPACE, "gpu")
CPU: QueueKey = (NAMESPACE, "cpu")
DEFAULT: QueueKey = (NAMESPACE, "default")
ELSEWHERE_DEFAULT: QueueKey = ("other", "default")


def spec(concurrency: int, per_minute: int | None = None, paused: bool | None = None) -> TaskQueueSpec:
    return TaskQueueSpec(concurrency=concurrency, max_starts_per_minute=per_minute, paused=paused)


def order(name: str, priority: int = 0, created: float = 0) -> tuple[int, str, str]:
    return admission_order(priority, stamp(at(created)), name)


class Line:
    """A AdmissionLedger of named tasks, with the bookkeeping a test would otherwise repeat."""

    def __init__(self, default_concurrency: int | None = None, **queues: TaskQueueSpec) -> None:
        self.ledger: AdmissionLedger[str] = AdmissionLedger(default_concurrency)
        for name, queue_spec in queues.items():
            self.ledger.set_queue((NAMESPACE, name), queue_spec)

    def ask(self, name: str, priority: int = 0, created: float = 0, queue: QueueKey = GPU, now: float = 0) -> None:
        self.ledger.request(name, queue, order(name, priority, created), now)

    def ask_all(self, tasks: Sequence[tuple[str, int, float]], queue: QueueKey = GPU, now: float = 0) -> None:
        for name, priority, created in tasks:
            self.ask(name, priority, created, queue, now)

    def admit(self, queue: QueueKey = GPU, now: float = 0) -> list[str]:
        admitted, _ = self.ledger.admit(queue, now)
        return admitted

    def drain(self, queue: QueueKey = GPU) -> list[str]:
        """Admit everything, one finishing as each is admitted: the whole admission order."""
        admitted: list[str] = []
        while batch := self.admit(queue):
            for name in batch:
                self.ledger.forget(name)
            admitted += batch
        return admitted

    def counts(self, queue: QueueKey = GPU, now: float = 0) -> QueueCounts:
        return self.ledger.counts(queue, now)

    def busy(self, queue: QueueKey = GPU) -> int:
        return self.counts(queue).running


# --------------------------------------------------------------------------- admission_order


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (order("b", priority=5, created=100), order("a", priority=0, created=0)),
        (order("z", priority=1, created=999), order("a", priority=0, created=0)),
        (order("a", priority=0, created=0), order("b", priority=-1, created=0)),
        (order("a", priority=-1, created=0), order("b", priority=-2, created=0)),
        (order("b", created=10), order("a", created=11)),
        (order("b", created=59), order("a", created=60)),  # across a minute: 12:00:59 < 12:01:00
        (order("b", created=3599), order("a", created=3600)),  # across an hour
        (order("b", created=9 * 86400), order("a", created=10 * 86400)),  # 03-10 after 03-09
        (order("a"), order("b")),
        (order("task-10"), order("task-9")),  # by name as text, not as number
    ],
    ids=[
        "priority-beats-age",
        "priority-beats-name",
        "zero-before-negative",
        "negative-priorities",
        "older-first",
        "older-across-minute",
        "older-across-hour",
        "older-across-day",
        "then-by-name",
        "name-is-text",
    ],
)
def test_admission_order_puts_the_first_before_the_second(
    first: tuple[int, str, str], second: tuple[int, str, str]
) -> None:
    assert first < second
    assert sorted([second, first]) == [first, second]


def test_admission_order_sorts_a_mixed_line() -> None:
    tasks = [("e", 0, 5), ("a", 10, 9), ("d", 0, 1), ("c", 0, 1), ("b", 10, 2), ("f", -3, 0)]
    ranked = sorted(tasks, key=lambda t: order(t[0], t[1], t[2]))
    assert [name for name, _, _ in ranked] == ["b", "a", "c", "d", "e", "f"]


def test_admission_order_is_total_for_distinct_names() -> None:
    keys = [
        order(name, priority, created) for name, priority, created in itertools.product("abc", (-1, 0, 1), (0, 1, 60))
    ]
    assert len(set(keys)) == len(keys)  # no two distinct tasks tie
    for x, y in itertools.combinations(keys, 2):
        assert (x < y) != (y < x)


# --------------------------------------------------------------------------- TokenBucket


@pytest.mark.parametrize(
    ("per_minute", "interval"),
    [(60, 1.0), (120, 0.5), (1, 60.0), (6000, 0.01), (7, 60 / 7)],
)
def test_a_token_comes_once_per_interval(per_minute: int, interval: float) -> None:
    bucket = TokenBucket(per_minute)
    assert bucket.interval == pytest.approx(interval)
    assert bucket.take(1000.0)
    assert not bucket.take(1000.0 + interval * 0.99)
    assert bucket.ready_at(1000.0) == pytest.approx(1000.0 + interval)
    assert bucket.take(1000.0 + interval)


@pytest.mark.parametrize(
    ("takes", "expected"),
    [
        ([0.0, 0.0, 0.5, 0.99, 1.0, 1.5, 2.0], [True, False, False, False, True, False, True]),
        ([0.0, 100.0, 100.0, 100.5, 101.0], [True, True, False, False, True]),  # idle time banks nothing
        ([5.0, 7.5, 8.0, 8.4, 8.5], [True, True, False, False, True]),  # spaced from the last start
    ],
    ids=["steady", "no-burst-after-idle", "late-start"],
)
def test_token_bucket_at_60_per_minute(takes: list[float], expected: list[bool]) -> None:
    bucket = TokenBucket(60)
    assert [bucket.take(now) for now in takes] == expected


def test_a_fresh_bucket_is_ready_now() -> None:
    bucket = TokenBucket(1)
    assert bucket.ready_at(42.0) == 42.0
    assert bucket.take(42.0)
    assert bucket.ready_at(42.0) == 102.0
    assert bucket.ready_at(200.0) == 200.0  # past due: now


@pytest.mark.parametrize(("per_minute", "in_ten_seconds"), [(60, 10), (120, 20), (30, 5), (6, 1)])
def test_a_burst_of_1000_is_spread_evenly(per_minute: int, in_ten_seconds: int) -> None:
    """1,000 tasks at once against 60/min start one per second, admitted from on a fine clock."""
    line = Line(gpu=spec(100_000, per_minute=per_minute))
    line.ask_all([(f"t{i:04}", 0, 0) for i in range(1000)])
    started: list[float] = []
    for tick in range(0, 40 * 20):  # every 0.05 s for 20 s
        now = tick / 40
        started += [now] * len(line.admit(now=now))
    assert len([t for t in started if t < 10]) == in_ten_seconds
    interval = 60 / per_minute
    assert started[:in_ten_seconds] == pytest.approx([i * interval for i in range(in_ten_seconds)])


def test_a_burst_of_1000_at_60_per_minute_admitted_when_told() -> None:
    """The operator admits again at the time admit() returns: every task starts, one a second."""
    line = Line(gpu=spec(100_000, per_minute=60))
    line.ask_all([(f"t{i:04}", 0, 0) for i in range(1000)])
    now: float | None = 0.0
    started: dict[str, float] = {}
    while now is not None:
        admitted, again = line.ledger.admit(GPU, now)
        assert len(admitted) <= 1
        started.update(dict.fromkeys(admitted, now))
        assert again is None or again > now
        now = again
    assert len(started) == 1000
    assert sorted(started.values()) == [float(i) for i in range(1000)]
    assert len([t for t in started.values() if 0 <= t < 10]) == 10
    assert list(started) == [f"t{i:04}" for i in range(1000)]  # by name (all alike otherwise)


# --------------------------------------------------------------------------- concurrency


def test_fifty_tasks_on_a_queue_of_three_run_three_at_a_time_in_order() -> None:
    line = Line(gpu=spec(3))
    tasks = [(f"t{i:02}", (i * 7) % 5, float((i * 13) % 17)) for i in range(50)]
    line.ask_all(tasks)
    expected = [name for name, _, _ in sorted(tasks, key=lambda t: order(*t))]

    admitted = line.admit()
    assert admitted == expected[:3]
    assert line.admit() == []  # full: admitting again admits nothing
    assert line.busy() == 3

    running = list(admitted)
    while running:
        for name in running:
            line.ledger.running(name, GPU)  # the reconciler wrote Running
        line.ledger.forget(running.pop(0))  # the oldest finishes
        more = line.admit()
        assert len(more) == (1 if len(admitted) < 50 else 0)  # exactly one more while any wait
        admitted += more
        running += more
        assert line.busy() == len(running) <= 3
    assert admitted == expected
    assert line.counts() == QueueCounts(pending=0, running=0, oldest_pending_seconds=0, exists=True)


@pytest.mark.parametrize(
    ("tasks", "expected"),
    [
        ([("a", 0, 0), ("b", 0, 1), ("c", 0, 2)], ["a", "b", "c"]),
        ([("a", 0, 0), ("b", 5, 1), ("c", 9, 2)], ["c", "b", "a"]),
        ([("c", 0, 0), ("b", 0, 0), ("a", 0, 0)], ["a", "b", "c"]),
        ([("old", 0, 0), ("new", 1, 500), ("older", 0, -10), ("low", -1, -99)], ["new", "older", "old", "low"]),
        ([("x", 2, 3), ("y", 2, 3), ("w", 2, 4), ("v", 3, 9)], ["v", "x", "y", "w"]),
    ],
    ids=["fifo", "priority", "name", "mixed", "priority-age-name"],
)
def test_a_queue_of_one_admits_in_priority_age_name_order(
    tasks: list[tuple[str, int, float]], expected: list[str]
) -> None:
    line = Line(gpu=spec(1))
    line.ask_all(tasks)
    assert line.drain() == expected


def test_a_task_asked_for_while_others_run_waits_its_turn() -> None:
    line = Line(gpu=spec(2))
    line.ask_all([("a", 0, 0), ("b", 0, 1), ("c", 0, 2)])
    assert line.admit() == ["a", "b"]
    line.ask("urgent", priority=10, created=50)
    line.ledger.forget("a")
    assert line.admit() == ["urgent"]  # jumps the line, but takes no extra slot
    line.ledger.forget("b")
    assert line.admit() == ["c"]


@pytest.mark.parametrize("concurrency", [0, 1, 4])
def test_never_more_than_concurrency_whatever_the_order_of_events(concurrency: int) -> None:
    line = Line(gpu=spec(concurrency))
    line.ask_all([(f"t{i}", i % 3, i) for i in range(12)])
    holding: list[str] = []  # reserved or running
    ever: list[str] = []
    for step in range(60):
        batch = line.admit(now=step)
        holding += batch
        ever += batch
        assert line.busy() == len(holding) <= concurrency
        if step % 3 == 0 and holding:
            line.ledger.running(holding[-1], GPU)
        if step % 4 == 3 and holding:
            line.ledger.forget(holding.pop(0))
        if step == 20:
            line.ask("late", 1, 50)
    assert len(set(ever)) == len(ever)  # nobody admitted twice
    assert len(ever) == (13 if concurrency else 0)


def test_concurrency_0_holds_every_task() -> None:
    line = Line(gpu=spec(0))
    line.ask_all([("a", 9, 0), ("b", 0, 1)])
    assert line.ledger.admit(GPU, 0) == ([], None)
    waiting = line.ledger.waiting(GPU)
    assert waiting.reason == QUEUED
    assert waiting.message == "waiting for a free slot in TaskQueue 'gpu' (concurrency 0)"
    assert line.counts(now=30) == QueueCounts(pending=2, running=0, oldest_pending_seconds=30, exists=True)
    line.ledger.set_queue(GPU, spec(1))
    assert line.admit() == ["a"]


@pytest.mark.parametrize(
    ("before", "after", "finishes_before_next"),
    [(4, 2, 3), (4, 1, 4), (4, 0, None), (3, 3, 1), (2, 5, 0)],
    ids=["4-to-2", "4-to-1", "4-to-0", "unchanged", "raised"],
)
def test_changing_concurrency_under_running_tasks(before: int, after: int, finishes_before_next: int | None) -> None:
    """Lowered below the running count, nothing is admitted until enough have finished."""
    line = Line(gpu=spec(before))
    line.ask_all([(f"r{i}", 1, i) for i in range(before)] + [(f"w{i}", 0, i) for i in range(5)])
    running = line.admit()
    assert running == [f"r{i}" for i in range(before)]
    for name in running:
        line.ledger.running(name, GPU)
    line.ledger.set_queue(GPU, spec(after))

    finished = 0
    while not (admitted := line.admit()) and running:
        line.ledger.forget(running.pop(0))
        finished += 1
    if finishes_before_next is None:  # every running task finished, still nothing admitted
        assert (admitted, finished, line.counts().pending) == ([], before, 5)
        return
    assert finished == finishes_before_next
    assert admitted == [f"w{i}" for i in range(after - len(running))]  # up to the new limit exactly
    assert line.busy() == after


# --------------------------------------------------------------------------- paused


def test_a_paused_queue_admits_nothing_keeps_the_backlog_and_resumes_in_order() -> None:
    line = Line(gpu=spec(2, paused=True))
    line.ask_all([("a", 0, 0), ("b", 3, 1), ("c", 0, 2), ("d", 3, 0)])
    assert line.ledger.admit(GPU, 5) == ([], None)
    waiting = line.ledger.waiting(GPU)
    assert (waiting.reason, waiting.message) == (QUEUE_PAUSED, "TaskQueue 'gpu' is paused")
    assert line.counts(now=5).pending == 4

    line.ledger.set_queue(GPU, spec(2, paused=False))
    assert line.admit() == ["d", "b"]
    line.ledger.forget("d")
    line.ledger.forget("b")
    assert line.drain() == ["a", "c"]


def test_pausing_lets_running_tasks_finish_but_admits_no_more() -> None:
    line = Line(gpu=spec(2))
    line.ask_all([("a", 0, 0), ("b", 0, 1), ("c", 0, 2)])
    for name in line.admit():
        line.ledger.running(name, GPU)
    line.ledger.set_queue(GPU, spec(2, paused=True))
    line.ledger.forget("a")
    line.ledger.forget("b")
    assert line.admit() == []
    assert line.counts() == QueueCounts(pending=1, running=0, oldest_pending_seconds=0, exists=True)
    line.ledger.set_queue(GPU, spec(2, paused=None))  # paused unset: admitting
    assert line.admit() == ["c"]


def test_a_paused_queue_with_a_rate_limit_spends_no_tokens() -> None:
    line = Line(gpu=spec(5, per_minute=1, paused=True))
    line.ask_all([("a", 0, 0), ("b", 0, 1)])
    assert line.ledger.admit(GPU, 0) == ([], None)
    line.ledger.set_queue(GPU, spec(5, per_minute=1))
    assert line.ledger.admit(GPU, 10) == (["a"], 70.0)


# --------------------------------------------------------------------------- queue existence


def test_a_queue_that_does_not_exist_admits_nothing_until_it_is_created() -> None:
    line = Line()
    line.ask_all([("a", 0, 0), ("b", 1, 1)])
    assert line.ledger.admit(GPU, 0) == ([], None)
    waiting = line.ledger.waiting(GPU)
    assert waiting.reason == QUEUE_NOT_FOUND
    assert waiting.message == (
        "TaskQueue 'gpu' does not exist in namespace media; the task is admitted as soon as it is created"
    )
    assert line.counts(now=12) == QueueCounts(pending=2, running=0, oldest_pending_seconds=12, exists=False)

    line.ledger.set_queue(GPU, spec(1))
    assert line.ledger.waiting_tasks(GPU) == ["a", "b"]  # the tasks to wake: their reason changes
    assert line.admit() == ["b"]
    assert line.ledger.waiting(GPU).reason == QUEUED


def test_a_deleted_queue_is_not_found_again_and_its_running_tasks_keep_their_slots() -> None:
    line = Line(gpu=spec(2))
    line.ask_all([("a", 0, 0), ("b", 0, 1), ("c", 0, 2)])
    for name in line.admit():
        line.ledger.running(name, GPU)
    line.ledger.set_queue(GPU, None)
    assert line.ledger.waiting(GPU).reason == QUEUE_NOT_FOUND
    line.ledger.forget("a")
    assert line.admit() == []
    assert line.counts() == QueueCounts(pending=1, running=1, oldest_pending_seconds=0, exists=False)

    line.ledger.set_queue(GPU, spec(2))  # recreated: b still runs, one slot is free
    assert line.admit() == ["c"]
    assert line.busy() == 2


def test_queues_are_per_namespace_and_name() -> None:
    line = Line(gpu=spec(1))
    line.ask("a", queue=GPU)
    line.ask("b", queue=CPU)
    line.ask("c", queue=("other", "gpu"))
    assert line.admit(GPU) == ["a"]
    assert line.admit(CPU) == []  # no TaskQueue cpu
    assert line.admit(("other", "gpu")) == []  # gpu exists in media only
    assert set(line.ledger.queues()) >= {GPU, CPU, ("other", "gpu")}


@dataclasses.dataclass(frozen=True)
class Implicit:
    id: str
    default_concurrency: int | None
    taskqueue: TaskQueueSpec | None  # a TaskQueue named default, if any
    admitted: int  # of 20 waiting


IMPLICIT = [
    Implicit("unlimited-when-unset", None, None, 20),
    Implicit("limited-when-set", 3, None, 3),
    Implicit("zero-holds-all", 0, None, 0),
    Implicit("taskqueue-overrides-unlimited", None, spec(1), 1),
    Implicit("taskqueue-overrides-limit", 3, spec(5), 5),
    Implicit("taskqueue-can-pause-it", None, spec(5, paused=True), 0),
]


@pytest.mark.parametrize("case", IMPLICIT, ids=[c.id for c in IMPLICIT])
def test_the_implicit_default_queue(case: Implicit) -> None:
    line = Line(default_concurrency=case.default_concurrency)
    if case.taskqueue is not None:
        line.ledger.set_queue(DEFAULT, case.taskqueue)
    line.ask_all([(f"t{i:02}", 0, i) for i in range(20)], queue=DEFAULT)
    assert line.admit(DEFAULT) == [f"t{i:02}" for i in range(case.admitted)]
    assert line.counts(DEFAULT).exists
    expected_reason = QUEUE_PAUSED if case.taskqueue is not None and case.taskqueue.paused else QUEUED
    assert line.ledger.waiting(DEFAULT).reason == expected_reason


@pytest.mark.parametrize("default_concurrency", [None, 2])
def test_every_namespace_has_a_default_queue_and_no_other(default_concurrency: int | None) -> None:
    line = Line(default_concurrency=default_concurrency)
    line.ask("a", queue=ELSEWHERE_DEFAULT)
    line.ask("b", queue=("other", "gpu"))
    assert line.admit(ELSEWHERE_DEFAULT) == ["a"]
    assert line.admit(("other", "gpu")) == []
    assert line.ledger.waiting(("other", "gpu")).reason == QUEUE_NOT_FOUND


def test_deleting_the_taskqueue_named_default_restores_the_implicit_one() -> None:
    line = Line(default_concurrency=None, default=spec(1))
    line.ask_all([(f"t{i}", 0, i) for i in range(4)], queue=DEFAULT)
    assert line.admit(DEFAULT) == ["t0"]
    line.ledger.set_queue(DEFAULT, None)
    assert line.ledger.waiting(DEFAULT).reason == QUEUED  # still there, never QueueNotFound
    assert line.admit(DEFAULT) == ["t1", "t2", "t3"]  # unlimited again


def test_the_implicit_default_message_says_unlimited() -> None:
    line = Line(default_concurrency=None)
    line.ask_all([("a", 0, 0), ("b", 0, 0)], queue=DEFAULT)
    assert (
        line.ledger.waiting(DEFAULT).message == "waiting for a free slot in TaskQueue 'default' (concurrency unlimited)"
    )


# --------------------------------------------------------------------------- priority changes, retries


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ([("c", 10)], ["c", "a", "b", "d"]),
        ([("a", -1)], ["b", "c", "d", "a"]),
        ([("d", 1), ("b", 1)], ["b", "d", "a", "c"]),
        ([("c", 5), ("c", 0)], ["a", "b", "c", "d"]),  # raised then put back
        ([("b", 0)], ["a", "b", "c", "d"]),  # asked again unchanged
    ],
    ids=["raised", "lowered", "two-raised", "raised-and-back", "unchanged"],
)
def test_changing_a_pending_tasks_priority_reorders_it(changes: list[tuple[str, int]], expected: list[str]) -> None:
    line = Line(gpu=spec(1, paused=True))
    created = {"a": 0, "b": 1, "c": 2, "d": 3}
    line.ask_all([(name, 0, seconds) for name, seconds in created.items()])
    for name, priority in changes:
        line.ask(name, priority, created[name], now=30)
    line.ledger.set_queue(GPU, spec(1))
    assert line.drain() == expected  # each exactly once: stale places in line are skipped
    assert line.counts().pending == 0


def test_asking_again_unchanged_keeps_one_place_in_line() -> None:
    """Every reconcile of a waiting task asks again; the line must not grow with it."""
    line = Line(gpu=spec(0))
    for now in range(500):
        line.ask("a", now=now)
        line.ask("b", created=1, now=now)
    assert line.counts(now=500) == QueueCounts(pending=2, running=0, oldest_pending_seconds=500, exists=True)
    assert line.ledger._queues[GPU].line.heap_size() == 2


def test_a_retrying_task_re_enters_its_queue_for_each_attempt() -> None:
    line = Line(gpu=spec(1))
    line.ask_all([("old", 0, 0), ("mid", 0, 10), ("new", 0, 20)])
    assert line.admit() == ["old"]
    line.ledger.running("old", GPU)
    line.ledger.forget("old")  # attempt 1 failed: Retrying, its slot frees
    assert line.admit() == ["mid"]
    line.ask("old", 0, 0, now=60)  # its retry is due: back in line, in its own place
    line.ledger.forget("mid")
    assert line.admit() == ["old"]  # older than "new"
    line.ledger.forget("old")
    assert line.admit() == ["new"]


def test_a_task_forgotten_while_waiting_leaves_the_line() -> None:
    line = Line(gpu=spec(0))
    line.ask_all([("a", 0, 0), ("b", 0, 1)])
    assert line.ledger.forget("a") == GPU  # cancelled, or deleted
    assert line.ledger.forget("a") is None
    assert line.ledger.forget("never-seen") is None
    line.ledger.set_queue(GPU, spec(5))
    assert line.admit() == ["b"]


# --------------------------------------------------------------------------- reservations


def test_a_released_reservation_frees_its_slot() -> None:
    line = Line(gpu=spec(1))
    line.ask_all([("a", 0, 0), ("b", 0, 1)])
    assert line.admit() == ["a"]
    assert line.ledger.is_reserved("a") and not line.ledger.is_reserved("b")
    assert line.admit() == []  # the reservation holds the slot before anything is written
    assert line.ledger.release("a") == GPU  # the Job create failed
    assert not line.ledger.is_reserved("a")
    assert line.admit() == ["b"]


def test_a_released_task_asks_again_and_keeps_its_place() -> None:
    line = Line(gpu=spec(1))
    line.ask_all([("a", 5, 0), ("b", 0, 1), ("c", 0, 2)])
    assert line.admit() == ["a"]
    line.ledger.release("a")
    line.ask("a", 5, 0, now=1)  # the reconciler tries again
    assert line.admit() == ["a"]


def test_a_reservation_becomes_a_running_slot_without_counting_twice() -> None:
    line = Line(gpu=spec(2))
    line.ask_all([("a", 0, 0), ("b", 0, 1), ("c", 0, 2)])
    assert line.admit() == ["a", "b"]
    line.ledger.running("a", GPU)
    line.ledger.running("a", GPU)  # seen again
    assert line.busy() == 2
    assert not line.ledger.is_reserved("a") and line.ledger.is_reserved("b")
    assert line.admit() == []


def test_a_task_seen_pending_while_reserved_keeps_its_reservation() -> None:
    """Between the reservation and the Running write the cache still shows Pending."""
    line = Line(gpu=spec(1))
    line.ask_all([("a", 0, 0), ("b", 0, 1)])
    assert line.admit() == ["a"]
    assert line.ledger.not_running("a") is None
    assert line.ledger.is_reserved("a")
    assert line.admit() == []


def test_a_running_task_seen_pending_again_frees_its_slot() -> None:
    line = Line(gpu=spec(1))
    line.ask_all([("a", 0, 0), ("b", 0, 1)])
    assert line.admit() == ["a"]
    line.ledger.running("a", GPU)
    assert line.ledger.not_running("a") == GPU  # a manual retry sent it back to Pending
    assert line.ledger.not_running("a") is None
    assert line.ledger.not_running("never-seen") is None
    assert line.admit() == ["b"]


# --------------------------------------------------------------------------- restart


@pytest.mark.parametrize(
    ("queue_spec", "running", "admitted"),
    [(spec(5), 3, 2), (spec(3), 3, 0), (spec(2), 4, 0), (spec(10), 0, 6), (None, 3, 6)],
    ids=["room-for-two", "full", "over-after-lowered", "empty", "implicit-unlimited"],
)
def test_after_a_restart_running_tasks_hold_their_slots(
    queue_spec: TaskQueueSpec | None, running: int, admitted: int
) -> None:
    """A fresh ledger is fed the Running tasks first (cache synced), then the waiting ones ask."""
    line = Line(gpu=queue_spec) if queue_spec is not None else Line(default_concurrency=None)
    queue = GPU if queue_spec is not None else DEFAULT
    for i in range(running):
        line.ledger.running(f"r{i}", queue)
    line.ask_all([(f"w{i}", 0, i) for i in range(6)], queue=queue)
    got = line.admit(queue)
    assert got == [f"w{i}" for i in range(admitted)]
    assert line.admit(queue) == []  # nothing admitted twice
    assert line.counts(queue).running == running + admitted
    assert line.counts(queue).pending == 6 - admitted


def test_a_task_running_in_another_queue_moves_its_slot() -> None:
    line = Line(gpu=spec(1), cpu=spec(1))
    line.ledger.running("a", GPU)
    line.ledger.running("a", CPU)  # its effective queue, once known, was cpu
    assert (line.busy(GPU), line.busy(CPU)) == (0, 1)


# --------------------------------------------------------------------------- rate limits


def test_a_rate_limited_queue_says_when_to_admit_again() -> None:
    line = Line(gpu=spec(10, per_minute=30))  # one every 2 s
    line.ask_all([("a", 0, 0), ("b", 0, 1), ("c", 0, 2)])
    assert line.ledger.admit(GPU, 100.0) == (["a"], 102.0)
    assert line.ledger.admit(GPU, 101.0) == ([], 102.0)
    assert line.ledger.admit(GPU, 102.0) == (["b"], 104.0)
    assert line.ledger.admit(GPU, 110.0) == (["c"], None)  # nothing left: no wake-up needed
    line.ask("d", now=111.0)
    assert line.ledger.admit(GPU, 111.0) == ([], 112.0)


def test_a_full_queue_spends_no_token_and_waits_for_a_slot_not_a_time() -> None:
    line = Line(gpu=spec(1, per_minute=60))
    line.ask_all([("a", 0, 0), ("b", 0, 1)])
    assert line.ledger.admit(GPU, 0.0) == (["a"], None)  # full: a finishing task admits again
    assert line.ledger.admit(GPU, 5.0) == ([], None)
    line.ledger.forget("a")
    assert line.ledger.admit(GPU, 5.0) == (["b"], None)


def test_a_queue_without_a_rate_limit_admits_up_to_concurrency_at_once() -> None:
    line = Line(gpu=spec(4))
    line.ask_all([(f"t{i}", 0, i) for i in range(6)])
    assert line.ledger.admit(GPU, 0.0) == (["t0", "t1", "t2", "t3"], None)


@pytest.mark.parametrize(
    ("before", "after", "at_", "admitted", "again"),
    [
        (1, 60, 1.0, ["b"], 2.0),  # raised: the new interval counts from the last start
        (1, 60, 0.5, [], 1.0),
        (60, 1, 1.0, [], 60.0),  # lowered: so does the slower one
        (60, 1, 60.0, ["b"], 120.0),
        (1, None, 0.5, ["b", "c"], None),  # removed: no limit
    ],
    ids=["raised", "raised-not-yet", "lowered", "lowered-due", "removed"],
)
def test_changing_the_rate_applies_from_the_last_start(
    before: int, after: int | None, at_: float, admitted: list[str], again: float | None
) -> None:
    line = Line(gpu=spec(10, per_minute=before))
    line.ask_all([("a", 0, 0), ("b", 0, 1), ("c", 0, 2)])
    assert line.admit(now=0.0) == ["a"]
    line.ledger.set_queue(GPU, spec(10, per_minute=after))
    assert line.ledger.admit(GPU, at_) == (admitted, again)


def test_a_rate_limit_survives_an_unrelated_edit() -> None:
    line = Line(gpu=spec(10, per_minute=1))
    line.ask_all([("a", 0, 0), ("b", 0, 1)])
    assert line.admit(now=0.0) == ["a"]
    line.ledger.set_queue(GPU, spec(20, per_minute=1))  # concurrency changed, rate kept
    assert line.ledger.admit(GPU, 30.0) == ([], 60.0)


# --------------------------------------------------------------------------- counts and messages


def test_counts_report_the_backlog_and_its_age() -> None:
    line = Line(gpu=spec(2))
    assert line.counts(now=0) == QueueCounts(pending=0, running=0, oldest_pending_seconds=0, exists=True)
    line.ask("a", created=0, now=100.0)
    line.ask("b", created=1, now=130.0)
    line.ask("c", created=2, now=160.0)
    line.ask("d", created=3, now=170.0)
    assert line.counts(now=200.9) == QueueCounts(pending=4, running=0, oldest_pending_seconds=100, exists=True)
    assert line.admit(now=201.0) == ["a", "b"]  # the two oldest waiters leave the backlog
    assert line.counts(now=201.0) == QueueCounts(pending=2, running=2, oldest_pending_seconds=41, exists=True)
    line.ask("d", priority=9, created=3, now=250.0)  # a new priority: still waiting since 170
    assert line.counts(now=270.0).oldest_pending_seconds == 110
    line.ledger.forget("c")
    assert line.counts(now=270.0).oldest_pending_seconds == 100
    line.ledger.running("a", GPU)
    assert line.counts(now=270.0) == QueueCounts(pending=1, running=2, oldest_pending_seconds=100, exists=True)


def test_a_task_that_moves_queue_leaves_no_age_behind() -> None:
    """Before admission a task's queue can change (its TaskType's default queue did)."""
    line = Line(gpu=spec(0), cpu=spec(0))
    line.ask("a", queue=GPU, now=0.0)
    line.ask("a", queue=CPU, now=50.0)
    assert line.counts(GPU, now=100.0) == QueueCounts(pending=0, running=0, oldest_pending_seconds=0, exists=True)
    assert line.counts(CPU, now=100.0) == QueueCounts(pending=1, running=0, oldest_pending_seconds=100, exists=True)
    assert line.ledger.waiting_tasks(GPU) == []
    line.ledger.set_queue(GPU, spec(5))
    assert line.admit(GPU) == []
    line.ledger.set_queue(CPU, spec(5))
    assert line.admit(CPU) == ["a"]


def test_the_queued_message_is_stable_while_counts_change() -> None:
    """The message is written with the status; live counts in it would be stale (or cost writes)."""
    line = Line(gpu=spec(3))
    line.ask_all([(f"t{i}", 0, i) for i in range(7)])
    before = line.ledger.waiting(GPU)
    admitted = line.admit()
    line.ledger.running(admitted[0], GPU)
    line.ask("t6", priority=1, created=6)
    after = line.ledger.waiting(GPU)
    assert before == after
    assert (after.reason, after.message) == (QUEUED, "waiting for a free slot in TaskQueue 'gpu' (concurrency 3)")


def test_waiting_tasks_are_only_those_in_line() -> None:
    line = Line(gpu=spec(1))
    line.ask_all([("a", 0, 0), ("b", 0, 1), ("c", 0, 2)])
    line.admit()
    assert sorted(line.ledger.waiting_tasks(GPU)) == ["b", "c"]
    assert line.ledger.waiting_tasks(("nowhere", "x")) == []
