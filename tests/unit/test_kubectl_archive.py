"""kubectl asynctask's archive (issue 27, item 4): ``history``, and ``get``/``describe``/``logs`` of a task that is
gone, read through the API server's aggregated API. In process: the fake API server proxies the group's paths
to the gateway's real aggregated application as the front proxy would, for one user (tests/support/frontproxy.py),
and the gateway reads a real SQLite and PostgreSQL archive; without that, the group is 404, as where no
APIService is installed."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import pytest
import yaml
from sqlalchemy.ext.asyncio import AsyncEngine

from asynctask_operator.adapters.kube import ASYNCTASKS
from asynctask_operator.archive.capture import log_row
from asynctask_operator.gateway.auth import DENIED_TTL
from asynctask_operator.kubectl import history
from asynctask_operator.testing.fakekube import FakeKube
from tests.support.frontproxy import FrontProxyClient, front_proxy
from tests.support.gateway import EPOCH, NS, RunningGateway, running_gateway
from tests.support.kubectl import Result, run_plugin
from tests.support.rbac import grant
from tests.unit.test_gateway_history import T0, archive, finished, stamp, tail

GROUP = "/apis/archive.asynctask.dev"
NOW = dt.datetime.fromtimestamp(EPOCH, dt.UTC)  # the gateway's clock
NOT_SERVED = (
    "the archive is not served in this cluster (no APIService v1alpha1.archive.asynctask.dev): set the chart's "
    "gateway.enabled and archive.enabled (with PostgreSQL); gateway.aggregation.enabled is on by default"
)


async def kubectl(fake: FakeKube, *argv: str, now: dt.datetime = NOW) -> Result:
    return await run_plugin(fake, [*argv, "-n", NS], now=now, width=250)  # history rows are wide


@dataclasses.dataclass
class Served:
    gw: RunningGateway
    proxy: FrontProxyClient
    user: list[str]
    asked: list[tuple[str, list[tuple[str, str]]]]
    """Every request the API server proxied: its path and query."""


@pytest.fixture()
async def served(archive_dsn: str, archive_engine: AsyncEngine) -> AsyncIterator[Served]:
    """The gateway reading the archive, and its fake API server proxying the archive's group to it as ``user[0]``."""
    async with running_gateway(archive_dsn=archive_dsn) as gw, front_proxy(gw) as proxy:
        state = Served(gw, proxy, ["alice"], [])

        async def handler(path: str, query: list[tuple[str, str]], accept: str) -> tuple[int, bytes]:
            state.asked.append((path, query))
            return await proxy.handler(path, query, accept, user=state.user[0])

        gw.fake.serve_paths(GROUP, handler)
        yield state


def rows(out: str) -> list[list[str]]:
    return [line.split() for line in out.splitlines()]


# --------------------------------------------------------------------------- history


