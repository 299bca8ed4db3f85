"""kubectl asynctask in a real terminal (tmux): the progress bar redraws in place, one line per task.

The plugin runs as its console script inside a tmux pane against kmock; the test moves the task's
progress and reads the pane (``capture-pane``) after each step.
"""

from __future__ import annotations

import asyncio
import os
import pathlib
import shutil
import sys
import uuid

import kmock
import pytest

from asynctask_operator.testing.cluster import AT, NS, Cluster
from asynctask_operator.testing.operators import eventually

AT_API = "/apis/asynctask.dev/v1alpha1"
PLUGIN = pathlib.Path(sys.executable).parent / "kubectl-asynctask"

pytestmark = pytest.mark.skipif(
    shutil.which("tmux") is None, reason="tmux is not installed (.ci/run installs Debian's tmux where it can)"
)


async def tmux(socket: str, *args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        "tmux", "-L", socket, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await proc.communicate()  # never a blocking call: kmock answers from this event loop
    assert proc.returncode == 0, err.decode()
    return out.decode()


async def pane(socket: str) -> list[str]:
    return [line.rstrip() for line in (await tmux(socket, "capture-pane", "-p", "-t", "plugin")).splitlines()]


def rows(lines: list[str], name: str) -> list[str]:
    """The progress rows of ``name`` on the screen (not the "created" line)."""
    return [line for line in lines if line.startswith(f"{name} ") and ("attempt" in line or "Pending" in line)]


async def test_the_bar_redraws_in_place(
    cluster: Cluster, kmock: kmock.KubernetesEmulator, kubeconfig: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    assert PLUGIN.exists(), f"{PLUGIN}: the package is not installed with its console scripts"
    await cluster.create_tasktype("video")
    socket = f"asynctask-{uuid.uuid4().hex[:8]}"
    command = (
        f"{PLUGIN} submit --type video --name term1 --wait -n {NS} --kubeconfig {kubeconfig}; echo EXIT=$?; sleep 60"
    )
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)}
    await tmux(
        socket,
        "-f",
        "/dev/null",
        "new-session",
        "-d",
        "-s",
        "plugin",
        "-x",
        "140",
        "-y",
        "20",
        "env",
        *(f"{k}={v}" for k, v in env.items()),
        "sh",
        "-c",
        command,
    )
    try:
        await eventually(lambda: (AT, NS, "term1") in kmock.objects, 20, "the plugin creates the task")
        await eventually(lambda: any("watch=true" in str(r.url) for r in kmock), 20, "the plugin watches")
        seen: list[list[str]] = []
        for percent in (10, 35, 80):
            status = {"phase": "Running", "attempt": 1, "progress": {"percent": percent, "message": f"at {percent}"}}
            await cluster.patch(AT_API, "asynctasks/term1", {"status": status})

            async def shows(p: int = percent) -> bool:
                screen = await pane(socket)
                seen.append(screen)
                return any(f"{p}%" in row for row in rows(screen, "term1"))

            await eventually(shows, 20, f"{percent}% on screen")
            screen = seen[-1]
            assert len(rows(screen, "term1")) == 1, "\n".join(screen)  # redrawn in place, not a new line
            assert not any(f"at {p}" in line for p in (10, 35) if p != percent for line in screen), "\n".join(screen)
        await cluster.patch(AT_API, "asynctasks/term1", {"status": {"phase": "Succeeded", "attempt": 1}})

        async def exited() -> bool:
            return any(line == "EXIT=0" for line in await pane(socket))

        await eventually(exited, 20, "the plugin exits 0")
        final = await pane(socket)
        [row] = rows(final, "term1")
        assert "Succeeded" in row and "100%" in row, "\n".join(final)
        assert "━" in row  # the bar itself
    finally:
        await tmux(socket, "kill-server")
