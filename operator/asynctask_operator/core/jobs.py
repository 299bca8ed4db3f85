"""The Job manifest of one attempt (docs/design.md §3.1)."""

from __future__ import annotations

import copy
from typing import Any

from asynctask_operator.core import tracing
from asynctask_operator.core.models import API_VERSION, AsyncTask, EffectiveSpec, TaskType
from asynctask_operator.core.naming import (
    ANNOTATION_CONCURRENCY_KEY,
    LABEL_ATTEMPT,
    LABEL_MANAGED_BY,
    LABEL_TASK,
    LABEL_TASK_UID,
    LABEL_TYPE,
    MANAGER,
    RESERVED_LABEL_PREFIX,
    job_name,
    label_value,
)
from asynctask_operator.core.validation import encode_payload

ENV_PREFIX = "ASYNCTASK_"


def attempt_labels(task: AsyncTask, attempt: int) -> dict[str, str]:
    """The task's own labels plus the operator's, for the Job and its pods."""
    labels = {k: v for k, v in task.metadata.labels.items() if not k.startswith(RESERVED_LABEL_PREFIX)}
    labels.update(
        {
            LABEL_TASK: label_value(task.metadata.name),
            LABEL_TASK_UID: task.metadata.uid,
            LABEL_TYPE: label_value(task.spec.type),
            LABEL_ATTEMPT: str(attempt),
            LABEL_MANAGED_BY: MANAGER,
        }
    )
    return labels


def attempt_env(task: AsyncTask, attempt: int, extra: dict[str, str] | None = None) -> list[dict[str, str]]:
    env = {
        "ASYNCTASK_NAME": task.metadata.name,
        "ASYNCTASK_NAMESPACE": task.metadata.namespace,
        "ASYNCTASK_UID": task.metadata.uid,
        "ASYNCTASK_TYPE": task.spec.type,
        "ASYNCTASK_ATTEMPT": str(attempt),
        "ASYNCTASK_PAYLOAD": encode_payload(task.spec.payload),
        **(extra or {}),
        **tracing.attempt_env(task, attempt),  # the task's code continues the trace (ADR 0020)
    }
    return [{"name": k, "value": v} for k, v in env.items()]


def _with_env(container: dict[str, Any], env: list[dict[str, str]]) -> dict[str, Any]:
    ours = {e["name"] for e in env}
    kept = [e for e in container.get("env") or () if e.get("name") not in ours]
    return {**container, "env": kept + env}


def render_job(
    task: AsyncTask,
    tasktype: TaskType,
    attempt: int,
    effective: EffectiveSpec,
    extra_env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The batch/v1 Job that runs ``attempt`` of ``task``, owned by the task."""
    template = copy.deepcopy(tasktype.spec.job_template)
    tmeta = template.get("metadata") or {}
    spec: dict[str, Any] = template.get("spec") or {}
    pod = spec.setdefault("template", {})
    pod_meta = pod.setdefault("metadata", {})
    pod_spec = pod.setdefault("spec", {})

    labels = attempt_labels(task, attempt)
    env = attempt_env(task, attempt, extra_env)

    pod_meta["labels"] = {**(pod_meta.get("labels") or {}), **labels}
    pod_spec["restartPolicy"] = "Never"
    pod_spec["containers"] = [_with_env(c, env) for c in pod_spec.get("containers") or ()]
    if pod_spec.get("initContainers"):
        pod_spec["initContainers"] = [_with_env(c, env) for c in pod_spec["initContainers"]]

    spec["backoffLimit"] = 0  # the operator owns retries
    spec.pop("ttlSecondsAfterFinished", None)  # the operator owns garbage collection
    spec.pop("selector", None)
    spec.pop("manualSelector", None)
    if effective.timeout_seconds:
        spec["activeDeadlineSeconds"] = effective.timeout_seconds
    else:
        spec.pop("activeDeadlineSeconds", None)

    annotations = dict(tmeta.get("annotations") or {})
    if effective.concurrency is not None:  # a Job outliving its task (deleted) still holds the key
        annotations[ANNOTATION_CONCURRENCY_KEY] = effective.concurrency.key
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job_name(task.metadata.name, attempt),
            "namespace": task.metadata.namespace,
            "labels": {**(tmeta.get("labels") or {}), **labels},
            "annotations": annotations,
            "ownerReferences": [
                {
                    "apiVersion": API_VERSION,
                    "kind": "AsyncTask",
                    "name": task.metadata.name,
                    "uid": task.metadata.uid,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": spec,
    }
