"""The plugin's commands: each reads the parsed flags, talks to the API through the adapters, prints, and
returns the exit code. Decisions are elsewhere (selection, render, the core); these only do the I/O."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime as dt
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import yaml
from pydantic.alias_generators import to_camel
from rich.console import Console
from rich.live import Live

from asynctask_operator import __version__
from asynctask_operator.adapters.api import Kube, PodLogs
from asynctask_operator.adapters.kube import (
    ASYNCTASKS,
    EVENTS,
    PODS,
    SCHEDULEDTASKS,
    TASKQUEUES,
    TASKTYPES,
    ApiError,
    Conflict,
    NotFound,
    Resource,
)
from asynctask_operator.adapters.reflector import reflect
from asynctask_operator.core import acts, labelselectors
from asynctask_operator.core.idempotency import task_name_for_key, valid_key
from asynctask_operator.core.models import TaskType
from asynctask_operator.core.naming import LABEL_TASK, label_value, manual_run_name
from asynctask_operator.core.queueing import queue_positions
from asynctask_operator.core.statistics import summarize, window_of
from asynctask_operator.core.timestamps import stamp
from asynctask_operator.core.validation import Refusal, check_payload
from asynctask_operator.core.wire import attempt_pods, event_about, facts_in, latest_pod, waiting_in
from asynctask_operator.kubectl import render, selection
from asynctask_operator.kubectl.errors import ERROR, TIMED_OUT, CliError, refused
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

Obj = dict[str, Any]
SELF_SUBJECT_REVIEWS = Resource("authentication.k8s.io", "v1", "selfsubjectreviews")
TICK_SECONDS = 1.0  # the live view's elapsed clock moves this often (a redraw, not a request)


@dataclasses.dataclass
class Context:
    connect: Callable[[], Kube]
    """Makes the API client, at the first request: bad input is reported before any connection."""
    namespace: str
    all_namespaces: bool
    out: Console
    err: Console
    now: Callable[[], dt.datetime]
    live: bool
    """Standard output is a terminal: progress redraws in place."""
    interactive: bool
    """Standard input is a terminal: a selection may be confirmed at a prompt."""
    ask: Callable[[str], str] = input
    environ: Mapping[str, str] = dataclasses.field(default_factory=lambda: os.environ)
    """Where ``submit`` finds TRACEPARENT/TRACESTATE."""

    _api: Kube | None = None

    @property
    def api(self) -> Kube:
        if self._api is None:
            self._api = self.connect()
        return self._api

    @property
    def list_namespace(self) -> str | None:
        return None if self.all_namespaces else self.namespace


def show(console: Console, renderable: Any) -> None:
    """Print a table as kubectl does: no trailing blanks on a line (rich pads every cell to its column)."""
    with console.capture() as captured:
        console.print(renderable)
    console.file.write("".join(line.rstrip() + "\n" for line in captured.get().splitlines()))
    console.file.flush()


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


def _name(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("name") or "")


def _ns(obj: Obj, default: str) -> str:
    return str((obj.get("metadata") or {}).get("namespace") or default)


# ---------------------------------------------------------------------- submit, wait


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
        await _check_type(ctx, _ns(task, ctx.namespace), task)
    if args.idempotency_key is not None:
        name = task_name_for_key(_ns(tasks[0], ctx.namespace), await whoami(ctx), args.idempotency_key)
        meta = {k: v for k, v in tasks[0]["metadata"].items() if k != "generateName"}
        tasks = [{**tasks[0], "metadata": {**meta, "name": name}}]
    created: list[Obj] = []
    for task in tasks:
        ns = _ns(task, ctx.namespace)
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
        (ctx.err if args.wait else ctx.out).print(f"asynctask/{_name(obj)} {verb}", highlight=False)
    if not args.wait:
        return 0
    timeout = parse_duration(args.timeout, "--timeout") if args.timeout else None
    code = 0
    for ns in dict.fromkeys(_ns(t, ctx.namespace) for t in created):
        mine = [t for t in created if _ns(t, ctx.namespace) == ns]
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
            if show and printed.get(_name(task)) != change:
                printed[_name(task)] = change
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
        waiting = ", ".join(f"{_name(t)} ({render.phase(t)})" for t in late.tasks if not render.finished(t))
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


# ---------------------------------------------------------------------- get, describe, logs


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
        tasks = [await get(ctx, ASYNCTASKS, name) for name in args.names]
    else:
        tasks = await list_all(ctx, ASYNCTASKS, ctx.list_namespace, args.selector)
    tasks = [t for t in tasks if selection.matches(t, type_=args.type, queue=args.queue, phases=phases)]
    if _print_objects(ctx, tasks, args.output, "asynctask", single=len(args.names) == 1):
        return 0
    if not tasks:
        return _nothing(ctx)
    show(ctx.out, render.tasks_table(tasks, ctx.now(), wide=args.output == "wide", all_namespaces=ctx.all_namespaces))
    return 0


async def describe(ctx: Context, args: argparse.Namespace) -> int:
    for i, name in enumerate(args.names):
        task = await get(ctx, ASYNCTASKS, name)
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
        show(ctx.out, render.describe_task(task, pods, events, ctx.now()))
    return 0


async def _pod_of(ctx: Context, name: str, attempt: int) -> Obj | None:
    return latest_pod(await list_all(ctx, PODS, ctx.namespace, attempt_pods(name, attempt)))


def _started(pod: Obj) -> bool:
    return str((pod.get("status") or {}).get("phase") or "") in ("Running", "Succeeded", "Failed")


async def logs(ctx: Context, args: argparse.Namespace) -> int:
    api: Any = ctx.api
    if not hasattr(api, "pod_log"):
        raise CliError("this API client cannot read pod logs")
    reader: PodLogs = api
    task = await get(ctx, ASYNCTASKS, args.name)
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
            ctx.err.print(f"==> attempt {attempt}: pod/{_name(pod)} <==", highlight=False)
        try:
            async for line in reader.pod_log(ctx.namespace, _name(pod), container=args.container, follow=args.follow):
                ctx.out.out(line, highlight=False)
        except ApiError as exc:
            raise refused(exc, "get", "pods/log", ctx.namespace, _name(pod)) from None
        if not args.follow or args.attempt:
            return 0
        task = await get(ctx, ASYNCTASKS, args.name)
        if render.finished(task) and int((task.get("status") or {}).get("attempt") or 0) <= attempt:
            return 0
        attempt += 1  # a retry: follow the next attempt's pod


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
        why = selection.actionable(task, action)
        if why is None:
            todo.append(task)
        elif not selected:
            ctx.err.print(f"asynctask/{_name(task)} {why}", highlight=False)
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
            ctx.out.print(f"asynctask/{_name(task)} cancel requested", highlight=False)
        else:
            await patch(ctx, ASYNCTASKS, task, acts.retry_task(value))
            ctx.out.print(f"asynctask/{_name(task)} retry requested", highlight=False)
    return 0


# ---------------------------------------------------------------------- queues, schedules


async def queue(ctx: Context, args: argparse.Namespace) -> int:
    if args.queue_command == "list":
        queues = await list_all(ctx, TASKQUEUES, ctx.list_namespace)
        if _print_objects(ctx, queues, args.output, "taskqueue", single=False):
            return 0
        if not queues:
            return _nothing(ctx)
        show(ctx.out, render.queues_table(queues, ctx.now(), all_namespaces=ctx.all_namespaces))
        return 0
    if args.queue_command == "pending":
        tasks = await list_all(ctx, ASYNCTASKS, ctx.namespace)
        positions = queue_positions(w for w in map(waiting_in, tasks) if w is not None)
        by_name = {_name(t): t for t in tasks}
        ordered = sorted((p, by_name[n]) for (q, n), p in positions.items() if q == args.name)
        if args.output == "name":
            ctx.out.out("".join(f"asynctask/{_name(t)}\n" for _, t in ordered), end="")
            return 0
        if args.output in ("json", "yaml"):
            rows = [
                {"position": p, "name": _name(t), "priority": (t.get("spec") or {}).get("priority") or 0}
                for p, t in ordered
            ]
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
        if _print_objects(ctx, schedules, args.output, "scheduledtask", single=False):
            return 0
        if not schedules:
            return _nothing(ctx)
        show(ctx.out, render.schedules_table(schedules, ctx.now(), all_namespaces=ctx.all_namespaces))
        return 0
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
    all_facts = [facts_in(t) for t in tasks]
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
