"""Helpers for the end-to-end tests: the operator process, the cluster, waiting.

Everything talks to a real API server through the official ``kubernetes`` client.
Objects are handled as plain JSON dicts (camelCase keys, exactly as the API server
sends them): custom objects come back that way, and Jobs, pods and events are read
with ``_preload_content=False`` and decoded here, so no client model class stands
between a test and what the cluster holds.
"""

from __future__ import annotations

import copy
import json
import pathlib
import secrets
from collections.abc import Callable, Collection, Iterable, Sequence
from typing import Any, TypeVar, cast

import kubernetes.client
import yaml
from kubernetes.client import ApiClient, ApiException

# The operator process and the wait live in the testing kit (the benchmarks start the same process);
# re-exported: the tests import them from here.
from asynctask_operator.testing.process import OperatorProcess as OperatorProcess
from asynctask_operator.testing.process import wait_for as wait_for

KUBECONFIG_ENV = "ASYNCTASK_E2E_KUBECONFIG"
ARTIFACTS_ENV = "ASYNCTASK_E2E_ARTIFACTS"
KEEP_ON_FAILURE_ENV = "ASYNCTASK_E2E_KEEP_ON_FAILURE"
REPORT_HOST_ENV = "ASYNCTASK_E2E_REPORT_HOST"
SKIP_REASON = f"end-to-end tests need a cluster: set {KUBECONFIG_ENV} to the path of a kubeconfig"

GROUP = "asynctask.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
PLURALS = {
    "AsyncTask": "asynctasks",
    "TaskType": "tasktypes",
    "TaskQueue": "taskqueues",
    "ScheduledTask": "scheduledtasks",
}
CRD_NAMES = (
    "asynctasks.asynctask.dev",
    "tasktypes.asynctask.dev",
    "taskqueues.asynctask.dev",
    "scheduledtasks.asynctask.dev",
)
TERMINAL_PHASES = frozenset({"Succeeded", "Failed", "Cancelled"})

LABEL_TASK = "asynctask.dev/task"
LABEL_TYPE = "asynctask.dev/type"
LABEL_ATTEMPT = "asynctask.dev/attempt"

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
EXAMPLES = REPO_ROOT / "examples"

# Generous: pods on a fresh kind node may have to pull their image first.
SUCCESS_TIMEOUT = 180.0
GC_TIMEOUT = 60.0

T = TypeVar("T")
Obj = dict[str, Any]


# --------------------------------------------------------------------------- manifests


def load_example(folder: str) -> list[Obj]:
    """Every object in ``examples/<folder>/*.yaml``, in the order ``kubectl apply -f`` uses (by file name)."""
    docs: list[Obj] = []
    for path in sorted((EXAMPLES / folder).glob("*.yaml")):
        with path.open() as stream:
            docs.extend(doc for doc in yaml.safe_load_all(stream) if doc)
    if not docs:
        raise AssertionError(f"examples/{folder}/ holds no manifests")
    return docs


def select(docs: Iterable[Obj], kind: str | None = None, names: Collection[str] = ()) -> list[Obj]:
    """The docs of ``kind`` (any kind when None) whose name is in ``names`` (any name when empty)."""
    return [
        copy.deepcopy(d)
        for d in docs
        if (kind is None or d.get("kind") == kind) and (not names or d["metadata"]["name"] in names)
    ]


def one(docs: Iterable[Obj], kind: str, name: str) -> Obj:
    found = select(docs, kind, {name})
    if len(found) != 1:
        raise AssertionError(f"expected one {kind} named {name!r} in the example, found {len(found)}")
    return found[0]


def renamed(doc: Obj, name: str) -> Obj:
    """A copy of ``doc`` under another name (so one example can serve several tests)."""
    out = copy.deepcopy(doc)
    out["metadata"] = {**out.get("metadata", {}), "name": name}
    return out


def task_body(name: str, spec: Obj) -> Obj:
    return {"apiVersion": API_VERSION, "kind": "AsyncTask", "metadata": {"name": name}, "spec": spec}


# --------------------------------------------------------------------------- reading objects


def status_of(obj: Obj | None) -> Obj:
    return dict((obj or {}).get("status") or {})


def phase_of(obj: Obj | None) -> str:
    return str(status_of(obj).get("phase") or "Pending")


def condition_of(obj: Obj | None, type_: str) -> Obj | None:
    for cond in status_of(obj).get("conditions") or ():
        if cond.get("type") == type_:
            return dict(cond)
    return None


def container_env(job: Obj, container: int = 0) -> dict[str, str]:
    spec = job["spec"]["template"]["spec"]["containers"][container]
    return {e["name"]: e.get("value", "") for e in spec.get("env") or ()}


def api_message(exc: ApiException) -> str:
    """The ``message`` of a Status the API server answered with (or the raw body)."""
    body = exc.body
    if isinstance(body, bytes):
        body = body.decode(errors="replace")
    try:
        decoded = json.loads(body or "")
    except ValueError:
        return str(body or exc)
    return str(decoded.get("message") or body) if isinstance(decoded, dict) else str(body)


