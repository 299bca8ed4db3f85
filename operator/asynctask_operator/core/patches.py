"""The bodies of the reconcilers' status writes: the difference of two statuses, as a merge patch.

Pure: the AsyncTask and ScheduledTask reconcilers send what these return
(``controllers/tasks.py``, ``controllers/schedules.py``); the API server applies it
(RFC 7396), as ``testing/semantics.py`` does in the tests.
"""

from __future__ import annotations

from asynctask_operator.core.wire import Obj


def status_patch(old: Obj, new: Obj) -> Obj:
    """A JSON merge patch (RFC 7396) turning status ``old`` into ``new``: changed keys only.

    A merge patch merges nested objects: a key the new object lacks must be sent as null,
    at every depth, or the server keeps it (a Delivered callback would keep the lastError of
    an earlier delivery). Lists are replaced whole."""
    patch: Obj = {}
    for key, value in new.items():
        before = old.get(key)
        if isinstance(value, dict) and isinstance(before, dict):
            nested = status_patch(before, value)
            if nested:
                patch[key] = nested
        elif before != value:
            patch[key] = value
    patch.update({k: None for k in old if k not in new})
    return patch


def status_write(old: Obj, new: Obj, resource_version: str | None) -> Obj:
    """The body of a status write from ``old`` to ``new``, made on the copy at ``resource_version``.

    The resourceVersion is a precondition: the API server answers 409 when the object changed since
    it was read, and the reconciler decides again on fresh data instead of writing over a change it
    has not seen. Without one (an object not read from the server), the write is unconditional."""
    body: Obj = {"status": status_patch(old, new)}
    if resource_version:
        body["metadata"] = {"resourceVersion": resource_version}
    return body
