"""The web console in process against FakeKube: sign-in and its cookie, CSRF, RBAC on every page and
button, the task table's filter, order and pages, escaping, bulk actions, exports (issue 17).

The browser tests (tests/integration/test_console_browser.py) drive the same pages in Chromium;
these hold the server's side of each rule, fast and one by one.
"""

from __future__ import annotations

import asyncio
import csv
import html
import io
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from asynctask_operator.adapters.kube import ASYNCTASKS, SCHEDULEDTASKS, TASKQUEUES, ApiError
from asynctask_operator.core.acts import RETRY_ANNOTATION as ANNOTATION_RETRY
from asynctask_operator.core.naming import LABEL_SCHEDULED_TASK
from asynctask_operator.gateway.console.sessions import COOKIE
from tests.support.gateway import EVERY_ACT, NS, RunningGateway, end, running_gateway

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


async def task(gw: RunningGateway, name: str, type_: str = "transcode", ns: str = NS, **status: Any) -> None:
    labels = status.pop("labels", None)
    meta: dict[str, Any] = {"name": name, "namespace": ns} | ({"labels": labels} if labels else {})
    await gw.fake.create(ASYNCTASKS, ns, {"metadata": meta, "spec": {"type": type_}})
    if status:
        await gw.fake.patch(ASYNCTASKS, ns, name, {"status": status}, subresource="status")


async def sign_in(gw: RunningGateway, token: str = "alice-token") -> httpx.Response:
    answer = await gw.client.post("/ui/login", content=f"token={token}&next=/ui/", headers=FORM)
    return answer


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF field on the page"
    return found.group(1)


def names_in(html: str) -> list[str]:
    return re.findall(r'<tr data-key="[^/"]+/([^"]+)"', html)


@pytest.fixture()
async def gw() -> AsyncIterator[RunningGateway]:
    async with running_gateway() as running:
        yield running


async def test_sign_in_keeps_the_token_server_side_in_an_httponly_strict_cookie(gw: RunningGateway) -> None:
    first = await gw.client.get("/ui/?phase=Failed")
    assert first.status_code == 303 and first.headers["location"] == "/ui/login?next=%2Fui%2F%3Fphase%3DFailed"
    refused = await sign_in(gw, "nobody-token")
    assert (
        refused.status_code == 401
        and "did not accept" in refused.text
        and COOKIE not in refused.headers.get("set-cookie", "")
    )
    answer = await sign_in(gw)
    assert answer.status_code == 303 and answer.headers["location"] == "/ui/"
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/ui" in cookie and "Max-Age=" in cookie
    assert "Secure" not in cookie  # plain HTTP here; over TLS the cookie is Secure (next test)
    assert "alice-token" not in cookie
    page = await gw.client.get("/ui/")
    assert page.status_code == 200 and "alice" in page.text and "alice-token" not in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]


async def test_the_cookie_is_secure_over_tls() -> None:
    async with running_gateway() as gw:
        gw.client.base_url = httpx.URL("https://gateway")
        answer = await sign_in(gw)
        assert "Secure" in answer.headers["set-cookie"]


async def test_a_session_expires_and_a_revoked_token_ends_it(gw: RunningGateway) -> None:
    await sign_in(gw)
    assert (await gw.client.get("/ui/")).status_code == 200
    assert gw.fake.tokens is not None
    del gw.fake.tokens["alice-token"]  # revoked: the next review (after the ≤30 s cache) refuses it
    gw.now[0] += 31
    assert (await gw.client.get("/ui/")).status_code == 303
    gw.fake.tokens["alice-token"] = ("alice", ("team-media",))
    await sign_in(gw)
    gw.now[0] += 8 * 3600 + 1
    assert (await gw.client.get("/ui/")).status_code == 303


async def test_sign_in_with_no_open_redirect(gw: RunningGateway) -> None:
    answer = await gw.client.post("/ui/login", content="token=alice-token&next=//evil.example/", headers=FORM)
    assert answer.headers["location"] == "/ui/"


