"""The fake API server's model (asynctask_operator/testing/apiserver.py), rule by rule, called directly:
what both of its faces (in process and over HTTP) answer, and what the operator's tests rely on."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from asynctask_operator.adapters.kube import ASYNCTASKS, JOBS, PODS, TOKENREVIEWS, ApiError, Conflict, Gone
from asynctask_operator.testing.apiserver import ApiServer
from asynctask_operator.testing.watches import Event, Watch

NS = "media"
NOW = dt.datetime(2026, 5, 28, 12, 0, tzinfo=dt.UTC)


def task(name: str, **meta: Any) -> dict[str, Any]:
    return {"kind": "AsyncTask", "metadata": {"name": name, **meta}, "spec": {"type": "echo"}}


def rv(obj: dict[str, Any]) -> int:
    return int(obj["metadata"]["resourceVersion"])


def drained(watch: Watch) -> list[tuple[str, str]]:
    """(type, name or resourceVersion) of every event the watch was given so far."""
    out = []
    while not watch.events.empty():
        event = watch.events.get_nowait()
        assert event is not None
        meta = event["object"]["metadata"]
        out.append((event["type"], meta.get("name") or meta["resourceVersion"]))
    return out


@pytest.fixture()
def model() -> ApiServer:
    return ApiServer(now=lambda: NOW)


def test_every_write_takes_the_next_resource_version_of_the_one_counter(model: ApiServer) -> None:
    a = model.create(ASYNCTASKS, NS, task("a")).answer
    job = model.create(JOBS, NS, {"metadata": {"name": "a-1"}}).answer
    patched = model.patch(ASYNCTASKS, NS, "a", {"spec": {"cancel": True}}).answer
    assert [rv(a), rv(job), rv(patched)] == [1, 2, 3] and model.version == 3
    assert a["metadata"] | {"uid": "?"} == {
        "name": "a", "namespace": NS, "uid": "?", "creationTimestamp": "2026-05-28T12:00:00Z", "generation": 1,
        "resourceVersion": "1",
    }  # fmt: skip
    assert patched["metadata"]["generation"] == 2  # the spec changed


def test_a_patch_that_changes_nothing_writes_nothing(model: ApiServer) -> None:
    model.create(ASYNCTASKS, NS, task("a"))
    written = model.patch(ASYNCTASKS, NS, "a", {"spec": {"type": "echo"}})
    assert written.events == [] and model.version == 1 and rv(written.answer) == 1


def test_create_refuses_a_name_taken_and_names_a_generated_one(model: ApiServer) -> None:
    model.create(ASYNCTASKS, NS, task("a"))
    with pytest.raises(Conflict) as refused:
        model.create(ASYNCTASKS, NS, task("a"))
    assert refused.value.reason == "AlreadyExists"
    made = model.create(ASYNCTASKS, NS, {"metadata": {"generateName": "echo-"}}).answer
    assert made["metadata"]["name"].startswith("echo-") and "generateName" not in made["metadata"]
    with pytest.raises(ApiError) as nameless:
        model.create(ASYNCTASKS, NS, {"metadata": {}})
    assert nameless.value.status == 422


def test_status_is_written_only_through_its_subresource(model: ApiServer) -> None:
    created = model.create(ASYNCTASKS, NS, task("a") | {"status": {"phase": "Succeeded"}}).answer
    assert "status" not in created
    main = model.patch(ASYNCTASKS, NS, "a", {"metadata": {"labels": {"x": "1"}}, "status": {"phase": "Failed"}})
    assert "status" not in main.answer and main.answer["metadata"]["labels"] == {"x": "1"}
    status = model.patch(
        ASYNCTASKS, NS, "a", {"spec": {"cancel": True}, "status": {"phase": "Running"}}, subresource="status"
    )
    assert status.answer["status"] == {"phase": "Running"} and "cancel" not in status.answer["spec"]


def test_a_restore_keeps_what_the_body_says_the_server_set(model: ApiServer) -> None:
    body = task("old", uid="uid-old", creationTimestamp="2020-01-01T00:00:00Z") | {"status": {"phase": "Running"}}
    restored = model.create(ASYNCTASKS, NS, body, restore=True).answer
    assert (
        restored["metadata"]["uid"] == "uid-old" and restored["metadata"]["creationTimestamp"] == "2020-01-01T00:00:00Z"
    )
    assert restored["status"] == {"phase": "Running"} and restored["metadata"]["resourceVersion"] == "1"


def test_a_stale_resource_version_and_another_uid_are_refused(model: ApiServer) -> None:
    first = model.create(ASYNCTASKS, NS, task("a")).answer
    model.patch(ASYNCTASKS, NS, "a", {"spec": {"cancel": True}})
    with pytest.raises(Conflict):
        model.patch(
            ASYNCTASKS, NS, "a", {"metadata": {"resourceVersion": first["metadata"]["resourceVersion"]}, "spec": {}}
        )
    with pytest.raises(Conflict):
        model.delete(ASYNCTASKS, NS, "a", uid="uid-of-another")
    current = model.get(ASYNCTASKS, NS, "a")
    with pytest.raises(Conflict):  # a patch's uid is a precondition too: the object of that name is another now
        model.patch(ASYNCTASKS, NS, "a", {"metadata": {"uid": "x"}, "spec": {"priority": 1}})
    model.patch(
        ASYNCTASKS,
        NS,
        "a",
        {"metadata": {"resourceVersion": current["metadata"]["resourceVersion"], "uid": first["metadata"]["uid"]},
         "spec": {"priority": 1}},
    )  # fmt: skip
    assert model.get(ASYNCTASKS, NS, "a")["spec"]["priority"] == 1


def test_deleting_an_owner_deletes_what_it_owns(model: ApiServer) -> None:
    owner = model.create(ASYNCTASKS, NS, task("a")).answer
    ref = [{"kind": "AsyncTask", "name": "a", "uid": owner["metadata"]["uid"]}]
    job = model.create(JOBS, NS, {"metadata": {"name": "a-1", "ownerReferences": ref}}).answer
    model.create(PODS, NS, {"metadata": {"name": "a-1-pod", "ownerReferences": [{"uid": job["metadata"]["uid"]}]}})
    model.create(JOBS, NS, {"metadata": {"name": "other"}})
    written = model.delete(ASYNCTASKS, NS, "a", uid=owner["metadata"]["uid"])
    assert [(e.type, e.object["metadata"]["name"]) for e in written.events] == [
        ("DELETED", "a"), ("DELETED", "a-1"), ("DELETED", "a-1-pod"),
    ]  # fmt: skip
    assert {key[2] for key in model.objects} == {"other"}


def test_a_listing_comes_in_pages_of_one_snapshot(model: ApiServer) -> None:
    for name in ("c", "a", "b"):
        model.create(ASYNCTASKS, NS, task(name, labels={"team": "x" if name != "b" else "y"}))
    first = model.list(ASYNCTASKS, NS, limit=2)
    model.create(ASYNCTASKS, NS, task("aa"))  # after the listing began: not in it
    second = model.list(ASYNCTASKS, NS, limit=2, token=first.token)
    assert [o["metadata"]["name"] for o in first.items + second.items] == ["a", "b", "c"]
    assert first.version == second.version == "3" and second.token == ""
    assert [o["metadata"]["name"] for o in model.list(ASYNCTASKS, NS, "team=x").items] == ["a", "c"]
    with pytest.raises(ApiError) as bad:
        model.list(ASYNCTASKS, NS, "team in (x")
    assert bad.value.status == 400


def test_a_continue_token_expires(model: ApiServer) -> None:
    for name in ("a", "b"):
        model.create(ASYNCTASKS, NS, task(name))
    page = model.list(ASYNCTASKS, NS, limit=1)
    model.expire_continues()
    with pytest.raises(Gone):
        model.list(ASYNCTASKS, NS, limit=1, token=page.token)


def test_a_watch_from_a_version_gets_what_happened_after_it_as_it_happened(model: ApiServer) -> None:
    model.create(ASYNCTASKS, NS, task("a"))
    since = str(model.version)
    model.create(ASYNCTASKS, NS, task("b"))
    model.patch(ASYNCTASKS, NS, "a", {"spec": {"cancel": True}})
    model.delete(ASYNCTASKS, NS, "b")
    resumed = model.watch(ASYNCTASKS, NS, None, since)
    fresh = model.watch(ASYNCTASKS, None, None, "")
    assert drained(resumed) == [("ADDED", "b"), ("MODIFIED", "a"), ("DELETED", "b")]
    assert drained(fresh) == [("ADDED", "a")]
    model.create(ASYNCTASKS, "elsewhere", task("c"))
    model.bookmark()
    assert drained(resumed) == [("BOOKMARK", str(model.version))]  # not the other namespace's task
    assert drained(fresh) == [("ADDED", "c"), ("BOOKMARK", str(model.version))]


def test_a_watch_from_before_a_compaction_is_gone(model: ApiServer) -> None:
    model.create(ASYNCTASKS, NS, task("a"))
    model.create(ASYNCTASKS, NS, task("b"))
    model.compact()
    with pytest.raises(Gone):
        model.watch(ASYNCTASKS, NS, None, "1")
    assert drained(model.watch(ASYNCTASKS, NS, None, "2")) == []  # nothing was missed from there


def test_ended_watches_end_and_listeners_hear_every_event(model: ApiServer) -> None:
    heard: list[Event] = []
    model.listeners.append(heard.append)
    watch = model.watch(ASYNCTASKS, NS, "team=x", "")
    model.create(ASYNCTASKS, NS, task("a"))
    model.put(ASYNCTASKS, task("b", namespace=NS, uid="uid-b"))
    model.end_watches()
    assert [(e.type, e.version) for e in heard] == [("ADDED", 1), ("ADDED", 2)]
    assert model.get(ASYNCTASKS, NS, "b")["metadata"]["uid"] == "uid-b"
    assert watch.events.get_nowait() is None  # neither task is labelled team=x: only the end


def test_faults_answer_before_anything_is_done_and_are_used_up(model: ApiServer) -> None:
    model.fail("create", "asynctasks", ApiError(503, "ServiceUnavailable", "busy"), name="a", times=2)
    assert model.fault("create", ASYNCTASKS, "b") is None
    assert [getattr(model.fault("create", ASYNCTASKS, "a"), "status", None) for _ in range(3)] == [503, 503, None]


def test_reviews_are_answered_and_kept_by_none(model: ApiServer) -> None:
    review = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": "t"}}
    assert model.create(TOKENREVIEWS, None, review).answer["status"]["authenticated"] is False
    model.reviews({"t": ("alice", ("team",))})
    answer = model.create(TOKENREVIEWS, None, review).answer
    assert answer["status"] == {"authenticated": True, "user": {"username": "alice", "groups": ["team"]}}
    assert model.objects == {} and model.version == 0
