"""The benchmarks and the testing kit import no test module: what they share with the tests lives in the
package (``asynctask_operator.testing``), so ``python -m bench.x`` needs no ``tests/`` on the path and a
change to a test cannot change a benchmark's figures. The code is read, not run."""

from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
READ = sorted([*(ROOT / "bench").glob("*.py"), *(ROOT / "operator" / "asynctask_operator" / "testing").glob("*.py")])


def imported(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, module) of every import in ``tree``, at any depth (a function's own imports too)."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.append((node.lineno, node.module))
    return sorted(found)


def test_the_files_read_are_there() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in READ}
    assert {"bench/common.py", "bench/gateway.py", "bench/throughput.py"} <= names
    assert {
        "operator/asynctask_operator/testing/apiserver.py",
        "operator/asynctask_operator/testing/emulator.py",
    } <= names


@pytest.mark.parametrize("path", READ, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_imports_no_test_module(path: pathlib.Path) -> None:
    tests = [f"{path.name}:{line} imports {module}" for line, module in imported(ast.parse(path.read_text()))
             if module == "tests" or module.startswith("tests.")]  # fmt: skip
    assert not tests, "move what it needs into asynctask_operator.testing: " + "; ".join(tests)


def test_a_test_import_is_found() -> None:
    code = "def run():\n    from tests.e2e.helpers import OperatorProcess\nimport tests.support.rbac\n"
    assert imported(ast.parse(code)) == [(2, "tests.e2e.helpers"), (3, "tests.support.rbac")]
