"""The informer: the list-then-watch every kind goes through (ADR 0013, ADR 0015).

A scripted API: each watch request takes the next script (events, then the stream ends;
or an exception). The checks are where each watch starts from (the listing's
resourceVersion, then the last event's or bookmark's), when the operator lists again
(410 Gone, as an answer or as an ERROR event) and what the cache holds after.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from asynctask_operator.adapters import reflector as reflector_module
from asynctask_operator.adapters.kube import ASYNCTASKS, JOBS, ApiError, Gone, RequestCounter, Resource
from asynctask_operator.controllers.manager import Manager
from asynctask_operator.settings import OperatorSettings
from tests.unit.builders import job, task

Script = list[dict[str, Any]] | BaseException


class ScriptedApi:
    def __init__(self, listing: dict[Resource, list[dict[str, Any]]], scripts: list[Script]) -> None:
        self.listing = listing
        self.scripts = scripts
        self.watched_from: list[str] = []
        self.listings: list[Resource] = []
        self.counter = RequestCounter()
        self.done = asyncio.Event()
        self.list_versions: dict[Resource, int] = {}

    async def list_objects(self, resource: Resource, *_: Any, **__: Any) -> list[dict[str, Any]]:
        return []

    async def list_pages(
        self, resource: Resource, *_: Any, **__: Any
    ) -> AsyncIterator[tuple[list[dict[str, Any]], str]]:
        self.listings.append(resource)
        self.list_versions[resource] = version = self.list_versions.get(resource, 100) + 1
        yield [dict(o) for o in self.listing.get(resource, [])], str(version)

    async def watch(
        self, resource: Resource, namespace: str | None, selector: str | None, version: str, **_: Any
    ) -> AsyncIterator[dict[str, Any]]:
        self.watched_from.append(version)
        if not self.scripts:
            self.done.set()
            await asyncio.Event().wait()  # an open stream with nothing to say
        script = self.scripts.pop(0)
        if isinstance(script, BaseException):
            raise script
        for event in script:
            yield event


def raw_task(name: str, version: str, phase: str | None = None) -> dict[str, Any]:
    obj = task(name).build().model_dump(by_alias=True, exclude_none=True, mode="json")
    obj["metadata"]["resourceVersion"] = version
    obj["status"] = {"phase": phase} if phase else {}
    return obj


def event(type_: str, obj: dict[str, Any]) -> dict[str, Any]:
    return {"type": type_, "object": obj}


def bookmark(version: str) -> dict[str, Any]:
    return {"type": "BOOKMARK", "object": {"kind": "AsyncTask", "metadata": {"resourceVersion": version}}}


def expired() -> dict[str, Any]:
    return {"type": "ERROR", "object": {"kind": "Status", "code": 410, "reason": "Expired", "message": "too old"}}


async def follow(api: ScriptedApi, resource: Resource = ASYNCTASKS, kind: str = "task") -> Manager:
    runtime = Manager(api, OperatorSettings())  # type: ignore[arg-type]
    versions = await runtime.sync()
    runtime.queue._pending.clear()  # the listing queued every task; what follows is what the watch queues
    follower = asyncio.create_task(runtime.informer.watch_kind(kind, resource, None, version=versions[kind, None]))
    try:
        await asyncio.wait_for(api.done.wait(), 5)
    finally:
        follower.cancel()
    return runtime


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reflector_module, "MAX_WATCH_BACKOFF", 0.01)


async def test_watches_from_the_listing_then_from_the_last_event_and_bookmark() -> None:
    api = ScriptedApi(
        {ASYNCTASKS: [raw_task("a", "5")]},
        [
            [event("ADDED", raw_task("b", "102"))],
            [bookmark("107")],
            [event("MODIFIED", raw_task("b", "109", "Running"))],
        ],
    )
    runtime = await follow(api)
    assert api.watched_from == ["101", "102", "107", "109"]
    assert api.listings.count(ASYNCTASKS) == 1
    assert runtime.cache.tasks["media", "b"]["status"]["phase"] == "Running"
    assert ("media", "a") in runtime.cache.tasks


@pytest.mark.parametrize(
    "gone",
    [Gone(410, "Expired", "too old resource version"), [expired()]],
    ids=["410 answer", "ERROR event"],
)
async def test_an_expired_version_lists_again_and_watches_from_the_new_listing(gone: Script) -> None:
    api = ScriptedApi({ASYNCTASKS: [raw_task("a", "5")]}, [gone])
    # What happened while the watch was gone: "a" was deleted, "c" created.
    original = api.list_pages

    async def later_listing(resource: Resource, *args: Any, **kw: Any) -> AsyncIterator[Any]:
        if api.listings:
            api.listing[ASYNCTASKS] = [raw_task("c", "150")]
        async for page in original(resource, *args, **kw):
            yield page

    api.list_pages = later_listing  # type: ignore[method-assign]
    runtime = await follow(api)
    assert api.listings.count(ASYNCTASKS) == 2
    assert api.watched_from == ["101", "102"]
    assert set(runtime.cache.tasks) == {("media", "c")}
    assert ("task", "media", "c") in runtime.queue._pending  # reconciled: it changed while unwatched


@pytest.mark.parametrize(
    "failure",
    [
        ApiError(500, "InternalError", "etcd"),
        ApiError(0, "WatchBroken", "connection reset"),
        [{"type": "ERROR", "object": {"code": 500}}],
    ],
    ids=["500", "dropped", "ERROR 500 event"],
)
async def test_a_failed_watch_is_opened_again_from_the_same_version(failure: Script) -> None:
    api = ScriptedApi({}, [[event("ADDED", raw_task("b", "102"))], failure, [event("DELETED", raw_task("b", "103"))]])
    runtime = await follow(api)
    assert api.watched_from == ["101", "102", "102", "103"]
    assert api.listings.count(ASYNCTASKS) == 1, "a failure that is not 410 does not list again"
    assert ("media", "b") not in runtime.cache.tasks


async def test_job_events_wake_the_owning_task() -> None:
    api = ScriptedApi(
        {ASYNCTASKS: [raw_task("t", "5", "Running")]}, [[event("MODIFIED", job("t", 1).complete().build())]]
    )
    runtime = await follow(api, JOBS, "job")
    assert runtime.cache.jobs["media", "t-1"].finished
    assert ("task", "media", "t") in runtime.queue._pending


async def test_an_event_the_cache_cannot_take_is_skipped_and_the_stream_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    api = ScriptedApi({}, [[event("ADDED", raw_task("poison", "102")), event("ADDED", raw_task("b", "103"))]])
    runtime = Manager(api, OperatorSettings())  # type: ignore[arg-type]
    original = runtime.cache.put_task

    def put_task(obj: dict[str, Any], *args: Any) -> Any:
        if obj["metadata"]["name"] == "poison":
            raise ValueError("cannot take this one")
        return original(obj, *args)

    monkeypatch.setattr(runtime.cache, "put_task", put_task)
    versions = await runtime.sync()
    follower = asyncio.create_task(
        runtime.informer.watch_kind("task", ASYNCTASKS, None, version=versions["task", None])
    )
    try:
        await asyncio.wait_for(api.done.wait(), 5)
    finally:
        follower.cancel()
    assert set(runtime.cache.tasks) == {("media", "b")}
    assert api.watched_from == ["101", "103"], "the stream went on past the event it could not store"
