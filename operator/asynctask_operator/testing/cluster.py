"""The test's part of the cluster, over HTTP: the emulator's resources, a kubeconfig for it, and
:class:`Cluster`, the hands that create objects through the API (so watches see them) and play
the controllers the fake API server does not run: the Job controller and the kubelet.

    cluster = Cluster(emulator)
    await cluster.create_task("t1", {"type": "echo"})
    await cluster.job_succeeds("t1-1")   # a pod that ran to exit 0, the Job Complete

Needs kmock (the ``test`` extra).
"""

from __future__ import annotations

import pathlib
import time
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
API = "/apis/asynctask.dev/v1alpha1"


def declare_resources(k: kmock.KubernetesEmulator) -> None:
    """The kinds the operator reads and writes, for kmock's discovery (and its 404 for any other)."""
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


class Cluster:
    """The test's hands on the emulator: create objects, play the Job controller and kubelet."""

    def __init__(self, k: kmock.KubernetesEmulator) -> None:
        self.k = k

    def _meta(self, name: str, **more: Any) -> dict[str, Any]:
        """The metadata of a new object in the test namespace (the API server adds uid, times, versions)."""
        return {"name": name, "namespace": NS, **more}

    async def create_tasktype(self, name: str, spec: dict[str, Any] | None = None) -> None:
        pod = {"containers": [{"name": "main", "image": "busybox"}]}
        body = {"apiVersion": "asynctask.dev/v1alpha1", "kind": "TaskType", "metadata": self._meta(name)}
        await self._create(
            f"{API}/namespaces/{NS}/tasktypes",
            body | {"spec": spec or {"jobTemplate": {"spec": {"template": {"spec": pod}}}}},
        )

    async def create_queue(self, name: str, spec: dict[str, Any]) -> None:
        body = {"apiVersion": "asynctask.dev/v1alpha1", "kind": "TaskQueue", "metadata": self._meta(name), "spec": spec}
        await self._create(f"{API}/namespaces/{NS}/taskqueues", body)

    async def create_task(self, name: str, spec: dict[str, Any], **meta: Any) -> None:
        body = {
            "apiVersion": "asynctask.dev/v1alpha1",
            "kind": "AsyncTask",
            "metadata": self._meta(name, **meta),
            "spec": spec,
        }
        await self._create(f"{API}/namespaces/{NS}/asynctasks", body)

    async def patch(self, resource: str, name: str, patch: dict[str, Any]) -> None:
        """A merge patch of ``{resource}/namespaces/default/{name}``; its ``status`` goes through the status
        subresource, as a controller writes it (the API server leaves it out of a patch of the object)."""
        path = f"{resource}/namespaces/{NS}/{name}"
        parts = [(path, {k: v for k, v in patch.items() if k != "status"})]
        if "status" in patch:
            parts = [(p, body) for p, body in parts if body] + [
                (path.removesuffix("/status") + "/status", {"status": patch["status"]})
            ]
        for where, body in parts:
            resp = await self.k.patch(where, json=body, headers={"Content-Type": "application/merge-patch+json"})
            assert resp.status == 200, await resp.text()

    async def delete(self, resource: str, name: str) -> None:
        resp = await self.k.delete(f"{resource}/namespaces/{NS}/{name}")
        assert resp.status == 200, await resp.text()

    async def _create(self, path: str, body: dict[str, Any]) -> None:
        resp = await self.k.post(path, json=body)
        assert resp.status == 200, await resp.text()

    # -- reading (kmock's mirror of the store: deleted objects stay there, marked)

    def task(self, name: str) -> dict[str, Any]:
        return dict(self.k.objects[AT, NS, name])

    def status(self, name: str) -> dict[str, Any]:
        return dict(self.task(name).get("status") or {})

    def phase(self, name: str) -> str | None:
        phase = self.status(name).get("phase")
        return str(phase) if phase is not None else None

    def job_names(self) -> list[str]:
        """Every Job there has been, deleted ones too."""
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
        conditions = [{"type": "Complete", "status": "True"}]
        await self.patch(
            "/apis/batch/v1",
            f"jobs/{job}",
            {"status": {"succeeded": 1, "completionTime": _now(), "conditions": conditions}},
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
        """The Job's pod (``<job>-pod``) in ``phase``: created so (a restore: with its status), or its status set."""
        name = f"{job}-pod"
        labels = dict((self.job(job).get("spec") or {}).get("template", {}).get("metadata", {}).get("labels") or {})
        labels["batch.kubernetes.io/job-name"] = job
        status: dict[str, Any] = {"phase": phase, "containerStatuses": [{"name": "main", "state": state}]}
        if pod_reason:
            status["reason"] = pod_reason
            status["message"] = f"The node was low on resource: memory. ({pod_reason})"
        if (PODS, NS, name) in self.k.objects and not self.k.objects[PODS, NS, name].deleted:
            await self.patch("/api/v1", f"pods/{name}", {"status": status})
            return
        body = {"apiVersion": "v1", "kind": "Pod", "metadata": self._meta(name, labels=labels), "status": status}
        await self._create(f"/api/v1/namespaces/{NS}/pods", body)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def operator_requests(k: kmock.KubernetesEmulator) -> list[tuple[str, str]]:
    """(METHOD, path) of every request the operator's API client made, in order (kmock's history)."""
    out = []
    for request in k:
        agent = request.headers.get("User-Agent", "")
        if agent.startswith("asynctask-operator"):
            out.append((str(request.method.value).upper(), request.url.path))
    return out


def operator_writes(k: kmock.KubernetesEmulator) -> list[tuple[str, str]]:
    return [(m, p) for m, p in operator_requests(k) if m in ("POST", "PUT", "PATCH", "DELETE")]
