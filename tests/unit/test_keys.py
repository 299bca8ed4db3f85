"""Concurrency keys in the admission ledger (core/keys.py, core/queueing.py): grant or deny per policy, who
holds a key as read from the objects, what frees it, who is superseded; and the ledger rebuilt from a
listing equals the ledger built from the events that led there. Pure: tasks are plain names."""

from __future__ import annotations

import dataclasses
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asynctask_operator.core.concurrency import KeyClaim
from asynctask_operator.core.models import TaskQueueSpec
from asynctask_operator.core.queueing import KEY_BUSY, QUEUED, WAITING_FOR_KEY, AdmissionLedger, Seen, admission_order
from tests.unit.builders import NAMESPACE, at, stamp

Q = (NAMESPACE, "q")
OTHER_Q = (NAMESPACE, "other")


def created(seconds: float) -> str:
    return stamp(at(seconds))


@dataclasses.dataclass
class Keys:
    """An AdmissionLedger with one queue ``q`` (and ``other``), spoken to in the test's words."""

    concurrency: int = 10
    ledger: AdmissionLedger[str] = dataclasses.field(default_factory=AdmissionLedger)

    def __post_init__(self) -> None:
        self.ledger.set_queue(Q, TaskQueueSpec(concurrency=self.concurrency))
        self.ledger.set_queue(OTHER_Q, TaskQueueSpec(concurrency=self.concurrency))

    def seen(self, name: str, phase: str, key: str | None = None, *, limit: int = 1, policy: str = "Queue",
             created_at: float = 0, live_job: bool = False, queue: tuple[str, str] = Q) -> None:  # fmt: skip
        claim = KeyClaim(key, limit, policy) if key else None
        self.ledger.observe(name, Seen(queue, phase, live_job, claim, (created(created_at), name)))

    def ask(self, name: str, key: str | None = None, *, limit: int = 1, policy: str = "Queue",
            created_at: float = 0, priority: int = 0, queue: tuple[str, str] = Q) -> list[str]:  # fmt: skip
        """The task is Pending (observed), asks for a slot: what the ledger admits then."""
        self.seen(name, "Pending", key, limit=limit, policy=policy, created_at=created_at, queue=queue)
        claim = KeyClaim(key, limit, policy) if key else None
        self.ledger.request(name, queue, admission_order(priority, created(created_at), name), 0.0, claim)
        return self.admit(queue)

    def admit(self, queue: tuple[str, str] = Q) -> list[str]:
        admitted, _ = self.ledger.admit(queue, 0.0)
        return admitted

    def admit_all(self) -> list[str]:
        out = []
        while self.ledger.changed:
            out += self.admit(self.ledger.changed.pop())
        return out


# --------------------------------------------------------------------------- grant or deny, per policy


@dataclasses.dataclass(frozen=True)
class Case:
    holders: tuple[tuple[str, int], ...]  # (phase of a task holding the key, its limit)
    limit: int
    policy: str
    granted: bool
    reason: str  # why() when not granted


