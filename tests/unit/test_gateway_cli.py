"""``asynctask-gateway``'s flags become its settings."""

from __future__ import annotations

import asyncio
import gc
import pathlib
import socket
import subprocess
import sys

import pytest

from asynctask_operator.core.clocks import Clocks
from asynctask_operator.gateway.access import Gateway
from asynctask_operator.gateway.app import freeze_once_loaded
from asynctask_operator.gateway.cli import parse, parser, server_config, settings_of
from asynctask_operator.gateway.settings import GatewaySettings
from asynctask_operator.testing.cluster import write_kubeconfig
from asynctask_operator.testing.fakekube import FakeKube

GATEWAY = str(pathlib.Path(sys.executable).parent / "asynctask-gateway")


def test_the_defaults_are_the_settings_defaults() -> None:
    assert settings_of(parser().parse_args([])) == GatewaySettings()


def test_every_flag_reaches_its_setting() -> None:
    args = parser().parse_args(
        ["-n", "a", "--namespace", "b", "--kubeconfig", "k", "--context", "c", "--host", "127.0.0.1", "--port", "9",
         "--max-body-bytes", "1024", "--rate-limit", "2.5", "--rate-burst", "3", "--auth-failure-limit", "6",
         "--auth-failure-burst", "4", "--trusted-proxy-header", "X-Forwarded-For", "--allow-anonymous",
         "--trusted-header", "X-User", "--trusted-groups-header", "X-Groups", "--cors-origin", "https://a",
         "--cloudevent-type", "order.created=fulfil", "--keepalive", "5", "--no-console", "--session-hours", "2", "--log-probes"]
    )  # fmt: skip
    assert settings_of(args) == GatewaySettings(
        namespaces=("a", "b"), kubeconfig="k", context="c", host="127.0.0.1", port=9, max_body_bytes=1024,
        rate_limit=2.5, rate_burst=3, auth_failure_limit=6.0, auth_failure_burst=4,
        trusted_proxy_header="X-Forwarded-For", allow_anonymous=True, trusted_header="X-User",
        trusted_groups_header="X-Groups", cors_origins=("https://a",),
        cloudevent_types=(("order.created", "fulfil"),), keepalive_seconds=5.0, console=False, session_seconds=7200.0,
        log_probes=True,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("host", "flag", "reason", "fix"),
    [
        ("127.0.0.1", "--port", "Address already in use", "another port, or stop what holds it"),
        ("192.0.2.1", "--host", "Cannot assign requested address", "an address of this machine"),
    ],
)
def test_a_port_it_cannot_listen_on_is_one_line_naming_the_flag_and_exit_2(
    tmp_path: pathlib.Path, host: str, flag: str, reason: str, fix: str
) -> None:
    write_kubeconfig(tmp_path / "kubeconfig", "https://127.0.0.1:9")  # never reached: the port is bound first
    with socket.create_server(("127.0.0.1", 0)) as held:
        port = held.getsockname()[1]
        command = [GATEWAY, "--kubeconfig", str(tmp_path / "kubeconfig"), "--host", host, "--port", str(port)]
        answer = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert answer.returncode == 2, answer.stderr
    assert answer.stderr.splitlines() == [
        f"asynctask-gateway: error: {flag}: cannot listen on {host}:{port}: {reason}: choose {fix}"
    ]


def test_keepalive_is_never_longer_than_15_seconds() -> None:
    assert settings_of(parser().parse_args(["--keepalive", "60"])).keepalive_seconds == 15.0


@pytest.mark.parametrize("bad", ["order.created", "=fulfil", "order.created="])
def test_a_cloudevent_mapping_needs_both_sides(bad: str) -> None:
    with pytest.raises(SystemExit):
        parser().parse_args(["--cloudevent-type", bad])


@pytest.fixture()
def pem_files(tmp_path: pathlib.Path) -> tuple[str, str]:
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    cert.write_text("cert")
    key.write_text("key")
    return str(cert), str(key)


def test_tls_flags_reach_the_settings_and_uvicorn(pem_files: tuple[str, str]) -> None:
    cert, key = pem_files
    settings = settings_of(parse(["--tls-cert", cert, "--tls-key", key]))
    assert (settings.tls_cert, settings.tls_key) == (cert, key)
    config = server_config(object(), settings)  # type: ignore[arg-type]
    assert (config.ssl_certfile, config.ssl_keyfile) == (cert, key)
    assert server_config(object(), GatewaySettings()).ssl_certfile is None  # type: ignore[arg-type]
    assert config.access_log is False  # the app's own request log instead (tests/integration/test_gateway_logs.py)


@pytest.mark.parametrize(
    ("given", "named"),
    [(["--tls-cert"], "--tls-cert needs --tls-key"), (["--tls-key"], "--tls-key needs --tls-cert")],
)
def test_a_tls_flag_without_its_pair_is_refused_by_name(
    pem_files: tuple[str, str], given: list[str], named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        parse([given[0], pem_files[0]])
    assert exited.value.code == 2 and named in capsys.readouterr().err


def test_a_missing_certificate_file_is_refused_by_name(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse(["--tls-cert", "/nonexistent/tls.crt", "--tls-key", "/nonexistent/tls.key"])
    assert "--tls-cert: no such file: '/nonexistent/tls.crt'" in capsys.readouterr().err


async def test_the_process_freezes_its_caches_once_they_are_loaded() -> None:
    """bench/console.py: a full collection walking 10,000 cached tasks paused a request ~100 ms."""
    gateway = Gateway.build(FakeKube(), GatewaySettings(), Clocks())
    waiting = asyncio.create_task(freeze_once_loaded(gateway))
    try:
        *first, last = gateway.stores
        for store in first:
            store.synced.set()
        await asyncio.sleep(0)
        assert not waiting.done() and gc.get_freeze_count() == 0  # not before every cache is loaded
        last.synced.set()
        await asyncio.wait_for(waiting, 5)
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
