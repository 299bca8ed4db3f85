"""The three front doors show the same figures for the same task (issue 26): the API's JSON, the
console's row and the kubectl plugin's row, for a table of task states.

Each door is read the way its user reads it — the API's answer, the console's HTML, the plugin's
text — and the figures are held against each other, not against the view they are all built on.
"""

from __future__ import annotations

import datetime as dt
import html
import io
import re
from typing import Any

import pytest
from rich.console import Console

from asynctask_operator.adapters.kube import ASYNCTASKS
from asynctask_operator.gateway.console.rows import duration_text
from asynctask_operator.kubectl import render
from tests.support.gateway import EPOCH, NS, RunningGateway, running_gateway

NOW = dt.datetime.fromtimestamp(EPOCH, dt.UTC)
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
EFFECTIVE = {"queue": "gpu", "ttlSecondsAfterFinished": 60, "retry": {"maxRetries": 3}}


def ago(seconds: float) -> str:
    return (NOW - dt.timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


STATES: dict[str, dict[str, Any]] = {
    "pending": {"phase": "Pending", "reason": "Queued", "message": "waiting for a free slot", "queuedTime": ago(40)},
    "running": {
        "phase": "Running", "reason": "JobCreated", "message": "attempt 1 of 4 running", "attempt": 1,
        "effective": EFFECTIVE, "queuedTime": ago(90), "startTime": ago(65),
        "progress": {"percent": 45, "message": "transcoding", "step": "encode", "stepsDone": 2, "stepsTotal": 5},
    },
    "steps-only": {
        "phase": "Running", "reason": "JobCreated", "message": "attempt 2 of 4 running", "attempt": 2,
        "effective": EFFECTIVE, "queuedTime": ago(300), "startTime": ago(200), "progress": {"stepsDone": 1, "stepsTotal": 4},
    },
    "succeeded": {
        "phase": "Succeeded", "reason": "Completed", "message": "attempt 1 succeeded", "attempt": 1,
        "effective": EFFECTIVE, "queuedTime": ago(500), "startTime": ago(480), "completionTime": ago(400),
        "durationSeconds": 80.0, "progress": {"percent": 90, "message": "almost"},
    },
    "failed": {
        "phase": "Failed", "reason": "RetriesExhausted", "message": "container main exited with code 1", "attempt": 4,
        "effective": EFFECTIVE, "queuedTime": ago(900), "startTime": ago(890), "completionTime": ago(100),
        "durationSeconds": 790.0, "progress": {"percent": 30, "message": "encoding"},
    },
    "retried": {
        "phase": "Running", "reason": "JobCreated", "message": "attempt 5 of 8 running", "attempt": 5,
        "effective": EFFECTIVE, "round": {"firstAttempt": 5, "requested": "r1"}, "queuedTime": ago(50),
        "startTime": ago(20), "attempts": [{"attempt": 1, "job": "t-1", "startTime": ago(3000)}],
    },
    "cancelled-waiting": {
        "phase": "Cancelled", "reason": "Cancelled", "message": "cancelled by the user", "queuedTime": ago(70),
        "completionTime": ago(10),
    },
}  # fmt: skip


async def seeded(gw: RunningGateway, name: str, status: dict[str, Any]) -> dict[str, Any]:
    meta = {"name": name, "namespace": NS, "creationTimestamp": ago(1000)}
    await gw.fake.create(ASYNCTASKS, NS, {"metadata": meta, "spec": {"type": "video", "queue": "gpu"}})
    obj = await gw.fake.patch(ASYNCTASKS, NS, name, {"status": status}, subresource="status")
    await gw.settle()
    return obj


def api_figures(answer: dict[str, Any]) -> dict[str, Any]:
    attempt = answer.get("attempt")
    allowed = answer.get("attemptsAllowed")
    return {
        "phase": answer["phase"],
        "percent": None if answer.get("percent") is None else round(answer["percent"]),
        "attempt": "" if attempt is None else f"{attempt}/{allowed}" if allowed else str(attempt),
        "headline": answer.get("headline", ""),
        "duration": duration_text(answer["durationSeconds"]) if "durationSeconds" in answer else None,
    }


def cell(row: str, name: str) -> str:
    found = re.search(rf'data-cell="{name}"[^>]*>(.*?)</(?:td|span|div)>', row, re.S)
    assert found, f"no {name} cell in {row}"
    return html.unescape(re.sub(r"<[^>]+>", "", found.group(1))).strip()


def console_figures(page: str, name: str) -> dict[str, Any]:
    found = re.search(rf'<tr data-key="{NS}/{name}">(.*?)</tr>', page, re.S)
    assert found, f"no row of {name}"
    row = found.group(1)
    value = re.search(r'<progress max="100" value="(\d+)"', row)
    return {
        "phase": re.search(r'data-phase="([A-Za-z]+)"', row).group(1),  # type: ignore[union-attr]
        "percent": int(value.group(1)) if value else None,
        "attempt": cell(row, "attempt"),
        "headline": cell(row, "message"),
        "steps": cell(row, "step"),
        "duration": cell(row, "duration") or None,
    }


LINE = re.compile(
    r"^(?P<name>\S+) (?P<phase>\S+)(?: (?P<percent>\d+)%)?(?: step (?P<steps>.+?))?(?: attempt (?P<attempt>\S+))?"
    r"(?: (?P<timing>wait|run) (?P<clock>[\d:]+))?(?: \"(?P<headline>.*)\")?$"
)


def seconds_of(clock: str) -> int:
    parts = [int(p) for p in clock.split(":")]
    return sum(p * 60**i for i, p in enumerate(reversed(parts)))


def plugin_figures(obj: dict[str, Any]) -> dict[str, Any]:
    line = LINE.match(render.progress_line(obj, NOW))
    assert line, render.progress_line(obj, NOW)
    console = Console(record=True, width=200, color_system=None, file=io.StringIO())
    console.print(render.tasks_table([obj], NOW, wide=True))
    header, row = console.export_text().splitlines()[:2]
    columns = {h: row[m.start() :].split("   ")[0].strip() for m in re.finditer(r"\S+", header) if (h := m.group())}
    assert columns["PHASE"] == line["phase"] and columns["ATTEMPT"] == (line["attempt"] or "")
    ran = seconds_of(line["clock"]) if line["timing"] == "run" else None
    return {
        "phase": line["phase"],
        "percent": int(line["percent"]) if line["percent"] else None,
        "attempt": line["attempt"] or "",
        "headline": line["headline"] or "",
        "steps": line["steps"] or "",
        "duration": None if ran is None else duration_text(ran),
    }


@pytest.mark.parametrize("state", list(STATES))
async def test_the_api_the_console_and_the_plugin_show_the_same_figures(state: str) -> None:
    async with running_gateway() as gw:
        obj = await seeded(gw, state, STATES[state])
        api = (await gw.client.get(f"/v1/namespaces/{NS}/tasks/{state}", headers=gw.alice)).json()
        await gw.client.post("/ui/login", content="token=alice-token", headers=FORM)
        page = (await gw.client.get("/ui/", params={"namespace": NS})).text
    door_api, door_console, door_plugin = api_figures(api), console_figures(page, state), plugin_figures(obj)
    shared = ("phase", "percent", "attempt", "headline")
    assert {k: door_console[k] for k in shared} == {k: door_api[k] for k in shared}
    assert {k: door_plugin[k] for k in shared} == {k: door_api[k] for k in shared}
    assert door_console["steps"] == door_plugin["steps"]
    assert door_console["duration"] == door_plugin["duration"]  # both count to now while it runs
    if door_api["duration"] is not None:  # the API gives a duration once it is settled
        assert door_api["duration"] == door_console["duration"]


def test_the_states_cover_each_rule() -> None:
    """Every rule has a state that would tell two readings apart: a finished task's reported percent below
    100, a running task's progress message beside its status message, a manual retry's attempt count."""
    assert STATES["succeeded"]["progress"]["percent"] < 100
    assert STATES["running"]["progress"]["message"] != STATES["running"]["message"]
    assert STATES["retried"]["round"]["firstAttempt"] > 1
    assert "percent" not in STATES["steps-only"]["progress"]
