"""Alembic's environment for the archive: run on the connection :mod:`..database` hands over.

There is no alembic.ini: ``asynctask-archive migrate`` (and the recorder at start) calls
:func:`asynctask_operator.archive.database.migrate`, which passes an open connection in
``config.attributes["connection"]``. To write a new revision, copy the last one in ``versions/``
(one reviewed revision per schema change; ``alembic`` can draft one against a scratch database
with ``target_metadata`` below, which is then read and edited by hand, never used blind).
"""

from __future__ import annotations

from alembic import context

from asynctask_operator.archive.schema import VERSION_TABLE, metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run the archive's migrations with `asynctask-archive migrate`, which passes a connection")

context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=VERSION_TABLE,
    render_as_batch=True,  # SQLite alters a table by copying it: a drafted revision does it that way
    transaction_per_migration=True,
)
with context.begin_transaction():
    context.run_migrations()
