"""What the archiver does with each task it sees: the decision (pure), and the reflector's sink around it.

:func:`wanted` decides from the task's copy alone (level-based: a replayed event, a listing after a
restart, or a second look decide the same):

- a finished task whose ``asynctask.dev/archived`` annotation names its finished state: nothing,
  it is archived (after a restart every such task is skipped without a database read);
- a finished task without that mark: write it, then mark it;
- a deleted task not archived in the state it was deleted in: write it from that last state (its
  DELETED event's object), with nothing to mark;
- an unfinished task, with ``record_phases``: write it when its phase is not the one last written
  (its row then shows it Pending or Running until it finishes).
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable

from asynctask_operator.archive.backlog import Backlog
from asynctask_operator.core.archiving import archived_in, mark_in
from asynctask_operator.core.wire import Key, Obj

logger = logging.getLogger(__name__)


class Want(enum.Enum):
    NOTHING = "nothing"
    WRITE_AND_MARK = "write and mark"
    WRITE = "write"


def wanted(obj: Obj, *, deleted: bool, record_phases: bool, last_phase: str | None) -> Want:
    """What to do about one copy of a task (see the module)."""
    if archived_in(obj):
        return Want.NOTHING
    if mark_in(obj) is not None:
        return Want.WRITE if deleted else Want.WRITE_AND_MARK
    if deleted:
        return Want.WRITE
    status: Obj = obj["status"] if isinstance(obj.get("status"), dict) else {}
    phase = str(status.get("phase") or "Pending")
    return Want.WRITE if record_phases and phase != last_phase else Want.NOTHING


def uid_of(obj: Obj) -> str | None:
    uid = (obj.get("metadata") or {}).get("uid")
    return uid if isinstance(uid, str) and uid else None


class TaskSink:
    """The AsyncTasks' :class:`~asynctask_operator.adapters.reflector.Sink`: the backlog of what to write."""

    def __init__(self, backlog: Backlog, monotonic: Callable[[], float], *, record_phases: bool = False) -> None:
        self.backlog = backlog
        self.monotonic = monotonic
        self.record_phases = record_phases
        self.phases: dict[str, str] = {}
        """The phase last offered of each unfinished task (with ``record_phases``)."""
        self.listings = 0  # listings completed: ready once there is one

    def mark(self) -> float:
        return self.monotonic()

    def listed(self, obj: Obj, since: float) -> None:
        self.take(obj, deleted=False)

    def listing_done(self, keys: set[Key], since: float, namespace: str | None) -> None:
        self.listings += 1

    def event(self, type_: str | None, obj: Obj) -> None:
        self.take(obj, deleted=type_ == "DELETED")

    def take(self, obj: Obj, *, deleted: bool) -> None:
        uid = uid_of(obj)
        if uid is None:
            meta = obj.get("metadata") or {}
            logger.warning(
                "an AsyncTask without a uid (%s/%s) cannot be archived", meta.get("namespace"), meta.get("name")
            )
            return
        want = wanted(obj, deleted=deleted, record_phases=self.record_phases, last_phase=self.phases.get(uid))
        if deleted or mark_in(obj) is not None:
            self.phases.pop(uid, None)
        if want is Want.NOTHING:
            if archived_in(obj):
                self.backlog.forget(uid)  # marked by an earlier run (or replica): nothing left to write
            return
        held = self.backlog.offer(uid, obj, mark=want is Want.WRITE_AND_MARK, now=self.monotonic(), deleted=deleted)
        if deleted and not held:
            meta = obj.get("metadata") or {}
            logger.error("AsyncTask %s/%s was deleted while %d tasks wait to be archived: it is not archived",
                         meta.get("namespace"), meta.get("name"), len(self.backlog))  # fmt: skip
        if held and want is Want.WRITE and not deleted and mark_in(obj) is None:  # an unfinished phase, recorded
            self.phases[uid] = str((obj.get("status") or {}).get("phase") or "Pending")
