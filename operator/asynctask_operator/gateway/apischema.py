"""The aggregated API's OpenAPI v3 document, as the API server aggregates it: ``kubectl explain archivedtasks``.

The API server reads ``/openapi/v3`` of every aggregated API (which group-versions it documents, each
with a hash of its document), then each group-version's document, and serves them merged to clients;
``kubectl explain`` finds a kind's schema by its ``x-kubernetes-group-version-kind``. One document,
self-contained (the API server does not resolve references into other groups' documents), made from
the models the objects are made from: the task's ``spec`` and ``status`` from the AsyncTask CRD's
models (core/crds.py), ``summary`` from the gateway's task answer, so every field is described where
it is defined. Pure; built once per process.
"""

from __future__ import annotations

import functools
import hashlib
import json
from typing import Any

from asynctask_operator.core.crds import structural
from asynctask_operator.core.models import AsyncTaskSpec, AsyncTaskStatus
from asynctask_operator.gateway.answers import TaskSummary
from asynctask_operator.gateway.apiobjects import GROUP, GROUP_VERSION, KIND, RESOURCE, VERSION

PATH = f"apis/{GROUP}/{VERSION}"
PREFIX = "dev.asynctask.archive.v1alpha1"  # the reversed group, as Kubernetes names its schemas


def _gvk(kind: str) -> list[dict[str, str]]:
    return [{"group": GROUP, "version": VERSION, "kind": kind}]


def _described(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {**schema, "description": description}


METADATA: dict[str, Any] = {
    "type": "object",
    "description": "The task's own metadata, as it was when archived.",
    "properties": {
        "name": {"type": "string", "description": "The task's name (names are reused after a deletion)."},
        "namespace": {"type": "string", "description": "The task's namespace."},
        "uid": {"type": "string", "description": "The task's uid: one archived task each."},
        "creationTimestamp": {"type": "string", "format": "date-time", "description": "When it was created."},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}, "description": "Its labels."},
        "annotations": {
            "type": "object",
            "additionalProperties": {"type": "string"},
            "description": "Its annotations.",
        },
    },
}

ARCHIVE: dict[str, Any] = {
    "type": "object",
    "description": "What the archive adds: when it recorded the task, and (on a get) the attempts' logs it kept.",
    "properties": {
        "archivedTime": {"type": "string", "format": "date-time", "description": "When the archive recorded it."},
        "logs": {
            "type": "array",
            "description": "One entry per attempt whose log was captured (read one with `kubectl asynctask logs`).",
            "items": {
                "type": "object",
                "properties": {
                    "attempt": {"type": "integer", "description": "The attempt's number."},
                    "pod": {"type": "string", "description": "The pod the log was read from."},
                    "container": {"type": "string", "description": "Its container."},
                    "bytes": {"type": "integer", "description": "The log's size as read, before the cut."},
                    "truncated": {"type": "boolean", "description": "Whether only its end was kept."},
                    "error": {"type": "string", "description": "Why there is no log (the pod was gone)."},
                },
            },
        },
    },
}


def _task_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "An AsyncTask as the archive kept it after it ended (kubectl asynctask history).",
        "x-kubernetes-group-version-kind": _gvk(KIND),
        "properties": {
            "apiVersion": {"type": "string", "description": f"{GROUP_VERSION}"},
            "kind": {"type": "string", "description": KIND},
            "metadata": METADATA,
            "spec": _described(structural(AsyncTaskSpec), "The task's spec, as last recorded."),
            "status": _described(structural(AsyncTaskStatus), "The task's status, as last recorded."),
            "archive": ARCHIVE,
            "summary": _described(
                structural(TaskSummary),
                "The gateway's reading of the task: every figure as its API, console and kubectl plugin show it.",
            ),
        },
    }


def _list_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "A page of archived tasks, newest first; metadata.continue asks for the next.",
        "x-kubernetes-group-version-kind": _gvk(f"{KIND}List"),
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {
                "type": "object",
                "properties": {
                    "continue": {"type": "string", "description": "The next page's cursor; absent on the last."},
                    "resourceVersion": {"type": "string", "description": "Always empty: the archive has none."},
                },
            },
            "items": {"type": "array", "items": {"$ref": f"#/components/schemas/{PREFIX}.{KIND}"}},
        },
    }


def _get(summary: str, response: dict[str, Any], parameters: list[dict[str, Any]]) -> dict[str, Any]:
    return {"get": {"summary": summary, "parameters": parameters, "responses": {"200": response}}}


def _json(ref: str) -> dict[str, Any]:
    return {"description": "OK", "content": {"application/json": {"schema": {"$ref": ref}}}}


def _path_parameter(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


@functools.cache
def document() -> dict[str, Any]:
    """The group-version's OpenAPI 3.0 document."""
    task_ref, list_ref = f"#/components/schemas/{PREFIX}.{KIND}", f"#/components/schemas/{PREFIX}.{KIND}List"
    ns, name = _path_parameter("namespace"), _path_parameter("name")
    base = f"/{PATH}"
    log = {"description": "The attempt's log", "content": {"text/plain": {"schema": {"type": "string"}}}}
    return {
        "openapi": "3.0.0",
        "info": {"title": "asynctask archive", "version": VERSION},
        "paths": {
            f"{base}/{RESOURCE}": _get("archived tasks of every namespace", _json(list_ref), []),
            f"{base}/namespaces/{{namespace}}/{RESOURCE}": _get("archived tasks", _json(list_ref), [ns]),
            f"{base}/namespaces/{{namespace}}/{RESOURCE}/{{name}}": _get(
                "an archived task", _json(task_ref), [ns, name]
            ),
            f"{base}/namespaces/{{namespace}}/{RESOURCE}/{{name}}/log": _get("an attempt's log", log, [ns, name]),
        },
        "components": {"schemas": {f"{PREFIX}.{KIND}": _task_schema(), f"{PREFIX}.{KIND}List": _list_schema()}},
    }


@functools.cache
def document_bytes() -> bytes:
    return json.dumps(document(), separators=(",", ":"), sort_keys=True).encode()


@functools.cache
def document_hash() -> str:
    """What the API server compares to know whether to read the document again."""
    return hashlib.sha512(document_bytes()).hexdigest().upper()


def discovery() -> dict[str, Any]:
    """``GET /openapi/v3``: the group-versions documented here, each with its document's URL and hash."""
    return {"paths": {PATH: {"serverRelativeURL": f"/openapi/v3/{PATH}?hash={document_hash()}"}}}
