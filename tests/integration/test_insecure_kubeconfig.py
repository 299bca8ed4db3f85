"""A kubeconfig with ``insecure-skip-tls-verify`` is said once, at start, in each program's own log
format, and never per request (urllib3 warns on every unverified request, as raw text).

The operator, the gateway and the kubectl plugin run as processes against a stand-in API server
over HTTPS whose certificate nobody trusts (tests/support/tlsapi.py), each making several
requests; what they print on stderr is read line by line.
"""

from __future__ import annotations

import json
import pathlib
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
import trustme

from tests.support.tlsapi import PAGES, TlsApiServer, write_insecure_kubeconfig

BIN = pathlib.Path(sys.executable).parent
SAID = "insecure-skip-tls-verify"
URLLIB3 = "Unverified HTTPS request"


@pytest.fixture()
def api() -> Iterator[TlsApiServer]:
    with TlsApiServer(trustme.CA()) as server:
        yield server


@pytest.fixture()
def kubeconfig(api: TlsApiServer, tmp_path: pathlib.Path) -> pathlib.Path:
    path = tmp_path / "kubeconfig"
    write_insecure_kubeconfig(path, api.url)
    return path


def run_until(api: TlsApiServer, command: list[str], requests: int) -> list[str]:
    """Start ``command``, stop it (SIGTERM) once the API server has answered ``requests``; its stderr lines."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    try:
        while api.requests < requests and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)  # a real process on a real socket: there is no clock to move
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
    assert api.requests >= requests, err
    return err.splitlines()


def json_lines(lines: list[str]) -> list[dict[str, object]]:
    """Every line as a JSON object: a line that is not one fails the test, naming it."""
    records = []
    for line in lines:
        try:
            records.append(json.loads(line))
        except ValueError:
            pytest.fail(f"a line that is not JSON in a JSON log: {line!r}")
    return records


def test_the_operator_says_it_once_in_its_json_log(api: TlsApiServer, kubeconfig: pathlib.Path) -> None:
    command = [sys.executable, "-m", "asynctask_operator", "run", "--kubeconfig", str(kubeconfig)]
    lines = run_until(api, [*command, "--http-port", "0", "--log-format", "json"], requests=4 * PAGES)
    records = json_lines(lines)
    said = [r for r in records if SAID in str(r["message"])]
    assert len(said) == 1 and said[0]["level"] == "warning", records
    assert api.url in str(said[0]["message"])
    assert not [r for r in records if URLLIB3 in json.dumps(r)]


def test_the_gateway_says_it_once_in_its_json_log(api: TlsApiServer, kubeconfig: pathlib.Path) -> None:
    command = [str(BIN / "asynctask-gateway"), "--kubeconfig", str(kubeconfig), "--host", "127.0.0.1", "--port", "0"]
    records = json_lines(run_until(api, command, requests=3 * PAGES + 3))  # three listings, three watches
    said = [r for r in records if SAID in str(r["message"])]
    assert len(said) == 1 and said[0]["level"] == "warning", records
    assert not [r for r in records if URLLIB3 in json.dumps(r)]


def test_the_plugin_says_it_on_one_plain_line(api: TlsApiServer, kubeconfig: pathlib.Path) -> None:
    answer = subprocess.run(
        [str(BIN / "kubectl-asynctask"), "get", "--kubeconfig", str(kubeconfig)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert api.requests == PAGES, answer  # one listing, in pages: a request each
    assert answer.returncode == 0, answer.stderr
    said = [line for line in answer.stderr.splitlines() if SAID in line]
    assert said == [
        f"TLS verification is off for {api.url} (insecure-skip-tls-verify in the kubeconfig): the API server's "
        "certificate is not checked. Said once, not for every request."
    ], answer.stderr
    assert URLLIB3 not in answer.stderr
