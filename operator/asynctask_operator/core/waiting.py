"""Why a task is not admitted yet, in words its status carries, and a queue's figures. Pure.

Each answer names what the task waits for — its queue (missing, paused, full) or its concurrency key
and the tasks holding it — in a stable text: it is written with the status when the reason changes,
so it holds no live count that would be stale at once (or cost a write each time it moved).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable, Mapping, Sequence

from asynctask_operator.core.concurrency import KeyClaim
from asynctask_operator.core.models import Fairness, TaskQueueSpec

QUEUED = "Queued"
QUEUE_NOT_FOUND = "QueueNotFound"
QUEUE_PAUSED = "QueuePaused"
WAITING_FOR_KEY = "WaitingForKey"
KEY_BUSY = "KeyBusy"  # CancelNewest: the task ends, its key being full
NAMED = 3  # holders named in a message (all of them, up to ten, in status.waitingForKey.holders)


@dataclasses.dataclass(frozen=True)
class Waiting:
    reason: str  # Queued | QueueNotFound | QueuePaused | WaitingForKey | KeyBusy
    message: str
    key: str | None = None  # WaitingForKey, KeyBusy: the key, its limit and the tasks that hold it
    limit: int | None = None
    holders: tuple[str, ...] = ()

    @property
    def refused(self) -> bool:
        """The task must end now (CancelNewest), not wait."""
        return self.reason == KEY_BUSY


@dataclasses.dataclass(frozen=True)
class QueueCounts:
    pending: int
    running: int  # tasks holding a slot: Running, or reserved while their Job is created
    oldest_pending_seconds: int
    exists: bool
    waiting_for_key: int = 0  # of the pending, those whose key is full
    keys_held: int = 0  # distinct keys its slot holders hold


def queue_waiting(queue: tuple[str, str], spec: TaskQueueSpec | None) -> Waiting:
    """Why a task in this queue is not admitted yet, as far as the queue goes."""
    ns, name = queue
    if spec is None:
        return Waiting(
            QUEUE_NOT_FOUND,
            f"TaskQueue {name!r} does not exist in namespace {ns}; the task is admitted as soon as it is created",
        )
    if spec.paused:
        return Waiting(QUEUE_PAUSED, f"TaskQueue {name!r} is paused")
    limit = spec.concurrency
    shown = "unlimited" if limit < 0 else str(limit)
    return Waiting(QUEUED, f"waiting for a free slot in TaskQueue {name!r} (concurrency {shown})")


def _names(holders: Sequence[Hashable]) -> tuple[str, ...]:
    return tuple(str(h[1]) if isinstance(h, tuple) else str(h) for h in holders)


def _held_by(names: tuple[str, ...]) -> str:
    if not names:
        return "tasks being started"
    shown = ", ".join(names[:NAMED])
    return shown + (f" and {len(names) - NAMED} more" if len(names) > NAMED else "")


def waiting_for_key(ref: tuple[str, str], claim: KeyClaim, holders: Sequence[Hashable]) -> Waiting:
    names = _names(holders)
    return Waiting(
        WAITING_FOR_KEY,
        f"waiting for concurrency key {ref[1]!r} (limit {claim.limit}), held by {_held_by(names)}",
        ref[1],
        claim.limit,
        names,
    )


def key_busy(ref: tuple[str, str], claim: KeyClaim, holders: Sequence[Hashable]) -> Waiting:
    names = _names(holders)
    return Waiting(
        KEY_BUSY,
        f"concurrency key {ref[1]!r} is held by {_held_by(names)} (limit {claim.limit}); "
        "policy CancelNewest ends this task",
        ref[1],
        claim.limit,
        names,
    )


def group_of(fairness: Fairness | None, claim: KeyClaim | None, labels: Mapping[str, str]) -> str | None:
    """A task's group in a fair queue: its key, or its label's value ("" without one); None: no fairness."""
    if fairness is None:
        return None
    if fairness.by == "Key":
        return claim.key if claim else ""
    return labels.get(fairness.label or "", "")
