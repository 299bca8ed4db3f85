"""The gateway's pure parts, one table per rule: names, fingerprints, Retry-After, problems, figures, positions."""

from __future__ import annotations

import re
from typing import Any

import pytest

from asynctask_operator.adapters.kube import ApiError, Conflict, Invalid, NotFound
from asynctask_operator.core.clocks import Clocks
from asynctask_operator.core.idempotency import fingerprint, task_name_for_key, valid_key
from asynctask_operator.core.labelselectors import matches, parse
from asynctask_operator.core.queueing import WaitingTask, queue_positions
from asynctask_operator.core.statistics import (
    TaskFacts,
    failures_by_reason,
    finished_per_hour,
    percentile,
    summarize,
    window_of,
)
from asynctask_operator.gateway.answers import retry_after
from asynctask_operator.gateway.problems import Problem, from_api_error
from asynctask_operator.gateway.store import Store

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        (("media", "alice", "k"), ("media", "alice", "k"), True),
        (("media", "alice", "k"), ("media", "bob", "k"), False),
        (("media", "alice", "k"), ("other", "alice", "k"), False),
        (("media", "alice", "k"), ("media", "alice", "k2"), False),
        (
            ("a", "b\0c", "d"),
            ("a", "b", "c\0d"),
            False,
        ),  # no separator to smuggle
    ],
)
def test_task_names_for_keys(a: tuple[str, str, str], b: tuple[str, str, str], same: bool) -> None:
    first, second = task_name_for_key(*a), task_name_for_key(*b)
    assert (first == second) is same
    assert DNS_LABEL.match(first) and len(first) <= 63


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ({"type": "x", "payload": {"a": 1, "b": 2}}, {"payload": {"b": 2, "a": 1}, "type": "x"}, True),
        ({"type": "x", "payload": [1, 2]}, {"type": "x", "payload": [2, 1]}, False),
        ({"type": "x", "priority": 1}, {"type": "x", "priority": 1.5}, False),
        ({"type": "x"}, {"type": "x", "payload": None}, False),
    ],
)
def test_fingerprints(a: dict[str, Any], b: dict[str, Any], same: bool) -> None:
    assert (fingerprint(a) == fingerprint(b)) is same


@pytest.mark.parametrize(("key", "valid"), [("order-42", True), ("", False), ("x" * 255, True), ("x" * 256, False),
                                            ("tab\there", False), ("ünï", False)])  # fmt: skip
def test_idempotency_keys(key: str, valid: bool) -> None:
    assert valid_key(key) is valid


@pytest.mark.parametrize(
    ("phase", "position", "concurrency", "hint"),
    [
        ("Succeeded", None, None, None),
        ("Failed", None, 3, None),
        ("Cancelled", None, None, None),
        ("Running", None, 3, 2),
        ("Retrying", None, 3, 2),
        ("Pending", None, None, 2),  # cancelled or being deleted: no place
        ("Pending", 1, 1, 1),
        ("Pending", 2, 1, 2),
        ("Pending", 5, 4, 2),
        ("Pending", 4, 4, 2),
        ("Pending", 41, 4, 11),
        ("Pending", 10_000, 1, 60),
        ("Pending", 3, 0, 3),  # a queue admitting nothing: as if one at a time
    ],
)
def test_retry_after(phase: str, position: int | None, concurrency: int | None, hint: int | None) -> None:
    assert retry_after(phase, position, concurrency) == hint


@pytest.mark.parametrize(
    ("error", "status", "detail"),
    [
        (Invalid(422, "Invalid", "spec.priority: Invalid value: 5000"), 422, "spec.priority: Invalid value: 5000"),
        (NotFound(404, "NotFound", "x"), 404, "the task not found"),
        (Conflict(409, "Conflict", "the object has been modified"), 409, "the object has been modified"),
        (ApiError(429, "TooManyRequests", "slow down"), 429, "busy"),
        (ApiError(0, "Unreachable", "refused"), 503, "unavailable"),
        (ApiError(500, "InternalError", "etcd"), 503, "unavailable"),
        (ApiError(403, "Forbidden", "gateway sa"), 502, "gateway's own credentials"),
    ],
)
def test_api_errors_become_problems(error: ApiError, status: int, detail: str) -> None:
    problem = from_api_error(error, "the task")
    body = problem.body()
    assert (problem.status, body["status"]) == (status, status)
    assert detail in body["detail"] and body["type"] == "about:blank" and body["title"]
    assert ("Retry-After" in problem.headers) is (status in (429, 503))


