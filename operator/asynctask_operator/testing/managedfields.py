"""``metadata.managedFields`` as the API server keeps them: one entry per field manager, operation and
subresource, listing (as FieldsV1) every field that manager set.

A real API server adds them to every object on every write (server-side field management is always
on), and every client that reads the object pays for them: they are often a third to a half of a
Job's or a pod's JSON. The model adds them when asked (``ApiServer(real_objects=True)``), so that
the benchmarks' objects are as large as a real server's.

How an ``Update`` (a create, a patch or a put) changes them, as the API server does:

- the fields this write set or changed join the writer's entry (``manager``, ``Update``, the
  subresource), which is created if it did not exist, and its ``time`` is now;
- they leave every other manager's entry (their value is the writer's now); fields this write
  removed leave every entry; an entry left with no field is dropped.

>>> fields_of({"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "main", "image": "a"}]}})
{'f:metadata': {'f:labels': {'.': {}, 'f:app': {}}}, 'f:spec': {'f:containers': {'k:{"name":"main"}': {'.': {}, 'f:name': {}, 'f:image': {}}}}}

Not modelled: ``Apply`` (server-side apply) and its conflicts; list keys beyond the common ones
(:data:`LIST_KEYS`); a few maps the server marks ``.`` that are not in :data:`MAPS`. The sizes come
out within a few percent of a real server's, which is what they are for.
"""

from __future__ import annotations

import json
from typing import Any

from asynctask_operator.core.wire import Obj

FieldSet = dict[str, Any]  # FieldsV1: {"f:name": {...}, "k:{...}": {...}, "v:...": {}, ".": {}}

LIST_KEYS = ("name", "type", "uid", "mountPath", "containerPort", "ip", "devicePath")
"""The keys of the associative lists (``x-kubernetes-list-map-keys``) found in Jobs, pods, Events and
conditions; a list of objects with none of them is atomic (owned whole)."""

SETS = frozenset({"finalizers"})
"""Lists of scalars that are sets (``x-kubernetes-list-type: set``): each value owned on its own."""

MAPS = frozenset({"labels", "annotations", "matchLabels", "nodeSelector", "limits", "requests"})
"""Maps of free keys: the map itself is owned (``.``) beside each key."""

SERVER_FIELDS = frozenset({"uid", "resourceVersion", "generation", "creationTimestamp", "managedFields", "name"})
"""metadata the server sets or owns itself: no manager owns them (``namespace`` neither)."""


def fields_of(value: Any, name: str = "") -> FieldSet:
    """The FieldsV1 of every field in ``value`` (an object, or a list under field ``name``)."""
    if isinstance(value, dict):
        out: FieldSet = {".": {}} if name in MAPS else {}
        for key, child in value.items():
            out[f"f:{key}"] = fields_of(child, key)
        return out
    if isinstance(value, list):
        if name in SETS:
            return {f"v:{_compact(item)}": {} for item in value}
        if value and all(isinstance(item, dict) and _item_key(item) for item in value):
            return {_item_key(item): {".": {}, **fields_of(item)} for item in value}
    return {}


def changed_fields(old: Any, new: Any, name: str = "") -> FieldSet | None:
    """The fields of ``new`` that ``old`` lacks or holds another value of (None: nothing changed)."""
    if old == new:
        return None
    if isinstance(old, dict) and isinstance(new, dict):
        out: FieldSet = {}
        for key, child in new.items():
            diff = fields_of(child, key) if key not in old else changed_fields(old[key], child, key)
            if diff is not None:
                out[f"f:{key}"] = diff
        return out if out else None
    if isinstance(old, list) and isinstance(new, list) and name not in SETS:
        before = {_item_key(i): i for i in old if isinstance(i, dict) and _item_key(i)}
        if new and all(isinstance(i, dict) and _item_key(i) for i in new) and len(before) == len(old):
            out = {}
            for item in new:
                key = _item_key(item)
                diff = fields_of(item) if key not in before else changed_fields(before[key], item)
                if diff is not None:
                    out[key] = {".": {}, **diff} if key not in before else diff
            return out if out else None
    return fields_of(new, name)


