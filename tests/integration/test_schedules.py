"""ScheduledTask through the real operator process (docs/design.md §2.4): run-now, downtime, two operators, policies.

A real clock cannot be injected into another process, so no test here waits for a fire
time. Each one makes its fire times lie in the recent past instead: a schedule whose
minutes are "25, 15 and 5 minutes ago", and a ``status.lastScheduleTime`` from before
them, is a ScheduledTask whose operator was down across three fire times — and its next
fire time is more than half an hour away, so nothing fires during the test by itself.

The runs go to a TaskQueue with concurrency 0, so they stay Pending (unfinished) and the
test decides when one finishes.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable
from typing import Any

import kmock
import pytest

from asynctask_operator.core.naming import manual_run_name, scheduled_run_name
from asynctask_operator.testing.cluster import AT, NS, ST, Cluster, operator_writes
from asynctask_operator.testing.operators import Operator, eventually

ST_PATH = f"/apis/asynctask.dev/v1alpha1/namespaces/{NS}/scheduledtasks"
HELD = {"type": "echo", "queue": "hold", "ttlSecondsAfterFinished": 3600}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def stamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def minutes_ago(*ago: int) -> tuple[str, list[dt.datetime]]:
    """A schedule firing at these minutes of every hour, and those fire times (oldest first)."""
    now = utcnow().replace(second=0, microsecond=0)
    fires = sorted(now - dt.timedelta(minutes=a) for a in ago)
    return ",".join(str(f.minute) for f in fires) + " * * * *", fires


def run_of(owner: str, fire: dt.datetime) -> str:
    return scheduled_run_name(owner, int(fire.timestamp()) // 60)


async def create_scheduled(
    cluster: Cluster, name: str, spec: dict[str, Any], status: dict[str, Any] | None = None, **meta: Any
) -> None:
    body: dict[str, Any] = {
        "apiVersion": "asynctask.dev/v1alpha1",
        "kind": "ScheduledTask",
        "metadata": {**cluster._meta(name), "uid": f"uid-{name}", **meta},
        "spec": {"taskTemplate": {"spec": HELD}, **spec},
    }
    if status is not None:
        body["status"] = status
    resp = await cluster.k.post(ST_PATH, json=body)
    assert resp.status == 200, await resp.text()


async def create_run(cluster: Cluster, owner: str, name: str, status: dict[str, Any]) -> None:
    """An AsyncTask the ScheduledTask ``owner`` created earlier (before the test started)."""
    body = {
        "apiVersion": "asynctask.dev/v1alpha1",
        "kind": "AsyncTask",
        "metadata": {
            **cluster._meta(name),
            "labels": {"asynctask.dev/scheduled-task": owner},
            "ownerReferences": [
                {
                    "apiVersion": "asynctask.dev/v1alpha1",
                    "kind": "ScheduledTask",
                    "name": owner,
                    "uid": f"uid-{owner}",
                    "controller": True,
                }
            ],
        },
        "spec": HELD,
        "status": status,
    }
    resp = await cluster.k.post(f"/apis/asynctask.dev/v1alpha1/namespaces/{NS}/asynctasks", json=body)
    assert resp.status == 200, await resp.text()


def st_status(cluster: Cluster, name: str) -> dict[str, Any]:
    return dict(cluster.k.objects[ST, NS, name].get("status") or {})


def ready(cluster: Cluster, name: str) -> dict[str, Any]:
    for condition in st_status(cluster, name).get("conditions") or ():
        if condition.get("type") == "Ready":
            return dict(condition)
    return {}


def runs_of(cluster: Cluster, owner: str) -> list[str]:
    """Names of the AsyncTasks (not deleted) labelled as runs of ``owner``."""
    return sorted(
        name
        for (res, ns, name) in list(cluster.k.objects)
        if res == AT
        and not cluster.k.objects[res, ns, name].deleted
        and (cluster.k.objects[res, ns, name].get("metadata") or {})
        .get("labels", {})
        .get("asynctask.dev/scheduled-task")
        == owner
    )


async def annotate_run_now(cluster: Cluster, name: str, value: str) -> None:
    """``kubectl annotate st NAME asynctask.dev/run-now=VALUE --overwrite``."""
    await cluster.patch(
        "/apis/asynctask.dev/v1alpha1",
        f"scheduledtasks/{name}",
        {"metadata": {"annotations": {"asynctask.dev/run-now": value}}},
    )


async def holds_for(seconds: float, check: Callable[[], bool], what: str) -> None:
    """``check`` stays true for ``seconds`` (a late duplicate would show up meanwhile)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert check(), f"no longer true: {what}"
        await asyncio.sleep(0.05)


@pytest.fixture()
async def setup(cluster: Cluster) -> Cluster:
    await cluster.create_tasktype("echo")
    await cluster.create_queue("hold", {"concurrency": 0})  # runs stay Pending until a test says otherwise
    return cluster