def test_a_problem_carries_its_members() -> None:
    body = Problem(409, "task 'x' is Running, not Succeeded", phase="Running").body()
    assert body == {"type": "about:blank", "title": "Conflict", "status": 409,
                    "detail": "task 'x' is Running, not Succeeded", "phase": "Running"}  # fmt: skip


@pytest.mark.parametrize(
    ("waiting", "expected"),
    [
        ([], {}),
        ([("a", "q", 0, "2026-01-01T00:00:01Z"), ("b", "q", 0, "2026-01-01T00:00:00Z")], {"b": 1, "a": 2}),
        ([("a", "q", 0, "2026-01-01T00:00:00Z"), ("b", "q", 1, "2026-01-01T00:00:09Z")], {"b": 1, "a": 2}),
        ([("b", "q", 0, "2026-01-01T00:00:00Z"), ("a", "q", 0, "2026-01-01T00:00:00Z")], {"a": 1, "b": 2}),
        ([("a", "q", 0, "2026-01-01T00:00:00Z"), ("b", "r", 0, "2026-01-01T00:00:09Z")], {"a": 1, "b": 1}),
    ],
)
def test_queue_positions(waiting: list[tuple[str, str, int, str]], expected: dict[str, int]) -> None:
    positions = queue_positions(WaitingTask(*w) for w in waiting)
    assert {name: place for (_, name), place in positions.items()} == expected


def facts(
    type_: str, phase: str, created: float, duration: float | None = None, wait: float | None = None
) -> TaskFacts:
    return TaskFacts(type_, "q-" + type_, phase, created, queued=created,
                     started=None if wait is None else created + wait, duration=duration)  # fmt: skip


TASKS = [
    facts("a", "Succeeded", 10, 1.0, 2.0),
    facts("a", "Succeeded", 20, 3.0, 4.0),
    facts("a", "Failed", 30, 5.0, 0.0),
    facts("b", "Cancelled", 40),
    facts("b", "Running", 50, None, 6.0),
    facts("b", "Pending", 60),
]


def test_statistics_over_everything() -> None:
    [(key, figures)] = summarize(TASKS, since=None, until=100).items()
    assert key == "" and (figures.total, figures.succeeded, figures.failed, figures.cancelled) == (6, 2, 1, 1)
    assert figures.success_rate == 0.5
    assert (figures.mean_duration_seconds, figures.p50_duration_seconds, figures.p95_duration_seconds) == (
        3.0,
        3.0,
        5.0,
    )
    assert figures.mean_queue_wait_seconds == 3.0  # (2 + 4 + 0 + 6) / 4


@pytest.mark.parametrize(
    ("since", "until", "group_by", "expected"),
    [
        (None, 100, "type", {"a": (3, 2 / 3), "b": (3, 0.0)}),
        (None, 100, "queue", {"q-a": (3, 2 / 3), "q-b": (3, 0.0)}),
        (25, 100, "type", {"a": (1, 0.0), "b": (3, 0.0)}),
        (None, 25, None, {"": (2, 1.0)}),
        (45, 55, None, {"": (1, None)}),
        (70, 100, None, {"": (0, None)}),
    ],
)
def test_statistics_by_window_and_group(
    since: float | None, until: float, group_by: Any, expected: dict[str, tuple[int, float | None]]
) -> None:
    got = summarize(TASKS, since=since, until=until, group_by=group_by)
    assert {k: (f.total, f.success_rate) for k, f in got.items()} == expected


@pytest.mark.parametrize(("since", "window_since"), [(None, 10), (5, 10), (15, 15)])
def test_the_window_starts_no_earlier_than_the_oldest_task(since: float | None, window_since: float) -> None:
    assert window_of(TASKS, since, 100).since == window_since


H = 3600.0


def done(finished: float) -> TaskFacts:
    return TaskFacts("a", "q", "Succeeded", created=0.0, finished=finished)


