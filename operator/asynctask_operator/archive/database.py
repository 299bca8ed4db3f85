"""The archive's database: an async engine from a DSN, and its schema brought to the current revision.

PostgreSQL through asyncpg (``postgresql://…``, ``postgresql+asyncpg://…``) or SQLite through
aiosqlite (``sqlite:///path``, the embedded default ``sqlite:///asynctask-archive.db``); ADR 0024 says
why these. The DSN's password is never logged (:func:`safe_dsn`).

Migrations are Alembic's, shipped in the package (``archive/migrations``), one reviewed revision per
schema change. :func:`migrate` upgrades to the newest (``asynctask-archive migrate``, and the recorder
at start); :func:`revision` reads where a database stands.
"""

from __future__ import annotations

import contextlib
import pathlib
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.engine.url import URL
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from asynctask_operator.archive.schema import VERSION_TABLE

DEFAULT_DSN = "sqlite:///asynctask-archive.db"
MIGRATIONS = pathlib.Path(__file__).with_name("migrations")


class BadDsn(ValueError):
    """A DSN of a database the archive cannot use."""


def url_of(dsn: str) -> URL:
    """The SQLAlchemy URL of a DSN, with the archive's async driver."""
    try:
        url = make_url(dsn.strip())
    except Exception as exc:  # sqlalchemy.exc.ArgumentError, and worse for odd text
        raise BadDsn(f"not a database URL: {safe_text(dsn)!r} ({type(exc).__name__})") from None
    backend = url.get_backend_name()
    if backend in ("postgresql", "postgres"):
        return url.set(drivername="postgresql+asyncpg")
    if backend == "sqlite":
        return url.set(drivername="sqlite+aiosqlite")
    raise BadDsn(f"the archive stores into PostgreSQL or SQLite, not {backend!r} (dsn {safe_dsn(dsn)})")


def safe_dsn(dsn: str) -> str:
    """The DSN as it may be logged: without its password."""
    try:
        return make_url(dsn.strip()).render_as_string(hide_password=True)
    except Exception:
        return "<unreadable DSN>"


def safe_text(dsn: str) -> str:
    return dsn.split("@", 1)[-1][:100] if "@" in dsn else dsn[:100]


def is_sqlite(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "sqlite"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """Readers beside the one writer (WAL), and a wait rather than "database is locked" at once."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def engine_of(dsn: str = DEFAULT_DSN, *, pool_size: int = 5, statement_timeout_ms: int | None = 30_000) -> AsyncEngine:
    """An engine over the DSN's database. PostgreSQL's statements are cut after ``statement_timeout_ms``
    (a read that would take longer answers an error, not a hung request); connections are checked
    before use, so a database that restarted is reconnected to, not failed on."""
    url = url_of(dsn)
    if url.get_backend_name() == "sqlite":
        database = url.database or ""
        if database and database != ":memory:":
            with contextlib.suppress(OSError):  # if it cannot be made, connecting says why (and is retried)
                pathlib.Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, pool_pre_ping=True)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    # JIT compiles a plan's expressions once its cost is high enough: for the archive's statements,
    # which read an index range, it costs more time than it saves. The statistics sort a window's
    # durations: 32 MB sorts 30 days of a busy namespace (80,000 tasks) in memory, not on disk.
    settings = {"jit": "off", "work_mem": "32MB"}
    if statement_timeout_ms:
        settings["statement_timeout"] = str(statement_timeout_ms)
    connect_args: dict[str, Any] = {"server_settings": settings}
    connect_args["timeout"] = 10  # seconds to connect: a database that is down fails fast, and is retried
    return create_async_engine(
        url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True, connect_args=connect_args
    )


def _config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


async def migrate(engine: AsyncEngine, target: str = "head") -> None:
    """Upgrade the schema to ``target`` (the newest revision by default); nothing when it is there."""

    def upgrade(connection: Connection) -> None:
        command.upgrade(_config(connection), target)

    async with engine.begin() as conn:
        await conn.run_sync(upgrade)


async def downgrade(engine: AsyncEngine, target: str) -> None:
    """Downgrade the schema to ``target`` (the migration tests step back and forth with it)."""

    def down(connection: Connection) -> None:
        command.downgrade(_config(connection), target)

    async with engine.begin() as conn:
        await conn.run_sync(down)


async def revision(engine: AsyncEngine) -> str | None:
    """The revision the database's schema is at; None for a database never migrated."""

    def read(connection: Connection) -> str | None:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        return context.get_current_revision()

    async with engine.connect() as conn:
        return await conn.run_sync(read)
