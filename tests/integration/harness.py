"""Run the real operator process against kmock's Kubernetes emulator.

The emulator (``tests/support/emulator.py``) gives kmock an API server's resourceVersions,
409s, paging and watches, but like kmock it runs no controllers (Jobs get no pods or
status unless a test gives them) and answers creates with 200. The helpers here play the
missing parts: they create objects through the API (so watches see them) and move Jobs
and pods to the states a real cluster would.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import pathlib
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import kmock
import yaml

NS = "default"
AT = kmock.resource("asynctask.dev", "v1alpha1", "asynctasks")
TT = kmock.resource("asynctask.dev", "v1alpha1", "tasktypes")
TQ = kmock.resource("asynctask.dev", "v1alpha1", "taskqueues")
ST = kmock.resource("asynctask.dev", "v1alpha1", "scheduledtasks")
JOBS = kmock.resource("batch", "v1", "jobs")
PODS = kmock.resource("", "v1", "pods")


def declare_resources(k: kmock.KubernetesEmulator) -> None:
    both = {"get", "list", "watch", "create", "update", "patch", "delete"}
    k.resources["asynctask.dev/v1alpha1/asynctasks"] = kmock.ResourceInfo(
        kind="AsyncTask",
        singular="asynctask",
        namespaced=True,
        verbs=both,
        subresources={"status"},
        shortnames={"at", "atask"},
    )
    k.resources["asynctask.dev/v1alpha1/tasktypes"] = kmock.ResourceInfo(
        kind="TaskType", singular="tasktype", namespaced=True, verbs=both, subresources={"status"}, shortnames={"tt"}
    )
    k.resources["asynctask.dev/v1alpha1/taskqueues"] = kmock.ResourceInfo(
        kind="TaskQueue", singular="taskqueue", namespaced=True, verbs=both, subresources={"status"}, shortnames={"tq"}
    )
    k.resources["asynctask.dev/v1alpha1/scheduledtasks"] = kmock.ResourceInfo(
        kind="ScheduledTask",
        singular="scheduledtask",
        namespaced=True,
        verbs=both,
        subresources={"status"},
        shortnames={"st"},
    )
    k.resources["batch/v1/jobs"] = kmock.ResourceInfo(
        kind="Job", singular="job", namespaced=True, verbs=both, subresources={"status"}
    )
    k.resources["coordination.k8s.io/v1/leases"] = kmock.ResourceInfo(
        kind="Lease", singular="lease", namespaced=True, verbs=both
    )
    k.resources["v1/events"] = kmock.ResourceInfo(kind="Event", singular="event", namespaced=True, verbs=both)
    k.resources["v1/secrets"] = kmock.ResourceInfo(kind="Secret", singular="secret", namespaced=True, verbs=both)
    k.resources["v1/pods"] = kmock.ResourceInfo(
        kind="Pod", singular="pod", namespaced=True, verbs=both, subresources={"status"}
    )


def write_kubeconfig(path: pathlib.Path, url: str) -> None:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "kmock", "cluster": {"server": url}}],
                "users": [{"name": "kmock", "user": {}}],
                "contexts": [{"name": "kmock", "context": {"cluster": "kmock", "user": "kmock"}}],
                "current-context": "kmock",
            }
        )
    )


class Operator:
    """The operator as a child process: ``await start()``, ``kill()``, ``await stop()``.

    ``verbose=False`` runs it at its production log level (the benchmarks do: debug
    logging would be part of what they measure)."""

    def __init__(self, kubeconfig: pathlib.Path, logfile: pathlib.Path, *extra: str, verbose: bool = True) -> None:
        self.kubeconfig = kubeconfig
        self.logfile = logfile
        self.extra = extra
        self.verbose = verbose
        self.proc: asyncio.subprocess.Process | None = None
        self.starts = 0

    def argv(self) -> list[str]:
        """The command line of ``asynctask-operator``: the flags every test runs it with, then the test's own."""
        return [
            "run",
            "--kubeconfig",
            str(self.kubeconfig),
            "--log-format",
            "text",
            *(["--verbose"] if self.verbose else []),
            "--unknown-type-grace",
            "2",
            "--queue-status-seconds",
            "0.5",
            "--http-port",
            "0",
            *self.extra,
        ]

    @property
    def pid(self) -> int:
        assert self.proc is not None, "not started"
        return self.proc.pid

    async def start(self, timeout: float = 30, marker: str = "synced") -> None:
        self.starts += 1
        log = self.logfile.open("a")
        log.write(f"\n===== start {self.starts} =====\n")
        log.flush()
        offset = self.logfile.stat().st_size
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig), "PYTHONUNBUFFERED": "1"}
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "asynctask_operator", *self.argv(), stdout=log, stderr=log, env=env
        )
        try:
            await eventually(
                lambda: marker in self.logfile.read_text()[offset:] or self.proc.returncode is not None,  # type: ignore[union-attr]
                timeout,
                "operator to sync",
            )
            if self.proc.returncode is not None:
                raise AssertionError(f"exited with {self.proc.returncode}")
        except AssertionError:
            raise AssertionError("the operator did not sync:\n" + self.logfile.read_text()[offset:][-5000:]) from None

    def kill(self) -> None:
        """SIGKILL: the crash at any line."""
        if self.proc and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)

    async def stop(self) -> None:
        t0 = time.monotonic()
        try:
            await self._stop()
        finally:
            self.stop_seconds = time.monotonic() - t0

    async def _stop(self) -> None:
        if self.proc and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()

    def log(self) -> str:
        return self.logfile.read_text()


