"""``kubectl asynctask history``: finished tasks past their TTL, newest first, from the archive.

kubectl asynctask history [-n NS | -A] [--type T] [--queue Q] [--phase P] [--reason R] [-l SEL]
                          [--since 7d] [--q TEXT] [--limit 50] [-o wide|json|yaml|name]

Read through the API server (:mod:`~asynctask_operator.kubectl.archived`), a page at a time (the
archive's keyset ``continue``) until ``--limit`` tasks; shown as ``get`` shows live tasks, through the
same view, so every figure reads the same.
"""

from __future__ import annotations

import argparse
import datetime as dt

from asynctask_operator.core.timestamps import stamp
from asynctask_operator.kubectl import render
from asynctask_operator.kubectl.archived import archive_of
from asynctask_operator.kubectl.context import Context, show
from asynctask_operator.kubectl.inputs import BadInput, parse_duration
from asynctask_operator.kubectl.selection import PHASES

DEFAULT_LIMIT = 50
PAGE = 500
"""The most tasks one request asks for (the gateway's own bound on a page)."""


def add_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    text = "finished tasks past their TTL, newest first, from the archive (the chart's gateway and archive)"
    history = sub.add_parser("history", help=text, description=text, parents=[common])
    history.add_argument("-A", "--all-namespaces", action="store_true", help="every namespace")
    history.add_argument("--type", help="only tasks of this TaskType")
    history.add_argument("--queue", help="only tasks of this TaskQueue")
    history.add_argument("--phase", help=f"only tasks that ended so ({', '.join(PHASES[3:])})")
    history.add_argument(
        "--reason", help="only tasks that ended with this reason (RetriesExhausted, DeadlineExceeded…)"
    )
    history.add_argument("-l", "--selector", help="label selector (a=b,c!=d)")
    history.add_argument("--since", metavar="DURATION", help="created this long ago or later (7d, 12h)")
    history.add_argument("--q", metavar="TEXT", help="only tasks whose name holds TEXT")
    history.add_argument(
        "--limit", type=int, default=DEFAULT_LIMIT, metavar="N", help="at most N tasks (default: %(default)s)"
    )
    history.add_argument(
        "-o", "--output", choices=("wide", "json", "yaml", "name"), help="output format (default: a table)"
    )


def filters(args: argparse.Namespace, now: dt.datetime) -> list[tuple[str, str]]:
    """The history's query parameters, checked; :class:`BadInput` naming the flag.

    >>> filters(argparse.Namespace(type="video", queue=None, phase="Failed", reason=None, selector="app=web",
    ...                            since="1d", q=None, limit=5), dt.datetime(2026, 1, 2, tzinfo=dt.UTC))
    [('type', 'video'), ('phase', 'Failed'), ('labelSelector', 'app=web'), ('since', '2026-01-01T00:00:00Z')]
    """
    if args.phase is not None and args.phase not in PHASES:
        raise BadInput(f"--phase: {args.phase!r} is not a phase ({', '.join(PHASES)})")
    if args.limit < 1:
        raise BadInput(f"--limit: {args.limit} is not a number of tasks (1 or more)")
    since = None
    if args.since:
        since = stamp(now - dt.timedelta(seconds=parse_duration(args.since, "--since")))
    given = [("type", args.type), ("queue", args.queue), ("phase", args.phase), ("reason", args.reason),
             ("labelSelector", args.selector), ("since", since), ("q", args.q)]  # fmt: skip
    return [(key, value) for key, value in given if value]


async def history(ctx: Context, args: argparse.Namespace) -> int:
    query = filters(args, ctx.now())
    archive = archive_of(ctx)
    tasks: list[dict[str, object]] = []
    token = ""
    while len(tasks) < args.limit:
        page = [("limit", str(min(PAGE, args.limit - len(tasks))))] + ([("continue", token)] if token else [])
        items, token = await archive.page(ctx.list_namespace, query + page)
        tasks.extend(items)
        if not token:
            break
    if args.output in ("json", "yaml", "name"):
        ctx.out.out(render.machine(tasks, args.output, "archivedtask", single=False), end="", highlight=False)
        return 0
    if not tasks:
        where = "in any namespace" if ctx.all_namespaces else f"in {ctx.namespace} namespace"
        ctx.err.print(f"No archived tasks found {where}.", highlight=False)
        return 0
    show(ctx.out, render.tasks_table(tasks, ctx.now(), wide=args.output == "wide", all_namespaces=ctx.all_namespaces))
    if token:
        ctx.err.print(f"(the newest {len(tasks)}; --limit N for more)", highlight=False)
    return 0
