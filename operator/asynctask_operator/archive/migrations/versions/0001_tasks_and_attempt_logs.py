"""The first schema: tasks (one row per task uid) and attempt_logs (one per attempt).

Revision ID: 0001
Revises:
Create Date: 2026-05-20

Written by hand to match archive/schema.py (tests/unit/test_archive_migrations.py compares what each
revision leaves with the schema module): every index is one a query of archive/reader.py uses.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

Time = sa.Float(precision=53)


def upgrade() -> None:
    op.create_table(
        "tasks",
        sa.Column("uid", sa.String(), nullable=False),
        sa.Column("namespace", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("type", sa.String(), nullable=False),
        sa.Column("queue", sa.String(), nullable=False),
        sa.Column("phase", sa.String(), nullable=False),
        sa.Column("reason", sa.String(), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("priority", sa.Integer(), nullable=True),
        sa.Column("labels", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("submitted_by", sa.String(), nullable=True),
        sa.Column("trace_id", sa.String(), nullable=True),
        sa.Column("created", Time, nullable=False),
        sa.Column("queued", Time, nullable=True),
        sa.Column("started", Time, nullable=True,
                  comment="the first attempt's start (what the statistics count the queue wait to)"),
        sa.Column("finished", Time, nullable=True),
        sa.Column("duration_seconds", Time, nullable=True),
        sa.Column("queue_wait_seconds", Time, nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("wire", sa.Text(), nullable=False,
                  comment="the whole object as JSON (metadata without managedFields)"),
        sa.Column("revision", sa.BigInteger(), nullable=False,
                  comment="resourceVersion as a number; 0 where it is none"),
        sa.Column("archived_at", Time, nullable=False),
        sa.PrimaryKeyConstraint("uid", name="pk_tasks"),
    )  # fmt: skip
    op.create_index(
        "ix_tasks_history",
        "tasks",
        ["namespace", "created", "uid"],
        postgresql_include=["phase", "type", "queue", "duration_seconds", "queue_wait_seconds", "reason"],
    )
    op.create_index("ix_tasks_phase", "tasks", ["namespace", "phase", "created", "uid"])
    op.create_index(
        "ix_tasks_created",
        "tasks",
        ["created", "uid"],
        postgresql_include=["namespace", "phase", "type", "queue", "duration_seconds", "queue_wait_seconds", "reason"],
    )
    op.create_index("ix_tasks_finished", "tasks", ["namespace", "finished"])
    op.create_index("ix_tasks_name", "tasks", ["namespace", "name", "created"])
    op.create_table(
        "attempt_logs",
        sa.Column("uid", sa.String(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("pod", sa.String(), nullable=True),
        sa.Column("container", sa.String(), nullable=True),
        sa.Column("captured_at", Time, nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False, comment="bytes of the log as read (before the cut)"),
        sa.Column("truncated", sa.Boolean(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=True, comment="the last bytes of the log, zlib-compressed"),
        sa.Column("error", sa.Text(), nullable=True,
                  comment="why there is no log (the pod was gone, the container never ran)"),
        sa.PrimaryKeyConstraint("uid", "attempt", name="pk_attempt_logs"),
    )  # fmt: skip


def downgrade() -> None:
    op.drop_table("attempt_logs")
    op.drop_table("tasks")
