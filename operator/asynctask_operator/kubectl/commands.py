"""The plugin's commands: each reads the parsed flags, talks to the API through the adapters, prints, and
returns the exit code. Decisions are elsewhere (selection, render, the core); these only do the I/O.

Here: the :class:`Context` every command is given, the API calls in the plugin's words, and the
commands on tasks, queues and schedules as objects (get, cancel, retry, queue, schedule, stats,
version). ``submit`` and ``wait`` are in :mod:`~asynctask_operator.kubectl.submitting`; ``describe``
and ``logs``, which read pods and Events, in :mod:`~asynctask_operator.kubectl.pods`."""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import sys
from collections.abc import Callable
from typing import Any

import yaml
from pydantic.alias_generators import to_camel

from asynctask_operator import __version__
from asynctask_operator.adapters.kube import ASYNCTASKS, SCHEDULEDTASKS, TASKQUEUES, ApiError, Resource
from asynctask_operator.core import acts, labelselectors
from asynctask_operator.core.naming import manual_run_name
from asynctask_operator.core.queueing import queue_positions
from asynctask_operator.core.statistics import summarize, window_of
from asynctask_operator.core.timestamps import stamp
from asynctask_operator.core.views import TaskView
from asynctask_operator.core.wire import Obj
from asynctask_operator.kubectl import render, selection
from asynctask_operator.kubectl.archived import live_or_archived
from asynctask_operator.kubectl.context import Context, show
from asynctask_operator.kubectl.errors import ERROR, CliError, refused
from asynctask_operator.kubectl.inputs import BadInput, parse_duration

# ---------------------------------------------------------------------- API calls in the plugin's words


async def get(ctx: Context, resource: Resource, name: str, namespace: str | None = None) -> Obj:
    ns = namespace or ctx.namespace
    try:
        return await ctx.api.get(resource, ns, name)
    except ApiError as exc:
        raise refused(exc, "get", resource.plural, ns, name) from None


async def list_all(ctx: Context, resource: Resource, namespace: str | None, selector: str | None = None) -> list[Obj]:
    """A listing; the selector goes to the API server and is applied again here (a proxy or an emulator
    that ignores it must not widen what cancel or retry touch)."""
    try:
        terms = labelselectors.parse(selector or "")
    except ValueError as exc:
        raise BadInput(f"-l: {exc}") from None
    try:
        listed = await ctx.api.list_objects(resource, namespace, selector)
    except ApiError as exc:
        raise refused(exc, "list", resource.plural, namespace) from None
    return [o for o in listed if labelselectors.matches(terms, dict((o.get("metadata") or {}).get("labels") or {}))]


async def patch(ctx: Context, resource: Resource, obj: Obj, body: Obj) -> Obj:
    meta = obj.get("metadata") or {}
    ns, name = str(meta.get("namespace") or ctx.namespace), str(meta.get("name"))
    try:
        return await ctx.api.patch(resource, ns, name, body)
    except ApiError as exc:
        raise refused(exc, "patch", resource.plural, ns, name) from None


def name_of(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("name") or "")


def namespace_of(obj: Obj, default: str) -> str:
    return str((obj.get("metadata") or {}).get("namespace") or default)


# ---------------------------------------------------------------------- get


def _print_objects(ctx: Context, objects: list[Obj], output: str | None, kind: str, *, single: bool) -> bool:
    """-o json|yaml|name; False when the caller prints a table."""
    if output in ("json", "yaml", "name"):
        ctx.out.out(render.machine(objects, output, kind, single=single), end="", highlight=False)
        return True
    return False


def _nothing(ctx: Context) -> int:
    where = "in any namespace" if ctx.all_namespaces else f"in {ctx.namespace} namespace"
    ctx.err.print(f"No resources found {where}.", highlight=False)
    return 0


async def get_tasks(ctx: Context, args: argparse.Namespace) -> int:
    phases = [p for p in (args.phase or "").split(",") if p]
    for value in phases:
        if value not in selection.PHASES:
            raise BadInput(f"--phase: {value!r} is not a phase ({', '.join(selection.PHASES)})")
    if args.names:
        if args.selector or args.all_namespaces:
            raise BadInput("name tasks, or select them with -l/-A, not both")
        tasks = [await live_or_archived(ctx, name) for name in args.names]  # a task past its TTL: the archive's
    else:
        tasks = await list_all(ctx, ASYNCTASKS, ctx.list_namespace, args.selector)
    tasks = [t for t in tasks if selection.matches(t, type_=args.type, queue=args.queue, phases=phases)]
    return _listed(
        ctx, tasks, args.output, "asynctask", len(args.names) == 1,
        lambda: render.tasks_table(tasks, ctx.now(), wide=args.output == "wide", all_namespaces=ctx.all_namespaces),
    )  # fmt: skip