class InProcessOperator(Operator):
    """The operator in the test's own event loop, with the same command line: parsed by the CLI, run by
    ``process.run`` without kopf's frame (no signal handlers in the test process), its log in ``logfile``.

    For every test where the process boundary is not the point: a start costs no interpreter and no
    imports (~2 s of CPU each), a stop no signal. ``kill()`` is a SIGKILL only in :class:`Operator`;
    tests that crash the operator use that one."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._task: asyncio.Task[None] | None = None
        self._stop_event: asyncio.Event | None = None
        self._api: Any = None
        self._handler: logging.Handler | None = None
        self._root_level = logging.WARNING

    async def start(self, timeout: float = 30, marker: str = "synced") -> None:
        from asynctask_operator import cli
        from asynctask_operator.adapters.kubeclient import KubeClient
        from asynctask_operator.adapters.kubeconfig import load_configuration
        from asynctask_operator.controllers import process

        self.starts += 1
        with self.logfile.open("a") as log:
            log.write(f"\n===== start {self.starts} (in process) =====\n")
        offset = self.logfile.stat().st_size
        args = cli._parser().parse_args(self.argv())
        settings = cli.settings_of(args)
        self._handler = logging.FileHandler(self.logfile)
        self._handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
        self._handler.setLevel(logging.DEBUG if self.verbose else logging.INFO)
        root = logging.getLogger()
        root.addHandler(self._handler)
        self._root_level = root.level
        root.setLevel(logging.DEBUG if self.verbose else logging.INFO)
        self._api = KubeClient(load_configuration(args.kubeconfig, None), concurrency=settings.api_concurrency)
        self._stop_event = asyncio.Event()
        self._task = asyncio.create_task(process.run(self._api, settings, self._stop_event, frame=False))
        try:
            await eventually(
                lambda: marker in self.logfile.read_text()[offset:] or self._task.done(),  # type: ignore[union-attr]
                timeout,
                "operator to sync",
            )
            if self._task.done():
                raise AssertionError(f"ended: {self._task.exception() or self._task.result()}")
        except AssertionError as exc:
            await self._stop_now()
            raise AssertionError(
                f"the operator did not sync ({exc}):\n" + self.logfile.read_text()[offset:][-5000:]
            ) from None

    @property
    def pid(self) -> int:
        raise AssertionError("the in-process operator has no pid: use Operator for a process")

    def kill(self) -> None:
        raise AssertionError("the in-process operator cannot be SIGKILLed: use Operator for a crash")

    async def _stop(self) -> None:
        await self._stop_now()

    async def _stop_now(self) -> None:
        if self._task is not None:
            assert self._stop_event is not None
            self._stop_event.set()
            try:
                await asyncio.wait_for(asyncio.shield(self._task), 10)
            except TimeoutError:
                self._task.cancel()
            except (Exception, SystemExit):  # what it ended with is in its log
                pass
            self._task = None
        if self._api is not None:
            self._api.close()
            self._api = None
        if self._handler is not None:
            root = logging.getLogger()
            root.removeHandler(self._handler)
            root.setLevel(self._root_level)
            self._handler.close()
            self._handler = None


async def eventually(
    check: Callable[[], bool | Awaitable[bool]], timeout: float = 15, what: str = "", interval: float = 0.05
) -> None:
    """Poll ``check`` every ``interval`` seconds until it is true (no fixed sleeps in tests: wait for a condition)."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or check}")
        await asyncio.sleep(interval)


