"""``kubectl asynctask``: submit, follow and manage AsyncTasks from a terminal.

kubectl asynctask submit -f task.yaml --wait
kubectl asynctask submit --type TYPE --payload JSON|@FILE [--queue Q --priority N ...] [--wait [--timeout 10m]]
kubectl asynctask wait NAME... [--for Succeeded|finished] [--timeout 10m]
kubectl asynctask get|list [NAME...] [--type T --queue Q --phase P -l SEL -A -o wide|json|yaml|name]
kubectl asynctask describe NAME...
kubectl asynctask logs NAME [--attempt N] [-f]
kubectl asynctask history [-A] [--type T --queue Q --phase P --reason R -l SEL --since 7d --q TEXT --limit N -o ...]
kubectl asynctask cancel|retry NAME...|-l SEL|--phase P|--type T [--yes]
kubectl asynctask queue list|pending NAME|pause NAME|resume NAME
kubectl asynctask schedule list|suspend NAME|resume NAME|run NAME
kubectl asynctask stats [--since 24h] [--by type|queue]
kubectl asynctask version

Exit codes: 0 succeeded, 1 a task Failed, 2 a task was Cancelled, 3 timed out waiting,
4 bad input or the API server refused (nothing was waited for).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

import kubernetes.config
from rich.console import Console

from asynctask_operator import __version__
from asynctask_operator.adapters.api import Kube
from asynctask_operator.adapters.kubeclient import KubeClient, RetryPolicy
from asynctask_operator.adapters.kubeconfig import default_namespace, load_configuration
from asynctask_operator.kubectl import commands, history, pods, submitting
from asynctask_operator.kubectl.context import Context
from asynctask_operator.kubectl.errors import ERROR, INTERRUPTED, CliError
from asynctask_operator.kubectl.inputs import BadInput
from asynctask_operator.kubectl.selection import PHASES

USER_AGENT = f"kubectl-asynctask/{__version__}"
PIPE_WIDTH = 250  # where the output is not a terminal: tables are not cut to 80 columns
CLI_RETRY = RetryPolicy(attempts=3, base_seconds=0.2, max_seconds=2.0, request_timeout=30.0)
"""A person waits at the prompt: fewer, shorter retries than the operator's."""


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error exits with the plugin's error code (argparse's 2 means Cancelled here)."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(ERROR, f"{self.prog}: error: {message}\n")


def _common() -> Parser:
    """kubectl's flags, on every command (after its name, as kubectl passes them to a plugin)."""
    common = Parser(add_help=False)
    group = common.add_argument_group("kubectl flags")
    group.add_argument("-n", "--namespace", help="the namespace (default: the context's, else 'default')")
    group.add_argument("--context", help="the kubeconfig context to use")
    group.add_argument("--kubeconfig", help="path of the kubeconfig file (default: $KUBECONFIG, ~/.kube/config)")
    return common


def _listing(parser: argparse.ArgumentParser, *, outputs: Sequence[str] = ("wide", "json", "yaml", "name")) -> None:
    parser.add_argument("-A", "--all-namespaces", action="store_true", help="every namespace")
    parser.add_argument("-o", "--output", choices=outputs, help="output format (default: a table)")


def _filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-l", "--selector", help="label selector (a=b,c!=d)")
    parser.add_argument("--type", help="only tasks of this TaskType")
    parser.add_argument("--queue", help="only tasks in this TaskQueue")
    parser.add_argument("--phase", help=f"only tasks in these phases, comma-separated ({', '.join(PHASES)})")


