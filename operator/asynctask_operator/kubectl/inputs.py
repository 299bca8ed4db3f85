"""What the user typed, checked before anything is sent: durations, payloads, manifests, the task to create.

Every problem is a :class:`BadInput` whose message names the flag or file and, for JSON, the
line and column: ``--payload: not JSON: Expecting ',' delimiter at line 1, column 12``.

>>> parse_duration("1h30m"), parse_duration("90")
(5400, 90)
"""

from __future__ import annotations

import json
import pathlib
import re
import sys
from collections.abc import Iterable, Mapping
from typing import Any

import pydantic
import yaml

from asynctask_operator.core.models import API_VERSION, AsyncTaskSpec
from asynctask_operator.core.tracing import trace_annotations
from asynctask_operator.core.wire import Obj

_DURATION = re.compile(r"(\d+)(ms|s|m|h|d)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


class BadInput(Exception):
    """The user's input cannot be used; nothing has been sent."""


def parse_duration(text: str, flag: str = "duration") -> int:
    """Whole seconds of ``30s``, ``5m``, ``1h30m``, ``2d`` or a bare number of seconds."""
    text = text.strip()
    if text.isdigit():
        return int(text)
    pos, total = 0, 0.0
    for match in _DURATION.finditer(text):
        if match.start() != pos:
            break
        total += int(match[1]) * _UNIT_SECONDS[match[2]]
        pos = match.end()
    if not text or pos != len(text):
        raise BadInput(f"{flag}: {text!r} is not a duration (examples: 90, 30s, 5m, 1h30m, 2d)")
    return max(int(total), 0)


def parse_json(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadInput(f"{where}: not JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from None


def read_text(path: str, flag: str) -> str:
    """A file's text (``-`` is standard input)."""
    if path == "-":
        return sys.stdin.read()
    file = pathlib.Path(path)
    if not file.is_file():
        raise BadInput(f"{flag}: no such file: {path}")
    try:
        return file.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"{flag}: cannot read {path}: {exc}") from None


def parse_payload(value: str) -> Any:
    """``--payload``: JSON text, or ``@file`` holding JSON (``@-``: standard input)."""
    if value.startswith("@"):
        path = value[1:]
        return parse_json(read_text(path, "--payload"), f"--payload {value}")
    return parse_json(value, "--payload")


def read_manifests(path: str) -> list[Obj]:
    """The AsyncTasks of a YAML or JSON file (several YAML documents, or a ``List``)."""
    text = read_text(path, "-f")
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise BadInput(f"-f {path}: not YAML: {problem}{where}") from None
    tasks: list[Obj] = []
    for doc in docs:
        items = doc.get("items") if isinstance(doc, dict) and doc.get("kind") == "List" else [doc]
        for item in items or []:
            if not isinstance(item, dict) or item.get("kind") != "AsyncTask":
                kind = item.get("kind") if isinstance(item, dict) else type(item).__name__
                raise BadInput(f"-f {path}: expected kind AsyncTask, found {kind or 'no kind'}")
            tasks.append(item)
    if not tasks:
        raise BadInput(f"-f {path}: no AsyncTask in the file")
    return tasks


def new_task(
    type_: str,
    payload: Any,
    *,
    name: str | None = None,
    labels: dict[str, str] | None = None,
) -> Obj:
    """An AsyncTask of ``type_``: named ``name``, else ``<type>-`` and a suffix the API server picks."""
    meta: Obj = {"name": name} if name else {"generateName": f"{type_[:52].rstrip('-.')}-"}
    if labels:
        meta["labels"] = labels
    spec: Obj = {"type": type_}
    if payload is not None:
        spec["payload"] = payload
    return {"apiVersion": API_VERSION, "kind": "AsyncTask", "metadata": meta, "spec": spec}


def with_overrides(task: Obj, overrides: Obj) -> Obj:
    """``task`` with the spec fields the flags set (``None``: not set)."""
    spec = {**(task.get("spec") or {})}
    for key, value in overrides.items():
        if value is None:
            continue
        if key == "retry":
            spec["retry"] = {**(spec.get("retry") or {}), **value}
        else:
            spec[key] = value
    return {**task, "spec": spec}


def with_trace(task: Obj, environ: Mapping[str, str]) -> Obj:
    """``task`` joining the trace of ``$TRACEPARENT`` (and ``$TRACESTATE``), the OpenTelemetry environment
    carrier (ADR 0020); annotations the manifest sets itself win, and a malformed value is ignored."""
    joined = trace_annotations(environ.get("TRACEPARENT"), environ.get("TRACESTATE"))
    if not joined:
        return task
    meta = task.get("metadata") or {}
    return {**task, "metadata": {**meta, "annotations": {**joined, **(meta.get("annotations") or {})}}}


def check_task(task: Obj, where: str) -> AsyncTaskSpec:
    """The task's spec as the API server's schema reads it; :class:`BadInput` naming the field if not."""
    meta = task.get("metadata") or {}
    if not isinstance(meta, dict) or not (meta.get("name") or meta.get("generateName")):
        raise BadInput(f"{where}: metadata.name is required (or metadata.generateName)")
    try:
        return AsyncTaskSpec.model_validate(task.get("spec") or {})
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise BadInput(f"{where}: spec.{field}: {first['msg']}") from None


def parse_labels(pairs: Iterable[str]) -> dict[str, str]:
    labels: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise BadInput(f"--label: {pair!r} is not KEY=VALUE")
        labels[key] = value
    return labels
