"""The aggregation port over real mutual TLS (issue 27, the kubectl plugin's side): uvicorn on a real port
with the front proxy's CA required of every client, as ``asynctask-gateway --aggregation-port`` serves it
(tests/support/aggregation.py). A connection without a client certificate, or with one of another CA,
fails in the handshake and never reaches the application; the front proxy's certificate with
``X-Remote-User`` is answered as that user, and the SubjectAccessReview asked is that user's. Then the
plugin itself, ``kubectl-asynctask`` as a process, through a stand-in API server that proxies to it."""

from __future__ import annotations

import asyncio
import os
import pathlib
import sys
from collections.abc import AsyncIterator

import httpx
import pytest
import yaml
from sqlalchemy.ext.asyncio import AsyncEngine

from asynctask_operator.archive.capture import log_row
from asynctask_operator.testing.fakekube import FakeKube
from tests.support.aggregation import AggregationPort, Certificates, aggregation_port, stand_in_api_server
from tests.support.gateway import NS
from tests.support.rbac import allowed, grant
from tests.unit.test_gateway_history import T0, archive, finished, tail

TASKS = f"/apis/archive.asynctask.dev/v1alpha1/namespaces/{NS}/archivedtasks"
ALICE = {"X-Remote-User": "alice", "X-Remote-Group": "team-media"}
RULES = [grant("alice", verb, "asynctasks", NS) for verb in ("get", "list")] + [grant("alice", "get", "pods/log", NS)]
PLUGIN = pathlib.Path(sys.executable).with_name("kubectl-asynctask")


@pytest.fixture()
def certs(tmp_path: pathlib.Path) -> Certificates:
    return Certificates.made(tmp_path)


@pytest.fixture()
async def port(certs: Certificates, archive_dsn: str, archive_engine: AsyncEngine) -> AsyncIterator[AggregationPort]:
    logs = [log_row("u-1", 1, T0 + 30, pod="old-1-x", container="main", tail=tail(b"frame 1\nframe 2\n"))]
    await archive(archive_engine, [finished("old", "u-1", T0), finished("older", "u-0", T0 - 60, "Failed")], logs)
    fake = FakeKube()
    asked: list[tuple[str, tuple[str, ...], dict[str, str]]] = []

    def decide(user: str, groups: tuple[str, ...], attributes: dict[str, str]) -> bool:
        asked.append((user, groups, dict(attributes)))
        return allowed(RULES, user, attributes)

    fake.reviews({}, decide)
    async with aggregation_port(certs, fake, archive_dsn) as served:
        served.asked = asked  # type: ignore[attr-defined]
        yield served


async def test_no_client_certificate_is_refused_in_the_handshake_before_the_application(
    port: AggregationPort, certs: Certificates
) -> None:
    async with httpx.AsyncClient(base_url=port.url, verify=certs.client(None)) as client:
        with pytest.raises(httpx.TransportError):
            await client.get(TASKS, headers=ALICE)
    assert port.seen == [] and port.asked == []  # type: ignore[attr-defined]


async def test_a_certificate_of_another_ca_is_refused_in_the_handshake(
    port: AggregationPort, certs: Certificates
) -> None:
    async with httpx.AsyncClient(base_url=port.url, verify=certs.client(certs.forged)) as client:
        with pytest.raises(httpx.TransportError):
            await client.get(TASKS, headers=ALICE)
    assert port.seen == [] and port.asked == []  # type: ignore[attr-defined]


async def test_a_certificate_of_the_ca_for_a_name_not_allowed_is_401_and_its_headers_ignored(
    port: AggregationPort, certs: Certificates
) -> None:
    async with httpx.AsyncClient(base_url=port.url, verify=certs.client(certs.other_name)) as client:
        answer = await client.get(TASKS, headers=ALICE)
    assert answer.status_code == 401 and answer.json()["reason"] == "Unauthorized"
    assert "someone" in answer.json()["message"] and "requestheader-allowed-names" in answer.json()["message"]
    assert port.seen == [TASKS] and port.asked == []  # type: ignore[attr-defined]


async def test_the_front_proxys_certificate_and_headers_are_answered_as_that_user(
    port: AggregationPort, certs: Certificates
) -> None:
    async with httpx.AsyncClient(base_url=port.url, verify=certs.client(certs.proxy)) as client:
        listed = await client.get(TASKS, headers=ALICE)
        assert listed.status_code == 200, listed.text
        assert [t["metadata"]["name"] for t in listed.json()["items"]] == ["old", "older"]
        log = await client.get(f"{TASKS}/old/log", headers=ALICE)
        assert (log.status_code, log.text) == (200, "frame 1\nframe 2\n")
        refused = await client.get(TASKS, headers={"X-Remote-User": "bob"})
        assert refused.status_code == 403 and refused.json()["reason"] == "Forbidden"
    asked = port.asked  # type: ignore[attr-defined]
    assert [(user, groups, a["verb"], a["resource"], a.get("name")) for user, groups, a in asked] == [
        ("alice", ("team-media",), "list", "asynctasks", None),
        ("alice", ("team-media",), "get", "asynctasks", "old"),
        ("alice", ("team-media",), "get", "pods", "old-1-x"),  # pods/log, on the attempt's pod
        ("bob", (), "list", "asynctasks", None),
    ]
    assert asked[2][2]["subresource"] == "log"


def kubeconfig(path: pathlib.Path, url: str, token: str) -> pathlib.Path:
    config = {
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": url}}],
        "users": [{"name": "u", "user": {"token": token}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u", "namespace": NS}}],
    }  # fmt: skip
    path.write_text(yaml.safe_dump(config))
    return path


async def plugin(config: pathlib.Path, *argv: str) -> tuple[int, str, str]:
    """``kubectl-asynctask`` as a process (this loop serves the API server it talks to: it must not block)."""
    process = await asyncio.create_subprocess_exec(
        str(PLUGIN), *argv, "--kubeconfig", str(config),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 60)
    return int(process.returncode or 0), out.decode(), err.decode()


@pytest.mark.parametrize("archive_dsn", ["sqlite"], indirect=True)  # the plugin's part: one database is enough
async def test_the_plugin_reads_the_archive_through_the_api_server_as_its_own_user(
    port: AggregationPort, certs: Certificates, tmp_path: pathlib.Path
) -> None:
    tokens = {"alice-token": ("alice", ("team-media",)), "bob-token": ("bob", ())}
    async with stand_in_api_server(port, certs, tokens) as url:
        alice = kubeconfig(tmp_path / "alice", url, "alice-token")
        code, out, err = await plugin(alice, "history")
        assert code == 0, err
        assert [line.split()[:4] for line in out.splitlines()] == [
            ["NAME", "TYPE", "QUEUE", "PHASE"], ["old", "video", "gpu", "Succeeded"], ["older", "video", "gpu", "Failed"]
        ]  # fmt: skip
        code, out, err = await plugin(alice, "get", "old")
        assert code == 0 and out.splitlines()[1].split()[:4] == ["old", "video", "gpu", "Succeeded"], err
        assert err.startswith("asynctask/old is archived: gone from the cluster, read from the archive (recorded ")
        code, out, err = await plugin(alice, "logs", "old")
        assert (code, out) == (0, "frame 1\nframe 2\n"), err
        code, out, err = await plugin(kubeconfig(tmp_path / "bob", url, "bob-token"), "history")
        assert code == 4 and err.startswith("error: you may not read the archive: User 'bob' may not list asynctasks")
    users = {user for user, _, _ in port.asked}  # type: ignore[attr-defined]
    assert users == {"alice", "bob"}  # each as themselves: never the gateway, never the stand-in
