"""The size of what the image ships: the Dockerfile's /opt/venv, built without Docker, per distribution.

    python -m bench.image_size [--dockerfile PATH] [--top 20] [--json PATH]

Runs the ``COPY``, ``ENV`` and ``RUN`` instructions of the Dockerfile's builder stage on this
machine, in a temporary folder that stands for the image's root (``/opt/venv``, ``/opt/build``,
``/tmp/wheels`` and the ``WORKDIR`` are mapped into it), with this Python in place of the base
image's. What the runtime stage copies, ``/opt/venv``, is then measured: each installed
distribution (the files its RECORD lists, and their ``__pycache__``), the rest of the venv, the
total. The base image is not built (no Docker here): its size is the base image's own.

``--dockerfile`` measures another Dockerfile, e.g. the one before a change:
``git show HEAD~1:Dockerfile > /tmp/Dockerfile.before && python -m bench.image_size --dockerfile
/tmp/Dockerfile.before``. Needs the package indexes pip uses (the lock's hashes are checked).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import pathlib
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

ROOT = pathlib.Path(__file__).resolve().parents[1]
MAPPED = ("/opt/venv", "/opt/build", "/tmp/wheels")  # the image's paths the builder stage writes
MB = 1024 * 1024


def instructions(dockerfile: str) -> Iterator[tuple[str, str]]:
    """(instruction, arguments) of each line, continuation lines joined and comment lines dropped."""
    pending = ""
    for raw in dockerfile.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        whole, pending = pending + line, ""
        keyword, _, rest = whole.partition(" ")
        yield keyword.upper(), rest.strip()


def builder_stage(dockerfile: str) -> list[tuple[str, str]]:
    """The instructions of the first stage, the one the runtime stage copies /opt/venv from."""
    stages: list[list[tuple[str, str]]] = []
    for keyword, rest in instructions(dockerfile):
        if keyword == "FROM":
            stages.append([])
        elif stages:
            stages[-1].append((keyword, rest))
    if len(stages) < 2:
        raise SystemExit("the Dockerfile has no builder stage (FROM ... AS builder, then the runtime FROM)")
    return stages[0]


def build(dockerfile: str, root: pathlib.Path) -> pathlib.Path:
    """Run the builder stage with the image's paths under ``root``; the path of its /opt/venv."""
    workdir = root / "src"
    env = {**os.environ, "PATH": f"{root / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    env.pop("VIRTUAL_ENV", None)
    (root / "bin").mkdir(parents=True)
    # `python` is the base image's interpreter: this one's base, not the venv this script may run in.
    (root / "bin" / "python").symlink_to(getattr(sys, "_base_executable", sys.executable))

    def mapped(text: str) -> str:
        for path in MAPPED:
            text = text.replace(path, str(root / path.lstrip("/")))
        return text

    for keyword, rest in builder_stage(dockerfile):
        if keyword == "WORKDIR":
            workdir = root / rest.lstrip("/")
            workdir.mkdir(parents=True, exist_ok=True)
        elif keyword == "ENV":
            words = shlex.split(rest)
            env.update(word.partition("=")[::2] for word in words if "=" in word)
        elif keyword == "COPY":
            *sources, target = shlex.split(rest)
            destination = workdir / target
            for source in sources:
                path = ROOT / source
                if path.is_dir():  # as Docker does: the folder's contents, not the folder
                    shutil.copytree(path, destination, dirs_exist_ok=True)
                else:
                    destination.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(path, destination)
        elif keyword == "RUN":
            print(f"RUN {rest[:100]}{'…' if len(rest) > 100 else ''}", file=sys.stderr)
            subprocess.run(["sh", "-ec", mapped(rest)], cwd=workdir, env=env, check=True)
    return root / "opt" / "venv"


def size_of(path: pathlib.Path) -> int:
    return path.lstat().st_size if path.is_file() or path.is_symlink() else 0


def distributions(venv: pathlib.Path) -> dict[str, int]:
    """Bytes on disk of each distribution in the venv: its RECORD's files and their compiled bytecode."""
    [site] = venv.glob("lib/python3.*/site-packages")
    sizes: dict[str, int] = {}
    for record in site.glob("*.dist-info/RECORD"):
        name = record.parent.name.split("-", 1)[0]
        files: set[pathlib.Path] = set()
        with record.open(newline="") as rows:
            for row in csv.reader(rows):
                path = (site / row[0]).resolve() if row else None
                if path is None or not path.exists():
                    continue
                files.add(path)
                if path.suffix == ".py":  # pip compiles each module; older pips leave it out of RECORD
                    files.update(path.parent.glob(f"__pycache__/{path.stem}.*.pyc"))
        sizes[name] = sum(size_of(path) for path in files)
    return sizes


def total(path: pathlib.Path) -> int:
    return sum(size_of(p) for p in path.rglob("*"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dockerfile", type=pathlib.Path, default=ROOT / "Dockerfile")
    parser.add_argument("--top", type=int, default=20, help="distributions listed one by one (default 20)")
    parser.add_argument("--json", type=pathlib.Path, help="also write the figures here")
    args = parser.parse_args(argv)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="image-size-") as folder:
        venv = build(args.dockerfile.read_text(), pathlib.Path(folder))
        sizes = distributions(venv)
        whole = total(venv)
    listed = sorted(sizes.items(), key=lambda item: -item[1])
    print(f"/opt/venv of {args.dockerfile} (built in {time.monotonic() - started:.0f} s):")
    for name, size in listed[: args.top]:
        print(f"  {name:<42} {size / MB:7.1f} MB")
    rest = sum(size for _, size in listed[args.top :])
    print(f"  {f'{len(listed) - args.top} other distributions':<42} {rest / MB:7.1f} MB")
    print(f"  {'the venv itself (bin, pyvenv.cfg, ...)':<42} {(whole - sum(sizes.values())) / MB:7.1f} MB")
    print(f"  {'total':<42} {whole / MB:7.1f} MB  ({len(listed)} distributions)")
    if args.json:
        args.json.write_text(json.dumps({"total_bytes": whole, "distributions": dict(listed)}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
