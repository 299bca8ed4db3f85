"""Follow tasks until they finish: the reflector's list+watch loop, no polling.

:func:`follow` watches the AsyncTasks of one namespace through
:func:`~asynctask_operator.adapters.reflector.reflect` (which resumes a dropped watch from its
last resourceVersion and lists again after a 410), keeps the latest copy of each task it was
asked about, and calls ``changed`` with all of them whenever one of them changes. It returns
when every task has reached the ``done`` condition, or when ``timeout`` passes (``TimedOut``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence

from asynctask_operator.adapters.api import Kube
from asynctask_operator.adapters.kube import ASYNCTASKS
from asynctask_operator.adapters.reflector import reflect
from asynctask_operator.core.wire import Key, Obj, key_of


class TimedOut(Exception):
    """The tasks did not reach the condition in time; ``tasks`` holds their latest copies."""

    def __init__(self, tasks: list[Obj]) -> None:
        super().__init__("timed out")
        self.tasks = tasks


class Deleted(Exception):
    """A followed task was deleted before it reached the condition."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


class _Followed:
    """A :class:`~asynctask_operator.adapters.reflector.Sink` that keeps the followed tasks only."""

    def __init__(self, namespace: str, names: Sequence[str], first: Sequence[Obj]) -> None:
        self.keys = [(namespace, name) for name in names]
        self.tasks: dict[Key, Obj] = {key_of(task): task for task in first}
        self.woken = asyncio.Event()
        self.deleted: str | None = None

    def _take(self, obj: Obj) -> None:
        key = key_of(obj)
        if key not in self.keys:
            return
        old = self.tasks.get(key)
        if old is None or _version(obj) >= _version(old):
            self.tasks[key] = obj
            self.woken.set()

    def mark(self) -> float:
        return time.monotonic()

    def listed(self, obj: Obj, since: float) -> None:
        self._take(obj)

    def listing_done(self, keys: set[Key], since: float, namespace: str | None) -> None:
        gone = [key for key in self.keys if key not in keys]
        if gone:
            self.deleted = gone[0][1]
            self.woken.set()

    def event(self, type_: str | None, obj: Obj) -> None:
        if type_ == "DELETED" and key_of(obj) in self.keys:
            self.deleted = key_of(obj)[1]
            self.woken.set()
            return
        self._take(obj)

    def latest(self) -> list[Obj]:
        return [self.tasks[key] for key in self.keys if key in self.tasks]


def _version(obj: Obj) -> int:
    text = str((obj.get("metadata") or {}).get("resourceVersion") or "0")
    return int(text) if text.isdigit() else 0


async def follow(
    api: Kube,
    namespace: str,
    first: Sequence[Obj],
    done: Callable[[Obj], bool],
    changed: Callable[[list[Obj]], Awaitable[None] | None],
    *,
    timeout: float | None = None,
) -> list[Obj]:
    """Watch the tasks ``first`` (as just read) until ``done`` holds for each; their final copies.

    The watch starts from the oldest resourceVersion of ``first``: nothing written since any of
    them was read is missed (older copies are ignored), and nothing is listed again. Without
    versions to start from (opaque ones), it lists first."""
    names = [str((t.get("metadata") or {}).get("name")) for t in first]
    sink = _Followed(namespace, names, first)
    versions = [_version(t) for t in first]
    version = str(min(versions)) if versions and all(versions) else ""
    watcher = asyncio.create_task(reflect(api, ASYNCTASKS, namespace, None, sink, version))
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        while True:
            tasks = sink.latest()
            result = changed(tasks)
            if result is not None:
                await result
            if sink.deleted is not None:
                raise Deleted(sink.deleted)
            if len(tasks) == len(names) and all(done(t) for t in tasks):
                return tasks
            sink.woken.clear()
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise TimedOut(tasks)
            try:
                await asyncio.wait_for(sink.woken.wait(), left)
            except TimeoutError:
                raise TimedOut(sink.latest()) from None
    finally:
        watcher.cancel()
        try:
            await watcher
        except asyncio.CancelledError:
            pass
