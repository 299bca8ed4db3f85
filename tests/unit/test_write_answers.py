"""Every place the answer to one of the operator's own writes goes into its view, and what must follow.

The watch skips the event of a copy the cache holds already, so whatever stores a write's
answer must do then what that event would have done (issue #10: a run created by a
ScheduledTask sat Pending because its create's answer was stored and nothing queued it):

- a run a ScheduledTask creates, adopts after a 409, or cancels (concurrencyPolicy Replace)
  is queued for its own reconcile;
- a task's own status write updates the admission ledger but queues no second reconcile
  (the reconcile that wrote it has acted on it: that is the 3-writes-per-task budget);
- a TaskQueue status write whose answer carries a spec changed meanwhile moves the ledger.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, cast

from asynctask_operator.adapters.kube import ASYNCTASKS, JOBS, SCHEDULEDTASKS, TASKQUEUES, TASKTYPES
from asynctask_operator.adapters.kubeclient import KubeClient
from asynctask_operator.controllers.admission import Admissions
from asynctask_operator.controllers.cache import Cache
from asynctask_operator.controllers.manager import Manager, WorkKey
from asynctask_operator.core.naming import manual_run_name
from asynctask_operator.settings import OperatorSettings
from asynctask_operator.testing.fakekube import FakeKube
from tests.support.inprocess import tasktype
from tests.unit.test_own_runs_reconciled import NO_RESYNC, NS, create_before_its_fire, fired_a_minute_ago


async def drained(runtime: Manager) -> set[WorkKey]:
    """The keys queued so far, taken off the queue (nothing reconciles them)."""
    keys = set()
    while not runtime.queue.idle:
        key = await runtime.queue.get()
        runtime.queue.done(key)
        keys.add(key)
    return keys


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


async def synced(api: FakeKube) -> Manager:
    runtime = Manager(cast(KubeClient, api), NO_RESYNC)
    await runtime.sync()
    await drained(runtime)  # a sync queues everything; what follows is what the writes queue
    return runtime


def owned_by(scheduled: dict[str, Any]) -> list[dict[str, Any]]:
    meta = scheduled["metadata"]
    return [{"apiVersion": "asynctask.dev/v1alpha1", "kind": "ScheduledTask", "name": meta["name"],
             "uid": meta["uid"], "controller": True}]  # fmt: skip


async def test_a_run_the_schedule_creates_is_queued() -> None:
    api = FakeKube()
    await api.create(TASKTYPES, NS, tasktype())
    await create_before_its_fire(api, fired_a_minute_ago("fired"))
    runtime = await synced(api)
    await runtime.schedules.reconcile((NS, "fired"), now())
    [run] = api.of(ASYNCTASKS, NS)
    assert ("task", NS, run["metadata"]["name"]) in await drained(runtime)


async def test_a_run_adopted_after_a_409_is_queued() -> None:
    api = FakeKube()
    await api.create(TASKTYPES, NS, tasktype())
    body = fired_a_minute_ago("yearly")
    body["metadata"]["annotations"] = {"asynctask.dev/run-now": "1"}
    scheduled = await api.create(SCHEDULEDTASKS, NS, body)
    runtime = await synced(api)
    # An earlier try (another replica, or a crash before the status write) created the run already.
    name = manual_run_name("yearly", "1")
    manifest = {"apiVersion": "asynctask.dev/v1alpha1", "kind": "AsyncTask", "spec": {"type": "echo"}}
    await api.create(ASYNCTASKS, NS, {**manifest, "metadata": {"name": name, "ownerReferences": owned_by(scheduled)}})
    await runtime.schedules.reconcile((NS, "yearly"), now())
    assert ("get", "asynctasks") in [(r.verb, r.resource) for r in api.requests]  # the 409 sent it to read
    assert ("task", NS, name) in await drained(runtime)


async def test_a_run_the_schedule_cancels_is_queued() -> None:
    api = FakeKube()
    await api.create(TASKTYPES, NS, tasktype())
    body = fired_a_minute_ago("replacing")
    body["spec"]["concurrencyPolicy"] = "Replace"
    real = api.now
    api.now = lambda: real() - dt.timedelta(minutes=3)
    scheduled = await api.create(SCHEDULEDTASKS, NS, body)
    manifest = {"apiVersion": "asynctask.dev/v1alpha1", "kind": "AsyncTask", "spec": {"type": "echo"}}
    await api.create(
        ASYNCTASKS, NS, {**manifest, "metadata": {"name": "older", "ownerReferences": owned_by(scheduled)}}
    )
    api.now = real
    await api.patch(ASYNCTASKS, NS, "older", {"status": {"phase": "Running", "attempt": 1}}, subresource="status")
    runtime = await synced(api)
    await runtime.schedules.reconcile((NS, "replacing"), now())
    older = api.get_object(ASYNCTASKS, NS, "older")
    assert older is not None and older["spec"].get("cancel") is True
    assert ("task", NS, "older") in await drained(runtime)


async def test_a_tasks_own_status_write_moves_the_ledger_and_queues_no_second_reconcile() -> None:
    api = FakeKube()
    await api.create(TASKTYPES, NS, tasktype())
    manifest = {"apiVersion": "asynctask.dev/v1alpha1", "kind": "AsyncTask", "spec": {"type": "echo"}}
    await api.create(ASYNCTASKS, NS, {**manifest, "metadata": {"name": "t"}})
    runtime = await synced(api)
    await runtime.tasks.reconcile((NS, "t"), now())
    written = api.get_object(ASYNCTASKS, NS, "t")
    assert written is not None and written["status"]["phase"] == "Running"
    assert runtime.cache.tasks[NS, "t"]["metadata"]["resourceVersion"] == written["metadata"]["resourceVersion"]
    assert runtime.admissions.ledger.counts((NS, "default"), 0).running == 1
    assert ("task", NS, "t") not in await drained(runtime)


async def test_a_queue_status_answer_with_a_changed_spec_moves_the_ledger() -> None:
    api = FakeKube()
    spec = {"concurrency": 1}
    await api.create(TASKQUEUES, NS, {"apiVersion": "asynctask.dev/v1alpha1", "kind": "TaskQueue",
                                      "metadata": {"name": "q"}, "spec": spec})  # fmt: skip
    runtime = await synced(api)
    admissions = runtime.admissions
    assert admissions.request((NS, "a"), (NS, "q"), 0, "2026-01-01T00:00:00Z")
    assert not admissions.request((NS, "b"), (NS, "q"), 0, "2026-01-01T00:00:01Z")
    await drained(runtime)
    # The user raises the concurrency; the operator writes the queue's status before that event comes.
    await api.patch(TASKQUEUES, NS, "q", {"spec": {"concurrency": 2}})
    await runtime.taskqueues.reconcile((NS, "q"), now())
    assert api.get_object(TASKQUEUES, NS, "q")["status"]["pending"] == 1  # type: ignore[index]
    assert ("task", NS, "b") in await drained(runtime)  # admitted, and among the waiting whose reason changes
    assert admissions.is_reserved((NS, "b"))
    # The event of the user's change, arriving now, changes nothing more.
    changed = api.get_object(TASKQUEUES, NS, "q")
    assert changed is not None
    runtime.on_taskqueue("MODIFIED", changed)
    assert not {key for key in await drained(runtime) if key[0] == "task"}


async def test_the_listing_queues_what_it_brings() -> None:
    """Not a bug before (every listing is followed by waking every task), the same rule held here too."""
    api = FakeKube()
    await api.create(TASKTYPES, NS, tasktype())
    manifest = {"apiVersion": "asynctask.dev/v1alpha1", "kind": "AsyncTask", "spec": {"type": "echo"}}
    await api.create(ASYNCTASKS, NS, {**manifest, "metadata": {"name": "t"}})
    runtime = Manager(cast(KubeClient, api), OperatorSettings(http_port=0))
    await runtime.informer.list_into_cache("task", ASYNCTASKS, None)
    assert ("task", NS, "t") in await drained(runtime)


async def test_a_tasktype_status_answer_with_a_changed_spec_still_wakes_its_tasks_on_the_event() -> None:
    """A TaskType's status write has no resourceVersion precondition: its answer may carry a spec the
    user changed meanwhile. The type's unfinished tasks are woken once: by whichever brings the new spec first."""
    api = FakeKube()
    await api.create(TASKTYPES, NS, tasktype())
    manifest = {"apiVersion": "asynctask.dev/v1alpha1", "kind": "AsyncTask", "spec": {"type": "echo"}}
    await api.create(ASYNCTASKS, NS, {**manifest, "metadata": {"name": "t"}})
    runtime = await synced(api)
    await api.patch(TASKTYPES, NS, "echo", {"spec": {"defaults": {"priority": 5}}})
    changed = api.get_object(TASKTYPES, NS, "echo")
    await runtime.tasktypes.reconcile((NS, "echo"), now())  # its answer holds the new spec already
    by_answer = await drained(runtime)
    assert changed is not None
    runtime.on_tasktype("MODIFIED", changed)
    by_event = await drained(runtime)
    assert ("task", NS, "t") in by_answer
    assert ("task", NS, "t") not in by_event  # the event brings nothing the answer did not


