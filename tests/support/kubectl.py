"""The kubectl plugin run in process against a FakeKube, its two streams captured as text."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io

from rich.console import Console

from asynctask_operator.kubectl import run
from asynctask_operator.testing.fakekube import FakeKube


@dataclasses.dataclass
class Result:
    code: int
    out: str
    err: str


def console(width: int = 160) -> Console:
    return Console(file=io.StringIO(), width=width, color_system=None, force_terminal=False)


async def run_plugin(
    fake: FakeKube,
    argv: list[str],
    *,
    now: dt.datetime,
    answer: str | None = None,
    out: Console | None = None,
    width: int = 160,
) -> Result:
    """``kubectl asynctask <argv>``; with ``answer``, interactive, answering every question with it."""
    out, err = out or console(width), console(width)
    code = await run(
        argv,
        api=fake,
        out=out,
        err=err,
        now=lambda: now,
        interactive=answer is not None,
        ask=lambda _: answer or "",
    )
    return Result(code, out.file.getvalue(), err.file.getvalue())  # type: ignore[attr-defined]
