"""kubectl asynctask on a real cluster: submit --wait of examples/progress, then the attempt's log.

The plugin runs as its console script, its output a pipe (one line per change); the operator is
the conftest's. Progress percents appear when the pod can report (``ASYNCTASK_E2E_REPORT_HOST``).
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest
import yaml

from tests.e2e.helpers import KUBECONFIG_ENV, REPORT_HOST_ENV, SUCCESS_TIMEOUT, Cluster, load_example, one, renamed

pytestmark = pytest.mark.e2e

PLUGIN = pathlib.Path(sys.executable).parent / "kubectl-asynctask"
TASK = "plugin-progress"


def kubectl(cluster: Cluster, *argv: str, timeout: float = SUCCESS_TIMEOUT + 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(PLUGIN), *argv, "-n", cluster.namespace, "--kubeconfig", os.environ[KUBECONFIG_ENV]],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_submit_wait_of_the_progress_example_then_its_logs(cluster: Cluster, tmp_path: pathlib.Path) -> None:
    docs = load_example("progress")
    cluster.apply([d for d in docs if d["kind"] == "TaskType"])
    manifest = tmp_path / "task.yaml"
    manifest.write_text(yaml.safe_dump(renamed(one(docs, "AsyncTask", "progress-demo"), TASK)))

    done = kubectl(cluster, "submit", "-f", str(manifest), "--wait", "--timeout", f"{int(SUCCESS_TIMEOUT)}s")
    why = f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}\n{cluster.describe(TASK)}"
    assert done.returncode == 0, why
    lines = done.stdout.splitlines()
    assert lines and lines[-1].startswith(f"{TASK} Succeeded 100%"), why
    assert any(line.startswith(f"{TASK} Running") for line in lines), why
    if os.environ.get(REPORT_HOST_ENV):  # the pod reached the operator: its percents were shown as they came
        percents = [line for line in lines if line.startswith(f"{TASK} Running") and "%" in line]
        assert percents, why

    log = kubectl(cluster, "logs", TASK, timeout=60)
    assert log.returncode == 0, log.stderr
    assert "step 1 of 5 done" in log.stdout and "step 5 of 5 done" in log.stdout, log.stdout

    described = kubectl(cluster, "describe", TASK, timeout=60)
    assert described.returncode == 0, described.stderr
    assert f"{TASK}-1" in described.stdout  # the attempt's Job
