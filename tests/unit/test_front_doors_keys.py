"""Concurrency keys and fair queues in every front door (issue 28, item 4): the API, the console and the
kubectl plugin show a task's key, what it waits for and who holds it, and a queue's key figures, all
read through the one view (core/views)."""

from __future__ import annotations

import datetime as dt
import html
import io
from typing import Any

from rich.console import Console

from asynctask_operator.adapters.kube import ASYNCTASKS, TASKQUEUES
from asynctask_operator.core.views import QueueView, TaskView
from asynctask_operator.kubectl import render
from tests.support.gateway import EPOCH, NS, RunningGateway, running_gateway

NOW = dt.datetime.fromtimestamp(EPOCH, dt.UTC)
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
WAITING = {
    "phase": "Pending",
    "reason": "WaitingForKey",
    "message": "waiting for concurrency key video-42 (limit 1), held by transcode-a",
    "effective": {"queue": "gpu", "ttlSecondsAfterFinished": 60, "retry": {"maxRetries": 3},
                  "concurrency": {"key": "video-42", "limit": 1, "policy": "Queue"}},
    "waitingForKey": {"key": "video-42", "limit": 1, "holders": ["transcode-a"]},
}  # fmt: skip
HOLDING = {
    "phase": "Running",
    "reason": "JobCreated",
    "attempt": 1,
    "startTime": "2026-05-28T20:26:00Z",
    "effective": {"queue": "gpu", "ttlSecondsAfterFinished": 60, "retry": {"maxRetries": 3},
                  "concurrency": {"key": "video-42", "limit": 1, "policy": "Queue"}},
}  # fmt: skip
QUEUE_STATUS = {
    "running": 1, "pending": 1, "oldestPendingSeconds": 5, "waitingForKey": 1,
    "busiestKeys": [{"key": "video-42", "holding": 1, "waiting": 1}],
}  # fmt: skip


def task(name: str, status: dict[str, Any]) -> dict[str, Any]:
    meta = {"name": name, "namespace": NS, "creationTimestamp": "2026-05-28T20:25:00Z"}
    spec = {"type": "video", "queue": "gpu", "concurrency": {"key": "video-42"}}
    return {"metadata": meta, "spec": spec, "status": status}


async def seeded(gw: RunningGateway) -> None:
    queue = {"metadata": {"name": "gpu", "namespace": NS}, "spec": {"concurrency": 4, "fairness": {"by": "Key"}}}
    await gw.fake.create(TASKQUEUES, NS, queue)
    await gw.fake.patch(TASKQUEUES, NS, "gpu", {"status": QUEUE_STATUS}, subresource="status")
    for name, status in (("transcode-a", HOLDING), ("transcode-b", WAITING)):
        obj = task(name, status)
        await gw.fake.create(ASYNCTASKS, NS, {"metadata": obj["metadata"], "spec": obj["spec"]})
        await gw.fake.patch(ASYNCTASKS, NS, name, {"status": status}, subresource="status")
    await gw.settle()


def test_the_views_read_a_key_and_a_queues_key_figures() -> None:
    waiting, holding = TaskView.of(task("b", WAITING)), TaskView.of(task("a", HOLDING))
    assert (waiting.concurrency_key, holding.concurrency_key) == ("video-42", "video-42")
    assert waiting.waiting_for_key is not None and waiting.waiting_for_key.text == "key video-42 (held by transcode-a)"
    assert holding.waiting_for_key is None  # it holds the key: it waits for nothing
    queue = QueueView.of(NS, "gpu", {"spec": {"concurrency": 4, "fairness": {"by": "Label", "label": "tenant"}},
                                     "status": QUEUE_STATUS}, [], EPOCH)  # fmt: skip
    assert (queue.waiting_for_key, queue.fairness) == (1, "Label tenant")
    assert [(b.key, b.holding, b.waiting) for b in queue.busiest_keys] == [("video-42", 1, 1)]


async def test_the_api_shows_the_key_its_holders_and_the_queues_busiest_keys() -> None:
    async with running_gateway() as gw:
        await seeded(gw)
        waiting = (await gw.client.get(f"/v1/namespaces/{NS}/tasks/transcode-b", headers=gw.alice)).json()
        assert waiting["concurrencyKey"] == "video-42" and waiting["position"] == 1
        assert waiting["waitingForKey"] == {"key": "video-42", "limit": 1, "holders": ["transcode-a"]}
        holding = (await gw.client.get(f"/v1/namespaces/{NS}/tasks/transcode-a", headers=gw.alice)).json()
        assert holding["concurrencyKey"] == "video-42" and "waitingForKey" not in holding
        queue = (await gw.client.get(f"/v1/namespaces/{NS}/queues/gpu", headers=gw.alice)).json()
        assert (queue["waitingForKey"], queue["fairness"]) == (1, "Key")
        assert queue["busiestKeys"] == [{"key": "video-42", "holding": 1, "waiting": 1}]


async def test_the_console_shows_what_a_task_waits_for() -> None:
    async with running_gateway() as gw:
        await seeded(gw)
        await gw.client.post("/ui/login", content="token=alice-token", headers=FORM)
        queues = html.unescape((await gw.client.get("/ui/queues")).text)
        assert "transcode-b</a> <small>waits for key video-42 (held by transcode-a)</small>" in queues
        assert "fair by Key" in queues and "<code>video-42</code> 1 holding · 1 waiting" in queues
        page = html.unescape((await gw.client.get(f"/ui/namespaces/{NS}/tasks/transcode-b")).text)
        assert "<code>video-42</code>" in page and "busy, held by transcode-a (limit 1)" in page


def test_the_plugin_shows_keys_in_the_line_and_in_describe() -> None:
    views = [(1, TaskView.of(task("transcode-b", WAITING)))]
    console = Console(record=True, width=160, color_system=None, file=io.StringIO())
    console.print(render.pending_table(views, NOW))
    header, row = console.export_text().splitlines()[:2]
    assert header.split()[-3:] == ["KEY", "HELD", "BY"]
    assert row.split()[-2:] == ["video-42", "transcode-a"]
    from asynctask_operator.kubectl.describe import describe_task

    console = Console(record=True, width=160, color_system=None, file=io.StringIO())
    console.print(describe_task(task("transcode-b", WAITING), [], [], NOW))
    text = console.export_text()
    assert "Concurrency key:" in text and "Waiting for:" in text and "key video-42 (held by transcode-a)" in text
