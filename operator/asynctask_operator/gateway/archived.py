"""The gateway's reads of the archive: tasks past their TTL, their attempt logs, long-window statistics.

The archive (docs/archive.md) is read through its reader (``asynctask_operator.archive``), opened
when the gateway is given a database (``--archive-dsn``); without one, the gateway serves live
tasks only and the history routes answer 404. An archived task is read through the same
:class:`~asynctask_operator.core.views.TaskView` as a live one, from the wire form the archive
kept, so every figure is the same; its answer says ``archived: true``.

Reads are authorized exactly as live ones (the route's SubjectAccessReview in the task's namespace):
a caller who may not read namespace X reads none of X's history. The database being down is a 503
for these routes only; live reads go on.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, TypeVar

from asynctask_operator.core.timestamps import stamp
from asynctask_operator.core.views import TaskView
from asynctask_operator.gateway.access import Gateway
from asynctask_operator.gateway.answers import task_answer
from asynctask_operator.gateway.problems import Problem

if TYPE_CHECKING:
    from asynctask_operator.archive import ArchivedTask, ArchiveReader

T = TypeVar("T")
RETRY_AFTER = "5"


def reader_of(gateway: Gateway) -> ArchiveReader:
    if gateway.archive is None:
        raise Problem(404, "this gateway reads no archive: history past the TTL needs --archive-dsn (docs/archive.md)")
    reader: ArchiveReader = gateway.archive
    return reader


async def asked(call: Awaitable[T]) -> T:
    """The answer of one read of the archive; its errors as problems: a parameter it refuses is a 400
    naming it, a database that does not answer a 503 with Retry-After (live reads go on)."""
    from asynctask_operator.archive import ArchiveUnavailable, BadQuery

    try:
        return await call
    except BadQuery as error:
        raise Problem(400, str(error)) from None
    except ArchiveUnavailable as error:
        raise Problem(503, f"the archive is unavailable: {error}", headers={"Retry-After": RETRY_AFTER}) from None


async def archived_task(gateway: Gateway, ns: str, name: str, uid: str | None = None) -> ArchivedTask:
    """The archived task of that name in that namespace: by ``uid`` exactly, else the newest (names are reused
    after a deletion); 404 when the archive holds none."""
    reader = reader_of(gateway)
    found = await asked(reader.get(uid)) if uid else await asked(reader.latest(ns, name))
    if found is None or found.namespace != ns or found.name != name:
        which = f" with uid {uid!r}" if uid else ""
        raise Problem(404, f"task {name!r}{which} not found in namespace {ns!r}, live or archived")
    return found


def archived_answer(task: ArchivedTask) -> dict[str, Any]:
    """An archived task's summary: a live one's, from the wire form the archive kept, marked archived."""
    obj = task.object
    answer = task_answer(TaskView.of(obj), obj)
    answer["archived"] = True
    answer["archivedTime"] = stamp(dt.datetime.fromtimestamp(task.archived_at, dt.UTC))
    return answer
