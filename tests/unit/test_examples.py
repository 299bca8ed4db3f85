"""The manifests in ``examples/`` are valid: for the CRD schema, for the operator's models, and together.

They are what users apply first (and what ``tests/e2e`` runs against a cluster), so a
typo here is a bug report. The API server would refuse what the CRD schema refuses
(``kubectl apply`` validates fields strictly), and the operator parses every spec with
its pydantic models; both are checked here without a cluster.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import pathlib
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest
import yaml
from standardwebhooks import Webhook

from asynctask_operator.core.callbacks import webhook_headers
from asynctask_operator.core.cron import parse_schedule
from asynctask_operator.core.destinations import url_refusal
from asynctask_operator.core.models import API_VERSION, AsyncTaskSpec, ScheduledTaskSpec, TaskType, TaskTypeSpec
from asynctask_operator.core.reporting import parse_progress, parse_result, result_from_termination_message
from asynctask_operator.core.validation import Refusal, check_payload, check_payload_schema

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
CRDS = ROOT / "crds"
IMAGE = "busybox:1.36"

# Deliberately broken examples, and how the operator must end them.
UNKNOWN_TYPE_TASKS = {"unknown-type"}  # examples/invalid: its TaskType does not exist
INVALID_PAYLOAD_TASKS = {"bad-payload": "spec.payload.width"}  # examples/invalid: breaks the payloadSchema
UNPULLABLE_IMAGES = {"missing-image": "registry.invalid/none:1"}  # examples/pod-errors

Doc = dict[str, Any]


def folders() -> list[pathlib.Path]:
    return sorted(p for p in EXAMPLES.iterdir() if p.is_dir())


def manifests(folder: pathlib.Path) -> list[tuple[pathlib.Path, Doc]]:
    """The objects of a folder in the order ``kubectl apply -f folder/`` creates them."""
    out: list[tuple[pathlib.Path, Doc]] = []
    for path in sorted(folder.glob("*.yaml")):
        with path.open() as stream:
            out.extend((path, doc) for doc in yaml.safe_load_all(stream) if doc is not None)
    return out


def all_docs() -> Iterator[tuple[str, Doc]]:
    for folder in folders():
        for path, doc in manifests(folder):
            yield f"{folder.name}/{path.name}:{(doc.get('metadata') or {}).get('name')}", doc


DOCS = list(all_docs())
TASKTYPES = [(w, d) for w, d in DOCS if d.get("kind") == "TaskType"]
TASKS = [(w, d) for w, d in DOCS if d.get("kind") == "AsyncTask"]
SCHEDULED = [(w, d) for w, d in DOCS if d.get("kind") == "ScheduledTask"]
SECRETS = [(w, d) for w, d in DOCS if d.get("kind") == "Secret"]  # a callback's signing secret
KINDS = ("TaskType", "AsyncTask", "ScheduledTask")
CRD_DOCS = [(w, d) for w, d in DOCS if d.get("kind") in KINDS]


def crd_schemas() -> dict[str, dict[str, Any]]:
    """Kind -> the openAPIV3Schema of its checked-in CRD."""
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(CRDS.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        [version] = [v for v in crd["spec"]["versions"] if v.get("storage")]
        out[crd["spec"]["names"]["kind"]] = version["schema"]["openAPIV3Schema"]
    return out


def as_json_schema(node: Any) -> Any:
    """A structural OpenAPI schema as JSON Schema that refuses unknown fields, as ``kubectl apply`` does.

    ``x-kubernetes-*`` markers are dropped (CEL rules are checked by hand below); an object
    with declared properties refuses others unless it preserves unknown fields.
    """
    if isinstance(node, list):
        return [as_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: as_json_schema(v) for k, v in node.items() if not k.startswith("x-kubernetes-")}
    if "properties" in node:  # "properties" is a mapping of names, not a schema: convert each value only
        out["properties"] = {name: as_json_schema(sub) for name, sub in node["properties"].items()}
        if not node.get("x-kubernetes-preserve-unknown-fields") and "additionalProperties" not in node:
            out["additionalProperties"] = False
    return out


def test_there_are_examples() -> None:
    assert {p.name for p in folders()} >= {
        "hello",
        "failing",
        "retry",
        "pod-errors",
        "invalid",
        "timeout",
        "cancel",
        "ttl",
        "scheduled",
        "progress",
        "callback",
    }


@pytest.mark.parametrize("folder", folders(), ids=lambda p: p.name)
def test_folder_has_a_readme_and_manifests_in_apply_order(folder: pathlib.Path) -> None:
    assert (folder / "README.md").is_file(), f"examples/{folder.name}/README.md is missing"
    docs = manifests(folder)
    assert docs, f"examples/{folder.name}/ has no manifests"
    kinds = [doc["kind"] for _, doc in docs]
    # kubectl applies files by name: TaskTypes first, so a task never waits for its type.
    assert kinds == sorted(kinds, key=lambda k: k != "TaskType"), f"TaskTypes must come first: {kinds}"
    for path in folder.iterdir():
        assert path.suffix in (".yaml", ".md"), f"unexpected file {path} (kubectl apply -f reads .yaml/.yml/.json)"


@pytest.mark.parametrize(("where", "doc"), DOCS, ids=[w for w, _ in DOCS])
def test_manifest_is_one_of_ours_or_a_secret(where: str, doc: Doc) -> None:
    if doc.get("kind") == "Secret":
        assert doc.get("apiVersion") == "v1", where
    else:
        assert doc.get("apiVersion") == API_VERSION, where
        assert doc.get("kind") in KINDS, where


@pytest.mark.parametrize(("where", "doc"), CRD_DOCS, ids=[w for w, _ in CRD_DOCS])
def test_manifest_is_accepted_by_the_crd_schema(where: str, doc: Doc) -> None:
    metadata = doc.get("metadata") or {}
    assert metadata.get("name"), f"{where}: metadata.name is missing"
    assert "namespace" not in metadata, f"{where}: examples go to the user's current namespace"
    schema = as_json_schema(crd_schemas()[doc["kind"]])
    jsonschema.Draft202012Validator.check_schema(schema)
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(doc), key=lambda e: list(e.absolute_path))
    assert not errors, f"{where}: " + "; ".join(
        f"{'.'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}" for e in errors
    )


@pytest.mark.parametrize(("where", "doc"), TASKTYPES, ids=[w for w, _ in TASKTYPES])
def test_tasktype_is_valid_for_the_operator(where: str, doc: Doc) -> None:
    spec = TaskTypeSpec.model_validate(doc["spec"])
    check_payload_schema(spec.payload_schema)  # raises Refusal when the schema itself is broken
    pod = spec.job_template["spec"]["template"]["spec"]
    # The CEL rule of the CRD, which jsonschema cannot run.
    assert pod.get("restartPolicy", "Never") == "Never", f"{where}: restartPolicy must be Never"
    for container in pod["containers"]:
        expected = UNPULLABLE_IMAGES.get(doc["metadata"]["name"], IMAGE)
        assert container.get("image") == expected, f"{where}: container {container['name']} image"
        command = " ".join(container.get("command") or []) + " ".join(container.get("args") or [])
        # Kubernetes expands $(VAR) in command and args itself: shell command substitution would be mangled.
        assert "$(" not in command, f"{where}: use backticks or $VAR, not $(...), in a container command"


@pytest.mark.parametrize(("where", "doc"), TASKS, ids=[w for w, _ in TASKS])
def test_asynctask_is_valid_for_the_operator(where: str, doc: Doc) -> None:
    spec = AsyncTaskSpec.model_validate(doc["spec"])
    assert spec.ttl_seconds_after_finished is not None, f"{where}: set ttlSecondsAfterFinished"


@pytest.mark.parametrize(("where", "doc"), SCHEDULED, ids=[w for w, _ in SCHEDULED])
def test_scheduledtask_is_valid_for_the_operator(where: str, doc: Doc) -> None:
    spec = ScheduledTaskSpec.model_validate(doc["spec"])
    parse_schedule(spec.schedule, spec.time_zone)  # raises ScheduleError: the operator would not be Ready
    assert spec.task_template.spec.ttl_seconds_after_finished is not None, f"{where}: set ttlSecondsAfterFinished"


@pytest.mark.parametrize(("where", "doc"), SECRETS, ids=[w for w, _ in SECRETS])
def test_secret_is_a_plain_placeholder(where: str, doc: Doc) -> None:
    metadata = doc.get("metadata") or {}
    assert metadata.get("name") and "namespace" not in metadata, where
    assert doc.get("type", "Opaque") == "Opaque", where
    assert set(doc) <= {"apiVersion", "kind", "metadata", "type", "stringData"}, f"{where}: use stringData only"
    assert doc["stringData"], where


def test_names_are_unique_across_folders() -> None:
    """All examples can share one namespace (the end-to-end tests apply them into one)."""
    seen: dict[tuple[str, str], str] = {}
    for where, doc in DOCS:
        key = (doc["kind"], doc["metadata"]["name"])
        assert key not in seen, f"{key[0]} {key[1]} is defined in {seen[key]} and in {where}"
        seen[key] = where


@pytest.mark.parametrize("folder", folders(), ids=lambda p: p.name)
def test_tasks_name_a_tasktype_of_their_folder(folder: pathlib.Path) -> None:
    docs = [doc for _, doc in manifests(folder)]
    types = {d["metadata"]["name"]: d for d in docs if d["kind"] == "TaskType"}
    for scheduled in (d for d in docs if d["kind"] == "ScheduledTask"):
        wanted = scheduled["spec"]["taskTemplate"]["spec"]["type"]
        assert wanted in types, (
            f"ScheduledTask {scheduled['metadata']['name']} names TaskType {wanted!r}, not in {folder}"
        )
    for task in (d for d in docs if d["kind"] == "AsyncTask"):
        name = task["metadata"]["name"]
        if name in UNKNOWN_TYPE_TASKS:
            assert task["spec"]["type"] not in types, f"{name} is meant to name a TaskType that does not exist"
            continue
        assert task["spec"]["type"] in types, (
            f"AsyncTask {name} names TaskType {task['spec']['type']!r}, not in {folder}"
        )
        tasktype = TaskType.model_validate({**types[task["spec"]["type"]], "metadata": {"name": task["spec"]["type"]}})
        payload = task["spec"].get("payload")
        if name in INVALID_PAYLOAD_TASKS:
            with pytest.raises(Refusal) as refused:
                check_payload(tasktype, payload, 64 * 1024)
            assert refused.value.reason == "InvalidPayload"
            assert INVALID_PAYLOAD_TASKS[name] in refused.value.message, refused.value.message
        else:
            check_payload(tasktype, payload, 64 * 1024)


def test_every_deliberately_broken_example_exists() -> None:
    tasks = {doc["metadata"]["name"] for _, doc in DOCS if doc["kind"] == "AsyncTask"}
    types = {doc["metadata"]["name"] for _, doc in DOCS if doc["kind"] == "TaskType"}
    assert UNKNOWN_TYPE_TASKS | set(INVALID_PAYLOAD_TASKS) <= tasks
    assert set(UNPULLABLE_IMAGES) <= types


def test_the_e2e_expectations_match_the_examples() -> None:
    """tests/e2e relies on these values; change both together."""
    by_name = {(doc["kind"], doc["metadata"]["name"]): doc for _, doc in DOCS}
    assert by_name["AsyncTask", "failing"]["spec"]["retry"] == {"maxRetries": 0}
    assert by_name["AsyncTask", "flaky"]["spec"]["retry"] == {
        "maxRetries": 2,
        "backoff": "Fixed",
        "baseSeconds": 2,
        "jitter": False,
    }
    assert by_name["AsyncTask", "too-slow"]["spec"]["timeoutSeconds"] == 5
    assert by_name["AsyncTask", "short-lived"]["spec"]["ttlSecondsAfterFinished"] == 5
    for name in ("failing", "oom", "bad-image", "too-slow"):
        assert by_name["AsyncTask", name]["spec"]["retry"]["maxRetries"] == 0, name
    every_minute = by_name["ScheduledTask", "every-minute"]["spec"]
    assert every_minute["schedule"] == "*/1 * * * *"
    assert every_minute["concurrencyPolicy"] == "Forbid"
    limits = by_name["TaskType", "memory-hog"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert limits["resources"]["limits"]["memory"] == "16Mi"
    assert by_name["AsyncTask", "progress-demo"]["spec"]["type"] == "progress"
    assert by_name["AsyncTask", "progress-demo"]["spec"]["retry"] == {"maxRetries": 0}


# --------------------------------------------------------------------------- examples/progress, its script run here

FAKE_WGET = """#!/bin/sh
# Records each POST as three lines: the URL, the Authorization header, the body.
url="" body="" auth=""
while [ $# -gt 0 ]; do
  case "$1" in
    --post-data) body="$2"; shift 2 ;;
    --header) case "$2" in Authorization:*) auth="$2" ;; esac; shift 2 ;;
    -q) shift ;;
    -O) shift 2 ;;
    -O-) shift ;;
    *) url="$1"; shift ;;
  esac
