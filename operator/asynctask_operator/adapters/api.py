"""What the operator asks of the Kubernetes API: the one interface its parts are written against.

:class:`~asynctask_operator.adapters.kubeclient.KubeClient` is the real one; ``asynctask_operator.testing.fakekube``
the in-memory one for tests, with the API server's semantics (resourceVersions, 409s, paging, watches
with bookmarks and 410). Objects go in and come out as plain JSON dicts.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Protocol

from asynctask_operator.adapters.kube import RequestCounter, Resource
from asynctask_operator.core.wire import Obj


class Kube(Protocol):
    counter: RequestCounter
    """Every request by verb, resource and answer code (the API budget is measured from it)."""

    async def create(self, resource: Resource, namespace: str | None, body: Obj) -> Obj: ...

    async def replace(self, resource: Resource, name: str, body: Obj) -> Obj: ...

    async def get(self, resource: Resource, namespace: str | None, name: str) -> Obj: ...

    async def list_objects(
        self, resource: Resource, namespace: str | None = None, label_selector: str | None = None
    ) -> list[Obj]: ...

    def list_pages(
        self, resource: Resource, namespace: str | None = None, label_selector: str | None = None
    ) -> AsyncIterator[tuple[list[Obj], str]]:
        """Pages of a listing, each with the listing's resourceVersion; :class:`Gone` when the
        continue token expired."""
        ...

    def watch(
        self, resource: Resource, namespace: str | None, label_selector: str | None, resource_version: str
    ) -> AsyncIterator[Obj]:
        """The events of one watch request (bookmarks included) until the server ends it."""
        ...

    async def patch(
        self, resource: Resource, namespace: str, name: str, patch: Obj, *, subresource: str | None = None
    ) -> Obj: ...

    async def delete(self, resource: Resource, namespace: str, name: str, *, uid: str | None = None) -> bool: ...


class PodLogs(Protocol):
    """A client that reads pods' logs (:meth:`~asynctask_operator.adapters.kubeclient.KubeClient.pod_log`)."""

    def pod_log(
        self,
        namespace: str,
        name: str,
        *,
        container: str | None = None,
        follow: bool = False,
        tail_lines: int | None = None,
        errors: str = "replace",
    ) -> AsyncIterator[str]: ...


class RawReads(Protocol):
    """A client that GETs any path of the API server as it answers
    (:meth:`~asynctask_operator.adapters.kubeclient.KubeClient.raw_get`): an aggregated API's objects and
    text, which no :class:`~asynctask_operator.adapters.kube.Resource` verb reads as they are."""

    async def raw_get(
        self, path: str, query: Sequence[tuple[str, str]] = (), *, accept: str = "application/json"
    ) -> bytes: ...
