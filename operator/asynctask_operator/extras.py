"""Which extra each program needs, and one clear line when it is not installed.

The package installs what all its programs share; each program's own libraries come with its
extra (pyproject.toml, ADR 0022)::

    pipx install 'asynctask-operator[kubectl]'    # kubectl-asynctask: rich
    pip install 'asynctask-operator[operator]'    # asynctask-operator: kopf, aiohttp, httpx, ...
    pip install 'asynctask-operator[gateway]'     # asynctask-gateway: FastAPI, uvicorn, Jinja2

Without it, a program would die of an ImportError traceback while importing its first module;
when that import fails, :func:`require` says instead, on one line, what is missing and the
command that installs it (and nothing when the extra is whole: the error was another one).
What each extra holds is read from the installed package's own metadata (its ``Requires-Dist``),
so pyproject.toml stays the one list. Standard library only: this runs before anything else
(:mod:`~asynctask_operator.programs`, the console scripts, and the kubectl plugin's package).
"""

from __future__ import annotations

import importlib.metadata
import re
import sys
from collections.abc import Callable, Iterable

PACKAGE = "asynctask-operator"
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
_EXTRA = re.compile(r"""extra\s*==\s*["']([^"']+)["']""")


def extra_requirements(extra: str, requires: Iterable[str]) -> list[str]:
    """The distributions ``extra`` adds, from ``Requires-Dist`` lines (another extra of the package itself aside).

    >>> extra_requirements("kubectl", ['rich<16,>=14; extra == "kubectl"', "pydantic<3", 'kopf; extra == "operator"'])
    ['rich']
    """
    names = []
    for line in requires:
        requirement, _, marker = line.partition(";")
        found = _NAME.match(requirement)
        if found and extra in _EXTRA.findall(marker) and found.group(1).lower() != PACKAGE:
            names.append(found.group(1))
    return names


def _installed(name: str) -> bool:
    try:
        importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def missing(
    extra: str,
    requires: Callable[[str], Iterable[str] | None] = importlib.metadata.requires,
    installed: Callable[[str], bool] = _installed,
) -> list[str]:
    """What of ``extra`` is not installed; nothing when the package itself is not (a source tree on the path)."""
    try:
        lines = requires(PACKAGE) or ()
    except importlib.metadata.PackageNotFoundError:
        return []
    return [name for name in extra_requirements(extra, lines) if not installed(name)]


def require(extra: str, program: str, code: int, absent: list[str] | None = None) -> None:
    """Exit with ``code`` and one line on stderr when ``extra`` is not (wholly) installed."""
    absent = missing(extra) if absent is None else absent
    if absent:
        sys.stderr.write(
            f"{program}: error: the [{extra}] extra is not installed ({', '.join(absent)} missing): "
            f"pip install '{PACKAGE}[{extra}]'\n"
        )
        raise SystemExit(code)
