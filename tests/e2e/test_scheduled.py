"""ScheduledTask against a real cluster (docs/design.md §2.4): runs every minute that succeed, run-now, suspend.

These wait for real minutes to pass, so they are the slowest end-to-end tests (about
six minutes together). Each test uses its own ScheduledTask, built from
``examples/scheduled``, and deletes it at the end so it stops creating runs.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from typing import cast

import pytest
from kubernetes.client import ApiException

from asynctask_operator.core.naming import manual_run_name
from tests.e2e.helpers import (
    GROUP,
    SUCCESS_TIMEOUT,
    VERSION,
    Cluster,
    Obj,
    load_example,
    one,
    phase_of,
    renamed,
    select,
    status_of,
    to_yaml,
)

pytestmark = pytest.mark.e2e

PLURAL = "scheduledtasks"
LABEL = "asynctask.dev/scheduled-task"
MINUTE = 60.0


def get_scheduled(cluster: Cluster, name: str) -> Obj | None:
    try:
        return cast(Obj, cluster.custom.get_namespaced_custom_object(GROUP, VERSION, cluster.namespace, PLURAL, name))
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def patch_scheduled(cluster: Cluster, name: str, patch: Obj) -> None:
    """``kubectl patch st NAME --type merge -p ...`` (and ``kubectl annotate``)."""
    cluster.custom.patch_namespaced_custom_object(
        GROUP, VERSION, cluster.namespace, PLURAL, name, patch, _content_type="application/merge-patch+json"
    )


def runs_of(cluster: Cluster, name: str) -> list[Obj]:
    answer = cast(
        Obj,
        cluster.custom.list_namespaced_custom_object(
            GROUP, VERSION, cluster.namespace, "asynctasks", label_selector=f"{LABEL}={name}"
        ),
    )
    items = cast(list[Obj], answer.get("items") or [])
    return sorted(items, key=lambda t: str(t["metadata"]["name"]))


def scheduled_runs(cluster: Cluster, name: str) -> list[str]:
    """Runs created by the schedule (not by run-now)."""
    return [t["metadata"]["name"] for t in runs_of(cluster, name) if "-manual-" not in t["metadata"]["name"]]


def describe(cluster: Cluster, name: str) -> str:
    st = get_scheduled(cluster, name) or {}
    runs = {t["metadata"]["name"]: phase_of(t) for t in runs_of(cluster, name)}
    return f"--- ScheduledTask {name}\n{to_yaml({'spec': st.get('spec'), 'status': st.get('status')})}runs: {runs}"


@pytest.fixture()
def scheduled(cluster: Cluster) -> Iterator[list[str]]:
    """Names of the ScheduledTasks a test creates; deleted afterwards (their runs go with them)."""
    cluster.apply(select(load_example("scheduled"), "TaskType"))
    names: list[str] = []
    yield names
    for name in names:
        try:
            cluster.custom.delete_namespaced_custom_object(GROUP, VERSION, cluster.namespace, PLURAL, name)
        except ApiException as exc:
            if exc.status != 404:
                raise


def create(cluster: Cluster, names: list[str], name: str, **spec: object) -> None:
    doc = renamed(one(load_example("scheduled"), "ScheduledTask", "every-minute"), name)
    doc["spec"].update(spec)
    cluster.create(doc)
    names.append(name)


def seconds_to_next_minute() -> float:
    now = time.time()
    return MINUTE - now % MINUTE


def test_every_minute_creates_runs_that_succeed(cluster: Cluster, scheduled: list[str]) -> None:
    started = time.monotonic()
    create(cluster, scheduled, "minutely")
    cluster.wait(
        lambda: True if time.monotonic() - started >= 2.5 * MINUTE else None,
        3 * MINUTE,
        "two and a half minutes to pass",
        interval=5,
    )
    runs = scheduled_runs(cluster, "minutely")
    why = describe(cluster, "minutely")
    assert 2 <= len(runs) <= 3, f"expected 2-3 runs in 2.5 minutes of */1 * * * *\n{why}"
    for run in runs:
        cluster.wait_for_phase(run, {"Succeeded"}, SUCCESS_TIMEOUT)
        minute = int(run.rsplit("-", 1)[1])
        task = cluster.get_task(run) or {}
        assert task["metadata"]["annotations"]["asynctask.dev/scheduled-time"] == dt.datetime.fromtimestamp(
            minute * 60, dt.UTC
        ).strftime("%Y-%m-%dT%H:%M:%SZ")
        assert task["metadata"]["labels"]["example"] == "scheduled"
        [owner] = task["metadata"]["ownerReferences"]
        assert (owner["kind"], owner["name"], owner["controller"]) == ("ScheduledTask", "minutely", True)

    def counted() -> Obj | None:
        status = status_of(get_scheduled(cluster, "minutely"))
        return status if (status.get("counts") or {}).get("succeeded", 0) >= len(runs) else None

    status = cluster.wait(counted, MINUTE, "the runs to be counted", describe=lambda: describe(cluster, "minutely"))
    assert status.get("missedRuns") == 0, describe(cluster, "minutely")
    assert status.get("lastSuccessfulTime"), describe(cluster, "minutely")
    assert status.get("nextScheduleTime", "") > dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    ready = {c["type"]: c for c in status.get("conditions") or ()}["Ready"]
    assert (ready["status"], ready["reason"]) == ("True", "Scheduled")


def test_run_now_starts_one_run_per_value(cluster: Cluster, scheduled: list[str]) -> None:
    create(cluster, scheduled, "on-demand", schedule="0 0 1 1 *")
    value = str(int(time.time()))
    patch_scheduled(cluster, "on-demand", {"metadata": {"annotations": {"asynctask.dev/run-now": value}}})
    run = manual_run_name("on-demand", value)
    cluster.wait_for_phase(run, {"Succeeded"}, SUCCESS_TIMEOUT)

    # The same value again (with another change, so the operator surely looks): no second run.
    patch_scheduled(
        cluster, "on-demand", {"metadata": {"labels": {"poke": "1"}, "annotations": {"asynctask.dev/run-now": value}}}
    )
    cluster.wait(
        lambda: True if status_of(get_scheduled(cluster, "on-demand")).get("lastRunNow") == value else None,
        SUCCESS_TIMEOUT,
        "status.lastRunNow",
        describe=lambda: describe(cluster, "on-demand"),
    )
    time.sleep(5)  # a duplicate would appear within this
    assert [t["metadata"]["name"] for t in runs_of(cluster, "on-demand")] == [run], describe(cluster, "on-demand")


def test_five_run_nows_at_once_all_succeed_without_a_resync(cluster: Cluster, scheduled: list[str]) -> None:
    """Issue #10 as seen on a real cluster: five run-nows given within 100 ms, four sat Pending until a restart.

    Each run takes seconds there; the wait is 60 s against the operator's 300 s resync, so a
    resync finishing them by chance is unlikely (the in-process tests rule it out: no resync at all)."""
    value = str(int(time.time()))
    names = [f"burst-{i}" for i in range(5)]
    for name in names:
        create(cluster, scheduled, name, schedule="0 0 1 1 *")
    for name in names:
        patch_scheduled(cluster, name, {"metadata": {"annotations": {"asynctask.dev/run-now": value}}})
    for name in names:
        cluster.wait_for_phase(manual_run_name(name, value), {"Succeeded"}, MINUTE)


def test_suspend_pauses_and_resume_does_not_catch_up(cluster: Cluster, scheduled: list[str]) -> None:
    create(cluster, scheduled, "paused", suspend=True)
    cluster.wait(
        lambda: status_of(get_scheduled(cluster, "paused")).get("nextScheduleTime"),
        SUCCESS_TIMEOUT,
        "nextScheduleTime while suspended",
        describe=lambda: describe(cluster, "paused"),
    )
    time.sleep(seconds_to_next_minute() + 15)  # a fire time passes while suspended
    assert runs_of(cluster, "paused") == [], describe(cluster, "paused")

    patch_scheduled(cluster, "paused", {"spec": {"suspend": False}})
    cluster.wait(
        lambda: True if scheduled_runs(cluster, "paused") else None,
        MINUTE + 30,
        "the first run after resuming",
        describe=lambda: describe(cluster, "paused"),
    )
    status = status_of(get_scheduled(cluster, "paused"))
    assert len(scheduled_runs(cluster, "paused")) == 1, describe(cluster, "paused")
    assert status.get("missedRuns") == 0, describe(cluster, "paused")
