"""Which concurrency key a task has: its own ``spec.concurrency``, else its TaskType's ``defaults.concurrency``.

A TaskType derives each task's key with ``keyFrom``: a JSON pointer into the payload (RFC 6901),
a label of the task, or a constant. What cannot give a key — the pointer or label absent, a value
that is an object, a list, null or not a valid key — refuses the task (``InvalidConcurrencyKey``)
instead of running it without one: a task silently left unlimited would break the very exclusion
its key promises. The key is resolved once, when the task first enters its queue, and kept in
``status.effective.concurrency``: a retry keeps it, whatever the payload or labels become.

    >>> from asynctask_operator.core.models import ConcurrencyDefault
    >>> default = ConcurrencyDefault.model_validate({"keyFrom": {"payload": "/video/id"}})
    >>> resolve_concurrency(None, default, {"video": {"id": 42}}, {}).key
    '42'
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

from asynctask_operator.core.models import ConcurrencyDefault, ConcurrencySpec, TaskType
from asynctask_operator.core.models.concurrency import KEY_MAX, KEY_RULE, KEY_WORDS
from asynctask_operator.core.validation import Refusal

INVALID_KEY = "InvalidConcurrencyKey"
QUEUE, CANCEL_IN_PROGRESS, CANCEL_NEWEST = "Queue", "CancelInProgress", "CancelNewest"
_KEY = re.compile(KEY_RULE)
_ABSENT = object()


@dataclasses.dataclass(frozen=True, slots=True)
class KeyClaim:
    """A task's key as the admission ledger reads it (the key is scoped to the task's namespace)."""

    key: str
    limit: int = 1
    policy: str = QUEUE


def claim_of(spec: ConcurrencySpec | None) -> KeyClaim | None:
    if spec is None:
        return None
    return KeyClaim(spec.key, spec.limit or 1, spec.policy or QUEUE)


def resolve_concurrency(
    own: ConcurrencySpec | None, default: ConcurrencyDefault | None, payload: Any, labels: Mapping[str, str]
) -> ConcurrencySpec | None:
    """The key in force, with its limit and policy filled in; raise :class:`Refusal` when ``keyFrom``
    cannot give one."""
    if own is not None:
        return ConcurrencySpec(key=own.key, limit=own.limit or 1, policy=own.policy or QUEUE)
    if default is None:
        return None
    source = default.key_from
    if source.value is not None:
        key = source.value
    elif source.label is not None:
        key = _label_key(source.label, labels)
    else:
        key = _payload_key(source.payload or "", payload)
    return ConcurrencySpec(key=key, limit=default.limit or 1, policy=default.policy or QUEUE)


def _label_key(name: str, labels: Mapping[str, str]) -> str:
    where = f"the TaskType's defaults.concurrency.keyFrom.label {name!r}"
    if name not in labels:
        raise Refusal(INVALID_KEY, f"{where}: the task has no label {name}; give it one, or set spec.concurrency")
    return _checked(labels[name], where)


def _payload_key(pointer: str, payload: Any) -> str:
    where = f"the TaskType's defaults.concurrency.keyFrom.payload {pointer!r}"
    value = pointed(payload, pointer)
    if value is _ABSENT:
        raise Refusal(INVALID_KEY, f"{where} is absent from spec.payload; add it, or set spec.concurrency")
    if not isinstance(value, str | int) or isinstance(value, bool):
        kind = "an object" if isinstance(value, dict) else "a list" if isinstance(value, list) else _json_kind(value)
        raise Refusal(INVALID_KEY, f"{where} points at {kind} in spec.payload; it must point at a string or an integer")
    return _checked(str(value), where)


def _json_kind(value: Any) -> str:
    return "null" if value is None else "a boolean" if isinstance(value, bool) else "a number with a fraction"


def _checked(key: str, where: str) -> str:
    if not key or len(key) > KEY_MAX or not _KEY.match(key):
        raise Refusal(INVALID_KEY, f"{where} gives {key[:80]!r}, not a key: 1 to {KEY_MAX} {KEY_WORDS}")
    return key


def pointed(document: Any, pointer: str) -> Any:
    """The value at a JSON pointer (RFC 6901) in ``document``; a private marker when there is none."""
    value = document
    for token in pointer.split("/")[1:]:
        token = token.replace("~1", "/").replace("~0", "~")
        if isinstance(value, dict):
            if token not in value:
                return _ABSENT
            value = value[token]
        elif isinstance(value, list):
            if not token.isdigit() or (token.startswith("0") and token != "0") or int(token) >= len(value):
                return _ABSENT
            value = value[int(token)]
        else:
            return _ABSENT
    return value


def claim_in(obj: dict[str, Any], tasktype: TaskType | None) -> KeyClaim | None:
    """The key of a task's wire form: the one its admission recorded, else the one it would resolve
    (None when it has none, or one that cannot be resolved: its reconcile refuses it)."""
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    try:
        effective = status.get("effective")
        if effective is not None:  # fixed when it first entered its queue: a later TaskType does not change it
            recorded = effective.get("concurrency")
            return claim_of(ConcurrencySpec.model_validate(recorded)) if recorded is not None else None
        own = ConcurrencySpec.model_validate(spec["concurrency"]) if spec.get("concurrency") is not None else None
        defaults = tasktype.spec.defaults if tasktype else None
        labels = (obj.get("metadata") or {}).get("labels") or {}
        default = defaults.concurrency if defaults else None
        return claim_of(resolve_concurrency(own, default, spec.get("payload"), labels))
    except (Refusal, ValueError):
        return None
