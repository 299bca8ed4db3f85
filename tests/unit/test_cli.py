"""``asynctask-operator run``: every flag, where its value goes, and its help."""

from __future__ import annotations

import argparse
import ipaddress
import pathlib
import socket
import subprocess
import sys

import pytest

from asynctask_operator import cli
from asynctask_operator.core.config import CoreConfig
from asynctask_operator.core.destinations import DestinationPolicy
from asynctask_operator.settings import OperatorSettings
from asynctask_operator.testing.cluster import write_kubeconfig

EVERY_FLAG = [
    *("--namespace", "a", "-n", "b"),
    *("--kubeconfig", "/k", "--context", "c"),
    *("--workers", "3", "--payload-limit", "100", "--default-ttl", "60", "--unknown-type-grace", "1.5"),
    *("--short-attempt-seconds", "2"),
    "--archive-required",
    *("--default-concurrency", "4", "--queue-status-seconds", "0.5", "--http-port", "0"),
    *("--report-url", "http://op:8080", "--report-key-secret", "s", "--report-key-namespace", "ops"),
    *("--progress-interval", "0.25", "--result-limit", "200"),
    *("--leader-elect", "--lease-name", "l", "--lease-duration", "30", "--renew-deadline", "20.5"),
    *("--retry-period", "2.5", "--pod-name", "p", "--resync-seconds", "60"),
    *("--callback-allowed-host", "hooks.internal", "--callback-allowed-host", "*.corp"),
    *("--callback-allowed-cidr", "10.20.0.0/16"),
    *("--callback-max-attempts", "2", "--callback-backoff-seconds", "0.5", "--callback-timeout", "3"),
    *("--callback-max-in-flight", "8", "--log-format", "json", "--verbose"),
]
EVERY_FLAG_NAMES = {arg for arg in EVERY_FLAG if arg.startswith("--")}


def run_args(*argv: str) -> argparse.Namespace:
    return cli._parser().parse_args(["run", *argv])


@pytest.fixture(autouse=True)
def no_pod_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("POD_NAMESPACE", raising=False)
    monkeypatch.delenv("POD_NAME", raising=False)


def test_no_flags_give_the_settings_defaults() -> None:
    args = run_args()
    assert cli.settings_of(args) == OperatorSettings(callback_policy=DestinationPolicy.of())
    assert (args.log_format, args.verbose) == ("auto", False)


def test_the_pods_environment_gives_the_namespace_and_pod_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POD_NAMESPACE", "asynctask-system")
    monkeypatch.setenv("POD_NAME", "op-0")
    settings = cli.settings_of(run_args())
    assert (settings.report_key_namespace, settings.pod_name) == ("asynctask-system", "op-0")
    assert cli.settings_of(run_args("--report-key-namespace", "x", "--pod-name", "y")).pod_name == "y"


def test_an_empty_variable_is_no_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POD_NAMESPACE", "")
    monkeypatch.setenv("POD_NAME", "")
    settings = cli.settings_of(run_args())
    assert (settings.report_key_namespace, settings.pod_name) == ("default", None)


def test_every_flag_reaches_its_setting() -> None:
    args = run_args(*EVERY_FLAG)
    assert cli.settings_of(args) == OperatorSettings(
        core=CoreConfig(
            payload_limit_bytes=100,
            default_ttl_seconds=60,
            archive_required=True,
            unknown_type_grace_seconds=1.5,
            short_attempt_seconds=2.0,
            report_url="http://op:8080",
            progress_interval_seconds=0.25,
            result_limit_bytes=200,
            callback_max_attempts=2,
            callback_base_seconds=0.5,
            callback_timeout_seconds=3.0,
        ),
        namespaces=("a", "b"),
        workers=3,
        resync_seconds=60.0,
        default_concurrency=4,
        queue_status_seconds=0.5,
        http_port=0,
        report_key_secret="s",
        report_key_namespace="ops",
        leader_elect=True,
        lease_name="l",
        lease_seconds=30,
        renew_deadline=20.5,
        retry_period=2.5,
        pod_name="p",
        kubeconfig="/k",
        context="c",
        callback_policy=DestinationPolicy(
            frozenset({"hooks.internal", "*.corp"}), (ipaddress.ip_network("10.20.0.0/16"),)
        ),
        callback_max_in_flight=8,
    )
    assert (args.log_format, args.verbose) == ("json", True)


@pytest.mark.parametrize(
    ("flag", "value"), [("--workers", "1.5"), ("--renew-deadline", "soon"), ("--log-format", "xml")]
)
def test_a_value_of_the_wrong_type_is_refused(flag: str, value: str) -> None:
    with pytest.raises(SystemExit):
        run_args(flag, value)


def test_a_network_that_is_not_one_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.settings_of(run_args("--callback-allowed-cidr", "ten.twenty"))
    assert exited.value.code == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("asynctask-operator: error: --callback-allowed-cidr: ")


def test_a_taken_http_port_is_one_line_naming_the_flag_and_exit_2(tmp_path: pathlib.Path) -> None:
    write_kubeconfig(tmp_path / "kubeconfig", "https://127.0.0.1:9")  # never reached: the port is bound first
    with socket.create_server(("0.0.0.0", 0)) as held:
        port = held.getsockname()[1]
        command = [sys.executable, "-m", "asynctask_operator", "run", "--kubeconfig", str(tmp_path / "kubeconfig")]
        answer = subprocess.run([*command, "--http-port", str(port)], capture_output=True, text=True, timeout=60)
    assert answer.returncode == 2, answer.stderr
    assert answer.stderr.splitlines() == [
        f"asynctask-operator: error: --http-port: cannot listen on 0.0.0.0:{port}: Address already in use: "
        "choose another port, or stop what holds it"
    ]


def run_parser() -> argparse.ArgumentParser:
    [subparsers] = [action for action in cli._parser()._actions if isinstance(action, argparse._SubParsersAction)]
    parser: argparse.ArgumentParser = subparsers.choices["run"]
    return parser


def test_every_option_has_its_help() -> None:
    run = run_parser()
    helps = {next(o for o in action.option_strings if o.startswith("--")): action.help for action in run._actions}
    assert set(helps) == EVERY_FLAG_NAMES | {"--help"}
    assert [flag for flag, text in helps.items() if not (text and text.strip())] == []
    run.format_help()  # every help text formats (a stray % would raise here)


def test_the_help_is_the_settings_documentation(monkeypatch: pytest.MonkeyPatch) -> None:
    """One text: the docstring under each field, the settings it names spelled as their flags."""
    monkeypatch.setenv("COLUMNS", "10000")  # no line breaks inside a flag
    text = " ".join(run_parser().format_help().split())
    assert "--workers WORKERS Tasks reconciled concurrently. (default: 16)" in text
    assert "Only used when --report-url is set." in text  # ``core.report_url`` in the docstring
    assert "(in --report-key-namespace, the operator's own namespace)" in text
    assert "(default: $POD_NAMESPACE, else default)" in text
    assert "--default-ttl SECONDS" in text and "--payload-limit BYTES" in text