def parser() -> argparse.ArgumentParser:
    common = _common()
    top = Parser(
        prog="kubectl asynctask",
        description="Submit, follow and manage AsyncTasks from a terminal.",
        epilog="Exit codes: 0 succeeded, 1 failed, 2 cancelled, 3 timed out waiting, 4 bad input or refused.",
    )
    top.add_argument("--version", action="version", version=f"kubectl-asynctask {__version__}")
    sub = top.add_subparsers(dest="command", required=True, parser_class=Parser)

    def command(name: str, text: str, aliases: Sequence[str] = ()) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=text, description=text, parents=[common], aliases=list(aliases))

    submit = command("submit", "create AsyncTasks (from a file, or from flags), and optionally wait for them")
    submit.add_argument("-f", "--filename", dest="file", help="YAML or JSON file of AsyncTasks ('-': stdin)")
    submit.add_argument("--type", help="the TaskType to run (instead of -f)")
    submit.add_argument("--payload", help="the payload: JSON text, or @FILE holding JSON (@-: stdin)")
    submit.add_argument("--name", help="the task's name (default: TYPE- and a suffix the API server picks)")
    submit.add_argument("-L", "--label", action="append", default=[], metavar="KEY=VALUE", help="a label (repeatable)")
    submit.add_argument("--queue", help="spec.queue: the TaskQueue")
    submit.add_argument("--priority", type=int, help="spec.priority: higher is admitted first")
    submit.add_argument("--attempt-timeout", metavar="DURATION", help="spec.timeoutSeconds: bound on one attempt (30m)")
    submit.add_argument("--deadline", metavar="DURATION", help="spec.deadlineSeconds: bound on the whole task (2h)")
    submit.add_argument("--retries", type=int, help="spec.retry.maxRetries: retries after the first attempt")
    submit.add_argument("--ttl", metavar="DURATION", help="spec.ttlSecondsAfterFinished (7d)")
    submit.add_argument(
        "--idempotency-key",
        metavar="KEY",
        help="submitting again with the same key creates no second task (the gateway's Idempotency-Key naming)",
    )
    submit.add_argument("-w", "--wait", action="store_true", help="follow the tasks until they finish, with progress")
    submit.add_argument("--timeout", metavar="DURATION", help="with --wait: stop waiting after this long (exit 3)")

    wait = command("wait", "wait for tasks to finish, showing their progress")
    wait.add_argument("names", nargs="+", metavar="NAME")
    wait.add_argument(
        "--for",
        dest="for_",
        default="Succeeded",
        metavar="Succeeded|finished",
        help="Succeeded: the exit code says how each ended; finished: exit 0 once all have ended (default: %(default)s)",
    )
    wait.add_argument("--timeout", metavar="DURATION", help="stop waiting after this long (exit 3)")
    wait.add_argument("--no-progress", dest="progress", action="store_false", help="print only the outcome")

    for name, aliases in (("get", ["list"]),):
        get = command(name, "list tasks, or show the named ones", aliases)
        get.add_argument("names", nargs="*", metavar="NAME")
        _filters(get)
        _listing(get)

    describe = command("describe", "everything about tasks: attempts, Jobs and pods, callback, Events")
    describe.add_argument("names", nargs="+", metavar="NAME")

    logs = command("logs", "the log of a task's attempt (the latest, or --attempt N)")
    logs.add_argument("name", metavar="NAME")
    logs.add_argument("--attempt", type=int, help="this attempt's pod (default: the latest)")
    logs.add_argument(
        "-f", "--follow", action="store_true", help="follow the log, and the next attempt's after a retry"
    )
    logs.add_argument("-c", "--container", help="the container (default: the pod's only one)")

    history.add_parser(sub, common)

    for name, text in (
        ("cancel", "cancel tasks that have not finished (spec.cancel: true)"),
        ("retry", "run Failed or Cancelled tasks again (annotation asynctask.dev/retry-requested)"),
    ):
        act = command(name, text)
        act.add_argument("names", nargs="*", metavar="NAME")
        _filters(act)
        act.add_argument("-A", "--all-namespaces", action="store_true", help="select in every namespace")
        act.add_argument("-y", "--yes", action="store_true", help="do not ask to confirm a selection")

    queue = command("queue", "TaskQueues: list, the admission order of one, pause, resume")
    queues = queue.add_subparsers(dest="queue_command", required=True, parser_class=Parser)
    _listing(queues.add_parser("list", help="the TaskQueues", parents=[common]), outputs=("json", "yaml", "name"))
    pending = queues.add_parser("pending", help="the tasks waiting in a queue, in admission order", parents=[common])
    pending.add_argument("name", metavar="QUEUE")
    pending.add_argument("-o", "--output", choices=("json", "yaml", "name"))
    for name in ("pause", "resume"):
        queues.add_parser(name, help=f"{name} admission (spec.paused)", parents=[common]).add_argument(
            "name", metavar="QUEUE"
        )

    schedule = command("schedule", "ScheduledTasks: list, suspend, resume, run now")
    schedules = schedule.add_subparsers(dest="schedule_command", required=True, parser_class=Parser)
    _listing(
        schedules.add_parser("list", help="the ScheduledTasks", parents=[common]), outputs=("json", "yaml", "name")
    )
    for name, text in (
        ("suspend", "create no more tasks (spec.suspend: true)"),
        ("resume", "create tasks on schedule again"),
        ("run", "create one task now (annotation asynctask.dev/run-now)"),
    ):
        schedules.add_parser(name, help=text, parents=[common]).add_argument("name", metavar="NAME")

    stats = command("stats", "totals, success rate, p50/p95 duration, mean queue wait, failures by reason")
    stats.add_argument(
        "--since", default="24h", metavar="DURATION", help="tasks created this long ago or later (default: %(default)s)"
    )
    stats.add_argument("--by", choices=("type", "queue"), help="one row per type or per queue")
    _listing(stats, outputs=("json", "yaml"))

    command("version", "the plugin's version")
    return top


