"""ADR 0022 in a real install: the package without extras, then with [kubectl] only.

A venv in a temporary folder gets this checkout (not editable) with uv, as ``pipx install``
would; each console script is run there. Without its extra a program says so on one line and
exits with its code (2 for the operator and the gateway, the plugin's 4), never a traceback;
with [kubectl] the plugin runs, and the operator and gateway still say what they miss.
"""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
pytest.importorskip("uv", reason="uv installs the venv (scripts/venv puts it in .venv)")


def install(venv: pathlib.Path, target: str) -> None:
    command = [sys.executable, "-m", "uv", "pip", "install", "--quiet", "--python", str(venv / "bin" / "python")]
    subprocess.run([*command, target], check=True, timeout=300)


def run(venv: pathlib.Path, *command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(venv / "bin" / command[0]), *command[1:]], capture_output=True, text=True, timeout=60)


def one_line(answer: subprocess.CompletedProcess[str], program: str, extra: str, code: int) -> list[str]:
    """The libraries the one line says are missing (what the base install brings already is not among them)."""
    assert answer.returncode == code, answer.stderr
    [line] = answer.stderr.splitlines()
    said = re.fullmatch(
        rf"{program}: error: the \[{extra}\] extra is not installed \((.+) missing\): "
        rf"pip install 'asynctask-operator\[{extra}\]'",
        line,
    )
    assert said, line
    return said.group(1).split(", ")


def test_each_program_says_what_it_misses_and_the_plugin_runs_with_its_extra(tmp_path: pathlib.Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    install(venv, str(ROOT))

    assert one_line(run(venv, "kubectl-asynctask", "version"), "kubectl asynctask", "kubectl", 4) == ["rich"]
    krew = run(venv, "python", "-m", "asynctask_operator.kubectl", "version")  # as a krew launcher runs it
    assert one_line(krew, "kubectl asynctask", "kubectl", 4) == ["rich"]
    operator = one_line(run(venv, "asynctask-operator", "run"), "asynctask-operator", "operator", 2)
    assert {"kopf", "httpx", "standardwebhooks"} <= set(operator)
    as_module = run(venv, "python", "-m", "asynctask_operator", "run")
    assert one_line(as_module, "asynctask-operator", "operator", 2) == operator
    gateway = ["fastapi", "uvicorn", "jinja2", "prometheus-client"]
    assert one_line(run(venv, "asynctask-gateway"), "asynctask-gateway", "gateway", 2) == gateway

    install(venv, f"{ROOT}[kubectl]")
    plugin = run(venv, "kubectl-asynctask", "version")
    assert plugin.returncode == 0 and plugin.stdout.startswith("kubectl-asynctask 0.1.0"), plugin.stderr
    assert run(venv, "kubectl-asynctask", "--help").returncode == 0
    assert one_line(run(venv, "asynctask-gateway"), "asynctask-gateway", "gateway", 2) == gateway
    [site] = venv.glob("lib/python3.*/site-packages")
    installed = {path.name.split("-")[0].lower() for path in site.glob("*.dist-info")}
    assert not installed & {"kopf", "fastapi", "uvicorn", "jinja2", "httpx"}, installed
