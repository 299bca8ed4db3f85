"""``asynctask-archive``'s flags: no flags work on one machine (SQLite in the working directory), the DSN
comes from a flag, a file (a mounted Secret) or the environment, and each flag reaches its setting."""

from __future__ import annotations

import argparse
import pathlib

import pytest

from asynctask_operator.archive import cli
from asynctask_operator.archive.database import BadDsn, safe_dsn, url_of
from asynctask_operator.archive.settings import ArchiveSettings


@pytest.fixture(autouse=True)
def no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(cli.DSN_ENV, raising=False)
    monkeypatch.delenv("POD_NAMESPACE", raising=False)


def settings(*argv: str) -> ArchiveSettings:
    return cli.settings_of(cli.parser().parse_args(list(argv)))


def test_no_flags_record_into_sqlite_here() -> None:
    assert settings() == ArchiveSettings()
    assert settings().dsn == "sqlite:///asynctask-archive.db" and settings().retention_seconds == 90 * 86400


def test_the_dsn_from_the_environment_a_file_or_the_flag(
    monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path
) -> None:
    monkeypatch.setenv(cli.DSN_ENV, "postgresql://env@db/archive")
    assert settings().dsn == "postgresql://env@db/archive"
    secret = tmp_path / "dsn"
    secret.write_text("postgresql://file:pw@db/archive\n")
    assert settings("--dsn-file", str(secret)).dsn == "postgresql://file:pw@db/archive"
    assert settings("--dsn", "sqlite:///x.db").dsn == "sqlite:///x.db"
    with pytest.raises(SystemExit, match="--dsn-file"):
        settings("--dsn-file", str(tmp_path / "missing"))
    with pytest.raises(SystemExit):
        cli.parser().parse_args(["--dsn", "a", "--dsn-file", "b"])  # one or the other


@pytest.mark.parametrize("dsn", ["mysql://a@b/c", "not a url", "mongodb://x"])
def test_a_database_the_archive_cannot_use_is_refused_naming_the_flag(dsn: str) -> None:
    with pytest.raises(SystemExit, match="--dsn"):
        settings("--dsn", dsn)


def test_urls_get_the_async_driver_and_never_show_the_password() -> None:
    assert url_of("postgresql://u:pw@h/db").drivername == "postgresql+asyncpg"
    assert url_of("postgres://u@h/db").drivername == "postgresql+asyncpg"
    assert url_of("sqlite:///a.db").drivername == "sqlite+aiosqlite"
    assert "pw" not in safe_dsn("postgresql://u:pw@h/db") and "***" in safe_dsn("postgresql://u:pw@h/db")
    with pytest.raises(BadDsn) as refused:
        url_of("oracle://u:topsecret@h/db")
    assert "topsecret" not in str(refused.value)


@pytest.mark.parametrize(
    ("text", "seconds"), [("90d", 90 * 86400.0), ("12h", 43200.0), ("30m", 1800.0), ("45s", 45.0), ("3600", 3600.0),
                          ("1w", 604800.0), ("0", 0.0), ("1.5h", 5400.0)],
)  # fmt: skip
def test_durations(text: str, seconds: float) -> None:
    assert cli.duration(text) == seconds


@pytest.mark.parametrize("text", ["ninety", "-1d", "1y", "", "d"])
def test_a_duration_that_is_not_one_is_refused(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        cli.duration(text)


def test_every_flag_reaches_its_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POD_NAMESPACE", "asynctask-system")
    got = settings(
        "--dsn", "postgresql://a@b/c", "-n", "x", "--namespace", "y", "--kubeconfig", "/k", "--context", "c",
        "--batch-size", "50", "--batch-latency", "0.1", "--max-waiting", "9", "--max-backoff", "5", "--log-limit", "10",
        "--log-concurrency", "2", "--retention-interval", "60", "--retention-batch", "10", "--http-port", "0",
        "--lease-name", "l", "--lease-duration", "30", "--renew-deadline", "20", "--retry-period", "3", "--no-migrate",
        "--record-phases", "--retention", "30d", "--retention-for", "audit=365d", "--leader-elect",
    )  # fmt: skip
    assert got == ArchiveSettings(
        dsn="postgresql://a@b/c", namespaces=("x", "y"), kubeconfig="/k", context="c", batch_size=50,
        batch_latency_seconds=0.1, max_waiting=9, max_backoff_seconds=5.0, log_limit_bytes=10, log_concurrency=2,
        retention_interval_seconds=60.0, retention_batch=10, http_port=0, lease_name="l", lease_seconds=30,
        renew_deadline=20.0, retry_period=3.0, migrate=False, record_phases=True, retention_seconds=30 * 86400.0,
        retention_overrides=(("audit", 365 * 86400.0),), leader_elect=True, lease_namespace="asynctask-system",
    )  # fmt: skip


def test_lease_timings_must_be_ordered() -> None:
    with pytest.raises(SystemExit, match="--retry-period < --renew-deadline < --lease-duration"):
        settings("--renew-deadline", "20")


def test_every_flag_has_help() -> None:
    parser = cli.parser()
    assert all(action.help for action in parser._actions)
    parser.format_help()  # a stray % would raise here


async def test_migrate_alone(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    dsn = f"sqlite:///{tmp_path / 'a.db'}"
    assert await cli._migrate_only(dsn) == 0
    assert "schema at revision " in capsys.readouterr().out and (tmp_path / "a.db").exists()
