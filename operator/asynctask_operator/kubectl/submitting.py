"""``submit`` and ``wait``: create tasks (refused early when their TaskType would refuse them), then
follow them to the end, in a live view on a terminal or a line per change elsewhere."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
from collections.abc import Iterator, Sequence
from typing import Any

from rich.console import Console
from rich.live import Live

from asynctask_operator.adapters.kube import ASYNCTASKS, TASKTYPES, ApiError, Conflict, NotFound, Resource
from asynctask_operator.core.idempotency import task_name_for_key, valid_key
from asynctask_operator.core.models import TaskType
from asynctask_operator.core.validation import Refusal, check_payload
from asynctask_operator.core.wire import Obj
from asynctask_operator.kubectl import render, selection
from asynctask_operator.kubectl.commands import get, name_of, namespace_of
from asynctask_operator.kubectl.context import Context
from asynctask_operator.kubectl.errors import TIMED_OUT, CliError, refused
from asynctask_operator.kubectl.follow import Deleted, TimedOut, follow
from asynctask_operator.kubectl.inputs import (
    BadInput,
    check_task,
    new_task,
    parse_duration,
    parse_labels,
    parse_payload,
    read_manifests,
    with_overrides,
    with_trace,
)

SELF_SUBJECT_REVIEWS = Resource("authentication.k8s.io", "v1", "selfsubjectreviews")
TICK_SECONDS = 1.0  # the live view's elapsed clock moves this often (a redraw, not a request)


async def whoami(ctx: Context) -> str:
    """The caller's user name (a SelfSubjectReview), as the gateway names idempotent tasks; "" if unknown."""
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    try:
        answer = await ctx.api.create(SELF_SUBJECT_REVIEWS, None, body)
    except ApiError:
        return ""
    return str(((answer.get("status") or {}).get("userInfo") or {}).get("username") or "")


def _overrides(args: argparse.Namespace) -> Obj:
    return {
        "queue": args.queue,
        "priority": args.priority,
        "timeoutSeconds": parse_duration(args.attempt_timeout, "--attempt-timeout") if args.attempt_timeout else None,
        "deadlineSeconds": parse_duration(args.deadline, "--deadline") if args.deadline else None,
        "ttlSecondsAfterFinished": parse_duration(args.ttl, "--ttl") if args.ttl else None,
        "retry": {"maxRetries": args.retries} if args.retries is not None else None,
    }


async def _check_type(ctx: Context, namespace: str, task: Obj) -> None:
    """The task's TaskType exists and takes its payload; unknown when the user may not read TaskTypes."""
    type_ = str(task["spec"].get("type"))
    try:
        obj = await ctx.api.get(TASKTYPES, namespace, type_)
    except NotFound:
        raise CliError(f"no TaskType '{type_}' in namespace '{namespace}'") from None
    except ApiError as exc:
        if exc.status == 403:
            return  # the operator checks it; the user may create tasks without reading types
        raise refused(exc, "get", "tasktypes", namespace, type_) from None
    try:
        # The schema only: the size limit is the operator's own setting (--payload-limit), not known here.
        check_payload(TaskType.model_validate(obj), task["spec"].get("payload"), sys.maxsize)
    except Refusal as refusal:
        raise CliError(f"{refusal.reason}: {refusal.message}") from None
    except ValueError:
        return  # a TaskType the operator will report on itself


