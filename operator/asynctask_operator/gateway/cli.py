"""``asynctask-gateway``: serve the HTTP gateway against the cluster of a kubeconfig (or in-cluster).

asynctask-gateway [--namespace NS]... [--kubeconfig PATH] [--context NAME] [--host H] [--port P]
                  [--max-body-bytes N] [--rate-limit R] [--allow-anonymous] [--trusted-header NAME]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
from collections.abc import Sequence

import uvicorn

from asynctask_operator import __version__
from asynctask_operator.adapters.kubeclient import KubeClient
from asynctask_operator.adapters.kubeconfig import load_configuration
from asynctask_operator.gateway.access import Gateway
from asynctask_operator.gateway.app import create_app
from asynctask_operator.gateway.settings import GatewaySettings
from asynctask_operator.logs import setup_logging

DEFAULTS = GatewaySettings()


def mapping(text: str) -> tuple[str, str]:
    """``order.created=fulfil`` -> ``("order.created", "fulfil")``."""
    ce_type, sep, task_type = text.partition("=")
    if not sep or not ce_type or not task_type:
        raise argparse.ArgumentTypeError(f"expected CE_TYPE=TASK_TYPE, got {text!r}")
    return ce_type, task_type


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="asynctask-gateway", description="The HTTP gateway of asynctask-operator.")
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    p.add_argument(
        "--namespace", "-n", action="append", default=[], help="a namespace to serve (repeatable); default: all"
    )
    p.add_argument("--kubeconfig", help="kubeconfig file (default: in-cluster, else ~/.kube/config)")
    p.add_argument("--context", help="kubeconfig context (default: the current one)")
    p.add_argument("--host", default=DEFAULTS.host, help=f"address to listen on (default {DEFAULTS.host})")
    p.add_argument("--port", type=int, default=DEFAULTS.port, help=f"port to listen on (default {DEFAULTS.port})")
    p.add_argument(
        "--max-body-bytes",
        type=int,
        default=DEFAULTS.max_body_bytes,
        metavar="BYTES",
        help=f"largest request body; 413 beyond (default {DEFAULTS.max_body_bytes})",
    )
    p.add_argument(
        "--rate-limit",
        type=float,
        default=DEFAULTS.rate_limit,
        metavar="PER_SECOND",
        help=f"requests a second per user; 429 beyond; 0: no limit (default {DEFAULTS.rate_limit:g})",
    )
    p.add_argument(
        "--rate-burst",
        type=int,
        default=DEFAULTS.rate_burst,
        metavar="REQUESTS",
        help=f"requests a user may make at once (default {DEFAULTS.rate_burst})",
    )
    p.add_argument(
        "--allow-anonymous",
        action="store_true",
        help="serve requests without a token as system:anonymous (still authorized per request)",
    )
    p.add_argument(
        "--trusted-header",
        metavar="HEADER",
        help="take the user from this header, set by an auth proxy; ONLY behind a proxy that sets it",
    )
    p.add_argument("--trusted-groups-header", metavar="HEADER", help="with --trusted-header: the groups' header")
    p.add_argument(
        "--cloudevent-type",
        action="append",
        default=[],
        type=mapping,
        metavar="CE_TYPE=TASK_TYPE",
        help="POST …/cloudevents: events of CE_TYPE create tasks of TASK_TYPE (repeatable)",
    )
    p.add_argument(
        "--cors-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="allow this origin by CORS (repeatable); default: CORS off",
    )
    p.add_argument(
        "--keepalive",
        type=float,
        default=DEFAULTS.keepalive_seconds,
        metavar="SECONDS",
        help=f"keep-alive comment interval on idle event streams (default {DEFAULTS.keepalive_seconds:g})",
    )
    p.add_argument(
        "--no-console", dest="console", action="store_false", help="do not serve the web console at /ui/"
    )
    p.add_argument(
        "--session-hours",
        type=float,
        default=DEFAULTS.session_seconds / 3600,
        metavar="HOURS",
        help=f"how long a console sign-in lasts (default {DEFAULTS.session_seconds / 3600:g})",
    )
    p.add_argument("--verbose", "-v", action="store_true", help="log at DEBUG")
    return p


def settings_of(args: argparse.Namespace) -> GatewaySettings:
    return dataclasses.replace(
        DEFAULTS,
        namespaces=tuple(args.namespace),
        kubeconfig=args.kubeconfig,
        context=args.context,
        host=args.host,
        port=args.port,
        max_body_bytes=args.max_body_bytes,
        rate_limit=args.rate_limit,
        rate_burst=args.rate_burst,
        allow_anonymous=args.allow_anonymous,
        trusted_header=args.trusted_header,
        trusted_groups_header=args.trusted_groups_header,
        cors_origins=tuple(args.cors_origin),
        cloudevent_types=tuple(args.cloudevent_type),
        keepalive_seconds=min(args.keepalive, DEFAULTS.keepalive_seconds),
        console=args.console,
        session_seconds=max(60.0, args.session_hours * 3600),
    )


async def serve(settings: GatewaySettings) -> None:
    api = KubeClient(load_configuration(settings.kubeconfig, settings.context))
    try:
        app = create_app(Gateway.build(api, settings))
        config = uvicorn.Config(app, host=settings.host, port=settings.port, log_config=None, proxy_headers=False)
        await uvicorn.Server(config).serve()
    finally:
        api.close()


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    setup_logging(verbose=args.verbose)
    asyncio.run(serve(settings_of(args)))
    return 0