class Cluster:
    """The test's hands on kmock: create objects, play the Job controller and kubelet."""

    def __init__(self, k: kmock.KubernetesEmulator) -> None:
        self.k = k
        self._uids = itertools.count(1)

    def _meta(self, name: str, **more: Any) -> dict[str, Any]:
        return {
            "name": name,
            "namespace": NS,
            "uid": f"uid-{name}-{next(self._uids)}",
            "generation": 1,
            "creationTimestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            **more,
        }

    async def create_tasktype(self, name: str, spec: dict[str, Any] | None = None) -> None:
        body = {
            "apiVersion": "asynctask.dev/v1alpha1",
            "kind": "TaskType",
            "metadata": self._meta(name),
            "spec": spec
            or {
                "jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "busybox"}]}}}}
            },
        }
        resp = await self.k.post(f"/apis/asynctask.dev/v1alpha1/namespaces/{NS}/tasktypes", json=body)
        assert resp.status == 200, await resp.text()

    async def create_queue(self, name: str, spec: dict[str, Any]) -> None:
        body = {"apiVersion": "asynctask.dev/v1alpha1", "kind": "TaskQueue", "metadata": self._meta(name), "spec": spec}
        resp = await self.k.post(f"/apis/asynctask.dev/v1alpha1/namespaces/{NS}/taskqueues", json=body)
        assert resp.status == 200, await resp.text()

    async def create_task(self, name: str, spec: dict[str, Any], **meta: Any) -> None:
        body = {
            "apiVersion": "asynctask.dev/v1alpha1",
            "kind": "AsyncTask",
            "metadata": self._meta(name, **meta),
            "spec": spec,
        }
        resp = await self.k.post(f"/apis/asynctask.dev/v1alpha1/namespaces/{NS}/asynctasks", json=body)
        assert resp.status == 200, await resp.text()

    async def patch(self, resource: str, name: str, patch: dict[str, Any]) -> None:
        resp = await self.k.patch(
            f"{resource}/namespaces/{NS}/{name}", json=patch, headers={"Content-Type": "application/merge-patch+json"}
        )
        assert resp.status == 200, await resp.text()

    async def delete(self, resource: str, name: str) -> None:
        resp = await self.k.delete(f"{resource}/namespaces/{NS}/{name}")
        assert resp.status == 200, await resp.text()

    # -- reading
    def task(self, name: str) -> dict[str, Any]:
        return dict(self.k.objects[AT, NS, name])

    def status(self, name: str) -> dict[str, Any]:
        return dict(self.task(name).get("status") or {})

    def phase(self, name: str) -> str | None:
        return self.status(name).get("phase")

    def job_names(self) -> list[str]:
        return sorted(name for (res, ns, name) in self.k.objects if res == JOBS)

    def job(self, name: str) -> dict[str, Any]:
        return dict(self.k.objects[JOBS, NS, name])

    def queue_status(self, name: str) -> dict[str, Any]:
        return dict(self.k.objects[TQ, NS, name].get("status") or {})

    def job_deleted(self, name: str) -> bool:
        return (JOBS, NS, name) in self.k.objects and self.k.objects[JOBS, NS, name].deleted

    def has_job(self, name: str) -> bool:
        return (JOBS, NS, name) in self.k.objects

    # -- playing the Job controller and the kubelet
    async def job_succeeds(self, job: str, termination_message: str = "") -> None:
        await self._pod(
            job, "Succeeded", {"terminated": {"exitCode": 0, "reason": "Completed", "message": termination_message}}
        )
        await self.patch(
            "/apis/batch/v1",
            f"jobs/{job}",
            {
                "status": {
                    "succeeded": 1,
                    "completionTime": _now(),
                    "conditions": [{"type": "Complete", "status": "True"}],
                }
            },
        )

    async def job_fails(self, job: str, exit_code: int = 1, reason: str = "Error", pod_reason: str = "") -> None:
        await self._pod(job, "Failed", {"terminated": {"exitCode": exit_code, "reason": reason}}, pod_reason)
        await self._job_failed(job, "BackoffLimitExceeded", "Job has reached the specified backoff limit")

    async def job_times_out(self, job: str) -> None:
        await self._job_failed(job, "DeadlineExceeded", "Job was active longer than specified deadline")

    async def _job_failed(self, job: str, reason: str, message: str) -> None:
        condition = {"type": "Failed", "status": "True", "reason": reason, "message": message}
        await self.patch("/apis/batch/v1", f"jobs/{job}", {"status": {"failed": 1, "conditions": [condition]}})

    async def pod_waiting(self, job: str, reason: str, message: str = "") -> None:
        await self._pod(job, "Pending", {"waiting": {"reason": reason, "message": message}})

    async def _pod(self, job: str, phase: str, state: dict[str, Any], pod_reason: str = "") -> None:
        name = f"{job}-pod"
        labels = dict((self.job(job).get("spec") or {}).get("template", {}).get("metadata", {}).get("labels") or {})
        labels["batch.kubernetes.io/job-name"] = job
        status = {"phase": phase, "containerStatuses": [{"name": "main", "state": state}]}
        if pod_reason:
            status["reason"] = pod_reason
            status["message"] = f"The node was low on resource: memory. ({pod_reason})"
        if (PODS, NS, name) in self.k.objects and not self.k.objects[PODS, NS, name].deleted:
            await self.patch("/api/v1", f"pods/{name}", {"status": status})
            return
        body = {"apiVersion": "v1", "kind": "Pod", "metadata": self._meta(name, labels=labels), "status": status}
        resp = await self.k.post(f"/api/v1/namespaces/{NS}/pods", json=body)
        assert resp.status == 200, await resp.text()


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def operator_requests(k: kmock.KubernetesEmulator) -> list[tuple[str, str]]:
    """(METHOD, path) of every request the operator's API client made, in order."""
    out = []
    for request in k:
        agent = request.headers.get("User-Agent", "")
        if agent.startswith("asynctask-operator"):
            out.append((str(request.method.value).upper(), request.url.path))
    return out


def operator_writes(k: kmock.KubernetesEmulator) -> list[tuple[str, str]]:
    return [(m, p) for m, p in operator_requests(k) if m in ("POST", "PUT", "PATCH", "DELETE")]