# --------------------------------------------------------------------------- run now


async def test_run_now_creates_one_run_and_the_same_value_never_another(setup: Cluster, operator: Operator) -> None:
    cluster = setup
    await create_scheduled(
        cluster,
        "manual",
        {"schedule": "0 0 1 1 *", "taskTemplate": {"metadata": {"labels": {"team": "data"}}, "spec": HELD}},
    )
    await eventually(lambda: st_status(cluster, "manual").get("nextScheduleTime") is not None, what="first status")
    first = manual_run_name("manual", "1767225600")

    await annotate_run_now(cluster, "manual", "1767225600")
    await eventually(lambda: runs_of(cluster, "manual") == [first], what="the manual run")
    task = cluster.task(first)
    assert task["metadata"]["labels"] == {"team": "data", "asynctask.dev/scheduled-task": "manual"}
    assert task["metadata"]["annotations"]["asynctask.dev/run-now"] == "1767225600"
    [owner] = task["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == (
        "ScheduledTask",
        "manual",
        "uid-manual",
        True,
    )
    assert task["spec"] == HELD
    await eventually(lambda: st_status(cluster, "manual").get("lastRunNow") == "1767225600", what="lastRunNow")
    assert st_status(cluster, "manual")["active"] == [first]

    # The run is deleted, and the same value is applied again (another event on the object): nothing.
    await cluster.delete("/apis/asynctask.dev/v1alpha1", f"asynctasks/{first}")
    await cluster.patch("/apis/asynctask.dev/v1alpha1", "scheduledtasks/manual", {"metadata": {"labels": {"x": "1"}}})
    await annotate_run_now(cluster, "manual", "1767225600")
    await eventually(lambda: st_status(cluster, "manual").get("active") is None, what="the deleted run to leave active")
    # A new value runs again; by then every earlier event has been reconciled.
    await annotate_run_now(cluster, "manual", "1767225700")
    second = manual_run_name("manual", "1767225700")
    await eventually(lambda: runs_of(cluster, "manual") == [second], what="the second manual run")
    posts = [p for m, p in operator_writes(cluster.k) if m == "POST" and p.endswith("/asynctasks")]
    assert len(posts) == 2


# --------------------------------------------------------------------------- downtime


async def test_after_downtime_only_the_latest_missed_run_starts(setup: Cluster, operator: Operator) -> None:
    cluster = setup
    schedule, fires = minutes_ago(25, 15, 5)
    await create_scheduled(
        cluster,
        "catchup",
        {"schedule": schedule},
        status={"lastScheduleTime": stamp(fires[0] - dt.timedelta(minutes=5))},
    )
    latest = run_of("catchup", fires[-1])
    await eventually(lambda: runs_of(cluster, "catchup") == [latest], what="the catch-up run")
    await eventually(lambda: st_status(cluster, "catchup").get("missedRuns") == 2, what="missedRuns 2")
    status = st_status(cluster, "catchup")
    assert status["lastScheduleTime"] == stamp(fires[-1])
    assert status["nextScheduleTime"] == stamp(fires[0] + dt.timedelta(hours=1))
    assert status["active"] == [latest]
    assert ready(cluster, "catchup")["status"] == "True"
    assert "2 run(s) missed" in operator.log()

    # A restart at any moment after this starts nothing more and counts nothing again.
    await operator.stop()
    await operator.start()
    await annotate_run_now(cluster, "catchup", "after-restart")  # proof the restarted operator has looked
    manual = manual_run_name("catchup", "after-restart")
    await eventually(lambda: runs_of(cluster, "catchup") == sorted([latest, manual]), what="the manual run")
    assert st_status(cluster, "catchup")["missedRuns"] == 2


async def test_a_missed_run_past_the_starting_deadline_is_counted_not_started(
    setup: Cluster, operator: Operator
) -> None:
    cluster = setup
    schedule, fires = minutes_ago(25, 15, 5)
    await create_scheduled(
        cluster,
        "late",
        {"schedule": schedule, "startingDeadlineSeconds": 120},
        status={"lastScheduleTime": stamp(fires[0] - dt.timedelta(minutes=5))},
    )
    await eventually(lambda: st_status(cluster, "late").get("missedRuns") == 3, what="missedRuns 3")
    assert runs_of(cluster, "late") == []
    assert st_status(cluster, "late").get("lastScheduleTime") == stamp(fires[0] - dt.timedelta(minutes=5))


# --------------------------------------------------------------------------- two operators


