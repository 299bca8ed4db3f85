"""The HTTP gateway against a real cluster: real TokenReviews and SubjectAccessReviews (issue 16, E2E).

A ServiceAccount allowed only create and get on asynctasks submits and polls, and is refused the
cancel (403); an idempotent replay answers the same task; a second ServiceAccount allowed get
and watch follows the task over SSE and sees Running, then Succeeded. A Role with
``resourceNames`` reads and cancels the task it names and no other; a misspelt type and a
payload its schema refuses are refused at once (422); a namespace's stream starts with the
tasks there and a bookmark (issue 25). The gateway runs here as a process
(``asynctask-gateway --kubeconfig …``) against the test namespace.
"""

from __future__ import annotations

import contextlib
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

from tests.e2e.helpers import SUCCESS_TIMEOUT, Cluster, load_example, select, task_body, wait_for

pytestmark = pytest.mark.e2e

SUBMITTER, WATCHER = "gw-submitter", "gw-watcher"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def rule(verbs: list[str], resource: str = "asynctasks", names: list[str] | None = None) -> Any:
    """A Role's rule on one asynctask.dev resource (``names``: its resourceNames)."""
    return kubernetes.client.V1PolicyRule(
        api_groups=["asynctask.dev"], resources=[resource], verbs=verbs, resource_names=names
    )


def token_for(cluster: Cluster, name: str, verbs: list[str], *more: Any) -> str:
    """A ServiceAccount with a Role of ``verbs`` on asynctasks (and the rules ``more``) in the test
    namespace, and a token of it. ``verbs`` may be empty: the Role is then ``more`` alone."""
    ns = cluster.namespace
    k = kubernetes.client
    rbac_api = k.RbacAuthorizationV1Api(cluster.client)
    meta = k.V1ObjectMeta(name=name)
    cluster.core.create_namespaced_service_account(ns, k.V1ServiceAccount(metadata=meta))
    rules = ([rule(verbs)] if verbs else []) + list(more)
    rbac_api.create_namespaced_role(ns, k.V1Role(metadata=meta, rules=rules))
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


@contextlib.contextmanager
def gateway_process(kubeconfig: str, namespace: str, log_path: pathlib.Path, *extra: str) -> Iterator[str]:
    """``asynctask-gateway`` serving ``namespace`` on a free port (``extra``: more of its flags); its URL
    once it answers ``/readyz``. Its output goes to ``log_path``, shown if it never gets ready."""
    port = free_port()
    gateway_bin = pathlib.Path(sys.executable).with_name("asynctask-gateway")
    command = [str(gateway_bin), "--kubeconfig", kubeconfig, "--namespace", namespace, "--port", str(port),
               "--host", "127.0.0.1", *extra]  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy())

    def ready() -> bool:
        try:
            return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_for(ready, 60, "the gateway ready", describe=lambda: log_path.read_text(errors="replace"))
        yield url
    finally:
        process.terminate()
        process.wait(30)


