"""kubectl asynctask: what the user typed is checked before anything is sent (durations, payloads, files)."""

from __future__ import annotations

import io
import pathlib

import pytest
from rich.console import Console

from asynctask_operator.kubectl import run
from asynctask_operator.kubectl.errors import ERROR
from asynctask_operator.kubectl.inputs import (
    BadInput,
    check_task,
    new_task,
    parse_duration,
    parse_payload,
    read_manifests,
    with_overrides,
)
from asynctask_operator.testing.fakekube import FakeKube


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90), ("30s", 30), ("5m", 300), ("1h30m", 5400), ("2d", 172800), ("1h0m5s", 3605), ("1500ms", 1)],
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5x", "m5", "1h 30m", "-5s", "1.5h"])
def test_what_is_not_a_duration(text: str) -> None:
    with pytest.raises(BadInput, match=r"--timeout: .* is not a duration"):
        parse_duration(text, "--timeout")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"a": 1,}', "--payload: not JSON: Expecting property name enclosed in double quotes at line 1, column 9"),
        ('{"a" 1}', "--payload: not JSON: Expecting ':' delimiter at line 1, column 6"),
        ("", "--payload: not JSON: Expecting value at line 1, column 1"),
        ("@/no/such/payload.json", "--payload: no such file: /no/such/payload.json"),
    ],
)
def test_payload_errors_say_where(text: str, message: str) -> None:
    with pytest.raises(BadInput) as caught:
        parse_payload(text)
    assert str(caught.value) == message


def test_a_payload_file_is_read_and_its_errors_carry_line_and_column(tmp_path: pathlib.Path) -> None:
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text('{"input": "s3://in/a.mp4"}')
    bad.write_text('{\n  "input": "a",\n  "preset" "1080p"\n}')
    assert parse_payload(f"@{good}") == {"input": "s3://in/a.mp4"}
    with pytest.raises(BadInput, match=r"not JSON: Expecting ':' delimiter at line 3, column 12"):
        parse_payload(f"@{bad}")


def test_manifests(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "tasks.yaml"
    path.write_text(
        "apiVersion: asynctask.dev/v1alpha1\nkind: AsyncTask\nmetadata: {name: a}\nspec: {type: t}\n---\n"
        "kind: List\nitems:\n- {kind: AsyncTask, metadata: {name: b}, spec: {type: t}}\n"
    )
    assert [t["metadata"]["name"] for t in read_manifests(str(path))] == ["a", "b"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("kind: TaskType\nmetadata: {name: a}\n", "expected kind AsyncTask, found TaskType"),
        ("kind: AsyncTask\nspec: [unclosed\n", "not YAML: .* at line 3, column 1"),
        ("", "no AsyncTask in the file"),
    ],
)
def test_bad_manifests(tmp_path: pathlib.Path, text: str, message: str) -> None:
    path = tmp_path / "tasks.yaml"
    path.write_text(text)
    with pytest.raises(BadInput, match=message):
        read_manifests(str(path))


@pytest.mark.parametrize(
    ("task", "message"),
    [
        ({"metadata": {}, "spec": {"type": "t"}}, "metadata.name is required"),
        ({"metadata": {"name": "a"}, "spec": {}}, r"spec\.type: Field required"),
        ({"metadata": {"name": "a"}, "spec": {"type": "t", "priority": 10**9}}, r"spec\.priority: Input should be"),
        ({"metadata": {"name": "a"}, "spec": {"type": "Bad_Type"}}, r"spec\.type: String should match pattern"),
    ],
)
def test_a_task_the_api_server_would_refuse_is_refused_here(task: dict[str, object], message: str) -> None:
    with pytest.raises(BadInput, match=message):
        check_task(task, "--type")


def test_flags_override_the_spec() -> None:
    task = new_task("video", {"x": 1})
    assert task["metadata"] == {"generateName": "video-"}
    got = with_overrides(
        {**task, "spec": {**task["spec"], "retry": {"backoff": "Fixed"}}},
        {"queue": "gpu", "priority": None, "retry": {"maxRetries": 2}},
    )
    assert got["spec"] == {
        "type": "video",
        "payload": {"x": 1},
        "queue": "gpu",
        "retry": {"backoff": "Fixed", "maxRetries": 2},
    }


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["submit", "--type", "t", "--payload", "{bad"], "--payload: not JSON"),
        (["submit", "--type", "t", "--payload", "@/no/file.json"], "--payload: no such file"),
        (["submit", "--type", "t", "--attempt-timeout", "soon"], "--attempt-timeout: 'soon' is not a duration"),
        (["submit", "-f", "/no/tasks.yaml"], "-f: no such file: /no/tasks.yaml"),
        (["submit"], "say what to run"),
        (["submit", "--type", "t", "--timeout", "5m"], "--timeout bounds --wait"),
        (["submit", "-f", "x.yaml", "--name", "n"], "--payload, --name and --label go with --type"),
        (["submit", "--type", "t", "-f", "x.yaml"], "either -f FILE or --type TYPE"),
        (["wait", "a", "--for", "Done"], "--for: 'Done'"),
        (["get", "--phase", "Runing"], "--phase: 'Runing' is not a phase"),
        (["cancel"], "name the tasks, or select them"),
        (["cancel", "a", "-l", "x=y"], "not both"),
        (["cancel", "-l", "app in (a,b)", "--yes"], "-l: not a label selector term: 'app in (a'"),
    ],
)
async def test_bad_input_is_an_error_before_any_request(argv: list[str], message: str) -> None:
    fake = FakeKube()
    err = Console(file=io.StringIO(), width=200)
    code = await run(argv, api=fake, out=Console(file=io.StringIO()), err=err, interactive=False)
    assert code == ERROR
    assert message in err.file.getvalue()  # type: ignore[attr-defined]
    assert fake.requests == []


def test_an_unknown_flag_exits_with_the_error_code(capsys: pytest.CaptureFixture[str]) -> None:
    import asyncio

    with pytest.raises(SystemExit) as caught:
        asyncio.run(run(["get", "--bogus"], api=FakeKube()))
    assert caught.value.code == ERROR
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err
