"""The web console: server-rendered pages over the gateway's cache and authorization.

Served by the gateway at ``/ui/`` (off with ``--no-console``): the task table, a task's page,
queues, schedules, the history past the TTL (with an archive) and statistics, live through
server-sent events; every page, stream,
export and button authorized for the signed-in user as the API authorizes its callers
(docs/console.md, docs/adr/0021-console-server-rendered.md).
"""

from __future__ import annotations

import pathlib

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from asynctask_operator.gateway.access import Gateway
from asynctask_operator.gateway.console import actions, history, live, overview, pages
from asynctask_operator.gateway.console.state import Console

STATIC = pathlib.Path(__file__).parent / "static"


def install(app: FastAPI, gateway: Gateway) -> Console:
    """Add the console's routes and state to the gateway's application."""
    console = Console.build(gateway)
    app.state.console = console
    for module in (pages, actions, live, overview, history):
        app.include_router(module.router)
    app.mount("/ui/static", StaticFiles(directory=STATIC), name="console-static")
    return console
