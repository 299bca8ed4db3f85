"""The Helm chart on a real cluster: install it, a leader takes the Lease, a task succeeds, uninstall.

Unlike the other end-to-end tests, the operator here is not a local process: it is the
image named by ``ASYNCTASK_E2E_IMAGE`` (e.g. ``asynctask-operator:e2e``, built with
``docker build`` and loaded with ``kind load docker-image``), run by the chart's Deployment.
Without that variable this test is skipped. The chart is installed with the ``helm`` CLI
when it is on PATH, else with Helm's Go library through ``helm-python-sdk`` (both do what
``helm install`` does: CRDs from ``crds/`` first, then the templates).

The release serves only a namespace of its own (``watchNamespaces``), so it never acts on the
namespace of the other end-to-end tests' operator, which may run in the same session.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import kubernetes.client
import pytest
import yaml
from kubernetes.client import ApiClient, ApiException

from tests.e2e.helpers import (
    KEEP_ON_FAILURE_ENV,
    REPO_ROOT,
    SUCCESS_TIMEOUT,
    Cluster,
    container_env,
    create_namespace,
    decode_json,
    load_example,
    phase_of,
    to_yaml,
    wait_for,
)

IMAGE_ENV = "ASYNCTASK_E2E_IMAGE"
CHART = REPO_ROOT / "charts" / "asynctask-operator"
CHART_CRDS = sorted(
    str(yaml.safe_load(path.read_text())["metadata"]["name"]) for path in (CHART / "crds").glob("*.yaml")
)
RELEASE = "e2e"
FULLNAME = "e2e-asynctask-operator"  # <release>-<chart>
SELECTOR = f"app.kubernetes.io/instance={RELEASE}"
HELM_TIMEOUT = 300.0
AVAILABLE_TIMEOUT = 180.0
LEADER_TIMEOUT = 120.0
GONE_TIMEOUT = 120.0

Obj = dict[str, Any]


def expected_report_url(release_ns: str, tasks_ns: str, task: str) -> str:
    """``ASYNCTASK_REPORT_URL`` of a task's pod under this release: the chart's ``--report-url`` (its Service,
    templates/_helpers.tpl) and the task's own path, which the operator adds (core/report_intake.py).
    tests/unit/test_chart.py holds it to both, where Helm renders the chart."""
    return f"http://{FULLNAME}.{release_ns}.svc:8080/v1/namespaces/{tasks_ns}/asynctasks/{task}"


@pytest.fixture(autouse=True)
def _operator_health() -> None:
    """Replaces conftest's fixture of that name: no local operator runs for this test."""


@pytest.fixture(scope="module")
def image() -> str:
    value = os.environ.get(IMAGE_ENV, "").strip()
    if not value:
        pytest.skip(
            f"the chart test needs the operator's image: set {IMAGE_ENV} to an image the cluster can run, e.g. "
            f"`docker build -t asynctask-operator:e2e . && kind load docker-image asynctask-operator:e2e` "
            f"and {IMAGE_ENV}=asynctask-operator:e2e"
        )
    return value


def image_values(image: str) -> Obj:
    """The chart's ``image`` values for ``registry[:port]/name[:tag][@sha256:...]``."""
    if "@" in image:
        repository, digest = image.split("@", 1)
        return {"repository": repository, "tag": "", "digest": digest, "pullPolicy": "IfNotPresent"}
    last = image.rsplit("/", 1)[-1]  # a registry's :port is not a tag
    repository, tag = image.rsplit(":", 1) if ":" in last else (image, "latest")
    return {"repository": repository, "tag": tag, "digest": "", "pullPolicy": "IfNotPresent"}


# --------------------------------------------------------------------------- helm: the CLI, or the Go library


class Helm(Protocol):
    name: str

    def render(self, namespace: str, values: Obj) -> list[Obj]: ...
    def install(self, namespace: str, values: Obj) -> None: ...
    def uninstall(self, namespace: str) -> None: ...