CASES = {
    "free-key": Case((), 1, "Queue", True, ""),
    "mutex-held-by-running": Case((("Running", 1),), 1, "Queue", False, WAITING_FOR_KEY),
    "mutex-held-by-retrying": Case((("Retrying", 1),), 1, "Queue", False, WAITING_FOR_KEY),
    "semaphore-with-room": Case((("Running", 2),), 2, "Queue", True, ""),
    "semaphore-full": Case((("Running", 2), ("Running", 2)), 2, "Queue", False, WAITING_FOR_KEY),
    "own-limit-counts-not-the-holders": Case((("Running", 3),), 1, "Queue", False, WAITING_FOR_KEY),
    "cancel-newest-free": Case((), 1, "CancelNewest", True, ""),
    "cancel-newest-busy": Case((("Running", 1),), 1, "CancelNewest", False, KEY_BUSY),
    "cancel-in-progress-busy-waits": Case((("Running", 1),), 1, "CancelInProgress", False, WAITING_FOR_KEY),
    "finished-holds-nothing": Case((("Succeeded", 1), ("Failed", 1), ("Cancelled", 1)), 1, "Queue", True, ""),
    "pending-holds-nothing": Case((("Pending", 1),), 1, "Queue", True, ""),
}


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_a_task_gets_its_key_or_waits_as_its_policy_says(case: Case) -> None:
    keys = Keys()
    for i, (phase, limit) in enumerate(case.holders):
        keys.seen(f"h{i}", phase, "video-42", limit=limit)
    admitted = keys.ask("new", "video-42", limit=case.limit, policy=case.policy, created_at=60)
    assert (admitted == ["new"]) is case.granted
    if not case.granted:
        why = keys.ledger.why("new", Q)
        assert (why.reason, why.key, why.limit) == (case.reason, "video-42", case.limit)
        holding = tuple(f"h{i}" for i, (phase, _) in enumerate(case.holders) if phase in ("Running", "Retrying"))
        assert why.holders == holding
        assert why.refused is (case.reason == KEY_BUSY)


def test_the_wait_message_names_the_key_its_limit_and_the_holders() -> None:
    keys = Keys()
    for name in ("a", "b", "c", "d"):
        keys.seen(name, "Running", "k", limit=4)
    keys.ask("new", "k", limit=4, created_at=9)
    assert keys.ledger.why("new", Q).message == "waiting for concurrency key 'k' (limit 4), held by a, b, c and 1 more"


def test_a_key_is_scoped_to_its_namespace() -> None:
    keys = Keys()
    keys.ledger.observe("x", Seen(("elsewhere", "q"), "Running", claim=KeyClaim("video-42")))
    assert keys.ask("new", "video-42") == ["new"]


def test_one_key_across_queues_of_a_namespace() -> None:
    keys = Keys()
    keys.seen("holder", "Running", "shared", queue=OTHER_Q)
    assert keys.ask("new", "shared") == []
    keys.seen("holder", "Succeeded", "shared", queue=OTHER_Q)
    assert keys.admit_all() == ["new"]


# --------------------------------------------------------------------------- holding, read from the objects


@pytest.mark.parametrize(
    ("phase", "live_job", "holds"),
    [
        ("Running", False, True),
        ("Retrying", False, True),  # between attempts: a retry keeps its key
        ("Pending", True, True),  # crashed after creating the Job, before writing Running
        ("Cancelled", True, True),  # cancelled, its Job not yet stopped
        ("Failed", True, True),
        ("Pending", False, False),  # a manual retry waits for the key like a new task
        ("Succeeded", False, False),
        ("Cancelled", False, False),
    ],
)
def test_who_holds_a_key_is_read_from_the_task_and_its_jobs(phase: str, live_job: bool, holds: bool) -> None:
    keys = Keys()
    keys.seen("t", phase, "k", live_job=live_job)
    assert (keys.ledger.keys.holders((NAMESPACE, "k")) == ["t"]) is holds


def test_a_reservation_holds_the_key_until_the_running_write_and_a_stale_pending_copy_keeps_it() -> None:
    keys = Keys()
    assert keys.ask("a", "k") == ["a"]  # reserved, its Job being created
    keys.seen("a", "Pending", "k")  # a copy from before its Running write (another change of it)
    assert keys.ask("b", "k", created_at=1) == []
    keys.seen("a", "Running", "k")
    assert keys.ledger.keys.holders((NAMESPACE, "k")) == ["a"]
    keys.seen("a", "Succeeded", "k")
    assert keys.admit_all() == ["b"]


def test_a_released_reservation_gives_the_key_to_the_next() -> None:
    keys = Keys()
    assert keys.ask("a", "k") == ["a"]
    assert keys.ask("b", "k", created_at=1) == []
    keys.ledger.release("a")  # a's Job create failed
    assert keys.admit_all() == ["b"]


