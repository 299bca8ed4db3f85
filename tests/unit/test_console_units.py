"""The console's pure parts: sessions, the table's filter, order and pages, the banner (a row is a
task's view: tests/unit/test_views.py)."""

from __future__ import annotations

from typing import Any

import pytest

from asynctask_operator.core.clocks import Clocks
from asynctask_operator.core.views import TaskView
from asynctask_operator.gateway.auth import User
from asynctask_operator.gateway.console.exports import csv_cell
from asynctask_operator.gateway.console.gate import Visible
from asynctask_operator.gateway.console.rows import Filter, chosen, page_of
from asynctask_operator.gateway.console.sessions import Sessions
from asynctask_operator.gateway.problems import Problem

NOW = 1_780_000_000.0


def clocks(now: list[float]) -> Clocks:
    return Clocks(wall=lambda: now[0], monotonic=lambda: now[0])


def test_a_session_expires_and_the_oldest_goes_first_when_full() -> None:
    now = [NOW]
    sessions = Sessions(clocks(now), lifetime=60.0, size=2)
    a = sessions.open(User("a"), "token-a")
    b = sessions.open(User("b"), None)
    assert sessions.get(a.id) is a and a.csrf_ok(a.csrf) and not a.csrf_ok(b.csrf) and not a.csrf_ok(None)
    c = sessions.open(User("c"), "token-c")
    assert sessions.get(a.id) is None and sessions.get(b.id) is b and sessions.get(c.id) is c
    now[0] += 61
    assert sessions.get(b.id) is None and len(sessions) == 1  # an expired one is forgotten when seen
    assert "token-c" not in repr(c)
    assert sessions.get("") is None and sessions.get(None) is None


@pytest.mark.parametrize(
    ("query", "detail"),
    [
        ({"phase": "Done"}, "phase must be one of"),
        ({"sort": "color"}, "sort must be one of"),
        ({"order": "up"}, "order must be asc or desc"),
        ({"window": "2w"}, "window must be one of"),
        ({"since": "yesterday"}, "since must be a time like"),
        ({"since": "2026-05-02T00:00:00Z", "until": "2026-05-01T00:00:00Z"}, "since is after until"),
        ({"page": "0"}, "page must be a whole number"),
        ({"size": "x"}, "size must be a whole number"),
        ({"label": "a in (b"}, "label:"),
        ({"q": "x" * 300}, "q is longer than 253"),
    ],
)
def test_a_bad_filter_names_its_field(query: dict[str, str], detail: str) -> None:
    with pytest.raises(Problem) as refused:
        Filter.of(query, NOW)
    assert refused.value.status == 400 and detail in refused.value.detail


def test_a_filter_reads_browser_times_as_utc_and_windows_from_now() -> None:
    local = Filter.of({"since": "2026-05-28T20:26", "until": "2026-05-28T21:00:30"}, NOW)
    assert (local.since, local.until) == (1_779_999_960.0, 1_780_002_030.0)
    assert Filter.of({"window": "1h"}, NOW).since == NOW - 3600
    assert Filter.of({"size": "60"}, NOW).size == 50 and Filter.of({"size": "100"}, NOW).size == 100
    assert Filter.of({}, NOW).query() == {"sort": "age", "order": "desc", "size": "50"}
    assert Filter.of({"type": "x", "page": "3"}, NOW).query(page=1) == {
        "type": "x", "sort": "age", "order": "desc", "size": "50"
    }  # fmt: skip
    assert Filter.of({"phase": "Failed", "window": "24h"}, NOW).described == "phase=Failed, window=24h"


def obj(name: str, ns: str = "a", **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": ns, "creationTimestamp": "2026-05-28T20:00:00Z", "labels": {"k": name}},
        "spec": {"type": "t", "queue": "q"},
        "status": status,
    }


def test_only_visible_namespaces_and_pages_of_the_order() -> None:
    rows = [TaskView.of(obj(f"t{i}", ns="a" if i % 2 else "b")) for i in range(7)]
    flt = Filter.of({"sort": "name", "order": "asc", "size": "25"}, NOW)
    picked = chosen(rows, flt, {"a"}, NOW)
    assert [r.name for r in picked] == ["t1", "t3", "t5"]
    page = page_of(picked, Filter.of({"size": "25", "page": "9"}, NOW))
    assert (page.number, page.pages, page.first, len(page.rows)) == (1, 1, 1, 3)  # past the end: the last page


@pytest.mark.parametrize(("cell", "out"), [("=1+1", "'=1+1"), ("+x", "'+x"), ("-2", "'-2"), ("@a", "'@a"),
                                           ("ok", "ok"), (None, ""), (3.5, 3.5)])  # fmt: skip
def test_csv_cells_cannot_be_formulas(cell: Any, out: Any) -> None:
    assert csv_cell(cell) == out


def test_the_banner_says_how_many_namespaces_rbac_hides() -> None:
    assert Visible(["a"], 0, "list", "asynctasks").banner is None
    assert "2 namespaces are not shown" in (Visible(["a"], 2, "list", "asynctasks").banner or "")
    assert "1 namespace is not shown" in (Visible([], 1, "list", "taskqueues").banner or "")
