"""The archiver's settings: one dataclass, a docstring per field (``asynctask-archive --help`` is made of them)."""

from __future__ import annotations

import dataclasses

from asynctask_operator.archive.database import DEFAULT_DSN


@dataclasses.dataclass(frozen=True)
class ArchiveSettings:
    dsn: str = dataclasses.field(default=DEFAULT_DSN, repr=False)
    """Database URL: postgresql://user:password@host:5432/db (asyncpg) or sqlite:///path/archive.db (aiosqlite).
    Never logged with its password."""

    namespaces: tuple[str, ...] = ()
    """Archive only these namespaces; empty means every namespace."""

    kubeconfig: str | None = None
    """Path of a kubeconfig; default: in-cluster credentials, else $KUBECONFIG or ~/.kube/config."""

    context: str | None = None
    """The kubeconfig context to use; default: its current context."""

    migrate: bool = True
    """Bring the database's schema to this version's at start; --no-migrate leaves it to
    ``asynctask-archive migrate`` (run by whoever may change the schema)."""

    batch_size: int = 200
    """Tasks written in one transaction at most."""

    batch_latency_seconds: float = 0.5
    """How long a task waits for others to fill its batch before it is written anyway."""

    max_waiting: int = 2000
    """Finished tasks held in memory while they wait to be written; more are listed again once these are
    written (memory stays bounded while the database is down)."""

    max_backoff_seconds: float = 30.0
    """Longest pause between tries while the database refuses or does not answer."""

    log_limit_bytes: int = 1024 * 1024
    """The last this many bytes of each attempt's pod log are kept (compressed); a longer log is cut at its start."""

    log_concurrency: int = 8
    """Pod logs read at once."""

    record_phases: bool = False
    """Write unfinished tasks too, each time their phase changes (one more row write per phase change);
    without it, a task is written when it finishes, or when it is deleted unfinished."""

    retention_seconds: float = 90 * 24 * 3600.0
    """Delete archived tasks (and their logs) created longer ago than this; 0 keeps them forever."""

    retention_overrides: tuple[tuple[str, float], ...] = ()
    """The retention of a namespace kept longer or shorter than ``retention_seconds`` (e.g. audit=365d)."""

    retention_interval_seconds: float = 600.0
    """How often the retention runs."""

    retention_batch: int = 1000
    """Rows deleted per statement: each a short transaction that locks only those rows."""

    http_port: int = 8081
    """Port of /healthz, /readyz and /metrics; 0 turns the server off."""

    leader_elect: bool = False
    """Hold a coordination.k8s.io Lease before recording, so that of several replicas one records."""

    lease_name: str = "asynctask-archive"
    """Name of the Lease (in ``lease_namespace``)."""

    lease_namespace: str = "default"
    """The archiver's own namespace: that of its Lease (the chart passes POD_NAMESPACE)."""

    lease_seconds: int = 15
    """How long a Lease is valid without renewal: a standby takes over at most this long after the leader dies."""

    renew_deadline: float = 10.0
    """A leader that could not renew for this long stops recording (before its Lease expires)."""

    retry_period: float = 2.0
    """How often the leader renews and a standby tries."""
