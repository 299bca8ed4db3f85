"""``describe`` and ``logs``: the commands that read a task's pods and Events beside the task, and
wait (by watching, not polling) for an attempt's pod to start. A task past its TTL is read from the
archive (:mod:`~asynctask_operator.kubectl.archived`): its pods and Events went with it, its logs were kept."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from asynctask_operator.adapters.api import PodLogs
from asynctask_operator.adapters.kube import ASYNCTASKS, EVENTS, PODS, ApiError
from asynctask_operator.adapters.reflector import reflect
from asynctask_operator.core.naming import LABEL_TASK, label_value
from asynctask_operator.core.wire import Obj, attempt_pods, event_about, latest_pod
from asynctask_operator.kubectl import render
from asynctask_operator.kubectl.archived import archive_of, is_archived, live_or_archived
from asynctask_operator.kubectl.commands import get, list_all, name_of
from asynctask_operator.kubectl.context import Context, show
from asynctask_operator.kubectl.describe import describe_task
from asynctask_operator.kubectl.errors import CliError, refused
from asynctask_operator.kubectl.follow import follow


async def describe(ctx: Context, args: argparse.Namespace) -> int:
    for i, name in enumerate(args.names):
        task = await live_or_archived(ctx, name)
        if is_archived(task):  # its pods and Events are gone with it
            if i:
                ctx.out.print()
            show(ctx.out, describe_task(task, [], [], ctx.now()))
            continue
        try:
            pods = await ctx.api.list_objects(PODS, ctx.namespace, f"{LABEL_TASK}={label_value(name)}")
        except ApiError:
            pods = []  # no right to list pods: the attempts still name their Jobs
        try:
            events = [e for e in await ctx.api.list_objects(EVENTS, ctx.namespace) if event_about(e, task)]
        except ApiError:
            events = []
        events.sort(key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime") or ""))
        if i:
            ctx.out.print()
        show(ctx.out, describe_task(task, pods, events, ctx.now()))
    return 0


async def _pod_of(ctx: Context, name: str, attempt: int) -> Obj | None:
    return latest_pod(await list_all(ctx, PODS, ctx.namespace, attempt_pods(name, attempt)))


def _started(pod: Obj) -> bool:
    return str((pod.get("status") or {}).get("phase") or "") in ("Running", "Succeeded", "Failed")


async def logs(ctx: Context, args: argparse.Namespace) -> int:
    task = await live_or_archived(ctx, args.name)
    if is_archived(task):
        return await archived_log(ctx, args, task)
    api: Any = ctx.api
    if not hasattr(api, "pod_log"):
        raise CliError("this API client cannot read pod logs")
    reader: PodLogs = api
    attempt = args.attempt or int((task.get("status") or {}).get("attempt") or 0)
    if attempt < 1:
        if not args.follow:
            raise CliError(f"asynctask '{args.name}' has not started an attempt yet ({render.phase(task)})")
        attempt = 1
    while True:
        pod = await _pod_of(ctx, args.name, attempt)
        if args.follow and (pod is None or not _started(pod)):
            pod = await _wait_for_pod(ctx, args.name, attempt)
            if pod is None:
                return 0  # the task finished without starting this attempt
        if pod is None:
            raise CliError(f"no pod of attempt {attempt} of asynctask '{args.name}' (its pods may have been deleted)")
        if args.follow:
            ctx.err.print(f"==> attempt {attempt}: pod/{name_of(pod)} <==", highlight=False)
        try:
            async for line in reader.pod_log(ctx.namespace, name_of(pod), container=args.container, follow=args.follow):
                ctx.out.out(line, highlight=False)
        except ApiError as exc:
            raise refused(exc, "get", "pods/log", ctx.namespace, name_of(pod)) from None
        if not args.follow or args.attempt:
            return 0
        task = await get(ctx, ASYNCTASKS, args.name)
        if render.finished(task) and int((task.get("status") or {}).get("attempt") or 0) <= attempt:
            return 0
        attempt += 1  # a retry: follow the next attempt's pod


async def archived_log(ctx: Context, args: argparse.Namespace, task: Obj) -> int:
    """An archived task's attempt log, as the archive kept it when the attempt ended (its pod is gone)."""
    attempt = args.attempt or int((task.get("status") or {}).get("attempt") or 0)
    if attempt < 1:
        raise CliError(f"asynctask '{args.name}' never started an attempt ({render.phase(task)})")
    kept = {int(e.get("attempt") or 0): e for e in (task.get("archive") or {}).get("logs") or ()}.get(attempt, {})
    uid = str((task.get("metadata") or {}).get("uid") or "")
    text = await archive_of(ctx).log(ctx.namespace, args.name, uid, attempt)
    cut = " (its end only: the archive keeps the last bytes of a log)" if kept.get("truncated") else ""
    done = "; nothing to follow: the task has finished" if args.follow else ""
    ctx.err.print(f"==> attempt {attempt}: the log the archive kept{cut}{done} <==", highlight=False, soft_wrap=True)
    ctx.out.out(text, end="" if not text or text.endswith("\n") else "\n", highlight=False)
    return 0


class _StartedPod:
    """A reflector sink that notes the first pod of a listing or watch whose container has started."""

    def __init__(self) -> None:
        self.found = asyncio.Event()
        self.pod: Obj | None = None

    def mark(self) -> float:
        return 0.0

    def listed(self, obj: Obj, since: float) -> None:
        self.event("ADDED", obj)

    def listing_done(self, keys: set[tuple[str, str]], since: float, namespace: str | None) -> None:
        pass

    def event(self, type_: str | None, obj: Obj) -> None:
        if type_ != "DELETED" and _started(obj) and not self.found.is_set():
            self.pod = obj
            self.found.set()


async def _wait_for_pod(ctx: Context, name: str, attempt: int) -> Obj | None:
    """Watch (no polling) until the attempt's pod has started, or the task finished: the pod, if any."""
    sink = _StartedPod()
    selector = attempt_pods(name, attempt)
    task = await get(ctx, ASYNCTASKS, name)
    waits = [
        asyncio.create_task(reflect(ctx.api, PODS, ctx.namespace, selector, sink)),
        asyncio.create_task(sink.found.wait()),
        asyncio.create_task(follow(ctx.api, ctx.namespace, [task], render.finished, lambda _: None)),
    ]
    try:
        await asyncio.wait(waits[1:], return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiting in waits:
            waiting.cancel()
        await asyncio.gather(*waits, return_exceptions=True)
    return sink.pod if sink.pod is not None else await _pod_of(ctx, name, attempt)
