"""Jobs, pods and Events as a real cluster makes them: the API server's defaults, and the bodies the
Job controller, the scheduler and the kubelet write (:mod:`~asynctask_operator.testing.jobrunner`
plays them). What a client of a real cluster reads is this, not the manifest it sent.

The shapes follow Kubernetes 1.31 to 1.36 (``batch/v1`` Jobs with pod finalizers and
``SuccessCriteriaMet``, a service-account token volume in every pod, containerd ids); the values
are made up, their sizes are not.
"""

from __future__ import annotations

import copy
import hashlib
from typing import Any

from asynctask_operator.adapters.kube import Resource
from asynctask_operator.core.wire import Obj

JOB_TRACKING = "batch.kubernetes.io/job-tracking"
NODE, NODE_IP = "worker-1", "172.18.0.3"
TOKEN_VOLUME = "kube-api-access-x7k2p"
TOKEN_MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"


def defaulted(resource: Resource, obj: Obj) -> Obj:
    """``obj`` as the API server stores a new one: a Job gets its selector, labels and defaults."""
    if resource.plural != "jobs":
        return obj
    job = copy.deepcopy(obj)
    meta, spec = job["metadata"], job.setdefault("spec", {})
    uid, name = meta["uid"], meta["name"]
    owned = {
        "batch.kubernetes.io/controller-uid": uid,
        "batch.kubernetes.io/job-name": name,
        "controller-uid": uid,
        "job-name": name,
    }
    defaults: tuple[tuple[str, Any], ...] = (
        ("backoffLimit", 6),
        ("completionMode", "NonIndexed"),
        ("completions", 1),
        ("manualSelector", False),
        ("parallelism", 1),
        ("podReplacementPolicy", "TerminatingOrFailed"),
        ("suspend", False),
    )
    for key, value in defaults:
        spec.setdefault(key, value)
    spec["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
    template = spec.setdefault("template", {})
    tmeta = template.setdefault("metadata", {})
    tmeta["labels"] = {**(tmeta.get("labels") or {}), **owned}
    pod = template.setdefault("spec", {})
    pod_defaults: tuple[tuple[str, Any], ...] = (
        ("dnsPolicy", "ClusterFirst"),
        ("schedulerName", "default-scheduler"),
        ("securityContext", {}),
        ("terminationGracePeriodSeconds", 30),
    )
    for key, value in pod_defaults:
        pod.setdefault(key, value)
    pod["containers"] = [_container_defaults(c) for c in pod.get("containers") or ()]
    return job


def _container_defaults(container: dict[str, Any]) -> dict[str, Any]:
    image = str(container.get("image") or "")
    pull = "Always" if image.endswith(":latest") or ":" not in image.rsplit("/", 1)[-1] else "IfNotPresent"
    return {
        "imagePullPolicy": pull,
        "resources": {},
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
        **container,
    }


def _hex(seed: str, n: int = 64) -> str:
    return (hashlib.sha256(seed.encode()).hexdigest() * 2)[:n]


def pod_for(job: Obj) -> Obj:
    """The pod the Job controller creates for ``job`` (not yet scheduled)."""
    meta, spec = job["metadata"], job["spec"]
    template = spec["template"]
    pod_spec = copy.deepcopy(template.get("spec") or {})
    mount = {"name": TOKEN_VOLUME, "readOnly": True, "mountPath": TOKEN_MOUNT}
    pod_spec["containers"] = [
        {**c, "volumeMounts": [*(c.get("volumeMounts") or ()), mount]} for c in pod_spec.get("containers") or ()
    ]
    pod_spec |= {
        "serviceAccountName": pod_spec.get("serviceAccountName", "default"),
        "serviceAccount": pod_spec.get("serviceAccountName", "default"),
        "enableServiceLinks": True,
        "preemptionPolicy": "PreemptLowerPriority",
        "priority": 0,
        "tolerations": [
            {"key": f"node.kubernetes.io/{t}", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
            for t in ("not-ready", "unreachable")
        ],
        "volumes": [*(pod_spec.get("volumes") or ()), _token_volume()],
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "generateName": f"{meta['name']}-",
            "namespace": meta.get("namespace"),
            "labels": dict((template.get("metadata") or {}).get("labels") or {}),
            "annotations": dict((template.get("metadata") or {}).get("annotations") or {}),
            "finalizers": [JOB_TRACKING],
            "ownerReferences": [
                {
                    "apiVersion": "batch/v1",
                    "kind": "Job",
                    "name": meta["name"],
                    "uid": meta["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": pod_spec,
        "status": {"phase": "Pending", "qosClass": "BestEffort"},
    }


def _token_volume() -> Obj:
    return {
        "name": TOKEN_VOLUME,
        "projected": {
            "sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {
                    "downwardAPI": {
                        "items": [
                            {"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}
                        ]
                    }
                },
            ],
            "defaultMode": 420,
        },
    }


def _condition(type_: str, status: bool, now: str, reason: str = "") -> Obj:
    out: Obj = {"type": type_, "status": "True" if status else "False", "lastProbeTime": None}
    return out | {"lastTransitionTime": now} | ({"reason": reason} if reason else {})


def pod_scheduled(now: str) -> Obj:
    """What binding the pod to a node writes (the scheduler)."""
    return {"status": {"conditions": [_condition("PodScheduled", True, now)]}}


def pod_status(pod: Obj, stage: str, now: str, exit_code: int = 0, message: str = "") -> Obj:
    """The kubelet's status of ``pod`` at ``stage``: ``creating``, ``running`` or ``terminated``."""
    name = pod["metadata"]["name"]
    started = (pod.get("status") or {}).get("startTime") or now
    running, done = stage == "running", stage == "terminated"
    container_id = f"containerd://{_hex(name)}"
    containers = []
    for c in pod["spec"]["containers"]:
        image = str(c.get("image") or "")
        state: Obj
        if stage == "creating":
            state = {"waiting": {"reason": "ContainerCreating"}}
        elif running:
            state = {"running": {"startedAt": now}}
        else:
            reason = "Completed" if exit_code == 0 else "Error"
            state = {"terminated": {"exitCode": exit_code, "reason": reason, "startedAt": started, "finishedAt": now}}
            state["terminated"] |= {"containerID": container_id} | ({"message": message} if message else {})
        status: Obj = {
            "name": c["name"],
            "state": state,
            "lastState": {},
            "ready": running,
            "restartCount": 0,
            "image": f"docker.io/library/{image}",
            "imageID": "" if stage == "creating" else f"docker.io/library/{image.split(':')[0]}@sha256:{_hex(image)}",
            "started": running,
            "volumeMounts": [
                {"name": TOKEN_VOLUME, "mountPath": TOKEN_MOUNT, "readOnly": True, "recursiveReadOnly": "Disabled"}
            ],
        }
        if stage != "creating":
            status["containerID"] = container_id
        containers.append(status)
    phase = {"creating": "Pending", "running": "Running"}.get(stage, "Succeeded" if exit_code == 0 else "Failed")
    finished = "PodCompleted" if done else ""
    conditions = [
        _condition("PodReadyToStartContainers", not done and stage != "creating", now),
        _condition("Initialized", True, started, finished),
        _condition("Ready", running, now, finished or ("" if running else "ContainersNotReady")),
        _condition("ContainersReady", running, now, finished or ("" if running else "ContainersNotReady")),
        _condition("PodScheduled", True, started),
    ]
    pod_ip = f"10.244.{sum(map(ord, name)) % 250}.{len(name) % 250 + 2}"
    return {
        "status": {
            "phase": phase,
            "conditions": conditions,
            "hostIP": NODE_IP,
            "hostIPs": [{"ip": NODE_IP}],
            "podIP": pod_ip,
            "podIPs": [{"ip": pod_ip}],
            "startTime": started,
            "containerStatuses": containers,
            "qosClass": "BestEffort",
        }
    }


def job_started(now: str) -> Obj:
    return {"status": {"startTime": now, "active": 1, "ready": 0, "terminating": 0, "uncountedTerminatedPods": {}}}


def job_ready(ready: int) -> Obj:
    return {"status": {"ready": ready}}


def job_uncounted(pod_uid: str, succeeded: bool) -> Obj:
    which = "succeeded" if succeeded else "failed"
    return {"status": {"active": 0, "ready": 0, "uncountedTerminatedPods": {which: [pod_uid]}}}


def job_finished(now: str, succeeded: bool) -> Obj:
    """The Job's last status: the pod counted, its conditions, its completion time (on success)."""
    if succeeded:
        conditions = [
            {**_condition("SuccessCriteriaMet", True, now, "CompletionsReached"), "message": "Reached expected number of succeeded pods", "lastProbeTime": now},
            {**_condition("Complete", True, now, "CompletionsReached"), "message": "Reached expected number of succeeded pods", "lastProbeTime": now},
        ]  # fmt: skip
        return {
            "status": {"succeeded": 1, "uncountedTerminatedPods": {}, "completionTime": now, "conditions": conditions}
        }
    message = "Job has reached the specified backoff limit"
    conditions = [
        {**_condition("FailureTarget", True, now, "BackoffLimitExceeded"), "message": message, "lastProbeTime": now},
        {**_condition("Failed", True, now, "BackoffLimitExceeded"), "message": message, "lastProbeTime": now},
    ]
    return {"status": {"failed": 1, "uncountedTerminatedPods": {}, "conditions": conditions}}


def event(about: Obj, reason: str, message: str, component: str, now: str, type_: str = "Normal") -> Obj:
    """A core/v1 Event about ``about``, as a controller's event recorder posts it."""
    meta = about["metadata"]
    name = f"{meta['name']}.{_hex(meta['name'] + reason + now, 16)}"
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": name, "namespace": meta.get("namespace")},
        "involvedObject": {
            "kind": about.get("kind"),
            "namespace": meta.get("namespace"),
            "name": meta["name"],
            "uid": meta.get("uid"),
            "apiVersion": about.get("apiVersion"),
            "resourceVersion": meta.get("resourceVersion"),
        },
        "reason": reason,
        "message": message,
        "source": {"component": component} | ({"host": NODE} if component == "kubelet" else {}),
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
        "type": type_,
        "eventTime": None,
        "reportingComponent": component,
        "reportingInstance": NODE if component == "kubelet" else "",
    }
