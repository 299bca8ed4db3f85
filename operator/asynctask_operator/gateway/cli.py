"""``asynctask-gateway``: serve the HTTP gateway against the cluster of a kubeconfig (or in-cluster).

asynctask-gateway [--namespace NS]... [--kubeconfig PATH] [--context NAME] [--host H] [--port P]
                  [--tls-cert FILE --tls-key FILE] [--max-body-bytes N] [--rate-limit R]
                  [--allow-anonymous] [--trusted-header NAME]
                  [--archive-dsn URL [--aggregation-port P --aggregation-tls-cert FILE --aggregation-tls-key FILE]]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import pathlib
import socket
import sys
from collections.abc import Sequence

import uvicorn
from starlette.types import ASGIApp

from asynctask_operator import __version__
from asynctask_operator.adapters.kubeclient import KubeClient
from asynctask_operator.adapters.kubeconfig import load_configuration
from asynctask_operator.adapters.listening import PortUnavailable, listen
from asynctask_operator.gateway.access import Gateway
from asynctask_operator.gateway.aggregation import aggregated_app, client_ca_file
from asynctask_operator.gateway.aggregation import server_config as aggregation_config
from asynctask_operator.gateway.app import create_app, freeze_once_loaded
from asynctask_operator.gateway.frontproxy import FrontProxyUnavailable, read_front_proxy
from asynctask_operator.gateway.settings import GatewaySettings
from asynctask_operator.gateway.tlsreload import CertificateReloader
from asynctask_operator.logs import setup_logging

DEFAULTS = GatewaySettings()
ARCHIVE_DSN_ENV = "ASYNCTASK_ARCHIVE_DSN"
logger = logging.getLogger(__name__)


def mapping(text: str) -> tuple[str, str]:
    """``order.created=fulfil`` -> ``("order.created", "fulfil")``."""
    ce_type, sep, task_type = text.partition("=")
    if not sep or not ce_type or not task_type:
        raise argparse.ArgumentTypeError(f"expected CE_TYPE=TASK_TYPE, got {text!r}")
    return ce_type, task_type


def existing_file(text: str) -> str:
    if not os.path.isfile(text):
        raise argparse.ArgumentTypeError(f"no such file: {text!r}")
    return text


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
        "--tls-cert",
        type=existing_file,
        metavar="FILE",
        help="serve HTTPS with this PEM certificate (chain), with --tls-key; loaded again when the files change (default: HTTP)",
    )
    p.add_argument("--tls-key", type=existing_file, metavar="FILE", help="the PEM private key of --tls-cert")
    p.add_argument(
        "--max-body-bytes",
        type=int,
        default=DEFAULTS.max_body_bytes,
        metavar="BYTES",
        help=f"largest request body; 413 beyond (default {DEFAULTS.max_body_bytes})",
    )
    p.add_argument(
        "--payload-limit",
        type=int,
        default=DEFAULTS.payload_limit_bytes,
        metavar="BYTES",
        help="largest task payload as compact JSON; 422 beyond; give the operator's --payload-limit "
        f"(default {DEFAULTS.payload_limit_bytes})",
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
        "--auth-failure-limit",
        type=float,
        default=DEFAULTS.auth_failure_limit,
        metavar="PER_MINUTE",
        help="failed authentications a minute per client address; 429 beyond, without a TokenReview; 0: no limit "
        f"(default {DEFAULTS.auth_failure_limit:g})",
    )
    p.add_argument(
        "--auth-failure-burst",
        type=int,
        default=DEFAULTS.auth_failure_burst,
        metavar="FAILURES",
        help=f"failed authentications a client address may make at once (default {DEFAULTS.auth_failure_burst})",
    )
    p.add_argument(
        "--trusted-proxy-header",
        metavar="HEADER",
        help="take the client address from this header's last entry (X-Forwarded-For); ONLY behind a proxy setting it",
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
    archive = p.add_mutually_exclusive_group()
    archive.add_argument(
        "--archive-dsn",
        metavar="URL",
        help="read tasks past their TTL from the archive's database (postgresql://…, sqlite:///…; docs/archive.md); "
        f"default: ${ARCHIVE_DSN_ENV}, else live tasks only",
    )
    archive.add_argument(
        "--archive-dsn-file", metavar="FILE", help="read --archive-dsn from this file (a mounted Secret)"
    )
    p.add_argument(
        "--aggregation-port",
        type=int,
        default=DEFAULTS.aggregation_port,
        metavar="PORT",
        help="serve the aggregated API archive.asynctask.dev here (kubectl asynctask history, gone tasks; "
        "docs/gateway.md), over TLS requiring the API server's front-proxy certificate; needs the archive "
        "(default: off)",
    )
    p.add_argument(
        "--aggregation-tls-cert",
        type=existing_file,
        metavar="FILE",
        help="the aggregation port's PEM certificate (the APIService's caBundle verifies it); loaded again when the files change",
    )
    p.add_argument("--aggregation-tls-key", type=existing_file, metavar="FILE", help="its PEM private key")
    p.add_argument("--no-console", dest="console", action="store_false", help="do not serve the web console at /ui/")
    p.add_argument(
        "--session-hours",
        type=float,
        default=DEFAULTS.session_seconds / 3600,
        metavar="HOURS",
        help=f"how long a console sign-in lasts (default {DEFAULTS.session_seconds / 3600:g})",
    )
    p.add_argument(
        "--log-probes",
        action="store_true",
        help="log requests to /healthz, /readyz and /metrics too (default: every other request, one JSON line each)",
    )
    p.add_argument("--verbose", "-v", action="store_true", help="log at DEBUG")
    return p


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The flags, checked together: exits 2 naming the flag that is missing its pair."""
    p = parser()
    args = p.parse_args(argv)
    if args.tls_cert and not args.tls_key:
        p.error("--tls-cert needs --tls-key (the certificate's private key)")
    if args.tls_key and not args.tls_cert:
        p.error("--tls-key needs --tls-cert (the certificate it is the key of)")
    if args.aggregation_port and not (args.aggregation_tls_cert and args.aggregation_tls_key):
        p.error(
            "--aggregation-port needs --aggregation-tls-cert and --aggregation-tls-key: the API server speaks TLS only"
        )
    if args.aggregation_port and args.aggregation_port == args.port:
        p.error(
            "--aggregation-port must differ from --port: only the aggregation port believes the front proxy's headers"
        )
    return args


