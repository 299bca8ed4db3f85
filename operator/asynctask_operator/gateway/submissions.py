"""Creating a task for a caller: what ``POST …/tasks`` and ``POST …/cloudevents`` both do.

A submission's TaskType and payload are checked first, with the operator's own check (422 naming
the field); with an ``Idempotency-Key`` the task's name is derived from (namespace, user, key)
(:mod:`asynctask_operator.core.idempotency`), so a replay is answered ``200 OK`` with the original
task (header ``Idempotent-Replayed: true``).
"""

from __future__ import annotations

from typing import Any

from fastapi import Response
from pydantic import ValidationError

from asynctask_operator.adapters.kube import ASYNCTASKS, TASKTYPES, ApiError, Conflict, NotFound
from asynctask_operator.core.idempotency import (
    ANNOTATION_FINGERPRINT,
    ANNOTATION_SUBMITTED_BY,
    fingerprint,
    task_name_for_key,
)
from asynctask_operator.core.models import API_VERSION, TaskType
from asynctask_operator.core.validation import Refusal, check_payload
from asynctask_operator.gateway.access import Gateway
from asynctask_operator.gateway.answers import TaskSubmission
from asynctask_operator.gateway.auth import Permission, User
from asynctask_operator.gateway.problems import Problem, from_api_error
from asynctask_operator.gateway.reads import task_response

GENERATE_NAME_CHARS = 40  # of the type, in a generated name (the API server adds 5 random characters)


def location(namespace: str, name: str) -> str:
    return f"/v1/namespaces/{namespace}/tasks/{name}"


def new_task(ns: str, user: User, submission: TaskSubmission, name: str | None, print_: str | None) -> dict[str, Any]:
    annotations = {ANNOTATION_SUBMITTED_BY: user.name}
    if print_ is not None:
        annotations[ANNOTATION_FINGERPRINT] = print_
    meta: dict[str, Any] = {"namespace": ns, "annotations": annotations}
    if submission.labels:
        meta["labels"] = dict(submission.labels)
    if name is not None:
        meta["name"] = name
    else:
        meta["generateName"] = submission.type[:GENERATE_NAME_CHARS].rstrip("-.") + "-"
    return {"apiVersion": API_VERSION, "kind": "AsyncTask", "metadata": meta, "spec": submission.task_spec()}


async def create(
    gateway: Gateway, ns: str, user: User, submission: TaskSubmission, key: str | None, **annotations: str
) -> Response:
    """Create the task of a submission: 202; with an idempotency ``key``, the replay of the original (200)."""
    name = print_ = None
    if key is not None:
        name = task_name_for_key(ns, user.name, key)
        print_ = fingerprint(submission.model_dump(by_alias=True, exclude_none=True, mode="json"))
    if name is None or gateway.tasks.get(ns, name) is None:  # a replay answers with its task, whatever its type now
        await check_type(gateway, ns, user, submission)
    body = new_task(ns, user, submission, name, print_)
    body["metadata"]["annotations"].update(annotations)
    try:
        created = await gateway.api.create(ASYNCTASKS, ns, body)
    except Conflict as conflict:
        if name is None:  # a create's 409 is always "AlreadyExists" (kmock words its reason otherwise)
            raise from_api_error(conflict, "the task") from None
        return await replay(gateway, ns, name, print_ or "")
    except ApiError as error:
        raise from_api_error(error, "the task") from None
    gateway.tasks.put(created)
    return task_response(gateway, created, 202, headers={"Location": location(ns, str(created["metadata"]["name"]))})


async def check_type(gateway: Gateway, ns: str, user: User, submission: TaskSubmission) -> None:
    """Refuse (422) a submission whose TaskType does not exist in the namespace, or whose payload that type
    refuses (its schema, the payload limit): the operator's own check
    (:func:`~asynctask_operator.core.validation.check_payload`), made before the task exists, naming the
    field by its JSON pointer in the body.

    A type the cache has not seen is looked up once (created a moment ago, its watch event not here yet).
    When the cluster cannot say (the cache still loading, the lookup failing), the task is created and the
    operator decides as it does for ``kubectl apply``: it waits a few seconds for the type to appear, then
    ends the task UnknownTaskType."""
    type_ = submission.type
    obj = gateway.tasktypes.get(ns, type_)
    if obj is None:
        if not gateway.tasktypes.synced.is_set():
            return
        try:
            obj = await gateway.api.get(TASKTYPES, ns, type_)
        except NotFound:
            raise await unknown_type(gateway, ns, user, type_) from None
        except ApiError:
            return
        gateway.tasktypes.put(obj)
    try:
        tasktype = TaskType.model_validate(obj)
    except ValidationError:
        return  # a TaskType the operator reports on itself (InvalidTaskType): the type is at fault, not the caller
    try:
        check_payload(tasktype, submission.payload, gateway.settings.payload_limit_bytes)
    except Refusal as refusal:
        if refusal.pointer is None:  # the type's schema is broken: the operator reports it on the task
            return
        field = ".".join(p.replace("~1", "/").replace("~0", "~") for p in refusal.pointer.split("/")[1:])
        raise Problem(
            422,
            refusal.message.removeprefix("spec."),
            title="Invalid payload",
            reason=refusal.reason,
            errors=[{"field": field, "pointer": refusal.pointer, "message": refusal.message.removeprefix("spec.")}],
        ) from None


async def unknown_type(gateway: Gateway, ns: str, user: User, type_: str) -> Problem:
    """The 422 of a TaskType that does not exist: it names the types that do, to a caller who may list them."""
    try:
        may_list = await gateway.reviews.allowed(user, Permission("list", "tasktypes", ns))
    except ApiError:
        may_list = False
    if may_list:
        names = [str(o["metadata"]["name"]) for o in gateway.tasktypes.in_namespace(ns)]
        there = f"the TaskTypes there are {', '.join(names)}" if names else "there is no TaskType there yet"
    else:
        names, there = [], "you may not list the TaskTypes there"
    detail = f"type: no TaskType {type_!r} in namespace {ns!r}; {there}"
    return Problem(
        422,
        detail,
        title="Unknown task type",
        reason="UnknownTaskType",
        types=names,
        errors=[{"field": "type", "pointer": "/type", "message": detail.removeprefix("type: ")}],
    )


async def replay(gateway: Gateway, ns: str, name: str, print_: str) -> Response:
    """The same Idempotency-Key again: the original task if the body is the same."""
    obj = gateway.tasks.get(ns, name)
    if obj is None:
        try:
            obj = await gateway.api.get(ASYNCTASKS, ns, name)
        except NotFound:  # deleted between our create and our read: another request holds the key
            raise Problem(409, "a request with this Idempotency-Key is in progress; retry") from None
        except ApiError as error:
            raise from_api_error(error, "the task") from None
        gateway.tasks.put(obj)
    meta = obj.get("metadata") or {}
    if meta.get("deletionTimestamp"):
        raise Problem(409, "the task of this Idempotency-Key is being deleted; retry with a new key")
    if (meta.get("annotations") or {}).get(ANNOTATION_FINGERPRINT) != print_:
        raise Problem(422, "this Idempotency-Key was used with a different body", title="Idempotency-Key reused")
    return task_response(gateway, obj, 200, headers={"Location": location(ns, name), "Idempotent-Replayed": "true"})
