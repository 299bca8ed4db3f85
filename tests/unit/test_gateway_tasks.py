"""The gateway's task routes in process against FakeKube (issue 16, items 2-4 and 6)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from asynctask_operator.adapters.kube import ASYNCTASKS, ApiError, Conflict, Invalid
from asynctask_operator.core.idempotency import ANNOTATION_SUBMITTED_BY, task_name_for_key
from asynctask_operator.core.lifecycle import RETRY_ANNOTATION
from tests.support.gateway import NS, RunningGateway, end, running_gateway

TASKS = f"/v1/namespaces/{NS}/tasks"
BODY = {"type": "video-transcode", "payload": {"src": "a.mp4"}, "priority": 5, "labels": {"app": "web"}}


async def submit(gw: RunningGateway, body: dict[str, Any] | None = None, key: str | None = None) -> Any:
    headers = gw.alice | ({"Idempotency-Key": key} if key is not None else {})
    return await gw.client.post(TASKS, json=body or BODY, headers=headers)


async def set_status(gw: RunningGateway, name: str, **status: Any) -> None:
    await gw.fake.patch(ASYNCTASKS, NS, name, {"status": status}, subresource="status")
    await gw.settle()


async def test_a_submission_is_accepted_with_its_location_and_seen_at_once() -> None:
    async with running_gateway() as gw:
        answer = await submit(gw)
        assert answer.status_code == 202
        body = answer.json()
        assert answer.headers["Location"] == f"{TASKS}/{body['name']}"
        assert answer.headers["Retry-After"] == "1"  # first in its queue
        assert body["phase"] == "Pending" and body["type"] == "video-transcode" and body["position"] == 1
        assert body["name"].startswith("video-transcode-") and body["submittedBy"] == "alice"
        stored = gw.task(body["name"])
        assert stored is not None
        assert stored["metadata"]["annotations"][ANNOTATION_SUBMITTED_BY] == "alice"
        assert stored["metadata"]["labels"] == {"app": "web"}
        assert stored["spec"] == {"type": "video-transcode", "payload": {"src": "a.mp4"}, "priority": 5}
        again = await gw.client.get(answer.headers["Location"], headers=gw.alice)  # no settle: the answer is cached
        assert again.status_code == 200 and again.json()["name"] == body["name"]


async def test_the_same_idempotency_key_and_body_replays_the_original_task() -> None:
    async with running_gateway() as gw:
        first = await submit(gw, key="order-42")
        replay = await submit(gw, {**BODY, "labels": {"app": "web"}}, key="order-42")
        assert (first.status_code, replay.status_code) == (202, 200)
        assert replay.headers["Location"] == first.headers["Location"]
        assert replay.headers["Idempotent-Replayed"] == "true"
        assert first.json()["name"] == task_name_for_key(NS, "alice", "order-42")
        assert len(gw.fake.of(ASYNCTASKS, NS)) == 1
        other = await submit(gw, {**BODY, "priority": 6}, key="order-42")
        assert other.status_code == 422 and other.headers["content-type"] == "application/problem+json"
        assert "different body" in other.json()["detail"]


async def test_the_same_key_of_another_user_is_another_task() -> None:
    async with running_gateway() as gw:
        gw.allow.add(("bob", "create", "asynctasks", NS))
        mine = await submit(gw, key="k")
        theirs = await gw.client.post(TASKS, json=BODY, headers=gw.bob | {"Idempotency-Key": "k"})
        assert theirs.status_code == 202 and theirs.json()["name"] != mine.json()["name"]


async def test_a_key_whose_task_is_not_readable_yet_is_a_conflict() -> None:
    async with running_gateway() as gw:
        gw.fake.fail("create", "asynctasks", Conflict(409, "AlreadyExists", "exists"))
        answer = await submit(gw, key="racing")
        assert answer.status_code == 409 and answer.json()["status"] == 409


async def test_the_api_servers_refusal_is_carried_over_as_422() -> None:
    async with running_gateway() as gw:
        message = 'AsyncTask.asynctask.dev "x" is invalid: spec.payload: Too long'
        gw.fake.fail("create", "asynctasks", Invalid(422, "Invalid", message))
        answer = await submit(gw)
        assert answer.status_code == 422
        assert answer.json()["detail"] == message


async def test_an_unreachable_api_server_is_503_with_retry_after() -> None:
    async with running_gateway() as gw:
        gw.fake.fail("create", "asynctasks", ApiError(0, "Unreachable", "connection refused"))
        answer = await submit(gw)
        assert answer.status_code == 503 and answer.headers["Retry-After"] == "5"


async def test_bad_bodies_are_refused_naming_the_field() -> None:
    cases: list[tuple[dict[str, Any], bytes | None, str, int, str]] = [
        # (json, raw content, content type, status, in detail)
        ({"type": "echo", "priority": 5000}, None, "application/json", 422, "priority"),
        ({"type": "Not A Name"}, None, "application/json", 422, "type"),
        ({"payload": {}}, None, "application/json", 422, "type"),
        ({"type": "echo", "bogus": 1}, None, "application/json", 422, "bogus"),
        ({"type": "echo", "retry": {"maxRetries": -1}}, None, "application/json", 422, "retry.maxRetries"),
        ({}, b"{not json", "application/json", 400, "not valid JSON"),
        ({}, b"type=echo", "text/plain", 415, "application/json"),
        ({}, b'{"type": "echo", "payload": "' + b"x" * 300_000 + b'"}', "application/json", 413, ""),
    ]
    async with running_gateway() as gw:
        for body, raw, content_type, status, detail in cases:
            headers = gw.alice | {"Content-Type": content_type}
            if raw is None:
                answer = await gw.client.post(TASKS, json=body, headers=headers)
            else:
                answer = await gw.client.post(TASKS, content=raw, headers=headers)
            assert answer.status_code == status, (body, raw and raw[:20], answer.text[:200])
            assert answer.headers["content-type"] == "application/problem+json"
            assert detail in answer.json()["detail"], answer.json()
        assert gw.fake.of(ASYNCTASKS) == []


async def test_status_has_an_etag_and_retry_after_until_it_finished() -> None:
    async with running_gateway() as gw:
        location = (await submit(gw)).headers["Location"]
        first = await gw.client.get(location, headers=gw.alice)
        etag = first.headers["ETag"]
        same = await gw.client.get(location, headers=gw.alice | {"If-None-Match": etag})
        assert same.status_code == 304 and same.content == b""
        name = first.json()["name"]
        await set_status(gw, name, phase="Succeeded", result={"url": "s3://out"}, durationSeconds=3.5)
        done = await gw.client.get(location, headers=gw.alice | {"If-None-Match": etag})
        assert done.status_code == 200 and done.headers["ETag"] != etag
        assert "Retry-After" not in done.headers
        assert done.json()["phase"] == "Succeeded" and done.json()["durationSeconds"] == 3.5
        result = await gw.client.get(f"{location}/result", headers=gw.alice)
        assert result.json() == {"result": {"url": "s3://out"}}


async def test_the_result_of_an_unfinished_task_is_a_conflict_naming_the_phase() -> None:
    async with running_gateway() as gw:
        location = (await submit(gw)).headers["Location"]
        answer = await gw.client.get(f"{location}/result", headers=gw.alice)
        assert answer.status_code == 409 and answer.json()["phase"] == "Pending"
        missing = await gw.client.get(f"{TASKS}/nope", headers=gw.alice)
        assert missing.status_code == 404 and "nope" in missing.json()["detail"]


async def test_lists_filter_and_page() -> None:
    async with running_gateway() as gw:
        for i in range(5):
            await submit(gw, {"type": "a" if i % 2 else "b", "labels": {"n": str(i)}})
        await gw.settle()
        everything = (await gw.client.get(TASKS, headers=gw.alice)).json()
        assert len(everything["items"]) == 5 and everything.get("continue") is None
        only_a = (await gw.client.get(TASKS, params={"type": "a"}, headers=gw.alice)).json()["items"]
        assert sorted(t["labels"]["n"] for t in only_a) == ["1", "3"]
        labelled = (await gw.client.get(TASKS, params={"labelSelector": "n=4"}, headers=gw.alice)).json()["items"]
        assert [t["labels"] for t in labelled] == [{"n": "4"}]
        names: list[str] = []
        page: dict[str, Any] = {"limit": 2}
        while True:
            answer = (await gw.client.get(TASKS, params=page, headers=gw.alice)).json()
            names += [t["name"] for t in answer["items"]]
            if not answer.get("continue"):
                break
            page = {"limit": 2, "continue": answer["continue"]}
        assert names == sorted(t["name"] for t in everything["items"])
        too_many = await gw.client.get(TASKS, params={"limit": 501}, headers=gw.alice)
        assert too_many.status_code == 422
        bad = await gw.client.get(TASKS, params={"labelSelector": "a=b=c"}, headers=gw.alice)
        assert bad.status_code == 400


async def test_cancel_retry_and_delete() -> None:
    async with running_gateway() as gw:
        location = (await submit(gw)).headers["Location"]
        name = location.rsplit("/", 1)[1]
        not_yet = await gw.client.post(f"{location}:retry", headers=gw.alice)
        assert not_yet.status_code == 409 and not_yet.json()["phase"] == "Pending"
        cancelled = await gw.client.post(f"{location}:cancel", headers=gw.alice)
        assert cancelled.status_code == 202
        assert (gw.task(name) or {})["spec"]["cancel"] is True
        await set_status(gw, name, phase="Cancelled")
        again = await gw.client.post(f"{location}:cancel", headers=gw.alice)
        assert again.status_code == 409
        retried = await gw.client.post(f"{location}:retry", headers=gw.alice)
        assert retried.status_code == 202
        stored = gw.task(name) or {}
        assert RETRY_ANNOTATION in stored["metadata"]["annotations"] and "cancel" not in stored["spec"]
        assert (await gw.client.delete(location, headers=gw.alice)).status_code == 204
        assert gw.task(name) is None
        assert (await gw.client.delete(location, headers=gw.alice)).status_code == 404


async def test_queue_positions_follow_the_admission_order() -> None:
    async with running_gateway() as gw:
        low = (await submit(gw, {"type": "echo", "priority": 0})).json()["name"]
        high = (await submit(gw, {"type": "echo", "priority": 9})).json()["name"]
        await gw.settle()
        assert (await gw.client.get(f"{TASKS}/{high}", headers=gw.alice)).json()["position"] == 1
        assert (await gw.client.get(f"{TASKS}/{low}", headers=gw.alice)).json()["position"] == 2
        await set_status(gw, high, phase="Running")
        running = (await gw.client.get(f"{TASKS}/{high}", headers=gw.alice)).json()
        assert running.get("position") is None and running["phase"] == "Running"
        assert (await gw.client.get(f"{TASKS}/{low}", headers=gw.alice)).json()["position"] == 1


async def test_a_task_stream_sends_each_status_change_and_ends_after_the_terminal_one() -> None:
    async with running_gateway() as gw:
        name = (await submit(gw)).json()["name"]
        await gw.settle()
        stream = asyncio.create_task(gw.client.get(f"{TASKS}/{name}/events", headers=gw.alice))
        await gw.subscribed()
        await set_status(gw, name, phase="Running", attempt=1)
        await gw.fake.patch(ASYNCTASKS, NS, name, {"metadata": {"labels": {"x": "y"}}})  # not a status change
        await set_status(gw, name, progress={"percent": 50})
        await set_status(gw, name, phase="Succeeded")
        answer = await asyncio.wait_for(stream, 5)
        assert answer.headers["content-type"].startswith("text/event-stream")
        events = [e for e in answer.text.split("\n\n") if e]
        phases = [e.split("data: ", 1)[1] for e in events]
        assert len(events) == 4, events
        assert ['"phase":"Pending"' in phases[0], '"phase":"Running"' in phases[1]] == [True, True]
        assert '"percent":50' in phases[2] and '"phase":"Succeeded"' in phases[3]
        ids = [line.split(": ", 1)[1] for e in events for line in e.splitlines() if line.startswith("id: ")]
        assert ids == sorted(ids, key=int) and len(ids) == 4
        final = gw.task(name) or {}
        assert ids[-1] == final["metadata"]["resourceVersion"]


@pytest.mark.looptime  # the keep-alive intervals pass on the loop's clock, not the machine's (no flake under load)
async def test_a_stream_resumed_at_the_current_version_sends_nothing_again_and_keeps_alive() -> None:
    async with running_gateway(keepalive_seconds=0.01) as gw:
        answer = await submit(gw)
        name, version = answer.json()["name"], answer.json()["resourceVersion"]
        stream = asyncio.create_task(
            gw.client.get(f"{TASKS}/{name}/events", headers=gw.alice | {"Last-Event-ID": version})
        )
        await gw.subscribed()
        await asyncio.sleep(0.05)  # a few keep-alive intervals (10 ms each)
        await set_status(gw, name, phase="Failed")
        text = (await asyncio.wait_for(stream, 5)).text
        assert text.startswith(": keep-alive\n\n")
        assert text.count("event: status") == 1 and '"phase":"Failed"' in text


async def test_the_namespace_stream_filters_by_type() -> None:
    async with running_gateway() as gw:
        stream = asyncio.create_task(
            gw.client.get(f"/v1/namespaces/{NS}/events", params={"type": "b"}, headers=gw.alice)
        )
        await gw.subscribed()
        await submit(gw, {"type": "a"})
        wanted = (await submit(gw, {"type": "b"})).json()["name"]
        await gw.settle()
        for subscription in list(gw.gateway.tasks.subscriptions):  # end the stream as a dropped one ends
            subscription.queue.put_nowait(None)
        text = (await asyncio.wait_for(stream, 5)).text
        assert text.count("event: task") == 1 and wanted in text


async def test_a_stream_resumed_from_an_older_event_sends_the_current_state_first() -> None:
    async with running_gateway() as gw:
        answer = await submit(gw)
        name, old = answer.json()["name"], answer.json()["resourceVersion"]
        await set_status(gw, name, phase="Running", attempt=1)
        stream = asyncio.create_task(gw.client.get(f"{TASKS}/{name}/events", headers=gw.alice | {"Last-Event-ID": old}))
        await gw.subscribed()
        await set_status(gw, name, phase="Succeeded")
        text = (await asyncio.wait_for(stream, 5)).text
        phases = [line for line in text.splitlines() if line.startswith("data: ")]
        assert len(phases) == 2 and '"phase":"Running"' in phases[0] and '"phase":"Succeeded"' in phases[1]


async def test_a_namespace_stream_resumed_learns_of_changes_and_deletions_since_its_last_event() -> None:
    async with running_gateway() as gw:
        kept = (await submit(gw, {"type": "a"})).json()
        gone = (await submit(gw, {"type": "a"})).json()["name"]
        untouched = (await submit(gw, {"type": "a"})).json()["name"]
        await gw.settle()
        last = max(int((gw.task(n) or {})["metadata"]["resourceVersion"]) for n in (kept["name"], gone, untouched))
        await set_status(gw, kept["name"], phase="Running")
        await gw.fake.delete(ASYNCTASKS, NS, gone)
        await gw.settle()
        stream = asyncio.create_task(
            gw.client.get(f"/v1/namespaces/{NS}/events", headers=gw.alice | {"Last-Event-ID": str(last)})
        )
        await gw.subscribed()
        for subscription in list(gw.gateway.tasks.subscriptions):  # end the stream as a dropped one ends
            subscription.queue.put_nowait(None)
        events = [e for e in (await asyncio.wait_for(stream, 5)).text.split("\n\n") if e]
        kinds = [(e.splitlines()[0], kept["name"] in e, gone in e) for e in events]
        assert kinds == [  # in resourceVersion order; then the mark that it has caught up
            ("event: task", True, False), ("event: deleted", False, True), ("event: bookmark", False, False)
        ]  # fmt: skip
        assert untouched not in "".join(events)


async def stream_of(gw: RunningGateway, params: dict[str, str], headers: dict[str, str] | None = None) -> Any:
    """A namespace stream opened now, ended (as a dropped subscriber's ends) once ``gw`` is settled."""
    stream = asyncio.create_task(
        gw.client.get(f"/v1/namespaces/{NS}/events", params=params, headers=gw.alice | (headers or {}))
    )
    await gw.subscribed()
    return stream


async def test_a_namespace_stream_starts_with_the_current_tasks_then_a_bookmark_then_changes() -> None:
    async with running_gateway() as gw:
        a1, b1, a2 = [(await submit(gw, {"type": t})).json()["name"] for t in ("a", "b", "a")]
        await set_status(gw, a1, phase="Running")  # a1 changed last: sent last of the initial events
        stream = await stream_of(gw, {"type": "a"})
        later = (await submit(gw, {"type": "a"})).json()["name"]
        events = await end(gw, stream)
        assert [(e["event"], json.loads(e["data"]).get("name")) for e in events] == [
            ("task", a2), ("task", a1), ("bookmark", None), ("task", later)
        ]  # fmt: skip
        versions = [int((gw.task(n) or {})["metadata"]["resourceVersion"]) for n in (a1, b1, a2)]
        mark = events[2]
        assert json.loads(mark["data"]) == {"initialEventsEnd": True, "resourceVersion": str(max(versions))}
        assert mark["id"] == str(max(versions))
        resumed = await stream_of(
            gw, {"type": "a"}, {"Last-Event-ID": mark["id"]}
        )  # from the mark: only what came since
        assert [(e["event"], json.loads(e["data"]).get("name")) for e in await end(gw, resumed)] == [
            ("task", later), ("bookmark", None)
        ]  # fmt: skip


async def test_a_namespace_stream_without_initial_events_sends_changes_only() -> None:
    async with running_gateway() as gw:
        await submit(gw, {"type": "a"})
        stream = await stream_of(gw, {"sendInitialEvents": "false"})
        later = (await submit(gw, {"type": "a"})).json()["name"]
        events = await end(gw, stream)
        assert [(e["event"], json.loads(e["data"]).get("name")) for e in events] == [("task", later)]


async def test_a_namespace_stream_resumed_with_an_id_that_is_not_a_number_sends_everything() -> None:
    async with running_gateway() as gw:
        names = [(await submit(gw, {"type": "a"})).json()["name"] for _ in range(2)]
        await gw.settle()
        stream = asyncio.create_task(
            gw.client.get(f"/v1/namespaces/{NS}/events", headers=gw.alice | {"Last-Event-ID": "opaque-7"})
        )
        await gw.subscribed()
        for subscription in list(gw.gateway.tasks.subscriptions):
            subscription.queue.put_nowait(None)
        text = (await asyncio.wait_for(stream, 5)).text
        assert text.count("event: task") == 2 and all(n in text for n in names)
