"""The API server's rules that keep no state: merge patches, label selectors, the status
subresource, metadata a client cannot change, and the errors it answers with.

>>> merge_patch({"spec": {"a": 1, "b": 2}}, {"spec": {"b": None, "c": 3}})
{'spec': {'a': 1, 'c': 3}}
>>> selects("app=web,!canary", {"app": "web"}), selects("app!=web", {"app": "web"})
(True, False)
"""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

from asynctask_operator.adapters.kube import ApiError, Conflict, Gone, Invalid, NotFound, Resource
from asynctask_operator.core.labelselectors import Term, matches, parse
from asynctask_operator.core.wire import Obj

STATUS_SUBRESOURCE = frozenset({"asynctasks", "tasktypes", "taskqueues", "scheduledtasks", "jobs", "pods"})
"""Kinds whose status is a subresource: a create or a write of the main resource leaves it as it was."""

REVIEWS = frozenset({"tokenreviews", "subjectaccessreviews"})
"""Kinds the API server answers and keeps none of."""

SERVER_SET = ("name", "namespace", "uid", "creationTimestamp", "resourceVersion", "generation")
"""Metadata only the server sets: a patch or an update that names them changes nothing of them."""


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396: objects merge key by key, null deletes, anything else replaces.

    A new dict on the patched path; the parts the patch does not touch are shared with
    ``target`` (stored objects are never changed in place, so sharing is safe)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def labels_of(obj: Obj) -> dict[str, str]:
    return dict((obj.get("metadata") or {}).get("labels") or {})


def namespace_of(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("namespace") or "")


def selector(text: str | None) -> list[Term]:
    """The terms of an equality-based label selector (``a=b``, ``a!=b``, ``a``, ``!a``, comma = and).

    Read by the operator's own parser (:mod:`~asynctask_operator.core.labelselectors`), which
    follows the API server's grammar; a selector it refuses is answered 400, as the server does."""
    try:
        return parse(text or "")
    except ValueError as exc:
        raise ApiError(400, "BadRequest", f"unable to parse requirement: {exc}") from None


def selects(text: str | None, labels: dict[str, str]) -> bool:
    return matches(selector(text), labels)


def stamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- the answers that are errors, worded as the API server words them


def not_found(resource: Resource, name: str) -> NotFound:
    return NotFound(404, "NotFound", f'{resource.plural} "{name}" not found')


def already_exists(resource: Resource, name: str) -> Conflict:
    return Conflict(409, "AlreadyExists", f'{resource.plural} "{name}" already exists')


def uid_mismatch(uid: str) -> Conflict:
    """A write whose ``metadata.uid`` precondition names an object that is gone (its name reused)."""
    return Conflict(409, "Conflict", f"Precondition failed: UID in precondition: {uid}")


def stale(resource: Resource, name: str) -> Conflict:
    return Conflict(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {resource.plural} "{name}": '
        "the object has been modified; please apply your changes to the latest version and try again",
    )


def other_uid(expected: str, actual: object) -> Conflict:
    return Conflict(
        409, "Conflict", f"Precondition failed: UID in precondition: {expected}, UID in object meta: {actual}"
    )


def name_required() -> Invalid:
    return Invalid(422, "Invalid", "metadata.name: Required value")


def too_old(since: int, oldest: int) -> Gone:
    return Gone(410, "Expired", f"too old resource version: {since} ({oldest})")


def continue_expired() -> Gone:
    return Gone(410, "Expired", "the continue token has expired")
