"""What the cache does to stay small with 10,000 tasks (docs/design.md §5.4: ≤ 150 MB), without changing what it answers.

Tasks are kept as compact JSON (a read decodes a fresh copy); what nothing reads is
dropped on entry; a watch event that brings what the cache already holds (the echo of a write whose
answer it stored, a watch resumed a little before its last event) is recognised and skipped;
the per-object event times go with the object.
"""

from __future__ import annotations

import time
from typing import Any

from asynctask_operator.adapters.kube import RequestCounter
from asynctask_operator.controllers.cache import Cache, slim_task
from asynctask_operator.controllers.manager import Manager
from asynctask_operator.settings import OperatorSettings
from tests.unit.builders import job, pod, task


def raw_task(name: str = "t", phase: str | None = "Running", resource_version: str = "1") -> dict[str, Any]:
    obj = task(name).build().model_dump(by_alias=True, exclude_none=True, mode="json")
    obj["metadata"]["resourceVersion"] = resource_version
    obj["status"] = {"phase": phase} if phase else {}
    return obj


def test_a_read_task_is_the_callers_own_copy() -> None:
    cache = Cache()
    cache.put_task(raw_task())
    read = cache.tasks["media", "t"]
    read["status"]["phase"] = "Failed"
    assert cache.tasks["media", "t"]["status"]["phase"] == "Running"
    assert cache.tasks.get(("media", "nope")) is None
    assert list(cache.tasks) == [("media", "t")] and len(cache.tasks) == 1


def test_what_nothing_reads_is_dropped_and_the_rest_kept() -> None:
    obj = raw_task()
    obj["metadata"]["managedFields"] = [{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}]
    obj["metadata"]["annotations"] = {
        "kubectl.kubernetes.io/last-applied-configuration": "{...}",
        "asynctask.dev/retry-requested": "1",
    }
    cache = Cache()
    cache.put_task(obj)
    kept = cache.tasks["media", "t"]
    assert "managedFields" not in kept["metadata"]
    assert kept["metadata"]["annotations"] == {"asynctask.dev/retry-requested": "1"}
    assert kept["spec"] == obj["spec"] and kept["status"] == obj["status"]
    assert "managedFields" in obj["metadata"]  # the caller's object is left alone
    plain = raw_task()
    assert slim_task(plain) is plain


def test_unfinished_tasks_of_a_type() -> None:
    cache = Cache()
    cache.put_task(raw_task("a", "Running"))
    cache.put_task(raw_task("b", "Succeeded"))
    cache.put_task(raw_task("c", None))
    assert sorted(cache.unfinished_tasks_of_type("media", "echo")) == [("media", "a"), ("media", "c")]
    assert cache.unfinished_tasks_of_type("other", "echo") == []
    cache.put_task(raw_task("a", "Failed"))
    cache.drop_task(("media", "c"))
    assert cache.unfinished_tasks_of_type("media", "echo") == []


def test_the_cache_knows_when_it_holds_an_object_as_it_is() -> None:
    cache = Cache()
    cache.put_task(raw_task())
    cache.put_job(job("t", 1).build())
    cache.put_pod(pod("t-1").build())
    assert cache.has_copy("task", raw_task())
    assert not cache.has_copy("task", raw_task(resource_version="2"))
    assert cache.has_copy("job", job("t", 1).build())
    assert not cache.has_copy("job", job("t", 1).complete().build())
    assert cache.has_copy("pod", pod("t-1").build())
    assert not cache.has_copy("pod", pod("t-2").build())


def runtime() -> Manager:
    class NoApi:
        counter = RequestCounter()

    return Manager(NoApi(), OperatorSettings())  # type: ignore[arg-type]


def test_a_replayed_event_queues_nothing() -> None:
    rt = runtime()
    rt.on_task(None, raw_task())
    rt.on_job(None, job("t", 1).build())
    assert len(rt.queue) == 1
    rt.queue = type(rt.queue)()
    rt.on_task(None, raw_task())
    rt.on_job(None, job("t", 1).build())
    assert len(rt.queue) == 0
    rt.on_task("MODIFIED", raw_task(resource_version="2"))
    assert len(rt.queue) == 1


def test_event_times_go_with_the_object_and_a_late_answer_does_not_bring_it_back() -> None:
    cache = Cache()
    sent = time.monotonic()
    cache.event_arrived("task", ("media", "t"))
    cache.put_task(raw_task())
    cache.drop_task(("media", "t"))
    assert ("task", ("media", "t")) not in cache._events
    cache.put_task(raw_task(resource_version="2"), answer_to_request_at=sent)  # answer to a write sent before
    assert ("media", "t") not in cache.tasks
    cache.forget_drops_before(time.monotonic() + 1)  # the next resync
    cache.put_task(raw_task(resource_version="3"), answer_to_request_at=time.monotonic())
    assert ("media", "t") in cache.tasks
