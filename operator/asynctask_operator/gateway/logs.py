"""An attempt's log: from its pod while the pod is there, else the copy the archive kept.

A task's pods go with its Jobs when the task is deleted at its TTL; the archiver keeps the end of
each attempt's log when the attempt ends (docs/archive.md). So a log is read from the pod while
there is one, and from the archive after. Either way the caller must be allowed what ``kubectl
logs`` needs, ``get pods/log``, about that pod by name (the API's route and the console's page
both ask through ``allowed``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import cast

from asynctask_operator.adapters.api import PodLogs
from asynctask_operator.adapters.kube import PODS, ApiError
from asynctask_operator.core.wire import Obj, attempt_pods, latest_pod
from asynctask_operator.gateway.access import Gateway, refused
from asynctask_operator.gateway.archived import asked, reader_of
from asynctask_operator.gateway.auth import Permission
from asynctask_operator.gateway.problems import Problem

TAIL_LINES = 500
"""Lines of a live pod's log shown (the end of it)."""

Allowed = Callable[[str], Awaitable[bool]]
"""Whether the caller may ``get pods/log`` about the pod of this name."""


@dataclasses.dataclass(frozen=True)
class LogText:
    text: str
    source: str
    """``pod`` (read from it now) or ``archive`` (the copy kept when the attempt ended)."""
    pod: str
    truncated: bool = False
    """Only the end of the log is here (the archive keeps its last bytes, a cap it is set with)."""


def pod_log(ns: str, pod: str) -> Permission:
    """What ``kubectl logs POD`` needs: ``get pods/log`` about the pod (namespace-wide for a log kept without its pod's name)."""
    return Permission("get", "pods", ns, group="", name=pod, subresource="log")


def attempt_of(obj: Obj, attempt: int) -> int:
    """The attempt asked for, or the task's latest (``0``)."""
    return attempt or int((obj.get("status") or {}).get("attempt") or 0)


async def attempt_pod(gateway: Gateway, ns: str, obj: Obj, attempt: int) -> Obj | None:
    """The newest pod of one attempt of the task (``0``: its latest attempt); None when there is none."""
    attempt = attempt_of(obj, attempt)
    if attempt < 1:
        return None
    name = str((obj.get("metadata") or {}).get("name") or "")
    try:
        return latest_pod(await gateway.api.list_objects(PODS, ns, attempt_pods(name, attempt)))
    except ApiError as error:
        raise Problem(502, f"the pods of attempt {attempt} could not be listed ({error.status})") from None


async def pod_tail(gateway: Gateway, ns: str, pod: str) -> str:
    """The last :data:`TAIL_LINES` lines of a pod's log."""
    if not hasattr(gateway.api, "pod_log"):
        raise Problem(501, "this gateway's API client cannot read pod logs")
    lines = cast(PodLogs, gateway.api).pod_log(ns, pod, follow=False, tail_lines=TAIL_LINES)
    try:
        text = "\n".join([line async for line in lines])
    except ApiError as error:
        raise Problem(502, f"the log of pod {pod} could not be read: {error.message}") from None
    return text + ("\n" if text else "")


async def attempt_log(
    gateway: Gateway, ns: str, name: str, attempt: int, allowed: Allowed, *, uid: str | None = None
) -> LogText:
    """The log of one attempt (``0``: the latest) of the task: its pod's, else the archive's copy; 403 unless
    ``allowed`` about that pod, 404 when neither has it."""
    live = gateway.tasks.get(ns, name)
    if live is not None and uid is not None and (live.get("metadata") or {}).get("uid") != uid:
        live = None
    if live is not None:
        number = attempt_of(live, attempt)
        if number < 1:
            raise Problem(409, f"task {name!r} has not started an attempt yet")
        pod = await attempt_pod(gateway, ns, live, number)
        if pod is not None:
            pod_name = str(pod["metadata"]["name"])
            if not await allowed(pod_name):
                raise refused(pod_log(ns, pod_name))
            return LogText(await pod_tail(gateway, ns, pod_name), "pod", pod_name)
    if gateway.archive is None:
        if live is None:
            raise Problem(404, f"task {name!r} not found in namespace {ns!r}")
        raise Problem(404, f"no pod of attempt {attempt_of(live, attempt)} (its Job's pods may have been deleted)")
    reader = reader_of(gateway)
    record = await asked(reader.get(uid) if uid else reader.latest(ns, name))
    if record is None or record.namespace != ns or record.name != name:
        raise Problem(404, f"task {name!r} not found in namespace {ns!r}, live or archived")
    number = attempt or record.attempts
    kept = await asked(reader.log(record.uid, number)) if number >= 1 else None
    if kept is None:
        raise Problem(404, f"no log of attempt {number} of task {name!r} is kept (its pod is gone)")
    pod_name = kept.pod or ""
    if not await allowed(pod_name):
        raise refused(pod_log(ns, pod_name))
    if kept.content is None:
        raise Problem(404, f"the log of attempt {number} could not be kept when it ended: {kept.error or 'unknown'}")
    return LogText(kept.text, "archive", pod_name, kept.truncated)