class HelmCli:
    name = "helm CLI"

    def __init__(self, binary: str, kubeconfig: str) -> None:
        self.binary = binary
        self.kubeconfig = kubeconfig

    def _run(self, *args: str, values: Obj | None = None) -> str:
        with tempfile.TemporaryDirectory() as folder:
            command = [self.binary, *args, "--kubeconfig", self.kubeconfig]
            if values is not None:
                path = pathlib.Path(folder) / "values.yaml"
                path.write_text(yaml.safe_dump(values))
                command += ["--values", str(path)]
            try:
                done = subprocess.run(
                    command, capture_output=True, text=True, timeout=HELM_TIMEOUT, check=False, cwd=REPO_ROOT
                )
            except subprocess.TimeoutExpired as exc:
                raise AssertionError(f"`{' '.join(command)}` did not finish in {HELM_TIMEOUT:.0f}s") from exc
        if done.returncode != 0:
            raise AssertionError(f"`{' '.join(command)}` exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def render(self, namespace: str, values: Obj) -> list[Obj]:
        text = self._run("template", RELEASE, str(CHART), "--namespace", namespace, values=values)
        return [doc for doc in yaml.safe_load_all(text) if doc]

    def install(self, namespace: str, values: Obj) -> None:
        self._run("install", RELEASE, str(CHART), "--namespace", namespace, "--timeout", "5m", values=values)

    def uninstall(self, namespace: str) -> None:
        self._run("uninstall", RELEASE, "--namespace", namespace, "--timeout", "5m")


class HelmLibrary:
    name = "helm-python-sdk"

    def __init__(self, module: Any, kubeconfig: str) -> None:
        self.helm = module
        self.kubeconfig = kubeconfig

    def render(self, namespace: str, values: Obj) -> list[Obj]:
        with self.helm.Chart.load(CHART) as chart:
            rendered: dict[str, str] = chart.render(values, name=RELEASE, namespace=namespace, is_install=True)
        return [
            doc
            for path, text in sorted(rendered.items())
            if not path.endswith("NOTES.txt")
            for doc in yaml.safe_load_all(text)
            if doc
        ]

    def install(self, namespace: str, values: Obj) -> None:
        with self.helm.Config(kubeconfig_path=self.kubeconfig, namespace=namespace) as config:
            config.install(str(CHART), RELEASE, values, namespace=namespace, timeout=int(HELM_TIMEOUT))

    def uninstall(self, namespace: str) -> None:
        with self.helm.Config(kubeconfig_path=self.kubeconfig, namespace=namespace) as config:
            config.uninstall(RELEASE, timeout=int(HELM_TIMEOUT))


@pytest.fixture(scope="module")
def helm(kubeconfig: str) -> Helm:
    binary = shutil.which("helm")
    if binary:
        return HelmCli(binary, kubeconfig)
    module = pytest.importorskip(
        "helm_python", reason="neither the helm CLI (on PATH) nor helm-python-sdk (the test extra) is installed"
    )
    return HelmLibrary(module, kubeconfig)


# --------------------------------------------------------------------------- the cluster


class Release:
    """The release namespace, and what a failure report should show of it."""

    def __init__(self, client: ApiClient, namespace: str) -> None:
        self.namespace = namespace
        self.core = kubernetes.client.CoreV1Api(client)
        self.apps = kubernetes.client.AppsV1Api(client)
        self.coordination = kubernetes.client.CoordinationV1Api(client)

    def deployment(self) -> Obj | None:
        try:
            return decode_json(self.apps.read_namespaced_deployment(FULLNAME, self.namespace, _preload_content=False))
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def pods(self) -> list[Obj]:
        answer = decode_json(
            self.core.list_namespaced_pod(self.namespace, label_selector=SELECTOR, _preload_content=False)
        )
        return sorted(answer.get("items") or [], key=lambda p: str(p["metadata"]["name"]))

    def lease_holder(self) -> str | None:
        try:
            lease = decode_json(
                self.coordination.read_namespaced_lease(FULLNAME, self.namespace, _preload_content=False)
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return (lease.get("spec") or {}).get("holderIdentity") or None

    def describe(self) -> str:
        """Like `kubectl describe deployment,pods` + events + logs: each part on its own, never raising."""
        lines = [f"===== release {RELEASE} in namespace {self.namespace}"]
        for part in (self._describe_deployment, self._describe_lease, self._describe_pods, self._describe_events):
            try:
                lines.extend(part())
            except Exception as exc:
                lines.append(f"(could not read: {exc!r})")
        return "\n".join(lines)

    def _describe_deployment(self) -> list[str]:
        deployment = self.deployment()
        if deployment is None:
            return [f"--- Deployment {FULLNAME}: not found"]
        status = deployment.get("status") or {}
        lines = [
            f"--- Deployment {FULLNAME}: replicas={status.get('replicas', 0)} ready={status.get('readyReplicas', 0)} "
            f"available={status.get('availableReplicas', 0)} updated={status.get('updatedReplicas', 0)} "
            f"generation={deployment['metadata'].get('generation')} observed={status.get('observedGeneration')}"
        ]
        [main] = deployment["spec"]["template"]["spec"]["containers"]
        lines.append(f"    image {main.get('image')} ({main.get('imagePullPolicy')})")
        for cond in status.get("conditions") or ():
            lines.append(
                f"    condition {cond.get('type')}={cond.get('status')} {cond.get('reason', '')}: {cond.get('message', '')}"
            )
        return lines

    def _describe_lease(self) -> list[str]:
        return [f"--- Lease {FULLNAME}: holder {self.lease_holder()!r}"]

    def _describe_pods(self) -> list[str]:
        lines: list[str] = []
        for pod in self.pods():
            meta, status = pod["metadata"], pod.get("status") or {}
            conditions = " ".join(f"{c.get('type')}={c.get('status')}" for c in status.get("conditions") or ())
            lines.append(f"--- Pod {meta['name']}: phase={status.get('phase')} {conditions}")
            restarted = False
            for cs in status.get("containerStatuses") or ():
                restarted = restarted or bool(cs.get("restartCount"))
                lines.append(
                    f"    container {cs.get('name')}: ready={cs.get('ready')} restarts={cs.get('restartCount', 0)} "
                    f"state={yaml.safe_dump(cs.get('state') or {}, default_flow_style=True).strip()} "
                    f"last={yaml.safe_dump(cs.get('lastState') or {}, default_flow_style=True).strip()}"
                )
            lines.extend(self._logs(meta["name"], previous=False))
            if restarted:
                lines.extend(self._logs(meta["name"], previous=True))
        return lines or ["--- no pods"]

    def _logs(self, pod: str, *, previous: bool) -> list[str]:
        which = "previous container" if previous else "log"
        try:
            text = self.core.read_namespaced_pod_log(
                pod, self.namespace, container="operator", tail_lines=60, previous=previous
            )
        except ApiException as exc:
            return [f"    ({which} of {pod} unavailable: {exc.status} {exc.reason})"]
        return [f"    --- {which} of {pod} (last 60 lines)", *(f"    | {line}" for line in str(text).splitlines())]

    def _describe_events(self) -> list[str]:
        answer = decode_json(self.core.list_namespaced_event(self.namespace, _preload_content=False))
        events = sorted(
            answer.get("items") or (), key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime") or "")
        )[-30:]
        return ["--- Events"] + [
            f"    {(e.get('involvedObject') or {}).get('kind')}/{(e.get('involvedObject') or {}).get('name')} "
            f"{e.get('type')} {e.get('reason')}: {e.get('message', '')}"
            for e in events
        ]


LEADER_LABEL = "asynctask.dev/leader"


def is_ready(pod: Obj) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or ()
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def exists(read: Callable[[], Any]) -> bool:
    try:
        read()
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True


def crd_exists(client: ApiClient, name: str) -> bool:
    crds = kubernetes.client.ApiextensionsV1Api(client)
    return exists(lambda: crds.read_custom_resource_definition(name, _preload_content=False))


@pytest.fixture
def namespaces(request: pytest.FixtureRequest, api_client: ApiClient) -> Iterator[tuple[str, str]]:
    """(release namespace, tasks namespace), deleted afterwards unless kept for a failed test."""
    created: list[str] = []
    failures_before = request.session.testsfailed
    try:
        created.append(create_namespace(api_client, "asynctask-e2e-chart"))
        created.append(create_namespace(api_client, "asynctask-e2e-chart-tasks"))
        yield created[0], created[1]
    finally:
        failed = request.session.testsfailed > failures_before  # the call's report is counted before teardown
        if failed and os.environ.get(KEEP_ON_FAILURE_ENV):
            print(f"namespaces {created} kept for inspection ({KEEP_ON_FAILURE_ENV} is set)")
        else:
            core = kubernetes.client.CoreV1Api(api_client)
            for name in created:
                try:
                    core.delete_namespace(name, _preload_content=False)
                except ApiException as exc:
                    print(f"could not delete namespace {name}: {exc.status} {exc.reason}")


# --------------------------------------------------------------------------- the test


def test_chart_install_lease_task_uninstall(
    image: str, helm: Helm, api_client: ApiClient, namespaces: tuple[str, str]
) -> None:
    release_ns, tasks_ns = namespaces
    release = Release(api_client, release_ns)
    tasks = Cluster(api_client, tasks_ns)
    values: Obj = {"image": image_values(image), "watchNamespaces": [tasks_ns], "logFormat": "json"}

    # The chart renders with this image (what `helm template` shows is what the Deployment runs).
    rendered = helm.render(release_ns, values)
    [deployment] = [o for o in rendered if o["kind"] == "Deployment"]
    [main] = deployment["spec"]["template"]["spec"]["containers"]
    assert main["image"] == image, f"{helm.name} rendered image {main['image']!r}, not {IMAGE_ENV}={image!r}"
    replicas = int(deployment["spec"]["replicas"])

    installed = False
    try:
        helm.install(release_ns, values)
        installed = True
        missing = [name for name in CHART_CRDS if not crd_exists(api_client, name)]
        assert not missing, f"after `helm install` the CRDs {missing} do not exist (the chart's crds/ folder)"

        def available() -> Obj | None:
            found = release.deployment()
            if found is None:
                return None
            status = found.get("status") or {}
            if (status.get("observedGeneration") or 0) < found["metadata"]["generation"]:
                return None
            conditions = {c.get("type"): c.get("status") for c in status.get("conditions") or ()}
            return found if conditions.get("Available") == "True" else None

        wait_for(
            available,
            AVAILABLE_TIMEOUT,
            f"Deployment {release_ns}/{FULLNAME} to be Available",
            describe=release.describe,
            interval=2,
        )

        # Every replica is Ready; the Lease names one (holderIdentity is <pod name>-<pid>), whose pod is
        # labelled asynctask.dev/leader=true, the others "false" (the Service selects "true").
        def leader() -> Obj | None:
            holder = release.lease_holder()
            if holder is None:
                return None
            pods = [p for p in release.pods() if not p["metadata"].get("deletionTimestamp")]
            if len(pods) != replicas or not all(is_ready(p) for p in pods):
                return None
            holding = [p for p in pods if holder.startswith(p["metadata"]["name"] + "-")]
            labels = {p["metadata"]["name"]: (p["metadata"].get("labels") or {}).get(LEADER_LABEL) for p in pods}
            if len(holding) != 1 or labels[holding[0]["metadata"]["name"]] != "true":
                return None
            others = [v for name, v in labels.items() if name != holding[0]["metadata"]["name"]]
            return holding[0] if all(v == "false" for v in others) else None

        leading = wait_for(
            leader,
            LEADER_TIMEOUT,
            f"{replicas} Ready pods, the one holding Lease {release_ns}/{FULLNAME} labelled {LEADER_LABEL}=true",
            describe=release.describe,
            interval=2,
        )

        # A task in the served namespace runs to Succeeded, and its Job reports to the Service.
        example = load_example("hello")
        tasks.apply(example)
        try:
            done = tasks.wait_for_phase("hello", {"Succeeded"}, SUCCESS_TIMEOUT, interval=1)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{release.describe()}") from None
        jobs = tasks.jobs_of("hello")
        assert len(jobs) == 1, f"{len(jobs)} Jobs for one successful attempt\n{to_yaml(done.get('status'))}"
        job = jobs[0]
        env = container_env(job)
        report_url = env.get("ASYNCTASK_REPORT_URL")
        assert report_url == expected_report_url(release_ns, tasks_ns, "hello"), f"ASYNCTASK_REPORT_URL={report_url!r}"
        assert env.get("ASYNCTASK_REPORT_TOKEN", "").startswith("v1.1."), "no report token of attempt 1"

        # /metrics of the leader (through the Service, which selects the leader's label) counts it.
        metrics = str(
            kubernetes.client.CoreV1Api(api_client).connect_get_namespaced_service_proxy_with_path(
                f"{FULLNAME}:http", release_ns, "metrics"
            )
        )
        finished = [
            line
            for line in metrics.splitlines()
            if line.startswith("asynctask_tasks_finished_total{")
            and f'namespace="{tasks_ns}"' in line
            and 'phase="Succeeded"' in line
        ]
        assert finished and float(finished[0].rsplit(" ", 1)[1]) >= 1, (
            f"the leader {leading['metadata']['name']} does not count the task in /metrics:\n{metrics[-3000:]}"
        )

        helm.uninstall(release_ns)
        installed = False
    except BaseException:
        if installed:  # leave nothing running; the original failure is what matters
            try:
                helm.uninstall(release_ns)
            except Exception as exc:
                print(f"uninstalling after the failure failed too: {exc}")
        raise

    # Uninstalled: the operator is gone; the CRDs and the task stay (deleting a CRD deletes its objects).
    wait_for(
        lambda: True if release.deployment() is None and not release.pods() else None,
        GONE_TIMEOUT,
        f"the Deployment and pods of {FULLNAME} to go after `helm uninstall`",
        describe=release.describe,
        interval=2,
    )
    removed = [name for name in CHART_CRDS if not crd_exists(api_client, name)]
    assert not removed, f"`helm uninstall` deleted the CRDs {removed}: it must leave them (and every task)"
    task = tasks.get_task("hello")
    assert task is not None and phase_of(task) == "Succeeded", "the AsyncTask did not survive the uninstall"
    rbac = kubernetes.client.RbacAuthorizationV1Api(api_client)
    assert not exists(lambda: rbac.read_namespaced_role(FULLNAME, tasks_ns)), "the Role in the served namespace stayed"
    assert not exists(lambda: release.core.read_namespaced_service(FULLNAME, release_ns)), "the Service stayed"