def _listed(
    ctx: Context, objects: list[Obj], output: str | None, kind: str, single: bool, table: Callable[[], Any]
) -> int:
    """A listing as ``-o`` asks (json, yaml, name), else as its table; a note when there is nothing."""
    if _print_objects(ctx, objects, output, kind, single=single):
        return 0
    if not objects:
        return _nothing(ctx)
    show(ctx.out, table())
    return 0


# ---------------------------------------------------------------------- cancel, retry


async def _select(ctx: Context, args: argparse.Namespace) -> tuple[list[Obj], bool]:
    """The tasks named, or selected by -l/--phase/--type/--queue; and whether it was a selection."""
    phases = [p for p in (args.phase or "").split(",") if p]
    selecting = bool(args.selector or phases or args.type or args.queue)
    if args.names and selecting:
        raise BadInput("name tasks, or select them with -l/--phase/--type/--queue, not both")
    if args.names:
        return [await get(ctx, ASYNCTASKS, name) for name in args.names], False
    if not selecting:
        raise BadInput("name the tasks, or select them with -l SELECTOR, --phase, --type or --queue")
    tasks = await list_all(ctx, ASYNCTASKS, ctx.list_namespace, args.selector)
    return [t for t in tasks if selection.matches(t, type_=args.type, queue=args.queue, phases=phases)], True