def archive_dsn(args: argparse.Namespace) -> str | None:
    """The archive's database: ``--archive-dsn``, else the file ``--archive-dsn-file``, else the environment."""
    if args.archive_dsn:
        return str(args.archive_dsn)
    if args.archive_dsn_file:
        try:
            return pathlib.Path(args.archive_dsn_file).read_text().strip() or None
        except OSError as error:
            raise SystemExit(f"--archive-dsn-file: {error.strerror}: {args.archive_dsn_file}") from None
    return os.environ.get(ARCHIVE_DSN_ENV) or None


def archive_problem(dsn: str | None) -> str | None:
    """Why the gateway cannot read the archive at ``dsn`` (its libraries missing, a URL it cannot use); None: it can."""
    if dsn is None:
        return None
    try:
        from asynctask_operator.archive.database import BadDsn, url_of
    except ModuleNotFoundError as error:
        return f"reading the archive needs the [archive] extra ({error.name} is missing): pip install 'asynctask-operator[gateway,archive]'"
    try:
        url_of(dsn)
    except BadDsn as error:
        return str(error)
    return None


def settings_of(args: argparse.Namespace) -> GatewaySettings:
    return dataclasses.replace(
        DEFAULTS,
        namespaces=tuple(args.namespace),
        kubeconfig=args.kubeconfig,
        context=args.context,
        host=args.host,
        port=args.port,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        max_body_bytes=args.max_body_bytes,
        payload_limit_bytes=args.payload_limit,
        rate_limit=args.rate_limit,
        rate_burst=args.rate_burst,
        auth_failure_limit=args.auth_failure_limit,
        auth_failure_burst=args.auth_failure_burst,
        trusted_proxy_header=args.trusted_proxy_header,
        allow_anonymous=args.allow_anonymous,
        trusted_header=args.trusted_header,
        trusted_groups_header=args.trusted_groups_header,
        cors_origins=tuple(args.cors_origin),
        cloudevent_types=tuple(args.cloudevent_type),
        keepalive_seconds=min(args.keepalive, DEFAULTS.keepalive_seconds),
        archive_dsn=archive_dsn(args),
        aggregation_port=args.aggregation_port,
        aggregation_tls_cert=args.aggregation_tls_cert,
        aggregation_tls_key=args.aggregation_tls_key,
        console=args.console,
        session_seconds=max(60.0, args.session_hours * 3600),
        log_probes=args.log_probes,
    )


