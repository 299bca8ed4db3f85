"""The archive: finished AsyncTasks, their attempt logs and statistics, kept in a SQL database past their TTL.

Its own layer, beside the gateway and the kubectl plugin: it uses the core and the adapters, and
nothing of the controllers or the front doors (pyproject's import-linter contracts). Modules::

    schema      the two tables and their indexes (the migrations/ create the same, one revision per change)
    database    an async engine from a DSN (asyncpg, aiosqlite); migrate() to the newest revision
    records     a task's wire form -> a row (pure)
    writes      newer-wins upserts, attempt logs
    history     filters and keyset pagination (bound parameters only)
    figures     the live statistics' figures, in SQL
    reader      ArchiveReader: what the front doors call
    capture     an attempt's pod log: its last bytes, compressed
    marks       the asynctask.dev/archived patch and the Warning Event (bodies)
    backlog, sink, recorder, retention, process, cli, settings, metrics   the asynctask-archive process

Reading (what the gateway, the console and the plugin build on)::

    from asynctask_operator.archive import ArchiveReader, HistoryQuery, Scope, engine_of

    reader = ArchiveReader(engine_of("postgresql://archive@db/archive"))   # or sqlite:///archive.db

    await reader.get(uid)                      -> ArchivedTask | None
    await reader.latest(namespace, name)       -> ArchivedTask | None    the newest task of that name
    await reader.page(HistoryQuery(            -> HistoryPage(items: list[ArchivedTask], next_cursor: str | None)
        namespaces=("team-a",),                   None: all; a tuple: those the caller may read
        type=None, queue=None, phase="Failed", reason=None,
        label_selector="app=web,!canary",         Kubernetes' equality-based selectors
        since=None, until=None,                   creation time, epoch seconds
        q="nightly",                              a substring of the name
        limit=50, cursor=None))                   cursor: the previous page's next_cursor
    await reader.logs(uid)                     -> list[AttemptLog]   which attempts have a log (no content)
    await reader.log(uid, attempt)             -> AttemptLog | None  .content (bytes), .text, .truncated, .error
    await reader.figures(Scope(namespaces, since, until), group_by=None | "type" | "queue")
                                               -> dict[str, core.statistics.Figures]   as summarize() gives
    await reader.window(scope)                 -> core.statistics.Window               as window_of() gives
    await reader.statistics(scope, hours=168, days=90)
                                               -> Statistics(source="archive", window, overall, by_type,
                                                  by_queue, finished_per_hour, finished_per_day, failures_by_reason)

``ArchivedTask`` has the counted columns (uid, namespace, name, type, queue, phase, reason, message,
priority, labels, submitted_by, trace_id, created, queued, started, finished, duration_seconds,
queue_wait_seconds, attempts, revision, archived_at) and ``.object``, the task's wire form as it was
last seen (read it with ``core.wire`` like a live task). Errors: ``BadQuery`` (a parameter: 400,
the message names it) and ``ArchiveUnavailable`` (the database did not answer: 503).
"""

from asynctask_operator.archive.database import engine_of, migrate
from asynctask_operator.archive.figures import Scope, Statistics
from asynctask_operator.archive.history import BadQuery, HistoryQuery
from asynctask_operator.archive.reader import ArchivedTask, ArchiveReader, ArchiveUnavailable, AttemptLog, HistoryPage

__all__ = [
    "ArchiveReader",
    "ArchiveUnavailable",
    "ArchivedTask",
    "AttemptLog",
    "BadQuery",
    "HistoryPage",
    "HistoryQuery",
    "Scope",
    "Statistics",
    "engine_of",
    "migrate",
]