def test_a_retrying_holder_asking_for_its_next_attempt_keeps_its_key() -> None:
    keys = Keys()
    keys.seen("a", "Retrying", "k")
    assert keys.ask("b", "k", created_at=1) == []
    assert keys.ask("a", "k") == ["a"]  # its next attempt: it holds the key already


def test_a_retrying_task_whose_key_was_taken_meanwhile_waits_for_it() -> None:
    """Found by the chaos test: a's first attempt ended while the operator was down, unrecorded (a read
    Pending, its Job finished: it held nothing), so b got the key; a then records the failure (Retrying,
    which holds the key). Its next attempt must wait for b, not count itself as the holder."""
    keys = Keys()
    keys.seen("a", "Pending", "k")
    assert keys.ask("b", "k", created_at=1) == ["b"]
    keys.seen("a", "Retrying", "k")
    assert keys.ask("a", "k") == []
    assert keys.ledger.why("a", Q).reason == WAITING_FOR_KEY
    keys.seen("a", "Pending", "k")  # it writes Pending/WaitingForKey: a waiter like any
    keys.seen("b", "Succeeded", "k")
    assert keys.admit_all() == ["a"]


def test_a_deleted_task_whose_job_still_runs_holds_its_key_through_the_job() -> None:
    keys = Keys()
    keys.seen("a", "Running", "k")
    keys.ledger.gone("a")
    keys.ledger.hold_key("job/a-1", (NAMESPACE, "k"), True)  # its Job, orphaned, still runs
    assert keys.ask("b", "k", created_at=1) == []
    keys.ledger.hold_key("job/a-1", (NAMESPACE, "k"), False)  # the garbage collector took it
    assert keys.admit_all() == ["b"]


# --------------------------------------------------------------------------- the order a key is given in


def test_a_freed_key_goes_to_its_oldest_waiter_and_others_are_not_blocked_meanwhile() -> None:
    keys = Keys(concurrency=2)
    keys.seen("holder", "Running", "x")
    assert keys.ask("x-old", "x", created_at=1) == []
    assert keys.ask("x-new", "x", created_at=2) == []
    assert keys.ask("y", "y", created_at=3) == ["y"]  # a busy key does not hold the line
    keys.seen("y", "Running", "y")
    assert keys.ask("z", "z", created_at=4) == []  # the queue is full (holder and y)
    keys.seen("holder", "Succeeded", "x")
    assert keys.admit_all() == ["x-old"]  # a slot and the key: the key's oldest waiter, before z
    keys.seen("x-old", "Succeeded", "x")
    assert keys.admit_all() == ["x-new"]


def test_a_semaphore_admits_as_many_as_its_limit_in_order() -> None:
    keys = Keys()
    for i in range(5):
        keys.ask(f"t{i}", "k", limit=2, created_at=i)
    assert sorted(keys.ledger.keys.holders((NAMESPACE, "k"))) == ["t0", "t1"]
    keys.seen("t0", "Succeeded", "k")
    keys.seen("t1", "Succeeded", "k")
    assert keys.admit_all() == ["t2", "t3"]


# --------------------------------------------------------------------------- CancelInProgress


def test_a_newer_cancel_in_progress_task_supersedes_the_holder_and_the_waiters_older_than_it() -> None:
    keys = Keys()
    keys.seen("old", "Running", "k", policy="CancelInProgress", created_at=0)
    keys.ask("mid", "k", policy="CancelInProgress", created_at=1)
    assert keys.ledger.superseded_by("old") == "mid"
    keys.ledger.keys.woken.clear()
    keys.ask("new", "k", policy="CancelInProgress", created_at=2)
    assert [keys.ledger.superseded_by(t) for t in ("old", "mid", "new")] == ["new", "new", None]
    assert keys.ledger.keys.woken == ["mid"]  # old was woken when mid came: each is woken once


