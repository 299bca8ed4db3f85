"""The HTTP gateway against a real cluster: real TokenReviews and SubjectAccessReviews (issue 16, E2E).

A ServiceAccount allowed only create and get on asynctasks submits and polls, and is refused the
cancel (403); an idempotent replay answers the same task; a second ServiceAccount allowed get
and watch follows the task over SSE and sees Running, then Succeeded. The gateway runs here as
a process (``asynctask-gateway --kubeconfig …``) against the test namespace.
"""

from __future__ import annotations

import json
import os
import pathlib
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import kubernetes.client
import pytest

from tests.e2e.helpers import SUCCESS_TIMEOUT, Cluster, load_example, select, wait_for

pytestmark = pytest.mark.e2e

SUBMITTER, WATCHER = "gw-submitter", "gw-watcher"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def token_for(cluster: Cluster, name: str, verbs: list[str]) -> str:
    """A ServiceAccount with a Role of ``verbs`` on asynctasks in the test namespace, and a token of it."""
    ns = cluster.namespace
    k = kubernetes.client
    rbac_api = k.RbacAuthorizationV1Api(cluster.client)
    meta = k.V1ObjectMeta(name=name)
    cluster.core.create_namespaced_service_account(ns, k.V1ServiceAccount(metadata=meta))
    rule = k.V1PolicyRule(api_groups=["asynctask.dev"], resources=["asynctasks"], verbs=verbs)
    rbac_api.create_namespaced_role(ns, k.V1Role(metadata=meta, rules=[rule]))
    binding = k.V1RoleBinding(
        metadata=meta,
        role_ref=k.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="Role", name=name),
        subjects=[k.RbacV1Subject(kind="ServiceAccount", name=name, namespace=ns)],
    )
    rbac_api.create_namespaced_role_binding(ns, binding)
    request = k.AuthenticationV1TokenRequest(spec=k.V1TokenRequestSpec(audiences=[], expiration_seconds=3600))
    answer = cluster.core.create_namespaced_service_account_token(name, ns, request)
    assert answer.status is not None and answer.status.token
    return str(answer.status.token)


@pytest.fixture(scope="module")
def gateway(cluster: Cluster, kubeconfig: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    log = (tmp_path_factory.mktemp("gateway") / "gateway.log").open("w")
    gateway_bin = pathlib.Path(sys.executable).with_name("asynctask-gateway")
    process = subprocess.Popen(
        [str(gateway_bin), "--kubeconfig", kubeconfig, "--namespace", cluster.namespace, "--port", str(port),
         "--host", "127.0.0.1", "--keepalive", "5"],
        stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy(),
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        try:
            return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_for(ready, 60, "the gateway ready")
        yield url
    finally:
        process.terminate()
        process.wait(30)
        log.close()


def test_a_submitter_submits_polls_and_may_not_cancel(cluster: Cluster, gateway: str) -> None:
    cluster.apply(select(load_example("hello"), "TaskType"))
    token = token_for(cluster, SUBMITTER, ["create", "get"])
    watcher = token_for(cluster, WATCHER, ["get", "watch"])
    tasks = f"{gateway}/v1/namespaces/{cluster.namespace}/tasks"
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": "e2e-1"}
    body: dict[str, Any] = {"type": "hello", "payload": {"greeting": "hi"}}
    with httpx.Client(timeout=30) as client:
        first = client.post(tasks, json=body, headers=headers)
        assert first.status_code == 202, first.text
        location = first.headers["Location"]
        assert first.json()["submittedBy"] == f"system:serviceaccount:{cluster.namespace}:{SUBMITTER}"
        replay = client.post(tasks, json=body, headers=headers)
        assert replay.status_code == 200 and replay.headers["Location"] == location

        phases: list[str] = []

        def follow() -> None:
            auth = {"Authorization": f"Bearer {watcher}"}
            with httpx.stream("GET", f"{gateway}{location}/events", headers=auth, timeout=None) as stream:
                for line in stream.iter_lines():
                    if line.startswith("data: "):
                        phases.append(json.loads(line[6:])["phase"])

        reader = threading.Thread(target=follow, daemon=True)
        reader.start()

        refused = client.post(f"{gateway}{location}:cancel", headers={"Authorization": f"Bearer {token}"})
        assert refused.status_code == 403
        name = first.json()["name"]  # a cancel is about the task: asked about it by name, as kubectl would
        assert refused.json()["detail"] == f"you may not patch asynctasks {name!r} in namespace '{cluster.namespace}'"

        def finished() -> dict[str, Any] | None:
            polled = client.get(f"{gateway}{location}", headers={"Authorization": f"Bearer {token}"})
            assert polled.status_code == 200, polled.text
            return polled.json() if "Retry-After" not in polled.headers else None

        done = wait_for(finished, SUCCESS_TIMEOUT, "the task finished", interval=1)
        assert done["phase"] == "Succeeded"
        reader.join(30)
        assert not reader.is_alive(), "the stream did not end after the terminal event"
        assert "Running" in phases and phases[-1] == "Succeeded", phases
