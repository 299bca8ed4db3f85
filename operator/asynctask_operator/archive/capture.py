"""An attempt's pod log, as the archive keeps it: its last bytes (a cap), compressed, or why there is none.

The log is read through the API server (``pods/log``) from the attempt's newest pod
(:func:`~asynctask_operator.core.wire.attempt_pods`, :func:`~asynctask_operator.core.wire.latest_pod`),
in its first container, with the bytes that are not UTF-8 kept as they are. Only the last
``limit`` bytes are held while it streams (:class:`Tail`): the end of a log is where a failure
shows, and a log of gigabytes costs the archiver no more memory than the cap.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import zlib
from typing import Protocol

from asynctask_operator.adapters.api import Kube, PodLogs
from asynctask_operator.adapters.kube import PODS, ApiError, NotFound
from asynctask_operator.core.naming import LABEL_ATTEMPT, LABEL_TASK, LABEL_TASK_UID, label_value
from asynctask_operator.core.wire import Obj, attempt_pods, latest_pod

logger = logging.getLogger(__name__)

TRIES = 3  # reads of a log the API server failed to serve (not a 404) before its reason is recorded


class LogClient(Kube, PodLogs, Protocol):
    """The client the archiver reads pods and their logs with (the real KubeClient is both)."""


class Tail:
    """The last ``limit`` bytes of a stream, and how many bytes it had.

    >>> tail = Tail(5)
    >>> for chunk in (b"abc", b"defg", b"h"): tail.add(chunk)
    >>> tail.content(), tail.size, tail.truncated
    (b'defgh', 8, True)
    """

    def __init__(self, limit: int) -> None:
        self.limit = max(limit, 0)
        self.size = 0
        self._chunks: collections.deque[bytes] = collections.deque()
        self._held = 0

    def add(self, chunk: bytes) -> None:
        self.size += len(chunk)
        self._chunks.append(chunk)
        self._held += len(chunk)
        while self._chunks and self._held - len(self._chunks[0]) >= self.limit:
            self._held -= len(self._chunks.popleft())  # wholly before the last ``limit`` bytes

    @property
    def truncated(self) -> bool:
        return self.size > self.limit

    def content(self) -> bytes:
        data = b"".join(self._chunks)
        return data[len(data) - self.limit :] if len(data) > self.limit else data


def log_row(uid: str, attempt: int, captured_at: float, *, pod: str | None = None, container: str | None = None,
            tail: Tail | None = None, error: str | None = None) -> Obj:  # fmt: skip
    """The ``attempt_logs`` row of a captured log (``tail``) or of the reason there is none (``error``)."""
    return {
        "uid": uid,
        "attempt": attempt,
        "pod": pod,
        "container": container,
        "captured_at": captured_at,
        "size": tail.size if tail else 0,
        "truncated": tail.truncated if tail else False,
        "content": zlib.compress(tail.content(), 6) if tail else None,
        "error": error,
    }


def _of_attempt(pod: Obj, uid: str, name: str, attempt: int) -> bool:
    """Whether a listed pod is this attempt's (by its labels, again: a pod of an earlier task of the same
    name, not yet collected, carries another uid)."""
    labels = (pod.get("metadata") or {}).get("labels") or {}
    return (
        labels.get(LABEL_TASK) == label_value(name)
        and labels.get(LABEL_ATTEMPT) == str(attempt)
        and labels.get(LABEL_TASK_UID) in (None, uid)
    )


def _first_container(pod: Obj) -> str | None:
    containers = (pod.get("spec") or {}).get("containers") or []
    first = containers[0] if containers and isinstance(containers[0], dict) else {}
    name = first.get("name")
    return name if isinstance(name, str) and name else None


async def capture(api: LogClient, task: Obj, attempt: int, limit: int, captured_at: float) -> Obj:
    """The ``attempt_logs`` row of one attempt of ``task`` (its wire form): its log, or why there is none."""
    meta = task.get("metadata") or {}
    uid, namespace, name = str(meta["uid"]), str(meta["namespace"]), str(meta["name"])
    try:
        pods = await api.list_objects(PODS, namespace, attempt_pods(name, attempt))
    except ApiError as exc:
        return log_row(uid, attempt, captured_at, error=f"its pods could not be listed: {exc}")
    ours = [p for p in pods if _of_attempt(p, uid, name, attempt)]
    pod = latest_pod(ours)
    if pod is None:
        return log_row(
            uid, attempt, captured_at, error="no pod of this attempt is left (deleted with its Job, or never created)"
        )
    pod_name, container = str((pod.get("metadata") or {}).get("name") or ""), _first_container(pod)
    for tried in range(1, TRIES + 1):
        tail = Tail(limit)
        try:
            async for line in api.pod_log(namespace, pod_name, container=container, errors="surrogateescape"):
                tail.add(line.encode("utf-8", "surrogateescape") + b"\n")
            return log_row(uid, attempt, captured_at, pod=pod_name, container=container, tail=tail)
        except NotFound:
            return log_row(uid, attempt, captured_at, pod=pod_name, container=container, error="the pod is gone")
        except ApiError as exc:
            if exc.status == 400 or tried == TRIES:  # 400: the container never started; else given up on
                return log_row(uid, attempt, captured_at, pod=pod_name, container=container,
                               error=f"the log could not be read: {exc}")  # fmt: skip
            logger.info("log of %s/%s attempt %d: %s; reading it again", namespace, name, attempt, exc)
            await asyncio.sleep(0.5 * tried)
    raise AssertionError("unreachable")