done
printf '%s\\n%s\\n%s\\n' "$url" "$auth" "$body" >> "$WGET_LOG"
echo '{"status": 202, "message": "accepted"}'
"""


def progress_script() -> str:
    [tasktype] = [d for w, d in TASKTYPES if w.startswith("progress/")]
    command = tasktype["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["command"]
    assert command[:2] == ["sh", "-c"], command
    return str(command[2])


def run_progress_script(tmp_path: pathlib.Path, report_url: str | None) -> tuple[list[tuple[str, str, str]], str]:
    """Run the example's script with sh, a fake wget and an instant sleep: (the POSTs, the termination message)."""
    if shutil.which("sh") is None or shutil.which("timeout") is None or shutil.which("expr") is None:
        pytest.skip("needs a POSIX sh with timeout and expr")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("wget", FAKE_WGET), ("sleep", "#!/bin/sh\nexit 0\n")):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    termination_log = tmp_path / "termination-log"
    wget_log = tmp_path / "wget.log"
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", "WGET_LOG": str(wget_log)}
    if report_url is not None:
        env |= {"ASYNCTASK_REPORT_URL": report_url, "ASYNCTASK_REPORT_TOKEN": "v1.1.token"}
    script = progress_script().replace("/dev/termination-log", str(termination_log))
    done = subprocess.run(["sh", "-c", script], env=env, capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    lines = wget_log.read_text().splitlines() if wget_log.exists() else []
    posts = [(lines[i], lines[i + 1], lines[i + 2]) for i in range(0, len(lines), 3)]
    return posts, termination_log.read_text() if termination_log.exists() else ""


def test_progress_example_reports_five_steps_and_a_result(tmp_path: pathlib.Path) -> None:
    url = "http://operator:8080/v1/namespaces/ns/asynctasks/progress-demo"
    posts, termination_message = run_progress_script(tmp_path, url)
    assert [p[0] for p in posts] == [f"{url}/progress"] * 5 + [f"{url}/result"]
    assert all(p[1] == "Authorization: Bearer v1.1.token" for p in posts), posts
    steps = [parse_progress(body.encode()) for _, _, body in posts[:5]]  # what the operator would accept
    assert [s.percent for s in steps] == [20, 40, 60, 80, 100]
    assert [(s.steps_done, s.steps_total) for s in steps] == [(i, 5) for i in range(1, 6)]
    assert [(s.step, s.message) for s in steps] == [(f"s{i}", f"step {i}") for i in range(1, 6)]
    assert parse_result(posts[5][2].encode(), 16 * 1024) == {"frames": 120}
    assert termination_message == "", "with a report URL the result goes over HTTP only"


def test_progress_example_without_a_report_url_writes_the_termination_message(tmp_path: pathlib.Path) -> None:
    posts, termination_message = run_progress_script(tmp_path, None)
    assert posts == []
    assert result_from_termination_message(termination_message, 16 * 1024) == {"frames": 120}
    assert json.loads(termination_message) == {"frames": 120}


# --------------------------------------------------------------------------- examples/callback


def test_callback_example_signs_with_its_secret_and_calls_a_public_url() -> None:
    docs = [doc for _, doc in manifests(EXAMPLES / "callback")]
    [task] = [d for d in docs if d["kind"] == "AsyncTask"]
    callback = AsyncTaskSpec.model_validate(task["spec"]).callback
    assert callback is not None
    assert callback.url == "https://hooks.example.com/asynctask"
    assert url_refusal(callback.url) is None
    assert set(callback.events or ()) >= {"Succeeded", "Failed", "Cancelled"}
    assert callback.secret_ref is not None
    secrets = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Secret"}
    assert callback.secret_ref.name in secrets, "the signing Secret is in the folder"
    value = secrets[callback.secret_ref.name]["stringData"][callback.secret_ref.key]
    assert value.startswith("whsec_"), "the Standard Webhooks form, which every SW library reads"
    # The placeholder must be a usable key: the operator signs with it, a receiver verifies with it.
    body = b'{"specversion":"1.0"}'
    headers = webhook_headers("uid.succeeded.1", dt.datetime.now(dt.UTC), body, value.encode())
    assert Webhook(value).verify(body, headers) == {"specversion": "1.0"}