async def test_every_post_needs_the_sessions_csrf_token_and_this_origin(gw: RunningGateway) -> None:
    await task(gw, "a", phase="Running")
    await gw.settle()
    await sign_in(gw)
    page = await gw.client.get(f"/ui/namespaces/{NS}/tasks/a")
    token = csrf_of(page.text)
    url = f"/ui/namespaces/{NS}/tasks/a/cancel"
    missing = await gw.client.post(url, content="back=/ui/", headers=FORM)
    assert missing.status_code == 403 and "CSRF" in missing.text
    wrong = await gw.client.post(url, content="csrf=forged", headers=FORM)
    assert wrong.status_code == 403
    elsewhere = await gw.client.post(url, content=f"csrf={token}", headers=FORM | {"Origin": "https://evil.example"})
    assert elsewhere.status_code == 403 and "another site" in elsewhere.text
    assert not (gw.task("a") or {})["spec"].get("cancel")
    done = await gw.client.post(url, content=f"csrf={token}", headers=FORM | {"Origin": "http://gateway"})
    assert done.status_code == 303 and (gw.task("a") or {})["spec"]["cancel"] is True


async def test_the_table_filters_sorts_and_pages_on_the_server(gw: RunningGateway) -> None:
    for i in range(30):
        phase = ("Failed", "Succeeded", "Running")[i % 3]
        await task(gw, f"t{i:02d}", "transcode" if i % 2 else "thumbnail", phase=phase, labels={"team": f"t{i % 5}"})
    await gw.settle()
    await sign_in(gw)
    failed = (await gw.client.get("/ui/?phase=Failed&type=thumbnail&sort=name&order=asc")).text
    assert names_in(failed) == [f"t{i:02d}" for i in range(30) if i % 3 == 0 and i % 2 == 0]
    desc = names_in((await gw.client.get("/ui/?sort=name&order=desc&size=25")).text)
    assert desc == [f"t{i:02d}" for i in range(29, 4, -1)]
    second = (await gw.client.get("/ui/?sort=name&order=desc&size=25&page=2")).text
    assert names_in(second) == [f"t{i:02d}" for i in range(4, -1, -1)] and "26\u201330 of 30" in second
    labelled = names_in((await gw.client.get("/ui/?label=team%3Dt1&sort=name&order=asc")).text)
    assert labelled == ["t01", "t06", "t11", "t16", "t21", "t26"]
    assert names_in((await gw.client.get("/ui/?q=T2&sort=name&order=asc")).text) == [f"t2{i}" for i in range(10)]
    bad = await gw.client.get("/ui/?phase=Exploded")
    assert bad.status_code == 400 and "phase must be one of" in bad.text
    assert (await gw.client.get("/ui/?label=a%3D%3D%3Db")).status_code == 400


async def test_user_data_is_shown_as_text_never_markup(gw: RunningGateway) -> None:
    evil = "<script>alert(1)</script>"
    await task(gw, "x", phase="Succeeded", message=evil, result={"html": evil}, progress={"message": evil})
    await gw.settle()
    await sign_in(gw)
    for url in ("/ui/", f"/ui/namespaces/{NS}/tasks/x"):
        html = (await gw.client.get(url)).text
        assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


async def test_rbac_hides_namespaces_with_a_banner_and_buttons_without_the_right() -> None:
    async with running_gateway() as gw:
        reads = {("bob", verb, resource, NS) for verb, resource in EVERY_ACT if verb in ("get", "list", "watch")}
        gw.allow |= reads | {("alice", verb, resource, "secret") for verb, resource in EVERY_ACT}
        await task(gw, "a", phase="Running")
        await task(gw, "hidden", ns="secret", phase="Running")
        await gw.settle()
        await sign_in(gw, "bob-token")
        page = (await gw.client.get("/ui/")).text
        assert names_in(page) == ["a"]
        assert "1 namespace is not shown" in page and 'data-testid="rbac-banner"' in page
        assert 'name="task"' not in page and "Cancel all" not in page  # no bulk or row selection
        detail = (await gw.client.get(f"/ui/namespaces/{NS}/tasks/a")).text
        assert "/cancel" not in detail
        token = csrf_of(detail)
        forced = await gw.client.post(f"/ui/namespaces/{NS}/tasks/a/cancel", content=f"csrf={token}", headers=FORM)
        assert forced.status_code == 403 and "you may not patch asynctasks" in forced.text
        assert (await gw.client.get("/ui/namespaces/secret/tasks/hidden")).status_code == 403
        exported = await gw.client.get("/ui/export/tasks.json")
        assert [r["name"] for r in exported.json()] == ["a"] and exported.headers["x-hidden-namespaces"] == "1"