@pytest.mark.parametrize(
    ("finishes", "since", "until", "max_buckets", "expected"),
    [
        ([], None, 5 * H + 10, 168, [(5 * H, 0)]),  # nothing finished: the hour of until alone
        ([H + 1, H + 2, 3 * H], None, 3 * H + 5, 168, [(H, 2), (2 * H, 0), (3 * H, 1)]),  # empty hours present
        ([H + 1, 3 * H], H + 5, 4 * H, 168, [(3 * H, 1), (4 * H, 0)]),  # before since: not counted, not shown
        ([H + 1, 2 * H - 1, 3 * H], H, 2 * H - 1, 168, [(H, 2)]),  # after until: not counted
        ([10 * H + 1, 10 * H, 11 * H - 1], None, 10 * H + 30, 168, [(10 * H, 2)]),  # until mid-hour: ends at until
        ([0.0, 5 * H, 9 * H], None, 9 * H + 1, 3, [(7 * H, 0), (8 * H, 0), (9 * H, 1)]),  # at most max_buckets hours
        ([-H - 1], None, 0.0, 168, [(-2 * H, 1), (-H, 0), (0.0, 0)]),  # aligned to the hour below a moment
    ],
)
def test_finished_per_hour(
    finishes: list[float], since: float | None, until: float, max_buckets: int, expected: list[tuple[float, int]]
) -> None:
    unfinished = TaskFacts("a", "q", "Running", created=0.0)
    got = finished_per_hour([*map(done, finishes), unfinished], since, until, max_buckets=max_buckets)
    assert got == expected


def failed(created: float, reason: str | None, phase: str = "Failed") -> TaskFacts:
    return TaskFacts("a", "q", phase, created, reason=reason)


@pytest.mark.parametrize(
    ("tasks", "since", "until", "expected"),
    [
        ([], None, 100, []),
        ([failed(1, "B"), failed(2, "A"), failed(3, "B")], None, 100, [("B", 2), ("A", 1)]),  # most first
        ([failed(1, "B"), failed(2, "A")], None, 100, [("A", 1), ("B", 1)]),  # ties by name
        ([failed(1, None), failed(2, ""), failed(3, "Z")], None, 100, [("Unknown", 2), ("Z", 1)]),
        ([failed(1, "A", "Succeeded"), failed(2, "B", "Cancelled"), failed(3, "C")], None, 100, [("C", 1)]),
        ([failed(10, "Early"), failed(20, "In"), failed(30, "Edge"), failed(31, "Late")], 20, 30, [("Edge", 1), ("In", 1)]),
    ],
)  # fmt: skip
def test_failures_by_reason(
    tasks: list[TaskFacts], since: float | None, until: float, expected: list[tuple[str, int]]
) -> None:
    assert failures_by_reason(tasks, since, until) == expected


@pytest.mark.parametrize(("values", "fraction", "expected"), [([], 0.5, None), ([7.0], 0.95, 7.0),
    ([1.0, 2.0, 3.0], 0.5, 2.0), ([float(i) for i in range(1, 101)], 0.95, 95.0)])  # fmt: skip
def test_percentiles(values: list[float], fraction: float, expected: float | None) -> None:
    assert percentile(values, fraction) == expected


@pytest.mark.parametrize(
    ("selector", "labels", "match"),
    [("", {}, True), ("a=b", {"a": "b"}, True), ("a==b", {"a": "c"}, False), ("a!=b", {}, True),
     ("a", {"a": ""}, True), ("!a", {"a": "x"}, False), ("a=b, c", {"a": "b", "c": "d"}, True),
     ("example.com/tier=web", {"example.com/tier": "web"}, True)],
)  # fmt: skip
def test_label_selectors(selector: str, labels: dict[str, str], match: bool) -> None:
    assert matches(parse(selector), labels) is match


@pytest.mark.parametrize("selector", ["a=b=c", "a b", "=x", "a in (b)", "!", "a=" + "x" * 64])
def test_what_is_not_a_selector(selector: str) -> None:
    with pytest.raises(ValueError, match="not a label selector"):
        parse(selector)


def obj(name: str, version: str, ns: str = "ns") -> dict[str, Any]:
    return {"metadata": {"namespace": ns, "name": name, "resourceVersion": version}}


