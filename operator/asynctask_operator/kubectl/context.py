"""What every command of the plugin is given (:class:`Context`), and how it prints a table (:func:`show`)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from collections.abc import Callable, Mapping
from typing import Any

from rich.console import Console

from asynctask_operator.adapters.api import Kube


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
    archive: Any = None
    """The run's reads of the archive (:func:`~asynctask_operator.kubectl.archived.archive_of`), made when first needed."""

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
