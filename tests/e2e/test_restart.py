"""A crash and a restart against a real cluster (docs/design.md §3.6): no task lost, no Job created twice.

The operator is killed (SIGKILL) while tasks run; tasks are created while it is down; it
starts again, lists everything (in pages) and watches from that listing. Every task must
then finish with exactly the Jobs it had (the same Job objects: same uid), and those
created while it was down must run once.
"""

from __future__ import annotations

import pytest

from tests.e2e.helpers import API_VERSION, SUCCESS_TIMEOUT, Cluster, status_of, task_body

pytestmark = pytest.mark.e2e

SLEEP_TYPE = {
    "apiVersion": API_VERSION,
    "kind": "TaskType",
    "metadata": {"name": "sleep-15"},
    "spec": {
        "jobTemplate": {
            "spec": {
                "template": {
                    "spec": {
                        "restartPolicy": "Never",
                        "terminationGracePeriodSeconds": 2,
                        "containers": [{"name": "main", "image": "busybox:1.36", "command": ["sh", "-c", "sleep 15"]}],
                    }
                }
            }
        }
    },
}


def test_a_crash_loses_no_task_and_creates_no_job_twice(cluster: Cluster) -> None:
    operator = cluster.operator
    assert operator is not None
    cluster.apply([SLEEP_TYPE])
    running = [f"crash-{i}" for i in range(6)]
    cluster.apply([task_body(name, {"type": "sleep-15", "payload": {}}) for name in running])
    for name in running:
        cluster.wait_for_phase(name, {"Running"}, SUCCESS_TIMEOUT)
    uids = {}
    for name in running:
        job = cluster.get_job(f"{name}-1")
        assert job is not None, cluster.describe(name)
        uids[name] = job["metadata"]["uid"]

    operator.crash()
    while_down = [f"late-{i}" for i in range(4)]
    cluster.apply([task_body(name, {"type": "sleep-15", "payload": {}}) for name in while_down])
    operator.start_again()

    for name in running + while_down:
        task = cluster.wait_for_phase(name, {"Succeeded"}, SUCCESS_TIMEOUT)
        why = cluster.describe(name)
        attempts = status_of(task).get("attempts") or []
        assert [a.get("job") for a in attempts] == [f"{name}-1"], why
        jobs = cluster.jobs_of(name)
        assert [j["metadata"]["name"] for j in jobs] == [f"{name}-1"], why
        if name in uids:
            assert jobs[0]["metadata"]["uid"] == uids[name], f"Job {name}-1 was created again\n{why}"
