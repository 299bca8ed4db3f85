"""The web console in a real browser: Debian's Chromium driven by Playwright, against the gateway on
kmock (issue 17). The test plays the operator's part by writing the status kmock holds, and reads
what the page shows; each page's screenshot is saved (ASYNCTASK_SCREENSHOTS, default
test-artifacts/console/; ``scripts/console-screenshots`` writes docs/console/).

Playwright's own browser download cannot work here: ``executable_path`` is Debian's Chromium
(``apt-get install -y chromium``, which .ci/run does when it is missing); without it these skip.
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
import pathlib
import shutil
from collections.abc import AsyncIterator
from typing import Any

import kmock
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from asynctask_operator.core.acts import RETRY_ANNOTATION
from asynctask_operator.testing.cluster import NS, Cluster
from asynctask_operator.testing.operators import eventually
from tests.integration.served import Served, answer_reviews, serve

CHROMIUM = (
    os.environ.get("ASYNCTASK_CHROMIUM")
    or shutil.which("chromium")
    or shutil.which("google-chrome")
    or "/usr/bin/chromium"
)
SHOTS = pathlib.Path(os.environ.get("ASYNCTASK_SCREENSHOTS") or "test-artifacts/console")
USERS = {"alice-token": "alice", "reader-token": "reader"}
OTHER = "other-team"
API = "/apis/asynctask.dev/v1alpha1"

ERRORS: dict[int, list[str]] = {}
"""Per page: the script errors it raised and the dialogs (an alert()) it opened."""

pytestmark = pytest.mark.skipif(not pathlib.Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM}")


def decide(user: str, attributes: dict[str, Any]) -> bool:
    """alice may do anything in the test namespace; reader may only read it (no pods/log); nobody the other."""
    if attributes.get("namespace") != NS:
        return False
    if user == "alice":
        return True
    return user == "reader" and attributes.get("verb") in ("get", "list", "watch") and not attributes.get("subresource")


@pytest.fixture()
async def browser(gw: Served) -> AsyncIterator[Browser]:
    """Chromium, closed before the gateway stops (its open event streams would hold the server up)."""
    await asyncio.to_thread(SHOTS.mkdir, parents=True, exist_ok=True)
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture()
async def gw(cluster: Cluster, kmock: kmock.KubernetesEmulator, kubeconfig: pathlib.Path) -> AsyncIterator[Served]:
    answer_reviews(kmock, USERS, decide)
    async with serve(kubeconfig, namespaces=(NS, OTHER), keepalive_seconds=5.0) as served:
        yield served


async def page_of(browser: Browser, gw: Served, width: int = 1280) -> Page:
    context = await browser.new_context(viewport={"width": width, "height": 900}, accept_downloads=True)
    page = await context.new_page()
    page.set_default_timeout(10_000)
    errors = ERRORS.setdefault(id(page), [])
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("dialog", lambda dialog: errors.append(f"dialog: {dialog.message}"))
    await page.goto(gw.url + "/ui/")
    return page


async def sign_in(page: Page, token: str = "alice-token", shot: bool = False) -> None:
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    await page.get_by_label("Bearer token").fill(token)
    if shot:
        await save(page, "login")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Tasks")).to_be_visible()


async def save(page: Page, name: str) -> None:
    await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


async def status(cluster: Cluster, name: str, **fields: Any) -> None:
    await cluster.patch(API, f"asynctasks/{name}/status", {"status": fields})


async def tasks(cluster: Cluster, *specs: tuple[str, str, dict[str, Any]]) -> None:
    for name, type_, state in specs:
        await cluster.create_task(name, {"type": type_})
        if state:
            await status(cluster, name, **state)


def row(page: Page, name: str) -> Any:
    return page.locator(f'tr[data-key="{NS}/{name}"]')


async def test_sign_in_filter_and_watch_a_row_go_running_then_succeeded(
    browser: Browser, gw: Served, cluster: Cluster
) -> None:
    await tasks(
        cluster,
        ("encode-1", "transcode", {"phase": "Failed", "reason": "BackoffLimitExceeded"}),
        ("encode-2", "transcode", {}),
        ("thumb-1", "thumbnail", {"phase": "Failed"}),
        ("thumb-2", "thumbnail", {"phase": "Succeeded", "durationSeconds": 4.0}),
    )
    page = await page_of(browser, gw)
    await sign_in(page, shot=True)
    await expect(page.locator("tbody tr")).to_have_count(4)
    await page.locator('select[name="phase"]').select_option("Failed")
    await page.locator('select[name="type"]').select_option("thumbnail")
    await page.get_by_role("button", name="Filter").click()
    await expect(page.locator("tbody tr")).to_have_count(1)
    await expect(row(page, "thumb-1")).to_be_visible()

    await page.goto(gw.url + "/ui/?type=transcode")
    await expect(row(page, "encode-2").locator('[data-cell="phase"]')).to_have_text("Pending")
    await status(cluster, "encode-2", phase="Running", startTime="2026-12-03T10:00:00Z", progress={"percent": 40})
    await expect(row(page, "encode-2").locator('[data-cell="phase"]')).to_have_text("Running")
    await expect(row(page, "encode-2").locator("progress")).to_have_attribute("value", "40")
    await save(page, "tasks")
    await status(cluster, "encode-2", phase="Succeeded", durationSeconds=12.0, progress={"percent": 100})
    await expect(row(page, "encode-2").locator('[data-cell="phase"]')).to_have_text("Succeeded")
    await expect(row(page, "encode-2").locator('[data-cell="duration"]')).to_have_text("12 s")
    assert ERRORS[id(page)] == []


async def test_a_task_page_follows_progress_and_cancels(
    browser: Browser, gw: Served, cluster: Cluster, kmock: kmock.KubernetesEmulator
) -> None:
    attempt = {"attempt": 1, "job": "render-a1", "startTime": "2026-12-03T10:00:00Z"}
    await tasks(cluster, ("render", "transcode", {"phase": "Running", "attempt": 1, "attempts": [attempt]}))
    pod = {"metadata": {"name": "render-a1-x", "namespace": NS,
                        "labels": {"asynctask.dev/task": "render", "asynctask.dev/attempt": "1"}}}  # fmt: skip
    await kmock.post(f"/api/v1/namespaces/{NS}/pods", json={"apiVersion": "v1", "kind": "Pod", **pod})
    kmock["get", f"/api/v1/namespaces/{NS}/pods/render-a1-x/log"] << b"frame 1 of 3\nframe 2 of 3\n"
    page = await page_of(browser, gw)
    await sign_in(page)
    await page.get_by_role("link", name="render").click()
    bar = page.locator("section.status progress")
    await status(cluster, "render", progress={"percent": 30, "stepsDone": 3, "stepsTotal": 10, "message": "encoding"})
    await expect(bar).to_have_attribute("value", "30")
    await expect(page.locator('[data-cell="step"]')).to_have_text("step 3/10")
    await status(cluster, "render", progress={"percent": 70, "stepsDone": 7, "stepsTotal": 10, "message": "muxing"})
    await expect(bar).to_have_attribute("value", "70")
    await expect(page.locator('[data-cell="progress-message"]')).to_have_text("muxing")
    await page.get_by_role("button", name="Show the last lines").click()
    await expect(page.get_by_test_id("log")).to_have_text("frame 1 of 3\nframe 2 of 3\n")
    await page.get_by_role("button", name="Follow").click()  # an event stream of lines, until the log ends
    await expect(page.get_by_test_id("log")).to_have_text("frame 1 of 3\nframe 2 of 3\n")
    await expect(page.get_by_role("button", name="Stop")).to_be_hidden()  # the stream said it ended
    follows = [r for r in kmock if r.url.path.endswith("/log") and r.params.get("follow") == "true"]
    assert len(follows) == 1
    await save(page, "task")

    await page.get_by_role("button", name="Cancel").click()
    await expect(page.get_by_role("status").filter(has_text="Cancel of render requested")).to_be_visible()
    await eventually(lambda: cluster.task("render")["spec"].get("cancel") is True, what="spec.cancel set")
    await status(cluster, "render", phase="Cancelled", reason="Cancelled", completionTime="2026-12-03T10:01:00Z")
    await expect(page.locator('section.status [data-cell="phase"]')).to_have_text("Cancelled")
    await expect(page.get_by_role("button", name="Retry")).to_be_visible()  # reloaded at the end: now retryable
    assert not await page.get_by_role("button", name="Cancel").count()


async def test_bulk_retry_of_all_failed_of_one_type(browser: Browser, gw: Served, cluster: Cluster) -> None:
    await tasks(
        cluster,
        *[(f"encode-{i}", "transcode", {"phase": "Failed"}) for i in range(3)],
        ("encode-ok", "transcode", {"phase": "Succeeded"}),
        ("thumb-bad", "thumbnail", {"phase": "Failed"}),
    )
    page = await page_of(browser, gw)
    await sign_in(page)
    await page.goto(gw.url + "/ui/?phase=Failed&type=transcode")
    await expect(page.locator("tbody tr")).to_have_count(3)
    await page.get_by_role("button", name="Retry all…").click()
    await expect(page.get_by_role("heading", name="Retry 3 tasks?")).to_be_visible()
    await save(page, "bulk")
    assert not any(
        RETRY_ANNOTATION in (cluster.task(f"encode-{i}")["metadata"].get("annotations") or {}) for i in range(3)
    )
    await page.get_by_role("button", name="Retry 3").click()
    await expect(page.get_by_role("status").filter(has_text="Retried 3 tasks.")).to_be_visible()
    retried = {n for n in ("encode-0", "encode-1", "encode-2", "encode-ok", "thumb-bad")
               if RETRY_ANNOTATION in (cluster.task(n)["metadata"].get("annotations") or {})}  # fmt: skip
    assert retried == {"encode-0", "encode-1", "encode-2"}


async def test_export_csv_of_the_filter(browser: Browser, gw: Served, cluster: Cluster, tmp_path: pathlib.Path) -> None:
    await tasks(cluster, *[(f"t-{i}", "transcode", {"phase": "Failed" if i % 2 else "Succeeded"}) for i in range(6)])
    page = await page_of(browser, gw)
    await sign_in(page)
    await page.goto(gw.url + "/ui/?phase=Failed")
    async with page.expect_download() as waiting:
        await page.get_by_role("link", name="Export CSV").click()
    download = await waiting.value
    target = tmp_path / "tasks.csv"
    await download.save_as(target)
    rows = list(csv.DictReader(io.StringIO(target.read_text())))
    assert sorted(r["name"] for r in rows) == ["t-1", "t-3", "t-5"] and {r["phase"] for r in rows} == {"Failed"}


async def test_a_reader_sees_no_cancel_button_and_the_rbac_banner(
    browser: Browser, gw: Served, cluster: Cluster
) -> None:
    await tasks(cluster, ("busy", "transcode", {"phase": "Running"}))
    page = await page_of(browser, gw)
    await sign_in(page, "reader-token")
    banner = page.get_by_test_id("rbac-banner")
    await expect(banner).to_contain_text("1 namespace is not shown")
    await expect(row(page, "busy")).to_be_visible()
    assert not await page.get_by_role("button", name="Cancel all…").count()
    await page.get_by_role("link", name="busy").click()
    await expect(page.locator('section.status [data-cell="phase"]')).to_have_text("Running")
    assert not await page.get_by_role("button", name="Cancel").count()
    await expect(page.get_by_text("does not allow you to get pods/log")).to_be_visible()
    await save(page, "task-reader")


async def test_script_in_a_message_and_a_result_is_shown_as_text(
    browser: Browser, gw: Served, cluster: Cluster
) -> None:
    evil = "<script>alert(1)</script><img src=x onerror=alert(2)>"
    await tasks(cluster, ("xss", "transcode", {"phase": "Succeeded", "message": evil, "result": {"note": evil}}))
    page = await page_of(browser, gw)
    await sign_in(page)
    await expect(row(page, "xss").locator(".message")).to_have_text(evil)
    await page.get_by_role("link", name="xss").click()
    await expect(page.get_by_test_id("result")).to_contain_text(evil)
    await status(cluster, "xss", message=evil + " again")  # through the live stream too
    await expect(page.locator('section.status [data-cell="message"]')).to_have_text(evil + " again")
    assert await page.locator("main script, main img").count() == 0
    assert ERRORS[id(page)] == []  # no alert() ran, no script failed


async def test_every_page_at_desktop_and_phone_width(browser: Browser, gw: Served, cluster: Cluster) -> None:
    await cluster.create_queue("gpu", {"concurrency": 1})
    await tasks(
        cluster,
        (
            "ok-1",
            "transcode",
            {"phase": "Succeeded", "durationSeconds": 30.0, "completionTime": "2026-12-03T09:10:00Z"},
        ),
        ("bad-1", "transcode", {"phase": "Failed", "reason": "DeadlineExceeded", "durationSeconds": 600.0}),
        ("wait-1", "thumbnail", {}),
    )
    await cluster.patch(API, "asynctasks/wait-1", {"spec": {"queue": "gpu"}})
    spec = {"schedule": "0 3 * * *", "timeZone": "Europe/Berlin", "taskTemplate": {"spec": {"type": "report"}}}
    resp = await cluster.k.post(f"{API}/namespaces/{NS}/scheduledtasks", json={
        "apiVersion": "asynctask.dev/v1alpha1", "kind": "ScheduledTask",
        "metadata": {"name": "nightly", "namespace": NS}, "spec": spec})  # fmt: skip
    assert resp.status == 200
    for width, suffix in ((1280, ""), (390, "-phone")):
        page = await page_of(browser, gw, width)
        await sign_in(page)
        for path, name, heading in (
            ("/ui/", "tasks", "Tasks"),
            ("/ui/queues", "queues", "Queues"),
            ("/ui/schedules", "schedules", "Schedules"),
            ("/ui/statistics?window=", "statistics", "Statistics"),
        ):
            await page.goto(gw.url + path)
            await expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
            overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"{path} is wider than {width} px by {overflow} px"
            if suffix == "" or name == "tasks":
                await save(page, name + suffix)
        await page.goto(gw.url + "/ui/queues")
        await expect(page.locator(f'tr[data-queue="{NS}/gpu"]')).to_contain_text("gpu")
        await page.goto(gw.url + "/ui/")
        await page.keyboard.press("Tab")  # the first stop: the skip link, then the sections
        assert await page.evaluate("document.activeElement.textContent") == "Skip to content"
    await page.goto(gw.url + "/ui/statistics?window=")
    await expect(page.locator("svg.chart").first).to_be_visible()
    await expect(page.get_by_test_id("reasons")).to_contain_text("DeadlineExceeded")


async def test_the_history_pages_back_and_opens_an_archived_task_with_its_log(
    browser: Browser,
    cluster: Cluster,
    kmock: kmock.KubernetesEmulator,
    kubeconfig: pathlib.Path,
    tmp_path: pathlib.Path,
    sqlite_template: pathlib.Path,
) -> None:
    """Issue 27: tasks past their TTL in the console, from a real SQLite archive, in Chromium."""
    import shutil
    import time

    from asynctask_operator.archive import engine_of
    from asynctask_operator.archive.capture import Tail, log_row
    from asynctask_operator.archive.records import row_of
    from asynctask_operator.archive.writes import insert_logs, upsert_tasks

    database = tmp_path / "archive.db"
    shutil.copy(sqlite_template, database)
    base = time.time() - 86400

    def done(i: int) -> dict[str, Any]:
        at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(base + i))
        status = {"phase": "Failed" if i == 3 else "Succeeded", "reason": "RetriesExhausted" if i == 3 else "Completed",
                  "message": f"run {i} ended", "attempt": 1, "startTime": at, "completionTime": at, "durationSeconds": 4.0,
                  "attempts": [{"attempt": 1, "job": f"night-{i:02d}-1", "startTime": at, "finishTime": at}]}  # fmt: skip
        meta = {
            "name": f"night-{i:02d}",
            "namespace": NS,
            "uid": f"u{i}",
            "resourceVersion": str(i + 1),
            "creationTimestamp": at,
        }
        return {"metadata": meta, "spec": {"type": "report"}, "status": status}

    engine = engine_of(f"sqlite:///{database}")
    kept = Tail(4096)
    kept.add(b"rendering the report\nfailed: disk full\n")
    async with engine.begin() as conn:
        await upsert_tasks(conn, [row_of(done(i), base + 100) for i in range(30)])
        await insert_logs(conn, [log_row("u3", 1, base + 5, pod="night-03-1-x", tail=kept)])
    await engine.dispose()
    await cluster.create_tasktype("report")  # a namespace the console lists
    answer_reviews(kmock, USERS, decide)
    async with serve(kubeconfig, namespaces=(NS,), archive_dsn=f"sqlite:///{database}") as served:
        page = await page_of(browser, served)
        await sign_in(page)
        await page.get_by_role("link", name="History").click()
        await expect(page.get_by_role("heading", name="History")).to_be_visible()
        await page.locator('select[name="size"]').select_option("25")
        await page.get_by_role("button", name="Filter").click()
        rows = page.locator("table.history tbody tr")
        await expect(rows).to_have_count(25)
        await expect(rows.first).to_have_attribute("data-key", f"{NS}/night-29")  # newest first
        await page.get_by_role("link", name="Older").click()
        await expect(rows).to_have_count(5)
        await save(page, "history")
        await page.get_by_role("link", name="night-03").click()
        await expect(page.get_by_test_id("archived")).to_be_visible()
        assert not await page.get_by_role("button", name="Retry").count()
        await page.get_by_role("button", name="Show the last lines").click()
        await expect(page.get_by_test_id("log")).to_have_text("rendering the report\nfailed: disk full\n")
        assert ERRORS[id(page)] == []
