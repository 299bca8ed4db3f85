"""Concurrency keys and fair admission on a real API server and real Jobs (issue 28).

- a mutex per key: the Jobs of one key never overlap (from the Jobs' own startTime and
  completionTime), while a task of another key runs beside them; the waiters say whom they wait for;
- CancelInProgress: a newer task of the key cancels the running one (reason Superseded, an Event
  naming the newer task), its Job is deleted, and the newer one runs to Succeeded;
- fairness: in a queue of one, fair by the label ``tenant``, tenant b's tasks created behind tenant
  a's backlog are admitted every other turn;
- the CRD refuses a bad key and a bad policy, naming the field.
"""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from kubernetes.client import ApiException

from tests.e2e.helpers import (
    API_VERSION,
    SUCCESS_TIMEOUT,
    Cluster,
    Obj,
    api_message,
    status_of,
    task_body,
    wait_for,
)

pytestmark = pytest.mark.e2e


def sleeper(name: str, seconds: int) -> Obj:
    container = {"name": "main", "image": "busybox:1.36", "command": ["sh", "-c", f"sleep {seconds}"]}
    pod = {"restartPolicy": "Never", "terminationGracePeriodSeconds": 1, "containers": [container]}
    return {"apiVersion": API_VERSION, "kind": "TaskType", "metadata": {"name": name},
            "spec": {"jobTemplate": {"spec": {"template": {"spec": pod}}}}}  # fmt: skip


def when(stamp: str) -> dt.datetime:
    return dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def lifetime(cluster: Cluster, job: str) -> tuple[dt.datetime, dt.datetime]:
    found = cluster.get_job(job)
    assert found is not None, f"Job {job} is gone"
    status = found.get("status") or {}
    assert status.get("startTime") and status.get("completionTime"), f"Job {job} did not complete: {status}"
    return when(status["startTime"]), when(status["completionTime"])


def test_a_mutex_runs_the_tasks_of_one_key_one_after_another(cluster: Cluster) -> None:
    cluster.apply([sleeper("sleep-6", 6)])
    same = [f"mutex-{i}" for i in range(3)]
    for name in same:
        cluster.create(task_body(name, {"type": "sleep-6", "concurrency": {"key": "video-1"}}))
    cluster.create(task_body("other-key", {"type": "sleep-6", "concurrency": {"key": "video-2"}}))
    waiting = wait_for(
        lambda: [n for n in same if status_of(cluster.get_task(n)).get("reason") == "WaitingForKey"] or None,
        SUCCESS_TIMEOUT,
        "a task of video-1 to wait for the key",
    )
    wait_status = status_of(cluster.get_task(waiting[0]))
    assert wait_status["waitingForKey"]["key"] == "video-1", wait_status
    assert wait_status["waitingForKey"]["holders"], wait_status
    for name in [*same, "other-key"]:
        cluster.wait_for_phase(name, {"Succeeded"}, SUCCESS_TIMEOUT * 2)
    lives = sorted(lifetime(cluster, f"{name}-1") for name in same)
    for (_, ended), (started, _) in itertools.pairwise(lives):
        assert started >= ended, f"two Jobs of video-1 overlapped: {lives}"
    other_start, _ = lifetime(cluster, "other-key-1")
    assert other_start < lives[-1][0], "a task of another key waited for video-1"
    reasons = {e.get("reason") for e in cluster.events_about(set(same))}
    assert "WaitingForKey" in reasons, reasons


def test_cancel_in_progress_supersedes_the_running_task(cluster: Cluster) -> None:
    cluster.apply([sleeper("sleep-10", 10)])
    spec = {"type": "sleep-10", "concurrency": {"key": "env-prod", "policy": "CancelInProgress"}}
    cluster.create(task_body("deploy-1", spec))
    cluster.wait_for_phase("deploy-1", {"Running"}, SUCCESS_TIMEOUT)
    cluster.create(task_body("deploy-2", spec))
    old = cluster.wait_for_phase("deploy-1", {"Cancelled"}, SUCCESS_TIMEOUT)
    assert status_of(old)["reason"] == "Superseded", cluster.describe("deploy-1")
    assert "deploy-2" in status_of(old)["message"], cluster.describe("deploy-1")
    wait_for(lambda: cluster.job_gone("deploy-1-1"), SUCCESS_TIMEOUT, "the superseded Job to be deleted")
    cluster.wait_for_phase("deploy-2", {"Succeeded"}, SUCCESS_TIMEOUT)
    events = cluster.events_about({"deploy-1"})
    assert any(e.get("reason") == "Superseded" and "deploy-2" in e.get("message", "") for e in events), events


def test_a_fair_queue_alternates_between_tenants(cluster: Cluster) -> None:
    cluster.apply([sleeper("sleep-2", 2)])
    queue = {"apiVersion": API_VERSION, "kind": "TaskQueue", "metadata": {"name": "shared"},
             "spec": {"concurrency": 1, "fairness": {"by": "Label", "label": "tenant"}}}  # fmt: skip
    cluster.create(queue)

    def tenant_task(name: str, tenant: str) -> Obj:
        body = task_body(name, {"type": "sleep-2", "queue": "shared"})
        body["metadata"]["labels"] = {"tenant": tenant}
        return body

    a = [f"a-{i}" for i in range(6)]
    b = [f"b-{i}" for i in range(3)]
    for name in a:
        cluster.create(tenant_task(name, "a"))
    cluster.wait_for_phase("a-0", {"Running", "Succeeded"}, SUCCESS_TIMEOUT)
    for name in b:
        cluster.create(tenant_task(name, "b"))
    for name in a + b:
        cluster.wait_for_phase(name, {"Succeeded"}, SUCCESS_TIMEOUT * 3)
    turns = {name: status_of(cluster.get_task(name))["fairness"]["turn"] for name in a + b}
    order = sorted(turns, key=turns.__getitem__)
    first_b = order.index("b-0")
    assert order[first_b : first_b + 6] == [
        "b-0",
        order[first_b + 1],
        "b-1",
        order[first_b + 3],
        "b-2",
        order[first_b + 5],
    ]
    assert all(order[first_b + i].startswith("a-") for i in (1, 3, 5)), order
    starts = {n: lifetime(cluster, f"{n}-1")[0] for n in a + b}
    assert sorted(starts, key=lambda n: (starts[n], turns[n])) == order, "the Jobs started in turn order"


@pytest.mark.parametrize(
    ("concurrency", "field"),
    [
        ({"key": "has space"}, "spec.concurrency.key"),
        ({"key": "k", "policy": "CancelInProgres"}, "spec.concurrency.policy"),
        ({"key": "k", "limit": 0}, "spec.concurrency.limit"),
    ],
    ids=["key-charset", "policy-misspelt", "limit-zero"],
)
def test_a_bad_key_is_refused_naming_the_field(cluster: Cluster, concurrency: Obj, field: str) -> None:
    with pytest.raises(ApiException) as caught:
        cluster.create(task_body("bad-key", {"type": "sleep-2", "concurrency": concurrency}))
    assert caught.value.status == 422
    assert field in api_message(caught.value), api_message(caught.value)
