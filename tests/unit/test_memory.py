"""memory.tune_malloc: glibc's thresholds set where glibc is, nothing done elsewhere (ADR 0012)."""

from __future__ import annotations

import pytest

from asynctask_operator import memory


def test_no_glibc_is_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_libc(name: str) -> None:
        raise AssertionError("libc must not be loaded without glibc")

    monkeypatch.setattr("ctypes.CDLL", no_libc)
    assert memory.tune_malloc({}, libc_version=None) is False
    assert memory.tune_malloc({}, libc_version="musl 1.2") is False


def test_a_threshold_in_the_environment_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_libc(name: str) -> None:
        raise AssertionError("the environment's setting must be left alone")

    monkeypatch.setattr("ctypes.CDLL", no_libc)
    for env in (
        {"MALLOC_TRIM_THRESHOLD_": "1048576"},
        {"MALLOC_MMAP_THRESHOLD_": "65536"},
        {"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=1048576"},
    ):
        assert memory.tune_malloc(env, libc_version="glibc 2.36") is False


def test_a_libc_that_cannot_be_loaded_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(name: str) -> None:
        raise OSError(name)

    monkeypatch.setattr("ctypes.CDLL", missing)
    assert memory.tune_malloc({}, libc_version="glibc 2.36") is False


@pytest.mark.skipif(not (memory.glibc_version() or "").startswith("glibc"), reason="needs glibc")
def test_with_glibc_the_thresholds_are_set() -> None:
    assert memory.tune_malloc({}) is True
    assert memory.tune_malloc({}) is True  # idempotent


def test_detection_does_not_raise() -> None:
    version = memory.glibc_version()
    assert version is None or isinstance(version, str)
    memory.tune_malloc()
