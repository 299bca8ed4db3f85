"""Progress and results reported by a running task, against a real cluster (docs/design.md §3.2): examples/progress.

The operator runs on this machine. With ``ASYNCTASK_E2E_REPORT_HOST`` set, the conftest
gives it ``--report-url`` at that address, so the task's pod POSTs its progress and result
to it over HTTP; without it, the pod gets no report URL and writes its result to
``/dev/termination-log``, the path these tests then check instead.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest

from tests.e2e.helpers import (
    REPORT_HOST_ENV,
    SUCCESS_TIMEOUT,
    TERMINAL_PHASES,
    Cluster,
    Obj,
    container_env,
    load_example,
    one,
    phase_of,
    status_of,
)

pytestmark = pytest.mark.e2e

TASK = "progress-demo"
JOB = f"{TASK}-1"
RESULT = {"frames": 120}
STEPS = 5


def _run_and_watch(cluster: Cluster, name: str) -> tuple[Obj, list[int]]:
    """Poll the task every 0.5 s until it succeeds: (the task, each progress percent seen while it ran)."""
    seen: list[int] = []

    def succeeded() -> Obj | None:
        task = cluster.get_task(name)
        if task is None:
            return None
        phase = phase_of(task)
        percent = (status_of(task).get("progress") or {}).get("percent")
        if phase == "Running" and percent is not None:
            seen.append(int(percent))
        if phase == "Succeeded":
            return task
        if phase in TERMINAL_PHASES:
            raise AssertionError(f"AsyncTask {name} ended {phase}, not Succeeded\n" + cluster.describe(name))
        return None

    task = cluster.wait(
        succeeded,
        SUCCESS_TIMEOUT,
        f"AsyncTask {name} to become Succeeded",
        interval=0.5,
        describe=lambda: cluster.describe(name),
    )
    return task, seen


def _termination_message(cluster: Cluster, job: str) -> str | None:
    """What the finished container of ``job`` left in its termination message (None: no finished container)."""
    for pod in cluster.pods_of_job(job):
        for cs in (pod.get("status") or {}).get("containerStatuses") or ():
            terminated = (cs.get("state") or {}).get("terminated")
            if terminated is not None:
                return str(terminated.get("message") or "")
    return None


def _pod_log(cluster: Cluster, job: str) -> str:
    """The log of the pods of ``job`` (what the script printed: each report and its answer)."""
    parts: list[str] = []
    for pod in cluster.pods_of_job(job):
        name = pod["metadata"]["name"]
        try:
            response: Any = cluster.core.read_namespaced_pod_log(name, cluster.namespace, _preload_content=False)
            parts.append(f"--- log of pod {name}\n{response.data.decode(errors='replace')}")
        except Exception as exc:  # a description must never hide the failure it explains
            parts.append(f"--- log of pod {name}: could not read: {exc!r}")
    return "\n".join(parts)


def _post(url: str, token: str, body: Obj) -> tuple[int, Obj]:
    """POST ``body`` as JSON with ``token``: (the HTTP status, the decoded answer)."""
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, raw = int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        with exc:
            status, raw = exc.code, exc.read()
    try:
        answer = json.loads(raw or b"{}")
    except ValueError:
        answer = {"raw": raw.decode(errors="replace")}
    return status, answer if isinstance(answer, dict) else {"answer": answer}


def test_task_reports_progress_and_a_result(cluster: Cluster) -> None:
    docs = load_example("progress")
    assert one(docs, "AsyncTask", TASK)["spec"]["type"] == "progress"
    cluster.apply(docs)
    task, seen = _run_and_watch(cluster, TASK)
    status = status_of(task)
    why = cluster.describe(TASK)
    assert status.get("attempt") == 1, why

    job = cluster.get_job(JOB)
    assert job is not None, f"Job {JOB} does not exist\n{why}"
    env = container_env(job)
    message = _termination_message(cluster, JOB)
    assert message is not None, f"no finished container in the pods of Job {JOB}\n{why}"
    operator = cluster.operator
    assert operator is not None

    if operator.report_url is None:
        # No --report-url: no report variables, no progress; the result is the termination message.
        assert "ASYNCTASK_REPORT_URL" not in env and "ASYNCTASK_REPORT_TOKEN" not in env, f"env: {env}\n{why}"
        assert json.loads(message) == RESULT, f"termination message {message!r}\n{why}"
        assert status.get("result") == RESULT, why
        assert not status.get("progress"), why
        return

    assert env.get("ASYNCTASK_REPORT_URL") == (
        f"{operator.report_url}/v1/namespaces/{cluster.namespace}/asynctasks/{TASK}"
    ), f"env: {env}\n{why}"
    assert env.get("ASYNCTASK_REPORT_TOKEN", "").startswith("v1.1."), f"env: {env}\n{why}"
    # The script falls back to the termination message only when its result POST failed.
    assert message == "", (
        f"the result went to the termination message ({message!r}), not over HTTP: can pods reach "
        f"{operator.report_url} ({REPORT_HOST_ENV})?\n{_pod_log(cluster, JOB)}\n{why}"
    )
    # The last progress is written when the attempt ends, whatever the coalescing held back.
    progress = status.get("progress") or {}
    assert progress.get("percent") == 100, f"progress {progress}\n{why}"
    assert progress.get("stepsDone") == progress.get("stepsTotal") == STEPS, f"progress {progress}\n{why}"
    assert progress.get("step") == f"s{STEPS}" and progress.get("message") == f"step {STEPS}", f"{progress}\n{why}"
    assert progress.get("updateTime"), f"progress {progress}\n{why}"
    assert status.get("result") == RESULT, why
    # Progress showed while the task ran, and never went back.
    assert seen, f"no status.progress was seen while {TASK} was Running (polled every 0.5 s)\n{why}"
    assert seen == sorted(seen), f"progress went backwards: percents seen {seen}\n{why}"
    assert min(seen) < 100, f"no intermediate progress was seen, only {seen}\n{why}"


def test_report_endpoint_refuses_a_wrong_token_and_a_finished_attempt(cluster: Cluster) -> None:
    operator = cluster.operator
    assert operator is not None
    if operator.report_url is None or operator.http_port is None:
        pytest.skip(f"the operator has no --report-url: set {REPORT_HOST_ENV} to an address of this machine pods reach")
    cluster.apply(load_example("progress"))  # a no-op when the test above ran
    cluster.wait_for_phase(TASK, {"Succeeded"}, SUCCESS_TIMEOUT)
    job = cluster.get_job(JOB)
    assert job is not None, cluster.describe(TASK)
    token = container_env(job).get("ASYNCTASK_REPORT_TOKEN", "")
    assert token.startswith("v1.") and token.count(".") == 2, f"Job {JOB} has no report token: {token!r}"
    version, attempt, mac = token.split(".")
    forged = f"{version}.{attempt}.{('B' if mac.startswith('A') else 'A') * len(mac)}"
    # The operator serves every address of this machine; pods were told the report host.
    url = f"http://127.0.0.1:{operator.http_port}/v1/namespaces/{cluster.namespace}/asynctasks/{TASK}/progress"
    body: Obj = {"percent": 50, "message": "late", "stepsDone": 1, "stepsTotal": STEPS}

    status, answer = _post(url, forged, body)
    assert status == 403, f"a forged token: {status} {answer}"
    status, answer = _post(url, token, body)
    assert status == 409, f"the real token of a finished attempt: {status} {answer}"
    assert "not running" in str(answer.get("message")), answer

    progress = status_of(cluster.get_task(TASK)).get("progress") or {}
    assert progress.get("percent") == 100, f"a refused report changed status.progress: {progress}"
