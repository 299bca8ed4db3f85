"""The periodic resync never puts a listed copy over a newer one the cache got meanwhile.

Found by the chaos test: a resync lists tasks, then Jobs, then pods, and only then stored
what it listed (now each page is stored as it comes, and the race is between the server's
answer and the storing of it). A watch event (or the answer to a write) that arrives in between is newer
than the listing; storing the listed copy over it undid it, with no later event to redo
it: a completed Job read as running again (its finished task then deleted it, pods and
logs with it), a task read back to an earlier phase (a Job created again for an attempt
whose Job had been deleted, or status writes refused with 409 until the next resync).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from asynctask_operator.adapters.kube import ASYNCTASKS, JOBS, PODS, TASKQUEUES, RequestCounter, Resource
from asynctask_operator.controllers.cache import Cache
from asynctask_operator.controllers.manager import Manager
from asynctask_operator.settings import OperatorSettings
from tests.unit.builders import job, pod, task


class ListingApi:
    """Answers listings from fixed snapshots; ``during`` runs while a resource's listing is in flight."""

    def __init__(self, snapshots: dict[Resource, list[dict[str, Any]]]) -> None:
        self.snapshots = snapshots
        self.during: dict[Resource, Callable[[], None]] = {}
        self.counter = RequestCounter()

    async def list_objects(
        self, resource: Resource, namespace: str | None = None, label_selector: str | None = None
    ) -> list[dict[str, Any]]:
        answer = [dict(o) for o in self.snapshots.get(resource, [])]
        if resource in self.during:
            self.during.pop(resource)()
        return answer

    async def list_pages(
        self, resource: Resource, namespace: str | None = None, label_selector: str | None = None
    ) -> AsyncIterator[tuple[list[dict[str, Any]], str]]:
        """The snapshot in pages of one object: ``during`` runs after the server answered the first,
        before the operator has stored it."""
        answer = await self.list_objects(resource, namespace, label_selector)
        for obj in answer:
            yield [obj], "1"
        if not answer:
            yield [], "1"


def raw_task(phase: str | None, resource_version: str) -> dict[str, Any]:
    obj = task("t").build().model_dump(by_alias=True, exclude_none=True, mode="json")
    obj["metadata"]["resourceVersion"] = resource_version
    obj["status"] = {"phase": phase} if phase else {}
    return obj


async def runtime_after_first_sync(api: ListingApi) -> Manager:
    runtime = Manager(api, OperatorSettings())  # type: ignore[arg-type]
    await runtime.sync()
    return runtime


async def test_a_job_that_finished_during_the_resync_stays_finished() -> None:
    active = job("t", 1).build()
    api = ListingApi({JOBS: [active], ASYNCTASKS: [raw_task("Running", "1")]})
    runtime = await runtime_after_first_sync(api)
    # The Job completes after the resync listed it, before the resync stores what it listed.
    api.during[JOBS] = lambda: runtime.on_job("MODIFIED", job("t", 1).complete().build())
    await runtime.sync()
    assert runtime.cache.jobs["media", "t-1"].finished


async def test_a_task_written_during_the_resync_is_not_read_back_to_its_listed_phase() -> None:
    api = ListingApi({ASYNCTASKS: [raw_task(None, "1")]})
    runtime = await runtime_after_first_sync(api)
    api.during[ASYNCTASKS] = lambda: runtime.on_task("MODIFIED", raw_task("Running", "2"))
    await runtime.sync()
    assert runtime.cache.tasks["media", "t"]["status"]["phase"] == "Running"
    assert runtime.cache.tasks["media", "t"]["metadata"]["resourceVersion"] == "2"


async def test_a_job_deleted_during_the_resync_is_not_brought_back() -> None:
    active = job("t", 1).build()
    api = ListingApi({JOBS: [active], PODS: [pod("t-1").build()]})
    runtime = await runtime_after_first_sync(api)
    api.during[JOBS] = lambda: runtime.on_job("DELETED", active)
    await runtime.sync()
    assert ("media", "t-1") not in runtime.cache.jobs


async def test_the_listing_still_repairs_what_no_event_brought() -> None:
    api = ListingApi({JOBS: [job("t", 1).build()]})
    runtime = await runtime_after_first_sync(api)
    api.snapshots[JOBS] = [job("t", 1).complete().build()]  # an event the watch lost
    await runtime.sync()
    assert runtime.cache.jobs["media", "t-1"].finished


def raw_queue(name: str, concurrency: int, resource_version: str) -> dict[str, Any]:
    return {
        "apiVersion": "asynctask.dev/v1alpha1",
        "kind": "TaskQueue",
        "metadata": {"namespace": "media", "name": name, "resourceVersion": resource_version, "generation": 1},
        "spec": {"concurrency": concurrency},
    }


async def test_a_taskqueue_goes_the_way_of_every_kind_through_the_listing() -> None:
    """TaskQueues are listed like every other kind (one informer): a queue changed while unwatched is
    updated, a queue deleted while unwatched (its DELETED event missed) is dropped from the ledger."""
    api = ListingApi({TASKQUEUES: [raw_queue("fast", 2, "1"), raw_queue("gone", 1, "1")]})
    runtime = await runtime_after_first_sync(api)
    assert set(runtime.admissions.objects) == {("media", "fast"), ("media", "gone")}
    api.snapshots[TASKQUEUES] = [raw_queue("fast", 5, "2")]
    await runtime.sync()
    assert set(runtime.admissions.objects) == {("media", "fast")}
    assert runtime.admissions.objects["media", "fast"].spec.concurrency == 5


async def test_a_taskqueue_event_during_the_listing_is_not_undone_by_it() -> None:
    api = ListingApi({TASKQUEUES: [raw_queue("fast", 2, "1")]})
    runtime = await runtime_after_first_sync(api)
    api.during[TASKQUEUES] = lambda: runtime.on_taskqueue("MODIFIED", raw_queue("fast", 7, "3"))
    await runtime.sync()
    assert runtime.admissions.objects["media", "fast"].spec.concurrency == 7


def test_an_object_never_seen_has_not_changed_since_a_listing_begun_at_time_zero() -> None:
    """The cache's clock is injected; an event loop's starts at 0. Taking "never seen" for "seen at 0.0"
    made every listing begun at 0 skip every object as changed since (found with looptime)."""
    cache = Cache(monotonic=lambda: 0.0)
    assert not cache.changed_since("task", ("media", "t"), 0.0)
    cache.put_task(raw_task("Running", "1"))
    assert cache.changed_since("task", ("media", "t"), 0.0)
