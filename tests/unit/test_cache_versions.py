"""A late watch event never takes the task cache back a version the operator's own write moved past."""

from __future__ import annotations

from typing import Any

from asynctask_operator.controllers.cache import Cache

KEY = ("ns", "t")


def version(rv: str, phase: str) -> dict[str, Any]:
    return {
        "metadata": {"namespace": "ns", "name": "t", "uid": "u", "resourceVersion": rv},
        "spec": {"type": "echo"},
        "status": {"phase": phase},
    }


def held(cache: Cache) -> tuple[str, str]:
    task = cache.tasks[KEY]
    return task["metadata"]["resourceVersion"], task["status"]["phase"]


def test_the_event_of_an_earlier_write_arriving_after_a_later_answer_is_skipped() -> None:
    cache = Cache()
    cache.put_task(version("10", "Pending"))  # the listing
    cache.put_task(version("11", "Running"), answer_to_request_at=0.0)  # our write: Running
    cache.put_task(version("12", "Succeeded"), answer_to_request_at=0.0)  # our write: Succeeded
    late = version("11", "Running")  # the watch event of the first write, late
    assert cache.stale_task(late) and cache.stale_task(version("10", "Pending"))
    cache.put_task(late)
    assert held(cache) == ("12", "Succeeded")
    assert not cache.stale_task(version("12", "Succeeded"))
    assert not cache.stale_task(version("13", "Succeeded"))  # a newer one is never stale


def test_an_event_replacing_an_answer_does_not_make_the_answer_stale() -> None:
    """Unknown order: the event may carry a version from before the write, delivered late."""
    cache = Cache()
    cache.put_task(version("20", "Running"), answer_to_request_at=0.0)
    cache.put_task(version("19", "Pending"))  # an older version the stream delivers late
    assert held(cache) == ("19", "Pending")
    assert not cache.stale_task(version("20", "Running"))
    cache.put_task(version("20", "Running"))  # its own event then brings the cache back up
    assert held(cache) == ("20", "Running")
    assert cache.stale_task(version("19", "Pending"))  # event after event: the stream's order


def test_an_answer_is_believed_even_with_a_version_once_replaced() -> None:
    cache = Cache()
    cache.put_task(version("30", "Running"))
    cache.put_task(version("31", "Retrying"))
    assert cache.stale_task(version("30", "Running"))
    cache.put_task(version("30", "Running"), answer_to_request_at=0.0)  # what the server answered
    assert held(cache) == ("30", "Running") and not cache.stale_task(version("30", "Running"))


def test_deleting_the_task_forgets_its_versions() -> None:
    cache = Cache()
    cache.put_task(version("40", "Running"))
    cache.put_task(version("41", "Succeeded"), answer_to_request_at=0.0)
    cache.drop_task(KEY)
    assert not cache.stale_task(version("40", "Running"))  # a new object of the same name starts afresh


def schedule(rv: str, run_now: str | None) -> dict[str, Any]:
    annotations = {"asynctask.dev/run-now": run_now} if run_now else {}
    return {"metadata": {"namespace": "ns", "name": "s", "resourceVersion": rv, "annotations": annotations}}


def test_a_schedules_status_answer_read_after_a_newer_event_does_not_take_the_cache_back() -> None:
    """The run-now race: the operator writes the status (sent at t); a user annotates a new run-now
    value; its watch event arrives; then the status write's answer, from before the annotation.
    Storing the answer would forget the annotation, and no event would come to wake the schedule."""
    now = [100.0]
    cache = Cache(monotonic=lambda: now[0])
    cache.put_scheduledtask(schedule("10", None))
    sent = cache.monotonic()  # the status write goes out
    now[0] += 0.01
    cache.event_arrived("scheduledtask", ("ns", "s"))  # the annotation's event
    cache.put_scheduledtask(schedule("12", "1767225700"))
    now[0] += 0.01
    assert not cache.put_scheduledtask(schedule("11", None), answer_to_request_at=sent)  # the answer, late
    assert cache.scheduledtasks[("ns", "s")]["metadata"]["annotations"] == {"asynctask.dev/run-now": "1767225700"}
    later = cache.monotonic()
    assert cache.put_scheduledtask(schedule("13", "1767225700"), answer_to_request_at=later)  # no event since
    assert cache.scheduledtasks[("ns", "s")]["metadata"]["resourceVersion"] == "13"