async def act(ctx: Context, args: argparse.Namespace, action: str) -> int:
    """cancel or retry: the tasks that the action applies to, confirmed when they were a selection."""
    chosen, selected = await _select(ctx, args)
    todo: list[Obj] = []
    for task in chosen:
        why = acts.actionable(task, action)
        if why is None:
            todo.append(task)
        elif not selected:
            ctx.err.print(f"asynctask/{name_of(task)} {why}", highlight=False)
    if not todo:
        ctx.err.print(f"nothing to {action}", highlight=False)
        return 0 if selected else ERROR
    if selected and not args.yes:
        where = "all namespaces" if ctx.all_namespaces else f"namespace '{ctx.namespace}'"
        count = f"{len(todo)} task{'s' if len(todo) != 1 else ''}"
        show(ctx.err, render.tasks_table(todo, ctx.now(), all_namespaces=ctx.all_namespaces))
        if not ctx.interactive:
            raise CliError(f"{count} selected in {where}; add --yes to {action} them (no terminal to confirm at)")
        answer = ctx.ask(f"{action.capitalize()} {count} in {where}? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            ctx.err.print("nothing done", highlight=False)
            return ERROR
    value = stamp(ctx.now(), micro=True)
    for task in todo:
        if action == "cancel":
            await patch(ctx, ASYNCTASKS, task, acts.cancel_task())
            ctx.out.print(f"asynctask/{name_of(task)} cancel requested", highlight=False)
        else:
            await patch(ctx, ASYNCTASKS, task, acts.retry_task(value))
            ctx.out.print(f"asynctask/{name_of(task)} retry requested", highlight=False)
    return 0


# ---------------------------------------------------------------------- queues, schedules


async def queue(ctx: Context, args: argparse.Namespace) -> int:
    if args.queue_command == "list":
        queues = await list_all(ctx, TASKQUEUES, ctx.list_namespace)
        return _listed(
            ctx, queues, args.output, "taskqueue", False,
            lambda: render.queues_table(queues, ctx.now(), all_namespaces=ctx.all_namespaces),
        )  # fmt: skip
    if args.queue_command == "pending":
        views = [TaskView.of(t) for t in await list_all(ctx, ASYNCTASKS, ctx.namespace)]
        positions = queue_positions(v.waiting for v in views if v.waiting is not None)
        by_name = {v.name: v for v in views}
        ordered = sorted(
            ((p, by_name[n]) for (q, n), p in positions.items() if q == args.name), key=lambda item: item[0]
        )
        if args.output == "name":
            ctx.out.out("".join(f"asynctask/{v.name}\n" for _, v in ordered), end="")
            return 0
        if args.output in ("json", "yaml"):
            rows = [{"position": p, "name": v.name, "priority": v.priority} for p, v in ordered]
            document = {"queue": args.name, "namespace": ctx.namespace, "pending": rows}
            ctx.out.out(
                json.dumps(document, indent=4) if args.output == "json" else yaml.safe_dump(document, sort_keys=False),
                end="\n" if args.output == "json" else "",
            )
            return 0
        if not ordered:
            ctx.err.print(f"no task waits in queue '{args.name}' in namespace '{ctx.namespace}'", highlight=False)
            return 0
        show(ctx.out, render.pending_table(ordered, ctx.now()))
        return 0
    paused = args.queue_command == "pause"
    target = await get(ctx, TASKQUEUES, args.name)
    await patch(ctx, TASKQUEUES, target, acts.pause_queue(paused))
    ctx.out.print(f"taskqueue/{args.name} {'paused' if paused else 'resumed'}", highlight=False)
    return 0


async def schedule(ctx: Context, args: argparse.Namespace) -> int:
    if args.schedule_command == "list":
        schedules = await list_all(ctx, SCHEDULEDTASKS, ctx.list_namespace)
        return _listed(
            ctx, schedules, args.output, "scheduledtask", False,
            lambda: render.schedules_table(schedules, ctx.now(), all_namespaces=ctx.all_namespaces),
        )  # fmt: skip
    target = await get(ctx, SCHEDULEDTASKS, args.name)
    if args.schedule_command == "run":
        value = stamp(ctx.now(), micro=True)
        await patch(ctx, SCHEDULEDTASKS, target, acts.run_schedule_now(value))
        ctx.out.print(
            f"scheduledtask/{args.name} run requested: asynctask/{manual_run_name(args.name, value)}", highlight=False
        )
        return 0
    suspend = args.schedule_command == "suspend"
    await patch(ctx, SCHEDULEDTASKS, target, acts.suspend_schedule(suspend))
    ctx.out.print(f"scheduledtask/{args.name} {'suspended' if suspend else 'resumed'}", highlight=False)
    return 0


# ---------------------------------------------------------------------- stats, version


async def stats(ctx: Context, args: argparse.Namespace) -> int:
    tasks = await list_all(ctx, ASYNCTASKS, ctx.list_namespace)
    until = ctx.now().timestamp()
    since = until - parse_duration(args.since, "--since") if args.since else None
    all_facts = [TaskView.of(t).facts() for t in tasks]
    groups = summarize(all_facts, since=since, until=until, group_by=args.by)
    window = window_of([f for f in all_facts if f.created <= until], since, until)
    inside = [
        t for t, f in zip(tasks, all_facts, strict=True) if (since is None or f.created >= since) and f.created <= until
    ]
    reasons = selection.failure_reasons(inside)
    if args.output in ("json", "yaml"):
        document = {
            "since": _moment(window.since),
            "until": _moment(window.until),
            "groupBy": args.by,  # the gateway's /statistics answer, field for field
            "groups": [
                {"key": k, **{to_camel(f): n for f, n in dataclasses.asdict(v).items()}} for k, v in groups.items()
            ],
            "failuresByReason": reasons,
        }
        text = (
            json.dumps(document, indent=4) + "\n"
            if args.output == "json"
            else yaml.safe_dump(document, sort_keys=False)
        )
        ctx.out.out(text, end="")
        return 0
    where = "all namespaces" if ctx.all_namespaces else f"namespace '{ctx.namespace}'"
    span = f"from {_moment(window.since)} " if window.since is not None else ""
    ctx.out.print(f"Tasks created {span}to {_moment(window.until)} in {where}", highlight=False)
    ctx.out.print("(over the tasks still present: finished tasks are deleted after their TTL)\n", highlight=False)
    if not any(figures.total for figures in groups.values()):
        ctx.out.print("no tasks were created in that window", highlight=False)
        return 0
    show(ctx.out, render.stats_table(groups, args.by))
    if reasons:
        ctx.out.print()
        show(ctx.out, render.reasons_table(reasons))
    return 0


def _moment(seconds: float | None) -> str | None:
    return None if seconds is None else stamp(dt.datetime.fromtimestamp(seconds, dt.UTC))


async def version(ctx: Context, args: argparse.Namespace) -> int:
    ctx.out.print(
        f"kubectl-asynctask {__version__} (asynctask.dev/v1alpha1, Python {sys.version.split()[0]})", highlight=False
    )
    return 0
