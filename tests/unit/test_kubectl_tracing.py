"""ADR 0020 in the kubectl plugin: ``submit`` joins the trace of ``$TRACEPARENT`` (and ``$TRACESTATE``)."""

from __future__ import annotations

import pathlib

import pytest

from asynctask_operator.core.tracing import ANNOTATION_TRACEPARENT, ANNOTATION_TRACESTATE
from tests.unit.test_kubectl_commands import cluster, given_type, kubectl, tasks_of

PARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


async def test_submit_annotates_the_task_with_the_environments_trace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACEPARENT", PARENT)
    monkeypatch.setenv("TRACESTATE", "vendor=x")
    fake = cluster()
    await given_type(fake)
    result = await kubectl(fake, "submit", "--type", "video")
    assert result.code == 0, result.err
    [task] = tasks_of(fake)
    assert task["metadata"]["annotations"] == {ANNOTATION_TRACEPARENT: PARENT, ANNOTATION_TRACESTATE: "vendor=x"}


async def test_no_or_a_malformed_traceparent_sets_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACEPARENT", "not one")
    monkeypatch.setenv("TRACESTATE", "vendor=x")
    fake = cluster()
    await given_type(fake)
    assert (await kubectl(fake, "submit", "--type", "video")).code == 0
    [task] = tasks_of(fake)
    assert not (task["metadata"].get("annotations") or {})


async def test_a_manifests_own_traceparent_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> None:
    own = "00-11111111111111111111111111111111-2222222222222222-01"
    monkeypatch.setenv("TRACEPARENT", PARENT)
    manifest = tmp_path / "task.yaml"
    manifest.write_text(
        "apiVersion: asynctask.dev/v1alpha1\nkind: AsyncTask\n"
        f"metadata: {{name: a, annotations: {{{ANNOTATION_TRACEPARENT}: '{own}'}}}}\nspec: {{type: video}}\n"
    )
    fake = cluster()
    await given_type(fake)
    assert (await kubectl(fake, "submit", "-f", str(manifest))).code == 0
    [task] = tasks_of(fake)
    assert task["metadata"]["annotations"][ANNOTATION_TRACEPARENT] == own
