"""ADR 0022: each program's libraries are its extra; without them, one line and an exit code, no traceback."""

from __future__ import annotations

import importlib.metadata
import pathlib
import sys
import tomllib
from typing import Any

import pytest
from packaging.requirements import Requirement

from asynctask_operator import extras, programs
from asynctask_operator.extras import PACKAGE, extra_requirements, missing, require

ROOT = pathlib.Path(__file__).resolve().parents[2]
REQUIRES = [
    "kubernetes>=37",
    'rich<16,>=14; extra == "kubectl"',
    'kopf<2,>=1.45; extra == "operator"',
    'prometheus-client>=0.20; extra == "operator"',
    'prometheus-client>=0.20; extra == "gateway"',
    'asynctask-operator[gateway,kubectl,operator,otel]; extra == "test"',
    'helm-python-sdk<0.3; (sys_platform == "linux") and extra == "test"',
]


@pytest.mark.parametrize(
    ("extra", "names"),
    [
        ("kubectl", ["rich"]),
        ("operator", ["kopf", "prometheus-client"]),
        ("gateway", ["prometheus-client"]),
        ("test", ["helm-python-sdk"]),  # the package itself, with other extras, is not a library to look for
        ("otel", []),
    ],
)
def test_an_extras_libraries_are_read_from_requires_dist(extra: str, names: list[str]) -> None:
    assert extra_requirements(extra, REQUIRES) == names


def test_missing_names_what_is_not_installed() -> None:
    assert missing("operator", lambda _: REQUIRES, lambda name: name == "kopf") == ["prometheus-client"]
    assert missing("operator", lambda _: REQUIRES, lambda name: True) == []


def test_a_source_tree_without_the_package_installed_is_not_refused() -> None:
    def no_package(name: str) -> list[str]:
        raise importlib.metadata.PackageNotFoundError(name)

    assert missing("operator", no_package, lambda name: False) == []


def test_a_missing_extra_is_one_line_and_the_programs_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        require("gateway", "asynctask-gateway", 2, absent=["fastapi", "uvicorn"])
    assert exited.value.code == 2
    assert capsys.readouterr().err == (
        "asynctask-gateway: error: the [gateway] extra is not installed (fastapi, uvicorn missing): "
        "pip install 'asynctask-operator[gateway]'\n"
    )
    require("gateway", "asynctask-gateway", 2, absent=[])  # all there: nothing said, no exit


def test_the_installed_metadata_is_pyprojects() -> None:
    """What the check reads (the installed package's Requires-Dist) is pyproject.toml's extras: a stale
    install (scripts/venv not run since the extras changed) would check the wrong list."""
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    installed = importlib.metadata.requires(PACKAGE) or []
    for extra in ("kubectl", "operator", "gateway", "otel"):
        declared = [Requirement(line).name for line in extras[extra]]
        assert extra_requirements(extra, installed) == declared, extra


@pytest.mark.parametrize(
    ("entry", "module", "extra", "code"),
    [
        (programs.operator, "asynctask_operator.cli", "operator", 2),
        (programs.gateway, "asynctask_operator.gateway.cli", "gateway", 2),
    ],
)
def test_a_program_whose_import_fails_says_which_extra_is_missing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], entry: Any, module: str, extra: str, code: int
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # its import fails, as without its libraries
    monkeypatch.setattr(extras, "missing", lambda name: ["kopf"] if name == extra else [])
    with pytest.raises(SystemExit) as exited:
        entry()
    assert (
        exited.value.code == code and f"the [{extra}] extra is not installed (kopf missing)" in capsys.readouterr().err
    )


def test_an_import_error_with_the_extra_whole_is_raised_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "asynctask_operator.cli", None)
    monkeypatch.setattr(extras, "missing", lambda name: [])
    with pytest.raises(ModuleNotFoundError):
        programs.operator()