async def submit(ctx: Context, args: argparse.Namespace) -> int:
    if args.file and args.type:
        raise BadInput("give either -f FILE or --type TYPE, not both")
    if args.file:
        if args.payload is not None or args.name or args.label:
            raise BadInput("--payload, --name and --label go with --type; a file carries its own")
        tasks = read_manifests(args.file)
    elif args.type:
        payload = parse_payload(args.payload) if args.payload is not None else None
        tasks = [new_task(args.type, payload, name=args.name, labels=parse_labels(args.label))]
    else:
        raise BadInput("say what to run: -f FILE, or --type TYPE [--payload JSON|@FILE]")
    if args.timeout and not args.wait:
        raise BadInput("--timeout bounds --wait (for the task's own bounds: --attempt-timeout, --deadline)")
    overrides = _overrides(args)
    tasks = [with_trace(with_overrides(t, overrides), ctx.environ) for t in tasks]
    if args.idempotency_key is not None:
        if len(tasks) != 1:
            raise BadInput("--idempotency-key names one task; the file holds several")
        if not valid_key(args.idempotency_key):
            raise BadInput("--idempotency-key: 1 to 255 printable ASCII characters")
    for i, task in enumerate(tasks):
        check_task(task, args.file or "--type" if len(tasks) == 1 else f"{args.file} (document {i + 1})")
    for task in tasks:
        await _check_type(ctx, namespace_of(task, ctx.namespace), task)
    if args.idempotency_key is not None:
        name = task_name_for_key(namespace_of(tasks[0], ctx.namespace), await whoami(ctx), args.idempotency_key)
        meta = {k: v for k, v in tasks[0]["metadata"].items() if k != "generateName"}
        tasks = [{**tasks[0], "metadata": {**meta, "name": name}}]
    created: list[Obj] = []
    for task in tasks:
        ns = namespace_of(task, ctx.namespace)
        body = {**task, "metadata": {**task["metadata"], "namespace": ns}}
        try:
            obj = await ctx.api.create(ASYNCTASKS, ns, body)
            verb = "created"
        except Conflict:
            if args.idempotency_key is None:
                raise CliError(
                    f"an AsyncTask named '{task['metadata'].get('name')}' exists in '{ns}' already"
                ) from None
            obj = await get(ctx, ASYNCTASKS, str(task["metadata"]["name"]), ns)
            verb = "exists (same idempotency key)"
        except ApiError as exc:
            raise refused(exc, "create", "asynctasks", ns, task["metadata"].get("name")) from None
        created.append(obj)
        (ctx.err if args.wait else ctx.out).print(f"asynctask/{name_of(obj)} {verb}", highlight=False)
    if not args.wait:
        return 0
    timeout = parse_duration(args.timeout, "--timeout") if args.timeout else None
    code = 0
    for ns in dict.fromkeys(namespace_of(t, ctx.namespace) for t in created):
        mine = [t for t in created if namespace_of(t, ctx.namespace) == ns]
        code = max(code, await watch_progress(ctx, ns, mine, timeout, "Succeeded"))
    return code


async def wait(ctx: Context, args: argparse.Namespace) -> int:
    until = "finished" if args.for_.lower() == "finished" else "Succeeded"
    if args.for_.lower() not in ("finished", "succeeded"):
        raise BadInput(f"--for: {args.for_!r}: use Succeeded or finished")
    timeout = parse_duration(args.timeout, "--timeout") if args.timeout else None
    tasks = [await get(ctx, ASYNCTASKS, name) for name in args.names]
    return await watch_progress(ctx, ctx.namespace, tasks, timeout, until, show=args.progress)


async def watch_progress(
    ctx: Context, namespace: str, tasks: Sequence[Obj], timeout: float | None, until: str, *, show: bool = True
) -> int:
    """Follow ``tasks`` until each finished, showing progress; the exit code of what they ended as."""
    printed: dict[str, tuple[Any, ...]] = {}
    latest: list[Obj] = list(tasks)

    def lines(current: list[Obj]) -> None:
        for task in current:
            change = render.change_of(task)
            if show and printed.get(name_of(task)) != change:
                printed[name_of(task)] = change
                ctx.out.print(render.progress_line(task, ctx.now()), highlight=False, soft_wrap=True)

    try:
        if ctx.live and show:
            with (
                Live(console=ctx.out, auto_refresh=False, transient=False, redirect_stderr=False) as live,
                _logging_above(ctx.out),
            ):

                def draw(current: list[Obj]) -> None:
                    latest[:] = current
                    live.update(render.progress_view(current, ctx.now()), refresh=True)

                async def tick() -> None:
                    while True:
                        await asyncio.sleep(TICK_SECONDS)
                        draw(latest)

                ticker = asyncio.create_task(tick())
                try:
                    final = await follow(ctx.api, namespace, tasks, render.finished, draw, timeout=timeout)
                finally:
                    ticker.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await ticker
        else:
            final = await follow(ctx.api, namespace, tasks, render.finished, lines, timeout=timeout)
    except TimedOut as late:
        waiting = ", ".join(f"{name_of(t)} ({render.phase(t)})" for t in late.tasks if not render.finished(t))
        ctx.err.print(f"timed out after {render.clock(timeout or 0)} waiting for {waiting}", highlight=False)
        return TIMED_OUT
    except Deleted as gone:
        raise CliError(f"asynctask '{gone.name}' was deleted before it finished") from None
    for task in final:
        if render.phase(task) != "Succeeded":
            ctx.err.print(render.outcome(task), highlight=False, soft_wrap=True)
    return selection.exit_code(final, until)


class _ConsoleLog(logging.Handler):
    """Log records printed by the live view's console: above the rows being redrawn, not through them."""

    def __init__(self, console: Console) -> None:
        super().__init__(logging.WARNING)
        self.console = console

    def emit(self, record: logging.LogRecord) -> None:
        self.console.print(self.format(record), style="dim", highlight=False, markup=False)


@contextlib.contextmanager
def _logging_above(console: Console) -> Iterator[None]:
    """While the live view runs, warnings (a dropped watch, being resumed) go through its console."""
    root = logging.getLogger()
    handler, kept = _ConsoleLog(console), root.handlers[:]
    root.handlers = [handler]
    try:
        yield
    finally:
        root.handlers = kept