async def test_two_operators_create_one_run_per_fire_time(
    setup: Cluster, operator: Operator, kubeconfig: Any, tmp_path: Any, kmock: kmock.KubernetesEmulator
) -> None:
    cluster = setup
    second = Operator(kubeconfig, tmp_path / "operator-2.log")
    await second.start()
    try:
        schedule, fires = minutes_ago(25, 15, 5)
        await create_scheduled(
            cluster,
            "twice",
            {"schedule": schedule},
            status={"lastScheduleTime": stamp(fires[0] - dt.timedelta(minutes=5))},
        )
        latest = run_of("twice", fires[-1])
        await eventually(lambda: runs_of(cluster, "twice") == [latest], what="the catch-up run")
        await annotate_run_now(cluster, "twice", "both")
        manual = manual_run_name("twice", "both")
        await eventually(lambda: runs_of(cluster, "twice") == sorted([latest, manual]), what="the manual run")
        # Both operators may have tried; the name is the lock, so each run exists once.
        await eventually(lambda: st_status(cluster, "twice").get("lastRunNow") == "both", what="lastRunNow")
        await holds_for(1.0, lambda: runs_of(cluster, "twice") == sorted([latest, manual]), "no third run")
        assert st_status(cluster, "twice")["missedRuns"] == 2
        creates = [p for m, p in operator_writes(kmock) if m == "POST" and p.endswith("/asynctasks")]
        assert 2 <= len(creates) <= 4  # one per run, or two when both operators raced for it
    finally:
        await second.stop()


# --------------------------------------------------------------------------- policies, history, refusals


async def test_forbid_skips_a_fire_while_a_run_is_unfinished(setup: Cluster, operator: Operator) -> None:
    cluster = setup
    await create_run(cluster, "forbid", "forbid-old", {"phase": "Pending"})
    # The operator has seen the run (it queued it) before it sees the ScheduledTask: watches of two
    # resources deliver in any order, and a run this operator creates itself is known at once.
    await eventually(lambda: cluster.status("forbid-old").get("reason") == "Queued", what="the run queued")
    schedule, fires = minutes_ago(25, 15, 5)
    await create_scheduled(
        cluster,
        "forbid",
        {"schedule": schedule, "concurrencyPolicy": "Forbid"},
        status={"lastScheduleTime": stamp(fires[0] - dt.timedelta(minutes=5)), "active": ["forbid-old"]},
    )
    await eventually(
        lambda: (st_status(cluster, "forbid").get("counts") or {}).get("skipped") == 1, what="one skipped run"
    )
    status = st_status(cluster, "forbid")
    assert runs_of(cluster, "forbid") == ["forbid-old"]
    assert status["missedRuns"] == 2
    assert status["active"] == ["forbid-old"]
    assert status["nextScheduleTime"] == stamp(fires[0] + dt.timedelta(hours=1))
    assert "concurrencyPolicy Forbid" in operator.log()

    # The run finishes: it leaves active and is counted.
    await cluster.patch(
        "/apis/asynctask.dev/v1alpha1",
        "asynctasks/forbid-old/status",
        {"status": {"phase": "Succeeded", "completionTime": stamp(utcnow())}},
    )
    await eventually(
        lambda: (st_status(cluster, "forbid").get("counts") or {}).get("succeeded") == 1, what="the run counted"
    )
    assert st_status(cluster, "forbid").get("active") is None
    assert st_status(cluster, "forbid").get("lastSuccessfulTime")


async def test_history_limits_delete_the_oldest_finished_runs(setup: Cluster, operator: Operator) -> None:
    cluster = setup
    base = utcnow() - dt.timedelta(minutes=20)  # within the runs' TTL (an hour)
    for i in range(5):
        done = stamp(base + dt.timedelta(minutes=i))
        await create_run(cluster, "history", f"history-ok-{i}", {"phase": "Succeeded", "completionTime": done})
    for i in range(2):
        done = stamp(base + dt.timedelta(minutes=i))
        await create_run(cluster, "history", f"history-failed-{i}", {"phase": "Failed", "completionTime": done})
    await create_run(cluster, "history", "history-running", {"phase": "Pending"})
    await create_scheduled(
        cluster,
        "history",
        {"schedule": "0 0 1 1 *", "successfulTasksHistoryLimit": 2, "failedTasksHistoryLimit": 1},
    )
    kept = ["history-failed-1", "history-ok-3", "history-ok-4", "history-running"]
    await eventually(lambda: runs_of(cluster, "history") == kept, what="the oldest finished runs deleted")


@pytest.mark.parametrize(
    ("schedule", "zone", "reason"),
    [("61 * * * *", "UTC", "InvalidSchedule"), ("0 2 * * *", "Mars/Olympus", "InvalidTimeZone")],
)
async def test_what_the_api_server_cannot_refuse_ends_not_ready(
    setup: Cluster, operator: Operator, schedule: str, zone: str, reason: str
) -> None:
    cluster = setup
    await create_scheduled(
        cluster,
        "broken",
        {"schedule": schedule, "timeZone": zone},
        status={"lastScheduleTime": stamp(utcnow() - dt.timedelta(days=1))},
    )
    await eventually(lambda: ready(cluster, "broken").get("status") == "False", what="Ready False")
    assert ready(cluster, "broken")["reason"] == reason
    assert runs_of(cluster, "broken") == []