def test_superseding_wakes_every_member_older_than_the_newcomer_when_policies_mix() -> None:
    keys = Keys()
    keys.seen("queued", "Running", "k", policy="Queue", created_at=0)
    keys.seen("later", "Pending", "k", policy="Queue", created_at=5)
    keys.ledger.keys.woken.clear()
    keys.seen("cip", "Pending", "k", policy="CancelInProgress", created_at=3)
    assert sorted(keys.ledger.keys.woken) == ["queued"]  # "later" is newer than it: untouched
    assert keys.ledger.superseded_by("later") is None


def test_a_task_arriving_older_than_the_newest_is_superseded_at_once() -> None:
    keys = Keys()
    keys.seen("new", "Pending", "k", policy="CancelInProgress", created_at=10)
    keys.ledger.keys.woken.clear()
    keys.seen("late-listed", "Pending", "k", policy="CancelInProgress", created_at=1)
    assert keys.ledger.keys.woken == ["late-listed"]
    assert keys.ledger.superseded_by("late-listed") == "new"


def test_newness_ties_on_the_second_are_broken_by_name() -> None:
    keys = Keys()
    keys.seen("burst-07", "Pending", "k", policy="CancelInProgress", created_at=0)
    keys.seen("burst-12", "Pending", "k", policy="CancelInProgress", created_at=0)
    assert keys.ledger.superseded_by("burst-07") == "burst-12"


def test_the_newest_finishing_leaves_no_one_superseded_by_it() -> None:
    keys = Keys()
    keys.seen("a", "Pending", "k", policy="CancelInProgress", created_at=0)
    keys.seen("b", "Running", "k", policy="CancelInProgress", created_at=1)
    keys.seen("b", "Succeeded", "k", policy="CancelInProgress", created_at=1)
    assert keys.ledger.superseded_by("a") is None  # b is no member: a manual retry of a runs


# --------------------------------------------------------------------------- rebuilt from a listing


PHASES = ("Pending", "Running", "Retrying", "Succeeded", "Failed", "Cancelled")
version = st.tuples(
    st.sampled_from(PHASES),
    st.sampled_from((None, "k1", "k2")),
    st.sampled_from(("Queue", "CancelInProgress")),
    st.booleans(),  # a live Job
    st.sampled_from((Q, OTHER_Q)),
    st.one_of(st.none(), st.tuples(st.sampled_from(("a", "b")), st.integers(0, 20))),  # a recorded turn
)
events = st.lists(st.tuples(st.sampled_from([f"t{i}" for i in range(6)]), st.one_of(st.none(), version)), max_size=60)


def apply(ledger: AdmissionLedger[str], name: str, state: tuple[object, ...] | None) -> None:
    if state is None:
        ledger.gone(name)
        return
    phase, key, policy, live, queue, turn = state
    claim = KeyClaim(str(key), 1, str(policy)) if key else None
    created_at = int(name[1:])
    ledger.observe(name, Seen(queue, str(phase), bool(live), claim, (created(created_at), name), turn))  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(events, st.randoms(use_true_random=False))
def test_the_ledger_rebuilt_from_a_listing_equals_the_ledger_built_by_events(
    history: list[tuple[str, tuple[object, ...] | None]], rng: random.Random
) -> None:
    by_events: AdmissionLedger[str] = AdmissionLedger()
    final: dict[str, tuple[object, ...] | None] = {}
    for name, state in history:
        apply(by_events, name, state)
        final[name] = state
    listed = [(name, state) for name, state in final.items() if state is not None]
    rng.shuffle(listed)  # a listing comes in its own order
    by_listing: AdmissionLedger[str] = AdmissionLedger()
    for name, state in listed:
        apply(by_listing, name, state)
    assert by_events.level_state() == by_listing.level_state()
    # And superseded-ness, which is what the reconciles act on, agrees for every task.
    for name, _ in listed:
        assert by_events.superseded_by(name) == by_listing.superseded_by(name)


def test_the_queued_reason_is_kept_when_the_key_has_room() -> None:
    keys = Keys(concurrency=0)
    assert keys.ask("a", "k") == []
    assert keys.ledger.why("a", Q).reason == QUEUED
