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