async def test_bulk_retry_of_all_failed_of_a_type_confirms_how_many_first(gw: RunningGateway) -> None:
    for i in range(6):
        await task(gw, f"f{i}", "transcode" if i < 4 else "other", phase="Failed" if i != 1 else "Succeeded")
    await gw.settle()
    await sign_in(gw)
    token = csrf_of((await gw.client.get("/ui/")).text)
    ask = f"csrf={token}&action=retry&all=yes&type=transcode&phase=Failed&back=/ui/"
    confirm = await gw.client.post("/ui/bulk", content=ask, headers=FORM)
    assert confirm.status_code == 200 and "Retry 3 tasks?" in confirm.text
    assert not any(
        ANNOTATION_RETRY in ((gw.task(f"f{i}") or {})["metadata"].get("annotations") or {}) for i in range(6)
    )
    chosen = re.findall(r'name="task" value="([^"]+)"', confirm.text)
    assert sorted(chosen) == [f"{NS}/f0", f"{NS}/f2", f"{NS}/f3"]
    body = f"csrf={token}&action=retry&confirm=yes&back=/ui/&" + "&".join(f"task={k}" for k in chosen)
    done = await gw.client.post("/ui/bulk", content=body, headers=FORM)
    assert done.status_code == 303
    retried = {
        i for i in range(6) if ANNOTATION_RETRY in ((gw.task(f"f{i}") or {})["metadata"].get("annotations") or {})
    }
    assert retried == {0, 2, 3}
    assert "Retried 3 tasks." in (await gw.client.get("/ui/")).text  # the outcome, once


async def test_export_csv_has_every_matching_row_and_defuses_formulas(gw: RunningGateway) -> None:
    for i in range(120):
        await task(gw, f"e{i:03d}", phase="Failed" if i % 4 == 0 else "Succeeded", message="=HYPERLINK(1)")
    await gw.settle()
    await sign_in(gw)
    answer = await gw.client.get("/ui/export/tasks.csv?phase=Failed&size=25")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert len(rows) == 30 and {r["phase"] for r in rows} == {"Failed"}  # all 30, not a page of 25
    assert {r["message"] for r in rows} == {"'=HYPERLINK(1)"}
    exported = json.loads((await gw.client.get("/ui/export/tasks.json?phase=Succeeded")).text)
    assert len(exported) == 90


async def test_queues_schedules_and_statistics_pages(gw: RunningGateway) -> None:
    await gw.fake.create(TASKQUEUES, NS, {"metadata": {"name": "gpu", "namespace": NS}, "spec": {"concurrency": 1}})
    spec = {"schedule": "@daily", "taskTemplate": {"spec": {"type": "report"}}}
    await gw.fake.create(SCHEDULEDTASKS, NS, {"metadata": {"name": "nightly", "namespace": NS}, "spec": spec})
    await task(
        gw, "run-1", "report", phase="Failed", reason="DeadlineExceeded", labels={LABEL_SCHEDULED_TASK: "nightly"}
    )
    await task(gw, "ok", "report", phase="Succeeded", durationSeconds=3.0)
    await gw.settle()
    await sign_in(gw)
    queues = await gw.client.get("/ui/queues")
    assert queues.status_code == 200 and f'data-queue="{NS}/gpu"' in queues.text and "/queues/gpu/pause" in queues.text
    token = csrf_of(queues.text)
    paused = await gw.client.post(f"/ui/namespaces/{NS}/queues/gpu/pause", content=f"csrf={token}", headers=FORM)
    assert paused.status_code == 303 and (gw.fake.get_object(TASKQUEUES, NS, "gpu") or {})["spec"]["paused"] is True
    schedules = (await gw.client.get("/ui/schedules")).text
    assert "@daily" in schedules and f"/ui/namespaces/{NS}/tasks/run-1" in schedules and "/run" in schedules
    stats = await gw.client.get("/ui/statistics?window=")
    assert stats.status_code == 200 and "<svg" in stats.text and "DeadlineExceeded" in stats.text
    assert "50.0%" in stats.text
    assert (await gw.client.get("/ui/statistics?window=3y")).status_code == 400