async def test_a_jobs_create_answer_then_its_completion_reconciles_the_owner() -> None:
    """The Job's create answer is stored by its owner's reconcile (its ADDED event is then skipped); the
    Job's next change is another version and queues the owner."""
    api = FakeKube(order="answer-first")
    await api.create(TASKTYPES, NS, tasktype())
    manifest = {"apiVersion": "asynctask.dev/v1alpha1", "kind": "AsyncTask", "spec": {"type": "echo"}}
    await api.create(ASYNCTASKS, NS, {**manifest, "metadata": {"name": "t"}})
    runtime = await synced(api)
    await runtime.tasks.reconcile((NS, "t"), now())
    [job] = api.of(JOBS, NS)
    runtime.on_job("ADDED", job)  # the echo of the create: held already
    assert ("task", NS, "t") not in await drained(runtime)
    complete = {"status": {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}}
    done = await api.patch(JOBS, NS, job["metadata"]["name"], complete, subresource="status")
    runtime.on_job("MODIFIED", done)
    assert ("task", NS, "t") in await drained(runtime)


async def test_the_echo_of_a_tasktype_status_write_wakes_none_of_its_tasks() -> None:
    """A TaskType's own status write changes nothing its tasks read: neither its answer nor its event
    queues the type's tasks (with thousands of tasks of one type, each Ready flip would reconcile all)."""
    api = FakeKube()
    await api.create(TASKTYPES, NS, tasktype())
    manifest = {"apiVersion": "asynctask.dev/v1alpha1", "kind": "AsyncTask", "spec": {"type": "echo"}}
    await api.create(ASYNCTASKS, NS, {**manifest, "metadata": {"name": "t"}})
    runtime = await synced(api)
    await runtime.tasktypes.reconcile((NS, "echo"), now())  # writes Ready (the fixture has no status)
    written = api.get_object(TASKTYPES, NS, "echo")
    assert written is not None and written.get("status")
    runtime.on_tasktype("MODIFIED", written)
    assert not {key for key in await drained(runtime) if key[0] == "task"}


