"""The archive's schema: its two tables and their indexes, in one place (the migrations create the same).

``tasks``: one row per task, keyed by its **uid** (names are reused after a deletion). The columns
the history and the statistics filter, sort and count on are columns of their own; ``wire`` keeps
the whole object (metadata without managedFields, spec, status: attempts, result, error, callback)
as JSON text, so a reader rebuilds the view of a live task from it. Times are epoch seconds (UTC)
in double precision: the same arithmetic and order in PostgreSQL and SQLite, and what the core's
statistics work in (``to_timestamp(created)`` in psql shows them as times). ``revision`` is the
object's resourceVersion as a number: a write replaces a row only with a newer revision.

``attempt_logs``: the end of each attempt's pod log (the last ``--log-limit`` bytes, zlib-compressed,
with the original size and whether it was cut), or why it could not be read.

Indexes, each for a query of :mod:`.reader` (EXPLAINed over a million rows, docs/archive.md):

- ``ix_tasks_history`` (namespace, created, uid): a namespace's history newest first (keyset), the
  statistics window; in PostgreSQL it includes the counted columns, so the statistics read the
  index alone.
- ``ix_tasks_phase`` (namespace, phase, created, uid): the history of one phase (Failed tasks).
- ``ix_tasks_created`` (created, uid): history across namespaces, retention, and (covering in
  PostgreSQL) the statistics of every namespace.
- ``ix_tasks_type`` (type, created) and ``ix_tasks_queue`` (queue, created), covering in PostgreSQL:
  the statistics of every namespace by type and by queue, one group at a time (a skip scan over
  the groups, each group's window a range of the index: no sort of the whole window, revision 0002).
- ``ix_tasks_finished`` (namespace, finished): the tasks finished per hour.
- ``ix_tasks_name`` (namespace, name, created): the latest task of a name.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.dialects.postgresql import JSONB

VERSION_TABLE = "asynctask_archive_version"
"""Alembic's table of the schema's revision (not ``alembic_version``: the database may be shared)."""

Time = Float(precision=53)
Labels = JSON().with_variant(JSONB(), "postgresql")

metadata = MetaData(
    naming_convention={"ix": "ix_%(column_0_label)s", "pk": "pk_%(table_name)s"},
)

tasks = Table(
    "tasks",
    metadata,
    Column("uid", String, primary_key=True),
    Column("namespace", String, nullable=False),
    Column("name", String, nullable=False),
    Column("type", String, nullable=False),
    Column("queue", String, nullable=False),
    Column("phase", String, nullable=False),
    Column("reason", String),
    Column("message", Text),
    Column("priority", Integer),
    Column("labels", Labels, nullable=False),
    Column("submitted_by", String),
    Column("trace_id", String),
    Column("created", Time, nullable=False),
    Column("queued", Time),
    Column("started", Time, comment="the first attempt's start (what the statistics count the queue wait to)"),
    Column("finished", Time),
    Column("duration_seconds", Time),
    Column("queue_wait_seconds", Time),
    Column("attempts", Integer, nullable=False),
    Column("wire", Text, nullable=False, comment="the whole object as JSON (metadata without managedFields)"),
    Column("revision", BigInteger, nullable=False, comment="resourceVersion as a number; 0 where it is none"),
    Column("archived_at", Time, nullable=False),
)

COUNTED = ("phase", "type", "queue", "duration_seconds", "queue_wait_seconds", "reason")
"""The columns the statistics read: included in the history index in PostgreSQL (an index-only scan)."""

Index(
    "ix_tasks_history",
    tasks.c.namespace,
    tasks.c.created,
    tasks.c.uid,
    postgresql_include=list(COUNTED),
)
Index("ix_tasks_phase", tasks.c.namespace, tasks.c.phase, tasks.c.created, tasks.c.uid)
Index("ix_tasks_created", tasks.c.created, tasks.c.uid, postgresql_include=["namespace", *COUNTED])
GROUPED = ("phase", "duration_seconds", "queue_wait_seconds")
"""The columns the statistics of one group read: included in the groups' indexes in PostgreSQL."""
Index("ix_tasks_type", tasks.c.type, tasks.c.created, postgresql_include=list(GROUPED))
Index("ix_tasks_queue", tasks.c.queue, tasks.c.created, postgresql_include=list(GROUPED))
Index("ix_tasks_finished", tasks.c.namespace, tasks.c.finished)
Index("ix_tasks_name", tasks.c.namespace, tasks.c.name, tasks.c.created)

attempt_logs = Table(
    "attempt_logs",
    metadata,
    Column("uid", String, primary_key=True),
    Column("attempt", Integer, primary_key=True),
    Column("pod", String),
    Column("container", String),
    Column("captured_at", Time, nullable=False),
    Column("size", BigInteger, nullable=False, comment="bytes of the log as read (before the cut)"),
    Column("truncated", Boolean, nullable=False),
    Column("content", LargeBinary, comment="the last bytes of the log, zlib-compressed"),
    Column("error", Text, comment="why there is no log (the pod was gone, the container never ran)"),
)
