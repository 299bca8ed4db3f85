"""ADR 0020 against a real cluster: the task's own code sees the trace it belongs to.

A task annotated with a W3C traceparent runs a container that prints ``$TRACEPARENT``: the kubelet
gave it the operator's value, whose trace id is the annotation's and whose span is the attempt's.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from tests.e2e.helpers import API_VERSION, SUCCESS_TIMEOUT, Cluster, container_env

pytestmark = pytest.mark.e2e

TRACE, PARENT = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"


def _pod_log(cluster: Cluster, job: str) -> str:
    texts = []
    for pod in cluster.pods_of_job(job):
        response: Any = cluster.core.read_namespaced_pod_log(pod["metadata"]["name"], cluster.namespace)
        texts.append(str(response))
    return "\n".join(texts)


def test_the_tasks_container_continues_the_annotated_trace(cluster: Cluster) -> None:
    cluster.create(
        {
            "apiVersion": API_VERSION,
            "kind": "TaskType",
            "metadata": {"name": "print-trace"},
            "spec": {
                "jobTemplate": {
                    "spec": {
                        "template": {
                            "spec": {
                                "restartPolicy": "Never",
                                "containers": [
                                    {
                                        "name": "main",
                                        "image": "busybox:1.36",
                                        "command": ["sh", "-c", 'echo "traceparent=$TRACEPARENT"'],
                                    }
                                ],
                            }
                        }
                    }
                }
            },
        }
    )
    created = cluster.create(
        {
            "apiVersion": API_VERSION,
            "kind": "AsyncTask",
            "metadata": {"name": "traced", "annotations": {"asynctask.dev/traceparent": f"00-{TRACE}-{PARENT}-01"}},
            "spec": {"type": "print-trace"},
        }
    )
    cluster.wait_for_phase("traced", {"Succeeded"}, SUCCESS_TIMEOUT)
    why = cluster.describe("traced")
    attempt_span = hashlib.sha256(f"{created['metadata']['uid']}/1/attempt".encode()).digest()[:8].hex()
    expected = f"00-{TRACE}-{attempt_span}-01"
    job = cluster.get_job("traced-1")
    assert job is not None, why
    assert container_env(job).get("TRACEPARENT") == expected, why
    log = _pod_log(cluster, "traced-1")
    assert f"traceparent={expected}" in log.splitlines(), f"the container printed:\n{log}\n{why}"
    printed = log.split("traceparent=", 1)[1].split("-")
    assert printed[1] == TRACE, "the trace id the container sees is the annotation's"