@pytest.fixture(scope="module")
def gateway(cluster: Cluster, kubeconfig: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log_path = tmp_path_factory.mktemp("gateway") / "gateway.log"
    with gateway_process(kubeconfig, cluster.namespace, log_path, "--keepalive", "5") as url:
        yield url


def events_of(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    """The events of an SSE stream's lines: ``{"event": …, "id": …, "data": {…}}``."""
    event: dict[str, Any] = {}
    for line in lines:
        if not line:
            if "event" in event:
                yield event
            event = {}
        elif line.startswith("data: "):
            event["data"] = json.loads(line[6:])
        elif not line.startswith(":"):
            field, _, value = line.partition(": ")
            event[field] = value


def test_a_role_naming_one_task_lets_its_user_read_and_cancel_that_task_only(cluster: Cluster, gateway: str) -> None:
    """Issue 25, item 1: ``resourceNames`` hold through the gateway as through kubectl."""
    cluster.apply(select(load_example("cancel"), "TaskType"))
    for name in ("named-mine", "named-other"):
        cluster.create(task_body(name, {"type": "sleep-300"}))
    token = token_for(cluster, "gw-named", [], rule(["get", "patch"], names=["named-mine"]))
    auth = {"Authorization": f"Bearer {token}"}
    tasks = f"{gateway}/v1/namespaces/{cluster.namespace}/tasks"
    with httpx.Client(timeout=30) as client:
        assert client.get(f"{tasks}/named-mine", headers=auth).status_code == 200
        other = client.get(f"{tasks}/named-other", headers=auth)
        assert other.status_code == 403, other.text
        assert other.json()["detail"] == (
            f"you may not get asynctasks 'named-other' in namespace '{cluster.namespace}'"
        )
        assert client.get(tasks, headers=auth).status_code == 403  # a listing is namespace-wide, as kubectl's is
        assert client.post(f"{tasks}/named-other:cancel", headers=auth).status_code == 403
        cancelled = client.post(f"{tasks}/named-mine:cancel", headers=auth)
        assert cancelled.status_code == 202, cancelled.text
    cluster.wait_for_phase("named-mine", {"Cancelled"})
    cluster.patch_task("named-other", {"spec": {"cancel": True}})


def test_a_submission_of_a_type_that_does_not_exist_or_a_bad_payload_is_refused_at_once(
    cluster: Cluster, gateway: str
) -> None:
    """Issue 25, item 2: 422 naming the types there, or the payload field's JSON pointer; nothing created."""
    cluster.apply(select(load_example("hello"), "TaskType") + select(load_example("invalid"), "TaskType"))
    token = token_for(cluster, "gw-typo", ["create", "list"], rule(["list"], "tasktypes"))
    auth = {"Authorization": f"Bearer {token}"}
    tasks = f"{gateway}/v1/namespaces/{cluster.namespace}/tasks"
    with httpx.Client(timeout=30) as client:
        before = len(client.get(tasks, headers=auth, params={"limit": 500}).json()["items"])
        typo = client.post(tasks, json={"type": "helo"}, headers=auth)
        assert typo.status_code == 422, typo.text
        assert typo.json()["reason"] == "UnknownTaskType" and typo.json()["errors"][0]["pointer"] == "/type"
        assert {"hello", "resize-image"} <= set(typo.json()["types"])
        bad = client.post(tasks, json={"type": "resize-image", "payload": {"url": "u", "width": "wide"}}, headers=auth)
        assert bad.status_code == 422, bad.text
        assert bad.json()["reason"] == "InvalidPayload" and bad.json()["errors"][0]["pointer"] == "/payload/width"
        after = len(client.get(tasks, headers=auth, params={"limit": 500}).json()["items"])
        assert after == before  # neither was created
        good = client.post(tasks, json={"type": "resize-image", "payload": {"url": "u", "width": 3}}, headers=auth)
        assert good.status_code == 202, good.text


def test_a_namespace_stream_starts_with_the_tasks_there_then_a_bookmark(cluster: Cluster, gateway: str) -> None:
    """Issue 25, item 4: the initial events, then ``event: bookmark``, then changes, as sendInitialEvents."""
    cluster.apply(select(load_example("cancel"), "TaskType"))
    cluster.create(task_body("stream-first", {"type": "sleep-300"}))
    token = token_for(cluster, "gw-streamer", ["watch"])
    seen: list[tuple[str, str | None]] = []
    marked = threading.Event()

    def follow() -> None:
        auth = {"Authorization": f"Bearer {token}"}
        url = f"{gateway}/v1/namespaces/{cluster.namespace}/events"
        with httpx.stream("GET", url, headers=auth, params={"type": "sleep-300"}, timeout=None) as stream:
            for event in events_of(stream.iter_lines()):
                seen.append((event["event"], event["data"].get("name")))
                if event["event"] == "bookmark":
                    assert event["data"]["initialEventsEnd"] is True and event.get("id")
                    marked.set()
                if ("task", "stream-later") in seen:
                    return

    reader = threading.Thread(target=follow, daemon=True)
    reader.start()
    assert marked.wait(60), f"no bookmark after the initial events: {seen}"
    assert ("task", "stream-first") in seen[: seen.index(("bookmark", None))]
    cluster.create(task_body("stream-later", {"type": "sleep-300"}))
    reader.join(60)
    assert not reader.is_alive(), f"the new task never came after the bookmark: {seen}"
    assert seen.index(("task", "stream-later")) > seen.index(("bookmark", None))
    for name in ("stream-first", "stream-later"):
        cluster.patch_task(name, {"spec": {"cancel": True}})


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