def removed_fields(old: Any, new: Any, name: str = "") -> FieldSet | None:
    """The fields of ``old`` that ``new`` no longer has (None: none)."""
    if isinstance(old, list) and isinstance(new, list):
        if name in SETS:
            return {f"v:{_compact(i)}": {} for i in old if i not in new} or None
        after = {_item_key(i): i for i in new if isinstance(i, dict) and _item_key(i)}
        gone: FieldSet = {}
        for item in old:
            key = _item_key(item) if isinstance(item, dict) else ""
            diff = (
                ({".": {}, **fields_of(item)} if key not in after else removed_fields(item, after[key]))
                if key
                else None
            )
            if diff is not None:
                gone[key] = diff
        return gone or None
    if not isinstance(old, dict) or not isinstance(new, dict):
        return None
    out: FieldSet = {}
    for key, child in old.items():
        diff = fields_of(child, key) or {} if key not in new else removed_fields(child, new[key], key)
        if diff is not None:
            out[f"f:{key}"] = diff
    return out or None


def union(a: FieldSet, b: FieldSet) -> FieldSet:
    out = dict(a)
    for key, child in b.items():
        out[key] = union(out[key], child) if key in out else child
    return out


def subtract(a: FieldSet, b: FieldSet) -> FieldSet:
    """``a`` without the leaves of ``b`` (a field whose every child is gone goes too; a map keeps ``.``,
    owned by whoever made it)."""
    out: FieldSet = {}
    for key, child in a.items():
        if key not in b:
            out[key] = child
        elif b[key] and child:
            rest = subtract(child, b[key])
            if rest:
                out[key] = rest
    return out


def updated(
    entries: list[Obj], manager: str, api_version: str, subresource: str | None, old: Obj | None, new: Obj, time: str
) -> list[Obj]:
    """The managedFields after ``manager`` wrote ``new`` over ``old`` (None: a create)."""
    before, after = _owned_part(old or {}), _owned_part(new)
    set_ = changed_fields(before, after) or {}
    gone = removed_fields(before, after) or {}
    out: list[Obj] = []
    mine: Obj | None = None
    for entry in entries:
        ours = (entry.get("manager"), entry.get("operation"), entry.get("subresource")) == (
            manager,
            "Update",
            subresource,
        )
        fields = subtract(entry.get("fieldsV1") or {}, gone)
        if ours:
            mine = {**entry, "fieldsV1": union(fields, set_), "time": time, "apiVersion": api_version}
            out.append(mine)
        else:
            fields = subtract(fields, set_)
            if fields:
                out.append({**entry, "fieldsV1": fields})
    if mine is None and set_:
        entry = {"manager": manager, "operation": "Update", "apiVersion": api_version, "time": time}
        entry |= {"fieldsType": "FieldsV1", "fieldsV1": set_}
        out.append(entry | ({"subresource": subresource} if subresource else {}))
    return out


def manager_of(user_agent: str, field_manager: str | None = None) -> str:
    """The manager a request writes as: its ``fieldManager``, else its User-Agent up to the first ``/``."""
    return field_manager or user_agent.split("/", 1)[0] or "unknown"


def _owned_part(obj: Obj) -> Obj:
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in SERVER_FIELDS and k != "namespace"}
    out = {k: v for k, v in obj.items() if k not in ("metadata", "apiVersion", "kind")}
    return out | ({"metadata": meta} if meta else {})


def _item_key(item: dict[str, Any]) -> str:
    for key in LIST_KEYS:
        if key in item:
            keyed = {key: item[key]} | (
                {"protocol": item["protocol"]} if key == "containerPort" and "protocol" in item else {}
            )
            return f"k:{_compact(keyed)}"
    return ""


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)
