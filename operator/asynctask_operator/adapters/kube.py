"""The Kubernetes API in the operator's words: the resources it names, the errors its answers
raise, and the count of requests. Every client speaks them: the real one
(:class:`~asynctask_operator.adapters.kubeclient.KubeClient`), the interface the rest is written
against (:mod:`~asynctask_operator.adapters.api`), and the in-memory one in tests.

Exceptions::

    ApiError              any non-2xx answer that was not retried away
     +-- NotFound         404
     +-- Conflict         409 (AlreadyExists on create, stale resourceVersion on patch)
     +-- Gone             410 (a watch or listing continued from a resourceVersion too old to serve)
     +-- Invalid          422 (the API server refused the object; the message says why)
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Callable


class ApiError(Exception):
    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message


class NotFound(ApiError):
    pass


class Conflict(ApiError):
    pass


class Gone(ApiError):
    pass


class Invalid(ApiError):
    pass


@dataclasses.dataclass(frozen=True)
class Resource:
    group: str
    version: str
    plural: str

    def path(self, namespace: str | None = None, name: str | None = None, sub: str | None = None) -> str:
        base = f"/api/{self.version}" if not self.group else f"/apis/{self.group}/{self.version}"
        if namespace is not None:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        if name is not None:
            base += f"/{name}"
        if sub is not None:
            base += f"/{sub}"
        return base


ASYNCTASKS = Resource("asynctask.dev", "v1alpha1", "asynctasks")
TASKTYPES = Resource("asynctask.dev", "v1alpha1", "tasktypes")
TASKQUEUES = Resource("asynctask.dev", "v1alpha1", "taskqueues")
SCHEDULEDTASKS = Resource("asynctask.dev", "v1alpha1", "scheduledtasks")
JOBS = Resource("batch", "v1", "jobs")
PODS = Resource("", "v1", "pods")
EVENTS = Resource("", "v1", "events")
SECRETS = Resource("", "v1", "secrets")
CONFIGMAPS = Resource("", "v1", "configmaps")  # the gateway reads one: kube-system/extension-apiserver-authentication
LEASES = Resource("coordination.k8s.io", "v1", "leases")
CRDS = Resource("apiextensions.k8s.io", "v1", "customresourcedefinitions")
TOKENREVIEWS = Resource("authentication.k8s.io", "v1", "tokenreviews")  # cluster-scoped, create only
SUBJECTACCESSREVIEWS = Resource("authorization.k8s.io", "v1", "subjectaccessreviews")  # cluster-scoped, create only


class RequestCounter:
    """Counts API requests by (verb, resource, code); ``code`` 0 means no answer (timeout, connection)."""

    def __init__(self) -> None:
        self.counts: collections.Counter[tuple[str, str, int]] = collections.Counter()
        self.listeners: list[Callable[[str, str, int], None]] = []

    def add(self, verb: str, resource: str, code: int) -> None:
        self.counts[verb, resource, code] += 1
        for listener in self.listeners:
            listener(verb, resource, code)

    def total(self, verbs: frozenset[str] | None = None) -> int:
        return sum(n for (verb, _, _), n in self.counts.items() if verbs is None or verb in verbs)


WRITE_VERBS = frozenset({"create", "patch", "update", "delete"})
