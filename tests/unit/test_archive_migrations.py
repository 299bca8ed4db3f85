"""The archive's migrations on both databases: each revision upgrades from the one before with rows in
place, steps back, and the newest leaves exactly the schema archive/schema.py describes.

A new revision plugs in here: give ``ROWS_AT`` a writer of rows as the previous revision stores them
(if its tables change) and ``READ_AT`` what the new one must still read of them.
"""

from __future__ import annotations

import itertools
import pathlib
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from asynctask_operator.archive import ArchiveReader
from asynctask_operator.archive.database import MIGRATIONS, downgrade, engine_of, migrate, revision
from asynctask_operator.archive.schema import VERSION_TABLE, metadata
from asynctask_operator.testing.postgres import PostgresServer
from tests.unit.archive_builders import finished, row

BASE = "base"


def chain() -> list[str]:
    """The revisions, oldest first."""
    script = ScriptDirectory(str(MIGRATIONS))
    return [BASE] + [r.revision for r in reversed(list(script.walk_revisions()))]


async def rows_at_0001(conn: AsyncConnection) -> None:
    """Rows as revision 0001 stores them: written through its own columns, not today's code."""
    values = row(finished("kept", labels={"app": "web"}, result={"n": 1})).values()
    columns = ", ".join(values)
    await conn.execute(text(f"INSERT INTO tasks ({columns}) VALUES ({', '.join(':' + c for c in values)})"),
                       {**values, "labels": '{"app": "web"}'})  # fmt: skip
    await conn.execute(
        text("INSERT INTO attempt_logs (uid, attempt, captured_at, size, truncated, error) "
             "VALUES ('uid-team-a-kept', 1, 0, 0, false, 'the pod is gone')")
    )  # fmt: skip


async def read_after(engine: AsyncEngine) -> None:
    """What every later revision must still read of the rows of an earlier one."""
    reader = ArchiveReader(engine)
    task = await reader.get("uid-team-a-kept")
    assert task is not None and task.labels == {"app": "web"} and task.object["status"]["result"] == {"n": 1}
    log = await reader.log("uid-team-a-kept", 1)
    assert log is not None and log.error == "the pod is gone"


ROWS_AT: dict[str, Callable[[AsyncConnection], Awaitable[None]]] = {"0001": rows_at_0001}
READ_AT: dict[str, Callable[[AsyncEngine], Awaitable[None]]] = {}


@pytest.fixture(params=["sqlite", "postgresql"])
async def empty_engine(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> Any:
    if request.param == "sqlite":
        engine = engine_of(f"sqlite:///{tmp_path / 'empty.db'}")
    else:
        server: PostgresServer = request.getfixturevalue("postgres_server")
        name = f"migrations_{abs(hash(request.node.nodeid)) % 10**8}"
        server.create_database(name)
        engine = engine_of(server.dsn(name))
    yield engine
    await engine.dispose()


def test_the_revisions_are_one_chain() -> None:
    script = ScriptDirectory(str(MIGRATIONS))
    assert len(script.get_heads()) == 1, "two heads: a revision's down_revision names the wrong one"
    assert chain()[:2] == [BASE, "0001"]


async def test_each_revision_upgrades_from_the_one_before_with_rows_in_place(empty_engine: AsyncEngine) -> None:
    revisions = chain()
    for before, after in itertools.pairwise(revisions):
        if before != BASE:
            await migrate(empty_engine, before)
            seed = ROWS_AT.get(before)
            if seed is not None:
                async with empty_engine.begin() as conn:
                    await conn.execute(text("DELETE FROM attempt_logs"))
                    await conn.execute(text("DELETE FROM tasks"))
                    await seed(conn)
        await migrate(empty_engine, after)
        assert await revision(empty_engine) == after
        if before != BASE and before in ROWS_AT:
            await (READ_AT.get(after) or read_after)(empty_engine)
    await downgrade(empty_engine, BASE)  # and every step back
    assert await revision(empty_engine) is None
    await migrate(empty_engine)
    assert await revision(empty_engine) == revisions[-1]


async def test_the_newest_revision_is_the_schema_module(empty_engine: AsyncEngine) -> None:
    await migrate(empty_engine)

    def differences(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        return list(compare_metadata(context, metadata))

    async with empty_engine.connect() as conn:
        found = await conn.run_sync(differences)
    assert found == []


async def test_migrating_again_changes_nothing(empty_engine: AsyncEngine) -> None:
    await migrate(empty_engine)
    await migrate(empty_engine)
    assert await revision(empty_engine) == chain()[-1]