async def test_the_store_keeps_the_newest_copy_and_tells_its_subscribers() -> None:
    now = [0.0]
    store = Store(Clocks(monotonic=lambda: now[0]))
    with store.subscribe("ns", size=10) as mine, store.subscribe("other", size=10) as theirs:
        since = store.mark()  # a listing begins
        now[0] = 1.0
        store.put(obj("a", "5"))
        store.event("MODIFIED", obj("a", "5"))  # the event of that write: nothing new
        store.event("MODIFIED", obj("a", "4"))  # older: ignored
        store.listed(obj("a", "3"), since)  # the listing's copy, older than the write: not taken
        store.listed(obj("b", "6"), since)
        store.listing_done({("ns", "a"), ("ns", "b")}, since, None)
        assert store.synced.is_set()
        assert [
            version for _, version in sorted((k, v["metadata"]["resourceVersion"]) for k, v in store.objects.items())
        ] == ["5", "6"]
        store.event("DELETED", obj("a", "7"))
        changes = [mine.queue.get_nowait() for _ in range(mine.queue.qsize())]
        assert [(t, o["metadata"]["name"]) for t, o in changes] == [("ADDED", "a"), ("ADDED", "b"), ("DELETED", "a")]  # type: ignore[misc]
        assert theirs.queue.empty()


def test_a_listing_drops_what_it_lacked_unless_written_since() -> None:
    now = [0.0]
    store = Store(Clocks(monotonic=lambda: now[0]))
    store.listed(obj("old", "1"), 0.0)
    store.listed(obj("gone", "2"), 0.0)
    now[0] = 2.0
    since = 1.0
    store.put(obj("fresh", "3"))  # written after the second listing began
    store.listing_done({("ns", "old")}, since, "ns")
    assert sorted(n for _, n in store.objects) == ["fresh", "old"]


def test_a_slow_subscriber_is_dropped_not_the_store() -> None:
    store = Store(Clocks())
    with store.subscribe(None, size=2) as slow:
        for i in range(5):
            store.put(obj(f"t{i}", str(i + 1)))
        assert slow.dropped and slow.queue.qsize() == 3  # two changes, then the end
        assert [slow.queue.get_nowait() for _ in range(3)][-1] is None
        assert len(store.objects) == 5


def test_the_store_reads_each_object_once_into_its_view_and_keeps_it_in_step() -> None:
    store: Store[tuple[str, str]] = Store(
        Clocks(), view=lambda o: (o["metadata"]["name"], o["metadata"]["resourceVersion"])
    )
    a1 = {"metadata": {"namespace": "ns", "name": "a", "resourceVersion": "1"}}
    store.put(a1)
    store.put({"metadata": {"namespace": "ns", "name": "b", "resourceVersion": "2"}})
    first = store.views[("ns", "a")]
    assert first == ("a", "1")
    store.event("MODIFIED", a1)  # the same version again: read no more
    assert store.views[("ns", "a")] is first
    store.put({"metadata": {"namespace": "ns", "name": "a", "resourceVersion": "3"}})  # changed: read again
    assert store.views[("ns", "a")] == ("a", "3")
    store.event("DELETED", {"metadata": {"namespace": "ns", "name": "b", "resourceVersion": "5"}})
    assert set(store.views) == {("ns", "a")} and store.revision == 4


def test_a_deletion_during_a_listing_stays_and_its_time_is_not_kept_for_ever() -> None:
    from asynctask_operator.gateway.store import TOMBSTONE_SECONDS

    now = [0.0]
    store = Store(Clocks(monotonic=lambda: now[0]))
    store.put(obj("a", "1"))
    since = store.mark()  # a listing begins; its page was read before the deletion
    now[0] = 1.0
    store.event("DELETED", obj("a", "2"))
    store.listed(obj("a", "1"), since)
    store.listing_done({("ns", "a")}, since, None)
    assert store.objects == {}  # the listing's older copy does not bring it back
    for i in range(100):  # a long-running gateway sees many deletions
        now[0] = 2.0 + i * TOMBSTONE_SECONDS / 10
        store.put(obj(f"t{i}", "1"))
        store.event("DELETED", obj(f"t{i}", "2"))
    assert len(store._gone) <= 11
    assert store._touched == {}