async def test_history_pages_through_the_archive_newest_first_until_its_limit(
    served: Served, archive_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    await archive(archive_engine, [finished(f"t{i}", f"u-{i}", T0 + i) for i in range(7)])
    monkeypatch.setattr(history, "PAGE", 2)  # a page of two: the keyset continue carries the rest
    result = await kubectl(served.gw.fake, "history", "--limit", "5")
    assert result.code == 0, result.err
    assert [r[0] for r in rows(result.out)] == ["NAME", "t6", "t5", "t4", "t3", "t2"]
    assert result.err == "(the newest 5; --limit N for more)\n"
    pages = [dict(q) for path, q in served.asked if path.endswith("/archivedtasks")]
    assert [p["limit"] for p in pages] == ["2", "2", "1"] and "continue" not in pages[0]
    assert all("continue" in p for p in pages[1:])
    everything = await kubectl(served.gw.fake, "history")
    assert [r[0] for r in rows(everything.out)][1:] == [f"t{i}" for i in reversed(range(7))] and everything.err == ""


async def test_history_shows_a_task_as_get_shows_it_live(served: Served, archive_engine: AsyncEngine) -> None:
    kept = finished("old", "u-1", T0, app="web")
    await archive(archive_engine, [kept])
    archived = await kubectl(served.gw.fake, "history", "-o", "wide")
    live = FakeKube(now=lambda: dt.datetime.fromtimestamp(T0, dt.UTC))  # the same task, still in a cluster
    await live.create(ASYNCTASKS, NS, {"metadata": {"name": "old", "labels": {"app": "web"}}, "spec": kept["spec"]})
    await live.patch(ASYNCTASKS, NS, "old", {"status": kept["status"]}, subresource="status")
    shown_live = await kubectl(live, "get", "-o", "wide")
    assert archived.out == shown_live.out  # the same view, the same figures
    assert rows(archived.out)[1][:7] == ["old", "video", "gpu", "Succeeded", "100%", "1/4", "11d"]


async def test_history_filters_reach_the_archive(served: Served, archive_engine: AsyncEngine) -> None:
    objs = [finished("a", "u-a", T0, "Failed", app="web"), finished("b", "u-b", T0 + 1, app="web"),
            finished("c", "u-c", EPOCH - 3600, "Failed", app="web")]  # fmt: skip
    await archive(archive_engine, objs)
    result = await kubectl(served.gw.fake, "history", "--phase", "Failed", "-l", "app=web", "--since", "2h",
                           "--type", "video", "--queue", "gpu", "--reason", "RetriesExhausted", "--q", "c")  # fmt: skip
    assert result.code == 0, result.err
    assert [r[0] for r in rows(result.out)] == ["NAME", "c"]
    [(_, query)] = served.asked
    assert dict(query) == {"type": "video", "queue": "gpu", "phase": "Failed", "reason": "RetriesExhausted",
                           "labelSelector": "app=web", "since": stamp(EPOCH - 7200), "q": "c", "limit": "50"}  # fmt: skip


async def test_history_as_data_is_a_list_of_archived_tasks(served: Served, archive_engine: AsyncEngine) -> None:
    await archive(archive_engine, [finished("old", "u-1", T0)])
    document = yaml.safe_load((await kubectl(served.gw.fake, "history", "-o", "yaml")).out)
    assert (document["kind"], [t["kind"] for t in document["items"]]) == ("List", ["ArchivedTask"])
    assert document["items"][0]["summary"]["archived"] is True
    assert (await kubectl(served.gw.fake, "history", "-o", "name")).out == "archivedtask/old\n"
    nothing = await kubectl(served.gw.fake, "history", "--phase", "Cancelled")
    assert (nothing.code, nothing.out, nothing.err) == (0, "", f"No archived tasks found in {NS} namespace.\n")


async def test_history_says_what_is_refused_and_exits_4(served: Served, archive_engine: AsyncEngine) -> None:
    served.user[0] = "bob"
    refused = await kubectl(served.gw.fake, "history")
    assert (refused.code, refused.err) == (4, (
        f"error: you may not read the archive: User 'bob' may not list asynctasks in namespace '{NS}' "
        "(archived tasks are read with the rights of live ones)\n"
    ))  # fmt: skip
    bad = await kubectl(served.gw.fake, "history", "--phase", "Done")
    assert bad.code == 4 and "--phase: 'Done' is not a phase" in bad.err
    assert (await kubectl(served.gw.fake, "history", "--since", "soon")).code == 4


async def test_the_api_servers_own_refusal_names_the_rule_it_wants() -> None:
    fake = FakeKube(now=lambda: NOW)
    refusal = (b'{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"Forbidden","code":403,"message":'
               b'"archivedtasks.archive.asynctask.dev is forbidden: User \\"bob\\" cannot list resource '
               b'\\"archivedtasks\\" in API group \\"archive.asynctask.dev\\" in the namespace \\"media\\""}')  # fmt: skip

    async def api_server(path: str, query: list[tuple[str, str]], accept: str) -> tuple[int, bytes]:
        return 403, refusal  # as the API server answers before it proxies, for a user without the rule

    fake.serve_paths(GROUP, api_server)
    result = await kubectl(fake, "history")
    assert result.code == 4
    assert result.err.startswith(
        'error: you may not read the archive: archivedtasks.archive.asynctask.dev is forbidden: User "bob"'
    )
    assert "add that rule to your Role (docs/cli.md)" in result.err


async def test_without_the_apiservice_history_says_how_to_turn_it_on_and_exits_4() -> None:
    fake = FakeKube(now=lambda: NOW)  # no aggregated API: the group is 404
    result = await kubectl(fake, "history")
    assert (result.code, result.out, result.err) == (4, "", f"error: {NOT_SERVED}\n")


async def test_an_archive_that_does_not_answer_is_said_so() -> None:
    async with running_gateway(archive_dsn="postgresql://nobody@127.0.0.1:1/none") as gw, front_proxy(gw) as proxy:
        gw.fake.serve_paths(GROUP, proxy.handler)
        result = await kubectl(gw.fake, "history")
    assert result.code == 4 and result.err.startswith(
        "error: the archive is unavailable (503): the archive is unavailable"
    )


# --------------------------------------------------------------------------- a task that is gone


async def test_get_of_a_gone_task_reads_the_archive_and_says_so(served: Served, archive_engine: AsyncEngine) -> None:
    await archive(archive_engine, [finished("old", "u-1", T0)])
    result = await kubectl(served.gw.fake, "get", "old")
    assert result.code == 0, result.err
    assert rows(result.out)[1][:4] == ["old", "video", "gpu", "Succeeded"]
    assert result.err == (
        f"asynctask/old is archived: gone from the cluster, read from the archive (recorded {stamp(T0 + 1000)})\n"
    )
    as_json = yaml.safe_load((await kubectl(served.gw.fake, "get", "old", "-o", "json")).out)
    assert (as_json["kind"], as_json["metadata"]["uid"]) == ("ArchivedTask", "u-1")
    never = await kubectl(served.gw.fake, "get", "never")
    assert (never.code, never.err) == (4, f"error: no AsyncTask 'never' in namespace '{NS}', live or archived\n")


async def test_a_live_task_is_never_read_from_the_archive(served: Served, archive_engine: AsyncEngine) -> None:
    await archive(archive_engine, [finished("old", "u-1", T0, "Failed")])
    await served.gw.fake.create(ASYNCTASKS, NS, {"metadata": {"name": "old"}, "spec": {"type": "video"}})
    result = await kubectl(served.gw.fake, "get", "old")
    assert rows(result.out)[1][3] == "Pending" and result.err == "" and served.asked == []


async def test_get_of_a_missing_task_without_the_apiservice_says_how_to_turn_it_on_once() -> None:
    fake = FakeKube(now=lambda: NOW)
    result = await kubectl(fake, "get", "gone")
    assert (result.code, result.err) == (4, f"note: {NOT_SERVED}\nerror: no AsyncTask 'gone' in namespace '{NS}'\n")


async def test_describe_of_a_gone_task_shows_when_it_was_archived_and_the_logs_kept(
    served: Served, archive_engine: AsyncEngine
) -> None:
    logs = [log_row("u-1", 1, T0 + 30, pod="old-1-x", container="main", tail=tail(b"frame 1\n"))]
    await archive(archive_engine, [finished("old", "u-1", T0)], logs)
    result = await kubectl(served.gw.fake, "describe", "old")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert f"Archived:   {stamp(T0 + 1000)} (gone from the cluster: read from the archive)" in lines
    assert lines[lines.index("Logs kept:") + 1 :][:2] == [
        "#   POD       CONTAINER   BYTES   KEPT",
        "1   old-1-x   main        8       all",
    ]
    assert lines[-2:] == ["Events:", "  none kept (the archive keeps no Events)"]


async def test_logs_of_a_gone_task_are_the_archives_copy_as_kubectl_logs_would_be_allowed(
    served: Served, archive_engine: AsyncEngine
) -> None:
    logs = [log_row("u-1", 1, T0 + 30, pod="old-1-x", container="main", tail=tail(b"frame 1\nframe 2"))]
    await archive(archive_engine, [finished("old", "u-1", T0)], logs)
    refused = await kubectl(served.gw.fake, "logs", "old")
    assert refused.code == 4
    assert refused.err.splitlines()[-1] == (
        f"error: you may not read the archive: User 'alice' may not get pods/log 'old-1-x' in namespace '{NS}' "
        "(archived tasks are read with the rights of live ones)"
    )
    served.gw.rules.append(grant("alice", "get", "pods/log", NS, "old-1-x"))
    served.gw.now[0] += DENIED_TTL + 0.1
    result = await kubectl(served.gw.fake, "logs", "old", "-f")
    assert (result.code, result.out) == (0, "frame 1\nframe 2\n")
    assert (
        result.err.splitlines()[-1]
        == "==> attempt 1: the log the archive kept; nothing to follow: the task has finished <=="
    )
    missing = await kubectl(served.gw.fake, "logs", "old", "--attempt", "2")
    assert missing.code == 4 and "no log of attempt 2 of asynctask 'old' is kept" in missing.err


def test_the_history_flags_are_checked_before_anything_is_asked() -> None:
    args: Any = dataclasses.make_dataclass("A", ["type", "queue", "phase", "reason", "selector", "since", "q", "limit"])
    with pytest.raises(Exception, match="--limit: 0"):
        history.filters(args(None, None, None, None, None, None, None, 0), NOW)
