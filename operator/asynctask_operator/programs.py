"""The console scripts: each program checks that its extra is installed (:mod:`.extras`), then runs.

Each imports its program, whose first module imports the extra's libraries (kopf, FastAPI); only
when that import fails is the package's metadata read, to tell a missing extra (one line, an
exit code) from another error (raised as it is). The programs start no slower for the check.
"""

from __future__ import annotations

from asynctask_operator.extras import require


def operator() -> int:
    """``asynctask-operator``; exit 2 without the [operator] extra, as for a setting it cannot run with."""
    try:
        from asynctask_operator.cli import main
    except ModuleNotFoundError:
        require("operator", "asynctask-operator", 2)
        raise  # the extra is there: something else is missing, say it as Python does
    return main()


def gateway() -> int:
    """``asynctask-gateway``; exit 2 without the [gateway] extra."""
    try:
        from asynctask_operator.gateway.cli import main
    except ModuleNotFoundError:
        require("gateway", "asynctask-gateway", 2)
        raise
    return main()


def archive() -> int:
    """``asynctask-archive``; exit 2 without the [archive] extra."""
    try:
        from asynctask_operator.archive.cli import main
    except ModuleNotFoundError:
        require("archive", "asynctask-archive", 2)
        raise
    return main()


def kubectl() -> int:
    """``kubectl-asynctask``; exit 4 (the plugin's "nothing was done") without the [kubectl] extra.

    The check is the package's own (``asynctask_operator.kubectl``), so that ``python -m
    asynctask_operator.kubectl``, as a krew launcher runs it, makes it too."""
    from asynctask_operator.kubectl import main

    return main()
