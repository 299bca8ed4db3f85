"""The one client that talks to the Kubernetes API (:class:`KubeClient`), as the rest of the operator sees it.

The official ``kubernetes`` client does login, TLS and request signing; this module
adds what an operator needs around it: raw JSON in and out (no model classes: Jobs
and custom objects are handled as dicts), retries of transient failures (429 with
Retry-After, 5xx, timeouts, dropped connections) with capped exponential backoff,
typed errors for the answers a caller must act on (404, 409), and a count of every
request by verb, resource and code (the API budget is measured from it). The resources, the
errors and the counter are defined in :mod:`~asynctask_operator.adapters.kube`.

Listings come in pages (:meth:`KubeClient.list_pages`) and watches line by line
(:mod:`~asynctask_operator.adapters.watchstream`): neither holds a whole listing at once.
The configuration it is built from (in-cluster or a kubeconfig) comes from
:mod:`~asynctask_operator.adapters.kubeconfig`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import json
import logging
import random
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import kubernetes.client
import urllib3.exceptions

from asynctask_operator.adapters.kube import PODS, ApiError, Conflict, Gone, Invalid, NotFound, RequestCounter, Resource
from asynctask_operator.adapters.watchstream import StreamBroken, WatchStream

if TYPE_CHECKING:  # the operator's codecs need msgspec, of its extra; other programs pass none
    from asynctask_operator.adapters.slimwire import Codec

logger = logging.getLogger(__name__)

USER_AGENT = "asynctask-operator"
RETRY_AFTER_CAP = 60.0
RETRIED_CODES = frozenset({429, 500, 502, 503, 504})
MERGE_PATCH = "application/merge-patch+json"
LIST_PAGE_SIZE = 500  # objects per listing request (the API server's default chunking in kubectl)


_ERRORS: dict[int, type[ApiError]] = {404: NotFound, 409: Conflict, 410: Gone, 422: Invalid}


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 6
    base_seconds: float = 0.2
    max_seconds: float = 10.0
    request_timeout: float = 30.0


async def all_items(pages: AsyncIterator[tuple[list[dict[str, Any]], str]]) -> list[dict[str, Any]]:
    """Every object of a paged listing, in one list (for the small kinds)."""
    items: list[dict[str, Any]] = []
    async for page, _ in pages:
        items.extend(page)
    return items


class KubeClient:
    """Async facade over the official client; its blocking calls run in a bounded thread pool."""

    def __init__(
        self,
        configuration: kubernetes.client.Configuration,
        *,
        concurrency: int = 16,
        retry: RetryPolicy | None = None,
        counter: RequestCounter | None = None,
        user_agent: str = USER_AGENT,
        codecs: Mapping[str, Codec] | None = None,
    ) -> None:
        """``codecs``: by resource plural, how to decode its answers, listings and watch events (the
        operator's read only the fields it uses: :mod:`~asynctask_operator.adapters.slimwire`); the
        rest is decoded whole."""
        configuration.connection_pool_maxsize = max(concurrency, 4)
        self._api = kubernetes.client.ApiClient(configuration)
        self._api.user_agent = user_agent
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="kube")
        self.retry = retry or RetryPolicy()
        self.counter = counter or RequestCounter()
        self.codecs: Mapping[str, Codec] = codecs or {}

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._api.close()  # type: ignore[no-untyped-call]

    # -- verbs

    async def create(self, resource: Resource, namespace: str | None, body: dict[str, Any]) -> dict[str, Any]:
        return await self._request("create", "POST", resource, resource.path(namespace), body=body)

    async def replace(self, resource: Resource, name: str, body: dict[str, Any]) -> dict[str, Any]:
        """PUT a cluster-scoped object (the CRDs); ``body`` carries the resourceVersion it replaces."""
        return await self._request("update", "PUT", resource, resource.path(None, name), body=body)

    async def get(self, resource: Resource, namespace: str | None, name: str) -> dict[str, Any]:
        return await self._request("get", "GET", resource, resource.path(namespace, name))

    async def list_objects(
        self, resource: Resource, namespace: str | None = None, label_selector: str | None = None
    ) -> list[dict[str, Any]]:
        return await all_items(self.list_pages(resource, namespace, label_selector))

    async def list_pages(
        self,
        resource: Resource,
        namespace: str | None = None,
        label_selector: str | None = None,
        *,
        limit: int = LIST_PAGE_SIZE,
    ) -> AsyncIterator[tuple[list[dict[str, Any]], str]]:
        """A listing, a page of at most ``limit`` objects at a time, each with the listing's resourceVersion.

        A caller that converts each page as it comes never holds the whole listing. Raises
        :class:`Gone` when the API server has expired the listing's continue token (the
        caller lists again)."""
        token = ""
        while True:
            query = [("limit", str(limit))]
            if label_selector:
                query.append(("labelSelector", label_selector))
            if token:
                query.append(("continue", token))
            answer = await self._request("list", "GET", resource, resource.path(namespace), query=query)
            meta = answer.get("metadata") or {}
            yield answer.get("items") or [], str(meta.get("resourceVersion") or "")
            token = str(meta.get("continue") or "")
            if not token:
                return

    async def watch(
        self,
        resource: Resource,
        namespace: str | None,
        label_selector: str | None,
        resource_version: str,
        *,
        timeout_seconds: int = 300,
    ) -> AsyncIterator[dict[str, Any]]:
        """The events of one watch request from ``resource_version``, decoded, until the server ends it.

        With bookmarks (each one's resourceVersion is where to watch from next). A thread reads
        and decodes the stream, at most :data:`~asynctask_operator.adapters.watchstream.WATCH_BUFFER` events ahead; closing the iterator
        closes the connection. Raises :class:`ApiError` when the request is refused (:class:`Gone`
        when ``resource_version`` is too old) or the connection fails; the caller watches again."""
        query = [("watch", "true"), ("allowWatchBookmarks", "true"), ("timeoutSeconds", str(timeout_seconds))]
        if label_selector:
            query.append(("labelSelector", label_selector))
        if resource_version:
            query.append(("resourceVersion", resource_version))
        read_timeout = timeout_seconds + 30.0  # the server ends the stream first; this is for a dead connection
        codec = self.codecs.get(resource.plural)
        decode = codec.event if codec is not None else json.loads
        stream = self._stream(
            WatchStream(asyncio.get_running_loop(), decode), resource.path(namespace), query, read_timeout,
            count=("watch", resource.plural), what="watch", broken="WatchBroken", thread=f"watch-{resource.plural}",
        )  # fmt: skip
        async with contextlib.aclosing(stream) as events:  # closed with this iterator: the connection too
            async for event in events:
                yield event

    async def raw_get(
        self, path: str, query: Sequence[tuple[str, str]] = (), *, accept: str = "application/json"
    ) -> bytes:
        """GET ``path`` (``/apis/archive.asynctask.dev/v1alpha1/namespaces/media/archivedtasks``) with ``query``, and
        the answer's body as it came: an aggregated API's objects, or its text (a log). Retried and counted
        as every request (by the path's last word: ``archivedtasks``, ``log``); :class:`ApiError` when refused."""
        plural = path.rstrip("/").rsplit("/", 1)[-1] or "/"
        return await self._exchange("get", "GET", plural, path, query=list(query), accept=accept)

    async def pod_log(
        self,
        namespace: str,
        name: str,
        *,
        container: str | None = None,
        follow: bool = False,
        tail_lines: int | None = None,
        errors: str = "replace",
    ) -> AsyncIterator[str]:
        """The lines of a pod's log, without their line ends (of ``container``, else its only one); with ``follow``, as they are
        written, until the container ends; with ``tail_lines``, from that many lines before the end.
        Bytes that are not UTF-8 are decoded with ``errors`` (``surrogateescape`` keeps them:
        ``line.encode(errors="surrogateescape")`` gives them back, as the archive does).
        Raises :class:`ApiError` when refused (:class:`NotFound` without the pod; 400 while the
        container has not started)."""
        query = [("follow", "true")] if follow else []
        if container:
            query.append(("container", container))
        if tail_lines is not None:
            query.append(("tailLines", str(tail_lines)))
        lines = WatchStream(
            asyncio.get_running_loop(), decode=lambda line: line.decode(errors=errors), blank_lines=True
        )
        stream = self._stream(
            lines, PODS.path(namespace, name, "log"), query, 24 * 3600.0,
            count=("get", "pods/log"), what="log", broken="LogBroken", thread="pod-log", accept="*/*",
        )  # fmt: skip
        async with contextlib.aclosing(stream) as read:  # closed with this iterator: the connection too
            async for line in read:
                yield line

    async def _stream(
        self,
        stream: WatchStream,
        path: str,
        query: list[tuple[str, str]],
        read_timeout: float,
        *,
        count: tuple[str, str],
        what: str,
        broken: str,
        thread: str,
        accept: str = "application/json",
    ) -> AsyncGenerator[Any, None]:
        """The decoded items of one streamed GET (a watch, a log), read by ``stream`` in a thread of its
        own, until the server ends it; counted as ``count`` (verb, resource). :class:`ApiError` when it
        is refused, unreachable (0 ``Unreachable``) or breaks off (0 ``broken``). Leaving the iterator
        closes the connection."""
        threading.Thread(
            target=stream.run,
            args=(lambda: self._open(path, query, read_timeout, accept=accept),),
            name=thread,
            daemon=True,
        ).start()
        try:
            status, data = await stream.opened
            self.counter.add(*count, status)
            if not 200 <= status < 300:
                raise (
                    ApiError(0, "Unreachable", f"GET {path} ({what}): {data!r}")
                    if status == 0
                    else api_error(status, data)
                )
            while True:
                try:
                    item = await stream.next()
                except StreamBroken as exc:
                    raise ApiError(0, broken, str(exc)) from exc.__cause__
                if item is None:
                    return
                yield item
        finally:
            stream.close()

    def _open(
        self, path: str, query: list[tuple[str, str]], read_timeout: float, accept: str = "application/json"
    ) -> Any:
        """Send a request and return the urllib3 response unread (for a watch stream or a log)."""
        params = self._api.param_serialize(
            method="GET",
            resource_path=path,
            query_params=query,
            header_params={"Accept": accept},
            auth_settings=["BearerToken"],
        )
        return self._api.call_api(*params, _request_timeout=(10.0, read_timeout)).response

    async def patch(
        self,
        resource: Resource,
        namespace: str,
        name: str,
        patch: dict[str, Any],
        *,
        subresource: str | None = None,
    ) -> dict[str, Any]:
        path = resource.path(namespace, name, subresource)
        return await self._request("patch", "PATCH", resource, path, body=patch, content_type=MERGE_PATCH)

    async def delete(self, resource: Resource, namespace: str, name: str, *, uid: str | None = None) -> bool:
        """Delete in the background (dependents go with it); ``False`` when it was already gone."""
        body: dict[str, Any] = {"propagationPolicy": "Background"}
        if uid:
            body["preconditions"] = {"uid": uid}
        try:
            await self._request("delete", "DELETE", resource, resource.path(namespace, name), body=body)
        except NotFound:
            return False
        return True

    # -- the one place that talks HTTP

    async def _request(
        self,
        verb: str,
        method: str,
        resource: Resource,
        path: str,
        *,
        body: Any = None,
        content_type: str = "application/json",
        query: list[tuple[str, str]] | None = None,
    ) -> dict[str, Any]:
        data = await self._exchange(
            verb, method, resource.plural, path, body=body, content_type=content_type, query=query
        )
        codec = self.codecs.get(resource.plural)
        if codec is None or not data or verb == "delete":
            return _decode(data)
        return codec.page(data) if verb == "list" else codec.one(data)

    async def _exchange(
        self,
        verb: str,
        method: str,
        plural: str,
        path: str,
        *,
        body: Any = None,
        content_type: str = "application/json",
        query: list[tuple[str, str]] | None = None,
        accept: str = "application/json",
    ) -> bytes:
        """One request, retried as :class:`RetryPolicy` says; its 2xx body as it came, else :class:`ApiError`."""
        delay = self.retry.base_seconds
        for attempt in range(1, self.retry.attempts + 1):
            last = attempt == self.retry.attempts
            try:
                status, headers, data = await self._send(method, path, body, content_type, query or [], accept)
            except self.UNREACHABLE as exc:
                self.counter.add(verb, plural, 0)
                if last:
                    raise ApiError(0, "Unreachable", f"{method} {path}: {exc}") from exc
                logger.warning("API %s %s failed (%s); retrying in %.1fs", method, path, exc, delay)
                await asyncio.sleep(delay * (0.8 + 0.4 * random.random()))
                delay = min(delay * 2, self.retry.max_seconds)
                continue
            self.counter.add(verb, plural, status)
            if 200 <= status < 300:
                return data
            if status not in RETRIED_CODES or last:
                raise api_error(status, data)
            after = headers.get("Retry-After", "")
            if after.isdigit():  # the server knows best how long to back off (within reason)
                delay = min(max(delay, float(after)), RETRY_AFTER_CAP)
            logger.warning("API %s %s answered %s; retrying in %.1fs", method, path, status, delay)
            await asyncio.sleep(delay * (0.8 + 0.4 * random.random()))
            delay = min(delay * 2, self.retry.max_seconds)
        raise AssertionError("unreachable")  # pragma: no cover

    UNREACHABLE: tuple[type[BaseException], ...] = (urllib3.exceptions.HTTPError, OSError)
    """What :meth:`_send` raises when the API server could not be reached, or did not answer: retried."""

    async def _send(
        self,
        method: str,
        path: str,
        body: Any,
        content_type: str,
        query: list[tuple[str, str]],
        accept: str = "application/json",
    ) -> tuple[int, Mapping[str, str], bytes]:
        """One HTTP request: (status, headers, body) of its answer, whatever the status."""
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(
                self._pool, self._call, method, path, body, content_type, query, accept
            )
        except kubernetes.client.ApiException as exc:  # the client raises a few answers itself
            return int(exc.status or 0), dict(exc.headers or {}), str(exc.body or "").encode()

    def _call(
        self,
        method: str,
        path: str,
        body: Any,
        content_type: str,
        query: list[tuple[str, str]],
        accept: str = "application/json",
    ) -> tuple[int, dict[str, str], bytes]:
        headers = {"Accept": accept, "Content-Type": content_type}
        params = self._api.param_serialize(
            method=method,
            resource_path=path,
            query_params=query,
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        response = self._api.call_api(*params, _request_timeout=self.retry.request_timeout)
        data = response.read()  # type: ignore[no-untyped-call]
        return response.status, dict(response.headers or {}), data or b""


def _decode(data: bytes) -> dict[str, Any]:
    if not data:
        return {}
    decoded = json.loads(data)
    return decoded if isinstance(decoded, dict) else {"items": decoded}


def api_error(status: int, data: bytes) -> ApiError:
    """The :class:`ApiError` of an answer that is not 2xx: its Status body's reason and message when it has one."""
    reason, message = "", data.decode(errors="replace")[:500]
    try:
        payload = json.loads(data)
        reason = str(payload.get("reason") or "")
        message = str(payload.get("message") or message)
    except (ValueError, AttributeError):
        pass
    return _ERRORS.get(status, ApiError)(status, reason, message)