def server_config(
    app: ASGIApp, settings: GatewaySettings, reloader: CertificateReloader | None = None
) -> uvicorn.Config:
    """uvicorn's configuration of the gateway: its address, and TLS when a certificate is given.

    uvicorn loads the certificate and key into its SSL context once, when it starts; ``reloader``
    keeps that context and loads the files again when they change (:mod:`.tlsreload`). Client addresses are the connections' peers (``proxy_headers=False``): a
    forwarded address is taken only where a setting trusts a proxy's header for it. uvicorn's access
    log is off: the app logs each request itself, in the log's format (:mod:`.requestlog`).
    """
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        proxy_headers=False,
        ssl_certfile=settings.tls_cert,
        ssl_keyfile=settings.tls_key,
        ssl_context_factory=reloader.factory("--tls-cert") if reloader and settings.tls_cert else None,
    )


async def serve(settings: GatewaySettings, sock: socket.socket, aggregation: socket.socket | None = None) -> None:
    """Serve on ``sock`` (bound to ``settings.host`` and ``settings.port``), and the aggregated API on
    ``aggregation`` when given, until stopped. :class:`FrontProxyUnavailable` when the API server's front-proxy
    settings cannot be read (nothing is served then)."""
    api = KubeClient(load_configuration(settings.kubeconfig, settings.context))
    try:
        gateway = Gateway.build(api, settings)
        proxy = await read_front_proxy(api) if aggregation is not None else None
        freezing = asyncio.create_task(freeze_once_loaded(gateway), name="freeze-cache")
        certificates = CertificateReloader()  # a TLS port's certificate, loaded again when its files change
        tls = bool(settings.tls_cert) or aggregation is not None
        reloading = asyncio.create_task(certificates.run(), name="reload-certificates") if tls else None
        try:
            scheme = "https" if settings.tls_cert else "http"
            logger.info("serving on %s://%s:%d", scheme, settings.host, sock.getsockname()[1])
            main = uvicorn.Server(server_config(create_app(gateway), settings, certificates))
            if proxy is None or aggregation is None:
                await main.serve(sockets=[sock])
                return
            with client_ca_file(proxy) as ca:
                config = aggregation_config(aggregated_app(gateway, proxy), settings, ca, certificates)
                logger.info(
                    "serving the aggregated API on https://%s:%d (front proxy: %s)", settings.host,
                    aggregation.getsockname()[1], ", ".join(proxy.allowed_names) or "any name its CA signed",
                )  # fmt: skip
                await serve_together([(main, sock), (uvicorn.Server(config), aggregation)])
        finally:
            freezing.cancel()
            if reloading is not None:
                reloading.cancel()
    finally:
        api.close()


async def serve_together(servers: list[tuple[uvicorn.Server, socket.socket]]) -> None:
    """Run the servers until one of them stops (a signal, a failure), then stop the others."""
    running = [asyncio.create_task(server.serve(sockets=[sock])) for server, sock in servers]
    await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
    for server, _ in servers:
        server.should_exit = True
    await asyncio.gather(*running)


def bound(host: str, port: int, flag: str) -> socket.socket:
    """A listening socket, or :class:`SystemExit` 2 with one line naming ``flag`` (or --host) and the fix."""
    try:
        return listen(host, port)
    except PortUnavailable as exc:
        flag, fix = (
            ("--host", "an address of this machine")
            if exc.host_is_wrong
            else (flag, "another port, or stop what holds it")
        )
        sys.stderr.write(f"asynctask-gateway: error: {flag}: {exc}: choose {fix}\n")
        raise SystemExit(2) from None


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    setup_logging(verbose=args.verbose)
    settings = settings_of(args)
    problem = archive_problem(settings.archive_dsn)
    if problem is None and settings.aggregation_port and not settings.archive_dsn:
        problem = "--aggregation-port serves the archive: give the archive's database"
    if problem is not None:
        sys.stderr.write(f"asynctask-gateway: error: --archive-dsn: {problem}\n")
        return 2
    # Bound before anything else: uvicorn would log a taken port and exit 1, after connecting to the API.
    sock = bound(settings.host, settings.port, "--port")
    aggregation = (
        bound(settings.host, settings.aggregation_port, "--aggregation-port") if settings.aggregation_port else None
    )
    try:
        asyncio.run(serve(settings, sock, aggregation))
    except FrontProxyUnavailable as exc:
        sys.stderr.write(f"asynctask-gateway: error: --aggregation-port: {exc}\n")
        return 2
    return 0
