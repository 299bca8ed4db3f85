"""The web console against a real cluster (issue 17, E2E): a ServiceAccount signs in with its token,
the console lists the tasks of the test namespace, and the user cancels a running one from its page.

The gateway runs as a process against the test namespace (``gateway`` of test_gateway.py); the
console's pages are read as a browser gets them (HTML, a session cookie, the form's CSRF token).
"""

from __future__ import annotations

import re

import httpx
import pytest

from tests.e2e.helpers import SUCCESS_TIMEOUT, Cluster, load_example, one, phase_of, renamed, select, wait_for
from tests.e2e.test_gateway import gateway, token_for

pytestmark = pytest.mark.e2e
__all__ = ["gateway"]  # the fixture, used here by name

OPERATOR = "console-operator"
TASK = "console-sleepy"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def test_the_console_lists_the_namespaces_tasks_and_cancels_one(cluster: Cluster, gateway: str) -> None:
    docs = load_example("cancel")  # TaskType sleep-300 and AsyncTask "sleepy", which test_lifecycle cancels too
    cluster.apply(select(docs, "TaskType"))
    cluster.create(renamed(one(docs, "AsyncTask", "sleepy"), TASK))
    wait_for(lambda: phase_of(cluster.get_task(TASK)) == "Running", SUCCESS_TIMEOUT, f"{TASK} running")
    token = token_for(cluster, OPERATOR, ["get", "list", "watch", "patch"])
    ns = cluster.namespace
    with httpx.Client(base_url=gateway, timeout=30) as client:
        signed = client.post("/ui/login", content=f"token={token}&next=/ui/", headers=FORM)
        assert signed.status_code == 303, signed.text
        listed = client.get(f"/ui/?namespace={ns}")
        assert listed.status_code == 200
        assert f'data-key="{ns}/{TASK}"' in listed.text and f"system:serviceaccount:{ns}:{OPERATOR}" in listed.text
        page = client.get(f"/ui/namespaces/{ns}/tasks/{TASK}")
        assert page.status_code == 200 and f"/ui/namespaces/{ns}/tasks/{TASK}/cancel" in page.text
        found = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert found
        cancelled = client.post(
            f"/ui/namespaces/{ns}/tasks/{TASK}/cancel", content=f"csrf={found.group(1)}&back=/ui/", headers=FORM
        )
        assert cancelled.status_code == 303, cancelled.text
        wait_for(lambda: phase_of(cluster.get_task(TASK)) == "Cancelled", SUCCESS_TIMEOUT, f"{TASK} cancelled")

        def shown_cancelled() -> str | None:  # the page reads the gateway's cache, a watch event behind the API
            text = client.get(f"/ui/namespaces/{ns}/tasks/{TASK}").text
            return text if 'data-phase="Cancelled"' in text else None

        shown = wait_for(shown_cancelled, 30, f"the console's page of {TASK} to show it Cancelled")
        assert "/retry" in shown