async def test_behind_an_auth_proxy_the_header_is_the_user_and_forms_still_need_the_csrf_token() -> None:
    async with running_gateway(trusted_header="X-Forwarded-User", trusted_groups_header="X-Forwarded-Groups") as gw:
        await task(gw, "a", phase="Running")
        await gw.settle()
        proxy = {"X-Forwarded-User": "alice", "X-Forwarded-Groups": "team-media"}
        page = await gw.client.get("/ui/", headers=proxy)
        assert page.status_code == 200 and names_in(page.text) == ["a"] and "Sign out" not in page.text
        assert "HttpOnly" in page.headers["set-cookie"]  # a session, for its CSRF token only
        token = csrf_of(page.text)
        url = f"/ui/namespaces/{NS}/tasks/a/cancel"
        assert (await gw.client.post(url, content="csrf=forged", headers=FORM | proxy)).status_code == 403
        done = await gw.client.post(url, content=f"csrf={token}", headers=FORM | proxy)
        assert done.status_code == 303 and (gw.task("a") or {})["spec"]["cancel"] is True
        # Another user behind the same browser's cookie gets a session of their own, not alice's token.
        bob = await gw.client.post(url, content=f"csrf={token}", headers=FORM | {"X-Forwarded-User": "bob"})
        assert bob.status_code == 403
        without = await gw.client.get("/ui/")  # no header, no token: sign in
        assert without.status_code == 303 and without.headers["location"].startswith("/ui/login")


async def test_a_task_already_being_cancelled_offers_no_cancel(gw: RunningGateway) -> None:
    """The console reads what an act applies to as the kubectl plugin does (core.acts.actionable)."""
    await task(gw, "stopping", phase="Running")
    await gw.fake.patch(ASYNCTASKS, NS, "stopping", {"spec": {"cancel": True}})
    await gw.settle()
    await sign_in(gw)
    page = await gw.client.get(f"/ui/namespaces/{NS}/tasks/stopping")
    assert "/tasks/stopping/cancel" not in page.text
    again = await gw.client.post(f"/ui/namespaces/{NS}/tasks/stopping/cancel", content=f"csrf={csrf_of(page.text)}",
                                 headers=FORM)  # fmt: skip
    assert again.status_code == 409 and "is already being cancelled" in again.text


async def test_an_api_server_failure_on_an_act_is_the_gateways_problem_not_the_users(gw: RunningGateway) -> None:
    await task(gw, "a", phase="Running")
    await gw.settle()
    await sign_in(gw)
    token = csrf_of((await gw.client.get(f"/ui/namespaces/{NS}/tasks/a")).text)
    gw.fake.fail("patch", "asynctasks", ApiError(500, "InternalError", "etcd is down"))
    answer = await gw.client.post(f"/ui/namespaces/{NS}/tasks/a/cancel", content=f"csrf={token}", headers=FORM)
    assert answer.status_code == 503 and "API server is unavailable" in answer.text  # as the API answers it
    gw.fake.fail("patch", "asynctasks", ApiError(403, "Forbidden", "no"))
    answer = await gw.client.post(f"/ui/namespaces/{NS}/tasks/a/cancel", content=f"csrf={token}", headers=FORM)
    assert answer.status_code == 502  # the gateway's own account was refused: not the user's 403


async def test_the_live_rows_send_first_what_changed_between_the_page_and_its_stream(gw: RunningGateway) -> None:
    await task(gw, "t1")
    await task(gw, "t2", phase="Running")
    await gw.settle()
    await sign_in(gw)
    page = await gw.client.get("/ui/")
    found = re.search(r'data-live="([^"]+)"', page.text)
    assert found and "drawn=" in found.group(1)
    await gw.fake.patch(
        ASYNCTASKS, NS, "t1", {"status": {"phase": "Running"}}, subresource="status"
    )  # before the stream
    await gw.settle()
    stream = asyncio.create_task(gw.client.get(html.unescape(found.group(1))))
    await gw.subscribed()
    events = await end(gw, stream)
    rows = [json.loads(e["data"]) for e in events if e.get("event") == "row"]
    assert [(r["key"], r["phase"]) for r in rows] == [(f"{NS}/t1", "Running")]  # t2, unchanged, is not sent again
    assert events[-1]["id"] == (gw.task("t1") or {})["metadata"]["resourceVersion"]