def to_yaml(obj: Any) -> str:
    return yaml.safe_dump(obj, sort_keys=False, width=120, default_flow_style=False)


def is_subsequence(seen: Sequence[str], order: Sequence[str]) -> bool:
    """Whether every item of ``seen`` is in ``order``, in that order (items may be missing)."""
    position = 0
    for item in seen:
        try:
            position = order.index(item, position)
        except ValueError:
            return False
    return True


def decode_json(response: Any) -> Obj:
    """Decode a response read with ``_preload_content=False``."""
    data = response.data
    decoded = json.loads(data) if data else {}
    return decoded if isinstance(decoded, dict) else {"items": decoded}


# --------------------------------------------------------------------------- the cluster


class Cluster:
    """The test namespace, and what the tests do in it."""

    def __init__(self, client: ApiClient, namespace: str, operator: OperatorProcess | None = None) -> None:
        self.client = client
        self.namespace = namespace
        self.operator = operator
        self.custom = kubernetes.client.CustomObjectsApi(client)
        self.core = kubernetes.client.CoreV1Api(client)
        self.batch = kubernetes.client.BatchV1Api(client)
        self.phases: dict[str, list[str]] = {}  # every phase each task was seen in, in order

    # -- custom objects

    def create(self, doc: Obj) -> Obj:
        """Create one AsyncTask, TaskType, TaskQueue or ScheduledTask in the test namespace (strict field
        validation, like kubectl)."""
        body = copy.deepcopy(doc)
        body.setdefault("metadata", {})["namespace"] = self.namespace
        created = self.custom.create_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURALS[body["kind"]], body, field_validation="Strict"
        )
        return cast(Obj, created)

    def apply(self, docs: Iterable[Obj]) -> None:
        """Create each object unless it exists already (several tests may share an example folder)."""
        for doc in docs:
            try:
                self.create(doc)
            except ApiException as exc:
                if exc.status != 409:
                    raise AssertionError(
                        f"creating {doc.get('kind')} {doc['metadata']['name']} failed: {exc.status} {api_message(exc)}"
                    ) from exc

    def get_task(self, name: str) -> Obj | None:
        try:
            task = cast(
                Obj, self.custom.get_namespaced_custom_object(GROUP, VERSION, self.namespace, "asynctasks", name)
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        self._record(name, task)
        return task

    def patch_task(self, name: str, patch: Obj) -> Obj:
        """A JSON merge patch, as ``kubectl patch --type merge`` sends."""
        patched = self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "asynctasks", name, patch, _content_type="application/merge-patch+json"
        )
        return cast(Obj, patched)

    def delete_task(self, name: str) -> None:
        """Delete as ``kubectl delete`` does (the server's default: dependents are garbage-collected)."""
        self.custom.delete_namespaced_custom_object(GROUP, VERSION, self.namespace, "asynctasks", name)

    # -- Jobs, pods, events (raw JSON)

    def get_job(self, name: str) -> Obj | None:
        try:
            return decode_json(self.batch.read_namespaced_job(name, self.namespace, _preload_content=False))
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def job_gone(self, name: str) -> bool | None:
        """True when the Job no longer exists or is being deleted (for :meth:`wait`)."""
        job = self.get_job(name)
        return True if job is None or job["metadata"].get("deletionTimestamp") else None

    def jobs_of(self, task: str) -> list[Obj]:
        answer = decode_json(
            self.batch.list_namespaced_job(
                self.namespace, label_selector=f"{LABEL_TASK}={task}", _preload_content=False
            )
        )
        return sorted(answer.get("items") or [], key=lambda j: str(j["metadata"]["name"]))

    def pods(self, selector: str) -> list[Obj]:
        answer = decode_json(
            self.core.list_namespaced_pod(self.namespace, label_selector=selector, _preload_content=False)
        )
        return list(answer.get("items") or [])

    def pods_of_job(self, job: str) -> list[Obj]:
        return self.pods(f"batch.kubernetes.io/job-name={job}") or self.pods(f"job-name={job}")

    def events_about(self, names: Collection[str]) -> list[Obj]:
        answer = decode_json(self.core.list_namespaced_event(self.namespace, _preload_content=False))
        found = [e for e in answer.get("items") or () if (e.get("involvedObject") or {}).get("name") in names]
        return sorted(found, key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime") or ""))

    # -- waiting

    def wait(
        self,
        predicate: Callable[[], T | None],
        timeout: float,
        what: str,
        *,
        interval: float = 0.5,
        describe: Callable[[], str] | None = None,
    ) -> T:
        """:func:`wait_for`, failing at once (with its log) if the operator dies meanwhile."""

        def checked() -> T | None:
            if self.operator is not None:
                self.operator.assert_alive("while the test waited for " + what)
            return predicate()

        return wait_for(checked, timeout, what, interval=interval, describe=describe)

    def wait_for_phase(
        self, name: str, phases: Collection[str], timeout: float = SUCCESS_TIMEOUT, *, interval: float = 0.5
    ) -> Obj:
        """Poll the task until its phase is one of ``phases``; fail early if it ends in another one."""
        wanted = set(phases)

        def reached() -> Obj | None:
            task = self.get_task(name)
            if task is None:
                return None
            phase = phase_of(task)
            if phase in wanted:
                return task
            if phase in TERMINAL_PHASES:
                raise AssertionError(
                    f"AsyncTask {name} ended {phase} while the test waited for {'/'.join(sorted(wanted))}\n"
                    + self.describe(name)
                )
            return None

        return self.wait(
            reached,
            timeout,
            f"AsyncTask {name} to become {'/'.join(sorted(wanted))}",
            interval=interval,
            describe=lambda: self.describe(name),
        )

    def wait_gone(self, what: str, fetch: Callable[[], Obj | None], timeout: float = GC_TIMEOUT) -> None:
        self.wait(lambda: True if fetch() is None else None, timeout, f"{what} to be deleted")

    def _record(self, name: str, task: Obj) -> None:
        seen = self.phases.setdefault(name, [])
        phase = phase_of(task)
        if not seen or seen[-1] != phase:
            seen.append(phase)

    # -- explaining

    def describe(self, name: str) -> str:
        """The task's status, its Jobs, pods and events: what a failure message should show."""
        lines = [f"--- AsyncTask {self.namespace}/{name}"]
        names = {name}
        # Each part on its own: a description must never hide the failure it explains.
        for part in (self._describe_task, self._describe_jobs, self._describe_pods):
            try:
                lines.extend(part(name, names))
            except Exception as exc:
                lines.append(f"    (could not read: {exc!r})")
        try:
            events = self.events_about(names)[-20:]
        except Exception as exc:
            events = []
            lines.append(f"    (could not read events: {exc!r})")
        if events:
            lines.append("--- Events")
        for event in events:
            involved = event.get("involvedObject") or {}
            lines.append(
                f"    {involved.get('kind')}/{involved.get('name')} {event.get('type')} {event.get('reason')}: "
                f"{event.get('message', '')}"
            )
        return "\n".join(lines)

    def _describe_task(self, name: str, names: set[str]) -> list[str]:
        task = self.get_task(name)
        lines = ["(not found)"] if task is None else [to_yaml({"spec": task.get("spec"), "status": task.get("status")})]
        lines.append(f"phases seen by the test: {self.phases.get(name, [])}")
        return lines

    def _describe_jobs(self, name: str, names: set[str]) -> list[str]:
        lines: list[str] = []
        for job in self.jobs_of(name):
            meta, status = job["metadata"], job.get("status") or {}
            names.add(meta["name"])
            lines.append(
                f"--- Job {meta['name']}"
                + (" (being deleted)" if meta.get("deletionTimestamp") else "")
                + f": active={status.get('active', 0)} succeeded={status.get('succeeded', 0)} "
                f"failed={status.get('failed', 0)}"
            )
            for cond in status.get("conditions") or ():
                lines.append(
                    f"    condition {cond.get('type')}={cond.get('status')} {cond.get('reason', '')}: "
                    f"{cond.get('message', '')}"
                )
        return lines

    def _describe_pods(self, name: str, names: set[str]) -> list[str]:
        lines: list[str] = []
        for pod in self.pods(f"{LABEL_TASK}={name}"):
            meta, status = pod["metadata"], pod.get("status") or {}
            names.add(meta["name"])
            lines.append(
                f"--- Pod {meta['name']}"
                + (" (being deleted)" if meta.get("deletionTimestamp") else "")
                + f": phase={status.get('phase')} reason={status.get('reason', '')} {status.get('message', '')}".rstrip()
            )
            for cs in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
                lines.append(f"    container {cs.get('name')}: {json.dumps(cs.get('state') or {})}")
        return lines


def create_namespace(client: ApiClient, prefix: str = "asynctask-e2e") -> str:
    """A new namespace labelled asynctask.dev/e2e, once its default ServiceAccount exists (pods need it)."""
    core = kubernetes.client.CoreV1Api(client)
    name = f"{prefix}-{secrets.token_hex(3)}"
    labels = {"asynctask.dev/e2e": "true"}  # the CI workflow dumps namespaces with this label on failure
    core.create_namespace(
        kubernetes.client.V1Namespace(metadata=kubernetes.client.V1ObjectMeta(name=name, labels=labels))
    )

    def default_service_account() -> bool | None:
        try:
            core.read_namespaced_service_account("default", name, _preload_content=False)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return True

    wait_for(default_service_account, 60, f"the default ServiceAccount of namespace {name}")
    return name
