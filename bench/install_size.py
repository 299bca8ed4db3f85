"""What installing each program costs: a fresh venv per extra of the package, its size on disk.

    python -m bench.install_size [--extra NAME]... [--json PATH]

For the package alone and for each extra of pyproject.toml but ``test`` (by default; or the
``--extra`` given, e.g. ``--extra operator,gateway,otel`` for the image's set), installs this
checkout (not editable) into a new venv in a temporary folder, as ``pipx install`` would:
with its dependencies, compiled to bytecode. Prints the venv's site-packages in MB, the number
of distributions, and the seconds the install took (uv, from its cache when warm: the times
say little, the sizes are the figure). Needs the package indexes uv uses.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import subprocess
import sys
import tempfile
import time
import tomllib

ROOT = pathlib.Path(__file__).resolve().parents[1]
MB = 1024 * 1024


def extras() -> list[str]:
    """The extras a user installs: every one in pyproject.toml but the test tools."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [name for name in project.get("optional-dependencies", {}) if name != "test"]


def install(extra: str, folder: pathlib.Path) -> tuple[int, int, float]:
    """(bytes of site-packages, distributions, seconds) of ``pip install .[extra]`` in a new venv."""
    venv = folder / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    target = f"{ROOT}[{extra}]" if extra else str(ROOT)
    started = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "uv", "pip", "install", "--quiet", "--compile-bytecode",
         "--python", str(venv / "bin" / "python"), target],
        check=True,
    )  # fmt: skip
    seconds = time.monotonic() - started
    [site] = venv.glob("lib/python3.*/site-packages")
    size = sum(p.lstat().st_size for p in site.rglob("*") if p.is_file() or p.is_symlink())
    return size, len(list(site.glob("*.dist-info"))), seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--extra", action="append", help="an extra (or a,b,c) to measure; repeatable")
    parser.add_argument("--json", type=pathlib.Path, help="also write the figures here")
    args = parser.parse_args(argv)
    chosen = args.extra if args.extra else ["", *extras()]
    figures: dict[str, dict[str, float]] = {}
    print(f"{'install':<46} {'MB':>7} {'dists':>6} {'s':>5}")
    for extra in chosen:
        with tempfile.TemporaryDirectory(prefix="install-size-") as folder:
            size, count, seconds = install(extra, pathlib.Path(folder))
        label = f"asynctask-operator[{extra}]" if extra else "asynctask-operator"
        figures[label] = {"bytes": size, "distributions": count, "seconds": round(seconds, 1)}
        print(f"{label:<46} {size / MB:7.1f} {count:6d} {seconds:5.0f}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