COMMANDS: dict[str, Callable[[Context, argparse.Namespace], Any]] = {
    "submit": submitting.submit,
    "wait": submitting.wait,
    "get": commands.get_tasks,
    "list": commands.get_tasks,
    "describe": pods.describe,
    "logs": pods.logs,
    "history": history.history,
    "cancel": lambda ctx, args: commands.act(ctx, args, "cancel"),
    "retry": lambda ctx, args: commands.act(ctx, args, "retry"),
    "queue": commands.queue,
    "schedule": commands.schedule,
    "stats": commands.stats,
    "version": commands.version,
}


async def run(
    argv: Sequence[str],
    *,
    api: Kube | None = None,
    out: Console | None = None,
    err: Console | None = None,
    now: Callable[[], dt.datetime] | None = None,
    interactive: bool | None = None,
    ask: Callable[[str], str] = input,
) -> int:
    """Parse ``argv`` and run the command against ``api`` (default: the kubeconfig's cluster); the exit code."""
    args = parser().parse_args(argv)
    if out is None:
        out = Console(highlight=False)
        if not out.is_terminal:
            out.width = PIPE_WIDTH
    err = err or Console(stderr=True, highlight=False)
    clients: list[KubeClient] = []

    def connect() -> Kube:
        if api is not None:
            return api
        try:
            configuration = load_configuration(args.kubeconfig, args.context)
        except (kubernetes.config.ConfigException, OSError) as exc:
            raise CliError(f"no usable kubeconfig: {exc}") from None
        clients.append(KubeClient(configuration, concurrency=4, retry=CLI_RETRY, user_agent=USER_AGENT))
        return clients[0]

    try:
        namespace = args.namespace or (default_namespace(args.kubeconfig, args.context) if api is None else "default")
        ctx = Context(
            connect=connect,
            namespace=namespace,
            all_namespaces=bool(getattr(args, "all_namespaces", False)),
            out=out,
            err=err,
            now=now or (lambda: dt.datetime.now(dt.UTC)),
            live=out.is_terminal,
            interactive=sys.stdin.isatty() if interactive is None else interactive,
            ask=ask,
        )
        result: int = await COMMANDS[args.command](ctx, args)
        return result
    except BadInput as exc:
        err.print(f"error: {exc}", highlight=False, soft_wrap=True)
        return ERROR
    except CliError as exc:
        err.print(f"error: {exc.message}", highlight=False, soft_wrap=True)
        return exc.code
    finally:
        for client in clients:
            client.close()


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(message)s")  # a dropped watch says it reconnects
    try:
        return asyncio.run(run(sys.argv[1:] if argv is None else argv))
    except KeyboardInterrupt:
        return INTERRUPTED
    except BrokenPipeError:  # `kubectl asynctask get | head -1`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
