"""What the plugin added to the adapters: a log's lines keep their blank ones; kubectl's default namespace."""

from __future__ import annotations

import pathlib

import pytest
import yaml

from asynctask_operator.adapters import kubeconfig
from asynctask_operator.adapters.watchstream import lines


class Body:
    """A streamed response body that arrives in the given chunks."""

    def __init__(self, *chunks: bytes) -> None:
        self.chunks = list(chunks)

    def read1(self, size: int) -> bytes:
        return self.chunks.pop(0) if self.chunks else b""


@pytest.mark.parametrize(
    ("blank", "expected"),
    [(False, [b"one", b"two", b"three"]), (True, [b"one", b"", b"two", b"three"])],
)
def test_a_log_keeps_its_blank_lines_a_watch_does_not(blank: bool, expected: list[bytes]) -> None:
    assert list(lines(Body(b"one\n\ntw", b"o\nthree"), blank_lines=blank)) == expected


def write(path: pathlib.Path, contexts: dict[str, str | None], current: str) -> None:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
                "users": [{"name": "u", "user": {}}],
                "contexts": [
                    {"name": n, "context": {"cluster": "c", "user": "u", **({"namespace": ns} if ns else {})}}
                    for n, ns in contexts.items()
                ],
                "current-context": current,
            }
        )
    )


@pytest.mark.parametrize(
    ("context", "expected"),
    [(None, "media"), ("other", "reports"), ("bare", "default")],
)
def test_the_default_namespace_is_the_contexts(tmp_path: pathlib.Path, context: str | None, expected: str) -> None:
    path = tmp_path / "kubeconfig"
    write(path, {"main": "media", "other": "reports", "bare": None}, "main")
    assert kubeconfig.default_namespace(str(path), context) == expected


def test_without_a_kubeconfig_the_namespace_is_default(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kubeconfig, "SERVICE_ACCOUNT_NAMESPACE", str(tmp_path / "none"))
    assert kubeconfig.default_namespace(str(tmp_path / "missing"), None) == "default"
    (tmp_path / "ns").write_text("jobs\n")
    monkeypatch.setattr(kubeconfig, "SERVICE_ACCOUNT_NAMESPACE", str(tmp_path / "ns"))
    assert kubeconfig.default_namespace(str(tmp_path / "missing"), None) == "jobs"
