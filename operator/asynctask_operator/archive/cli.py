"""``asynctask-archive``: record finished AsyncTasks, their results and attempt logs into a database.

asynctask-archive [--dsn URL | --dsn-file FILE] [--namespace NS]... [--retention 90d] [--leader-elect] ...
asynctask-archive migrate [--dsn URL | --dsn-file FILE]

With no flags it records every namespace of the current kubeconfig's cluster into the SQLite file
``asynctask-archive.db`` in the working directory. The DSN comes from ``--dsn``, else the file
``--dsn-file`` (a mounted Secret), else ``$ASYNCTASK_ARCHIVE_DSN``; it is never logged with its password.
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import contextlib
import dataclasses
import inspect
import itertools
import logging
import os
import re
import signal
import sys
import textwrap
from collections.abc import Sequence
from typing import Any

from asynctask_operator import __version__
from asynctask_operator.archive.database import BadDsn, engine_of, migrate, revision, safe_dsn, url_of
from asynctask_operator.archive.settings import ArchiveSettings
from asynctask_operator.logs import setup_logging

DEFAULTS = ArchiveSettings()
DSN_ENV = "ASYNCTASK_ARCHIVE_DSN"
USER_AGENT = f"asynctask-archive/{__version__}"
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}

# flag -> setting, for the flags made from ArchiveSettings' fields (their help is the field's docstring)
FLAGS: dict[str, str] = {
    "--kubeconfig": "kubeconfig",
    "--context": "context",
    "--batch-size": "batch_size",
    "--batch-latency": "batch_latency_seconds",
    "--max-waiting": "max_waiting",
    "--max-backoff": "max_backoff_seconds",
    "--log-limit": "log_limit_bytes",
    "--log-concurrency": "log_concurrency",
    "--retention-interval": "retention_interval_seconds",
    "--retention-batch": "retention_batch",
    "--http-port": "http_port",
    "--lease-name": "lease_name",
    "--lease-duration": "lease_seconds",
    "--renew-deadline": "renew_deadline",
    "--retry-period": "retry_period",
}


def duration(text: str) -> float:
    """Seconds of ``90d``, ``12h``, ``30m``, ``45s`` or a plain number of seconds."""
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", text)
    if found is None:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 90d, 12h, 30m, 3600)")
    return float(found[1]) * UNITS.get(found[2] or "s", 1)


def namespace_duration(text: str) -> tuple[str, float]:
    namespace, sep, value = text.partition("=")
    if not sep or not re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", namespace):
        raise argparse.ArgumentTypeError(f"expected NAMESPACE=DURATION (e.g. audit=365d), got {text!r}")
    return namespace, duration(value)


def _docs() -> dict[str, str]:
    """The docstring under each field of ArchiveSettings (the settings are documented there)."""
    [body] = ast.parse(textwrap.dedent(inspect.getsource(ArchiveSettings))).body
    assert isinstance(body, ast.ClassDef)
    docs: dict[str, str] = {}
    for field, doc in itertools.pairwise(body.body):
        documented = isinstance(doc, ast.Expr) and isinstance(doc.value, ast.Constant)
        if isinstance(field, ast.AnnAssign) and isinstance(field.target, ast.Name) and documented:
            text = doc.value.value  # type: ignore[attr-defined]
            if isinstance(text, str):
                docs[field.target.id] = " ".join(inspect.cleandoc(text).split()).replace("%", "%%")
    flags = {setting: flag for flag, setting in FLAGS.items()} | SPECIAL
    return {name: re.sub(r"``([^`]+)``", lambda m: flags.get(m[1], m[1]), doc) for name, doc in docs.items()}


SPECIAL = {"lease_namespace": "--lease-namespace", "retention_seconds": "--retention"}
"""Settings whose flags are not made from FLAGS: how a docstring that names them spells them."""


def _dsn_flags(parser: argparse.ArgumentParser, docs: dict[str, str]) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--dsn", metavar="URL", help=f"{docs['dsn']} (default: ${DSN_ENV}, else {DEFAULTS.dsn})")
    source.add_argument("--dsn-file", metavar="FILE", help="read the database URL from this file (a mounted Secret)")


def parser() -> argparse.ArgumentParser:
    docs = _docs()
    p = argparse.ArgumentParser(prog="asynctask-archive", description=__doc__.split("\n\n")[0].replace("``", ""))
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _dsn_flags(p, docs)
    p.add_argument("--namespace", "-n", action="append", default=[], help=f"{docs['namespaces']} (repeatable)")
    defaults = dataclasses.asdict(DEFAULTS)
    for flag, setting in FLAGS.items():
        default = defaults[setting]
        kind = type(default) if default is not None else str
        unit = next((u.upper() for u in ("seconds", "bytes") if setting.endswith(f"_{u}")), None)
        unit = unit or ("SECONDS" if setting in ("renew_deadline", "retry_period") else None)
        shown = f" (default: {default:g})" if isinstance(default, float) else f" (default: {default})"
        p.add_argument(
            flag, type=kind, default=default, metavar=unit, help=docs[setting] + ("" if default is None else shown)
        )
    p.add_argument("--no-migrate", dest="migrate", action="store_false", help=docs["migrate"])
    p.add_argument("--record-phases", action="store_true", help=docs["record_phases"])
    p.add_argument("--retention", type=duration, default=DEFAULTS.retention_seconds, metavar="DURATION",
                   help=f"{docs['retention_seconds']} (e.g. 90d, 12h; default: 90d)")  # fmt: skip
    p.add_argument("--retention-for", action="append", default=[], type=namespace_duration, metavar="NS=DURATION",
                   help=f"{docs['retention_overrides']} (repeatable)")  # fmt: skip
    p.add_argument("--leader-elect", action="store_true", help=docs["leader_elect"])
    p.add_argument("--lease-namespace", default=os.environ.get("POD_NAMESPACE") or DEFAULTS.lease_namespace,
                   help=f"{docs['lease_namespace']} (default: $POD_NAMESPACE, else default)")  # fmt: skip
    p.add_argument("--log-format", choices=["auto", "json", "text"], default="auto",
                   help="One JSON object a line, or text; auto: text on a terminal, else JSON. (default: %(default)s)")  # fmt: skip
    p.add_argument("--verbose", "-v", action="store_true", help="Log at DEBUG.")
    return p


def migrate_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="asynctask-archive migrate", description="bring the database's schema up to date")
    _dsn_flags(p, _docs())
    return p


def dsn_of(args: argparse.Namespace) -> str:
    if args.dsn:
        return str(args.dsn)
    if args.dsn_file:
        try:
            with open(args.dsn_file) as file:
                return file.read().strip()
        except OSError as exc:
            raise SystemExit(f"--dsn-file: {exc.strerror}: {args.dsn_file}") from None
    return os.environ.get(DSN_ENV) or DEFAULTS.dsn


def settings_of(args: argparse.Namespace) -> ArchiveSettings:
    values: dict[str, Any] = {setting: getattr(args, flag[2:].replace("-", "_")) for flag, setting in FLAGS.items()}
    settings = ArchiveSettings(
        dsn=dsn_of(args),
        namespaces=tuple(args.namespace),
        migrate=args.migrate,
        record_phases=args.record_phases,
        retention_seconds=args.retention,
        retention_overrides=tuple(args.retention_for),
        leader_elect=args.leader_elect,
        lease_namespace=args.lease_namespace,
        **values,
    )
    try:
        url_of(settings.dsn)
    except BadDsn as exc:
        raise SystemExit(f"--dsn: {exc}") from None
    if not settings.retry_period < settings.renew_deadline < settings.lease_seconds:
        raise SystemExit("--retry-period < --renew-deadline < --lease-duration must hold")
    return settings


async def _migrate_only(dsn: str) -> int:
    engine = engine_of(dsn)
    try:
        await migrate(engine)
        print(f"{safe_dsn(dsn)}: schema at revision {await revision(engine)}")
    finally:
        await engine.dispose()
    return 0


async def _run(settings: ArchiveSettings) -> None:
    from asynctask_operator.adapters.kubeclient import KubeClient
    from asynctask_operator.adapters.kubeconfig import load_configuration
    from asynctask_operator.archive.process import Archiver

    api = KubeClient(load_configuration(settings.kubeconfig, settings.context), concurrency=8, user_agent=USER_AGENT)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    try:
        await Archiver(api, settings).run(stop)
    finally:
        api.close()


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["migrate"]:
        args = migrate_parser().parse_args(argv[1:])
        setup_logging("text" if sys.stderr.isatty() else "json")
        return asyncio.run(_migrate_only(dsn_of(args)))
    args = parser().parse_args(argv)
    setup_logging(args.log_format, args.verbose)
    logging.getLogger("aiosqlite").setLevel(logging.INFO)  # its DEBUG is a line per statement
    asyncio.run(_run(settings_of(args)))
    return 0
