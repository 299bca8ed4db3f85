"""The archive's databases for tests: a real PostgreSQL (one server per test process) and SQLite.

``archive_engine`` is parametrized over both: every test that takes it runs against each, with an
empty, migrated database. PostgreSQL's is one database per test process, emptied (TRUNCATE) before
each test that takes ``archive_engine``; SQLite's a copy of a file migrated once. Without PostgreSQL's programs (or a user to run
them as) its half is skipped, saying why (``.ci/run`` installs Debian's ``postgresql``).

    async def test_x(archive_engine: AsyncEngine) -> None: ...

``postgres_server`` is the session's server itself, for tests that stop and start it, or make
databases of their own (the migration tests).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import pathlib
import shutil
from collections.abc import AsyncIterator, Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from asynctask_operator.archive.database import engine_of, migrate
from asynctask_operator.testing.postgres import PostgresServer, find_problem

SHARED_DB = "archive_test"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    problem = find_problem()
    if problem is not None:
        pytest.skip(f"no PostgreSQL: {problem}")
    server = PostgresServer.find()
    assert server is not None
    server.start()
    try:
        server.create_database(SHARED_DB)
        _migrated(server.dsn(SHARED_DB))
        yield server
    finally:
        server.remove()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    path = tmp_path_factory.mktemp("archive") / "template.db"
    _migrated(f"sqlite:///{path}")
    return path


def _migrated(dsn: str) -> None:
    """Migrate, in a thread of its own: a session fixture may first be asked for inside a test's event loop."""

    async def run() -> None:
        engine = engine_of(dsn)
        try:
            await migrate(engine)
        finally:
            await engine.dispose()

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, run()).result()


@pytest.fixture(params=["sqlite", "postgresql"])
def archive_dsn(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> str:
    """The DSN of an empty, migrated archive database of each kind."""
    if request.param == "sqlite":
        path = tmp_path / "archive.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    server: PostgresServer = request.getfixturevalue("postgres_server")
    if not server.running():  # a test that stopped it failed before starting it again
        server.start()
    return server.dsn(SHARED_DB)


@pytest.fixture()
async def archive_engine(archive_dsn: str) -> AsyncIterator[AsyncEngine]:
    engine = engine_of(archive_dsn)
    try:
        if engine.dialect.name == "postgresql":  # the process's one database, emptied for this test
            async with engine.begin() as conn:
                await conn.execute(text("TRUNCATE tasks, attempt_logs"))
        yield engine
    finally:
        await engine.dispose()


async def count(engine: AsyncEngine, table: str = "tasks") -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar() or 0)