async def test_a_scheduledtask_a_relisting_brings_is_queued() -> None:
    """A watch that expired (410) lists its kind again; a ScheduledTask changed while nobody watched is
    queued by that listing, not left to the next resync (the relisting wakes only tasks)."""
    api = FakeKube()
    await api.create(TASKTYPES, NS, tasktype())
    runtime = await synced(api)
    await create_before_its_fire(api, fired_a_minute_ago("unwatched"))
    await runtime.informer.list_into_cache("scheduledtask", SCHEDULEDTASKS, None)
    assert ("scheduledtask", NS, "unwatched") in await drained(runtime)


async def test_a_queue_status_answer_read_after_a_newer_event_does_not_unpause_the_queue() -> None:
    """The user pauses the queue after the operator's status write reached the server; the pause's event
    arrives before the write's answer. The answer (unpaused) must not take the ledger back."""
    api = FakeKube()
    queue = await api.create(TASKQUEUES, NS, {"apiVersion": "asynctask.dev/v1alpha1", "kind": "TaskQueue",
                                              "metadata": {"name": "q"}, "spec": {"concurrency": 1}})  # fmt: skip
    now = [10.0]
    cache = Cache(monotonic=lambda: now[0])
    admissions = Admissions(None, lambda key: None, lambda key, at: None, cache=cache)
    cache.event_arrived("taskqueue", (NS, "q"))  # as Manager.on_taskqueue stamps each event
    admissions.on_queue("ADDED", queue)
    now[0] += 1
    sent = now[0]
    answer = await api.patch(TASKQUEUES, NS, "q", {"status": {"running": 0}}, subresource="status")
    paused = await api.patch(TASKQUEUES, NS, "q", {"spec": {"paused": True}})
    now[0] += 1
    cache.event_arrived("taskqueue", (NS, "q"))
    admissions.on_queue("MODIFIED", paused)  # the pause's event, first
    now[0] += 1
    assert admissions.on_queue("MODIFIED", answer, answer_sent_at=sent) == []  # the write's answer, late
    assert admissions.objects[(NS, "q")].spec.paused is True
    assert not admissions.request((NS, "a"), (NS, "q"), 0, "2026-01-01T00:00:00Z")  # paused: nothing admitted


async def test_a_tasktype_status_answer_read_after_a_newer_event_keeps_the_newer_spec() -> None:
    api = FakeKube()
    await api.create(TASKTYPES, NS, tasktype())
    runtime = await synced(api)
    sent = runtime.cache.monotonic()
    answer = await api.patch(TASKTYPES, NS, "echo", {"status": {"observedGeneration": 1}}, subresource="status")
    await api.patch(TASKTYPES, NS, "echo", {"spec": {"defaults": {"priority": 5}}})
    changed = api.get_object(TASKTYPES, NS, "echo")
    assert changed is not None
    runtime.on_tasktype("MODIFIED", changed)  # the user's change, first
    runtime.on_tasktype("MODIFIED", answer, answer_sent_at=sent)  # the status write's answer, late
    held = runtime.cache.tasktypes[NS, "echo"]
    assert held.spec.defaults is not None and held.spec.defaults.priority == 5
