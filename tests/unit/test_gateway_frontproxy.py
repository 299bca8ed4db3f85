"""The front proxy's settings (the API server's ConfigMap kube-system/extension-apiserver-authentication), the
user its headers name, and the gateway's flags for the aggregation port."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest

from asynctask_operator.adapters.kube import CONFIGMAPS, ApiError
from asynctask_operator.gateway.auth import User
from asynctask_operator.gateway.cli import parse, settings_of
from asynctask_operator.gateway.frontproxy import FrontProxy, FrontProxyUnavailable, read_front_proxy
from asynctask_operator.testing.cluster import write_kubeconfig
from asynctask_operator.testing.fakekube import FakeKube

GATEWAY = str(pathlib.Path(sys.executable).parent / "asynctask-gateway")
KUBEADM = {  # what kubeadm's API server publishes
    "client-ca-file": "CLIENT CA",
    "requestheader-client-ca-file": "FRONT PROXY CA",
    "requestheader-allowed-names": '["front-proxy-client"]',
    "requestheader-username-headers": '["X-Remote-User"]',
    "requestheader-group-headers": '["X-Remote-Group"]',
    "requestheader-extra-headers-prefix": '["X-Remote-Extra-"]',
}


def test_the_configmap_gives_the_ca_the_allowed_names_and_the_headers() -> None:
    assert FrontProxy.of(KUBEADM) == FrontProxy("FRONT PROXY CA", ("front-proxy-client",))
    custom = FrontProxy.of(KUBEADM | {
        "requestheader-allowed-names": "[]", "requestheader-username-headers": '["X-User", "X-Other-User"]',
        "requestheader-uid-headers": '["X-Remote-Uid"]',
    })  # fmt: skip
    assert (custom.allowed_names, custom.username_headers, custom.uid_headers) == (
        (), ("X-User", "X-Other-User"), ("X-Remote-Uid",)
    )  # fmt: skip


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({"client-ca-file": "CA"}, "no requestheader-client-ca-file"),
        (KUBEADM | {"requestheader-allowed-names": "front-proxy-client"}, "requestheader-allowed-names"),
        (KUBEADM | {"requestheader-group-headers": "[1]"}, "requestheader-group-headers"),
    ],
)
def test_a_configmap_without_a_ca_or_with_a_malformed_list_is_refused_naming_it(
    data: dict[str, str], words: str
) -> None:
    with pytest.raises(FrontProxyUnavailable, match=words):
        FrontProxy.of(data)


def test_the_user_is_read_as_the_api_servers_request_header_authenticator_reads_it() -> None:
    proxy = FrontProxy("CA", username_headers=("X-User", "X-Remote-User"), uid_headers=("X-Remote-Uid",))
    headers = [
        (b"X-User", b""),  # empty: the next username header counts
        (b"x-remote-user", b"alice"),
        (b"X-Remote-Uid", b"1234"),
        (b"X-Remote-Group", b"dev"),
        (b"X-Remote-Group", b"a,b"),  # one value per header line, never split on commas
        (b"X-Remote-Extra-Scopes", b"view"),
        (b"X-Remote-Extra-Scopes", b"edit"),
        (b"X-Remote-Extra-Acme.com%2Fproject", b"p1"),  # a key %-encoded, as the API server sends it
        (b"Authorization", b"Bearer never-read"),
    ]
    assert proxy.user_of(headers) == User(
        "alice", ("dev", "a,b"), "1234", (("acme.com/project", ("p1",)), ("scopes", ("view", "edit")))
    )
    assert proxy.user_of([(b"x-remote-group", b"dev")]) is None


async def test_the_gateway_reads_the_configmap_and_says_what_to_fix_when_it_cannot() -> None:
    fake = FakeKube()
    with pytest.raises(FrontProxyUnavailable, match="API aggregation is not set up"):
        await read_front_proxy(fake)
    await fake.create(
        CONFIGMAPS, "kube-system", {"metadata": {"name": "extension-apiserver-authentication"}, "data": KUBEADM}
    )
    assert (await read_front_proxy(fake)).allowed_names == ("front-proxy-client",)
    fake.fail("get", "configmaps", ApiError(403, "Forbidden", "no"))
    with pytest.raises(FrontProxyUnavailable, match="bind the Role extension-apiserver-authentication-reader"):
        await read_front_proxy(fake)


def test_the_aggregation_flags_reach_the_settings(tmp_path: pathlib.Path) -> None:
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    cert.write_text("C")
    key.write_text("K")
    args = parse(["--aggregation-port", "8443", "--aggregation-tls-cert", str(cert), "--aggregation-tls-key", str(key)])
    settings = settings_of(args)
    assert (settings.aggregation_port, settings.aggregation_tls_cert, settings.aggregation_tls_key) == (
        8443, str(cert), str(key)
    )  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--aggregation-port", "8443"], "--aggregation-port needs --aggregation-tls-cert and --aggregation-tls-key"),
        (["--aggregation-port", "8000", "--aggregation-tls-cert", "C", "--aggregation-tls-key", "K"],
         "--aggregation-port must differ from --port"),
    ],
)  # fmt: skip
def test_an_aggregation_port_without_its_certificate_or_on_the_main_port_is_refused(
    tmp_path: pathlib.Path, argv: list[str], words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("C", "K"):
        (tmp_path / name).write_text(name)
    argv = [str(tmp_path / a) if a in ("C", "K") else a for a in argv]
    with pytest.raises(SystemExit) as ended:
        parse(argv)
    assert ended.value.code == 2 and words in capsys.readouterr().err


def test_an_aggregation_port_without_an_archive_is_one_line_and_exit_2(tmp_path: pathlib.Path) -> None:
    write_kubeconfig(tmp_path / "kubeconfig", "https://127.0.0.1:9")  # never reached
    for name in ("tls.crt", "tls.key"):
        (tmp_path / name).write_text(name)
    command = [GATEWAY, "--kubeconfig", str(tmp_path / "kubeconfig"), "--port", "0", "--aggregation-port", "1",
               "--aggregation-tls-cert", str(tmp_path / "tls.crt"), "--aggregation-tls-key", str(tmp_path / "tls.key")]  # fmt: skip
    ended = subprocess.run(command, capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin"})
    assert ended.returncode == 2, ended.stderr
    assert ended.stderr.strip().splitlines()[-1] == (
        "asynctask-gateway: error: --archive-dsn: --aggregation-port serves the archive: give the archive's database"
    )
    assert len(ended.stderr.strip().splitlines()) == 1
