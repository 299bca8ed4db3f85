"""docs/design.md §4.5: the container image is slim, non-root and reproducible.

No Docker engine is needed: these read the Dockerfile, .dockerignore and the lock files.
What they cannot check (that the image builds and runs) is checked by building it.
"""

from __future__ import annotations

import pathlib
import re
import tomllib

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

ROOT = pathlib.Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
RELOCK = "run scripts/lock"


def pins(lock: str) -> dict[str, str]:
    """name -> exact version of each ``name==version`` line of a pip-compile lock."""
    found = re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", (ROOT / lock).read_text(), re.M)
    return {canonicalize_name(name): version for name, version in found}


def hashed_entries(lock: str) -> tuple[int, int]:
    text = (ROOT / lock).read_text()
    entries = re.split(r"\n(?=[A-Za-z0-9])", text)
    pinned = [e for e in entries if "==" in e.split("\n")[0]]
    return len(pinned), sum(1 for e in pinned if "--hash=sha256:" in e)


def test_the_lock_pins_every_runtime_dependency() -> None:
    """The dependencies, the operator's, the gateway's and the archive's extras, and the [otel] extra: the image
    ships the exporter (ADR 0020) and runs asynctask-archive too. Not the kubectl plugin's extra (ADR 0022): rich, and the pygments it brings,
    which httpx would then import in every process of the image."""
    locked = pins("requirements.lock")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    for line in extras["kubectl"]:
        assert canonicalize_name(Requirement(line).name) not in locked, f"the image ships the plugin's {line}: {RELOCK}"
    assert not {"pygments", "markdown-it-py"} & set(locked), RELOCK
    for line in project["dependencies"] + extras["operator"] + extras["gateway"] + extras["otel"] + extras["archive"]:
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{requirement.name} is a dependency but not in requirements.lock: {RELOCK}"
        assert requirement.specifier.contains(locked[name], prereleases=True), (
            f"requirements.lock pins {name}=={locked[name]}, outside {requirement.specifier}: {RELOCK}"
        )


def test_the_locks_are_hashed_and_exact() -> None:
    for lock in ("requirements.lock", "requirements-build.lock"):
        count, hashed = hashed_entries(lock)
        assert count and hashed == count, f"{lock}: every pin needs its sha256 hashes ({RELOCK})"
        text = (ROOT / lock).read_text()
        assert "--index-url" not in text and "--find-links" not in text, f"{lock} names a local index"
    assert {"pip", "setuptools", "wheel"} <= set(pins("requirements-build.lock"))
    assert not {"pip", "setuptools", "wheel"} & set(pins("requirements.lock")), "build tools are not runtime deps"


def test_the_base_image_is_an_exact_python_version() -> None:
    [image] = re.findall(r"^ARG PYTHON_IMAGE=(\S+)$", DOCKERFILE, re.M)
    match = re.fullmatch(r"python:(3\.\d+)\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?", image)
    assert match, f"{image}: use an exact python:X.Y.Z-slim-bookworm tag"
    requires = SpecifierSet(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"])
    assert requires.contains(f"{match.group(1)}.0"), f"the package does not support the image's Python {image}"
    assert f"with Python {match.group(1)}" in (ROOT / "requirements.lock").read_text(), (
        f"requirements.lock was resolved for another Python than the image's {match.group(1)}"
    )
    assert re.findall(r"^FROM (\S+)", DOCKERFILE, re.M) == ["${PYTHON_IMAGE}", "${PYTHON_IMAGE}"]


def test_the_image_runs_as_a_non_root_uid() -> None:
    runtime = DOCKERFILE.split("\nFROM ")[-1]
    assert re.search(r"^USER 10001:10001$", runtime, re.M), "the chart's runAsUser is 10001"
    assert 'ENTRYPOINT ["asynctask-operator"]' in runtime
    assert 'CMD ["run"]' in runtime
    assert "--require-hashes" in DOCKERFILE


def test_the_image_build_checks_the_trace_exporter_imports() -> None:
    assert "import opentelemetry.exporter.otlp.proto.http.trace_exporter" in DOCKERFILE


def test_dockerignore_lets_in_what_the_dockerfile_copies() -> None:
    allowed = {line[1:].rstrip("/") for line in (ROOT / ".dockerignore").read_text().splitlines() if line[:1] == "!"}
    copied = set()
    for line in re.findall(r"^COPY (?!--from)(.+)$", DOCKERFILE, re.M):
        copied |= {p.rstrip("/") for p in line.split()[:-1]}
    assert copied == allowed, f"COPY {sorted(copied)} but .dockerignore lets in {sorted(allowed)}"


def test_the_license_is_an_spdx_expression_with_its_file() -> None:
    """``project.license`` as a table is deprecated by setuptools (an error from 2027-02-18); the SPDX
    string needs setuptools 77, which the build requirements and the build lock must both allow."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    project = pyproject["project"]
    assert project["license"] == "Apache-2.0"
    assert project["license-files"] and all((ROOT / name).is_file() for name in project["license-files"])
    assert 'org.opencontainers.image.licenses="Apache-2.0"' in DOCKERFILE
    [setuptools] = [Requirement(r) for r in pyproject["build-system"]["requires"] if r.startswith("setuptools")]
    assert not setuptools.specifier.contains("76.1.0") and setuptools.specifier.contains("77.0.3")
    assert setuptools.specifier.contains(pins("requirements-build.lock")["setuptools"]), RELOCK
    assert "setuptools>=77" in (ROOT / "scripts" / "lock").read_text(), "scripts/lock would lock an older setuptools"


def builder_stage() -> str:
    return DOCKERFILE.split("\nFROM ")[1]


def test_the_unused_async_kubernetes_client_is_cut_from_the_image() -> None:
    """kubernetes/aio (63 MB) goes in the builder stage, before the runtime stage copies /opt/venv, in one step of
    its own (easy to revert), and nothing of ours imports it."""
    steps = [line for line in builder_stage().splitlines() if line.startswith("RUN ")]
    assert "RUN rm -r /opt/venv/lib/python3.*/site-packages/kubernetes/aio" in steps
    used = [
        path
        for path in (ROOT / "operator").rglob("*.py")
        if re.search(r"kubernetes[._]aio|kubernetes_asyncio|from kubernetes import aio", path.read_text())
    ]
    assert not used, f"{used} import kubernetes.aio: delete the Dockerfile step that removes it"


def test_the_image_size_bench_builds_what_the_dockerfile_builds() -> None:
    """bench/image_size.py runs the builder stage's own steps (no copy of them), the cuts included."""
    from bench.image_size import builder_stage as stage

    steps = stage(DOCKERFILE)
    runs = [rest for keyword, rest in steps if keyword == "RUN"]
    assert any("requirements.lock" in run for run in runs) and any("kubernetes/aio" in run for run in runs)
    assert ("WORKDIR", "/src") in steps
    assert all(keyword in {"ENV", "WORKDIR", "COPY", "RUN"} for keyword, _ in steps), steps
