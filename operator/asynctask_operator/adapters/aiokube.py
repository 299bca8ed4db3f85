"""The operator's client: :class:`KubeClient` with its HTTP on aiohttp, in the event loop, no threads.

The official client still loads the credentials and TLS settings (its ``Configuration``, from a
kubeconfig or in cluster, tokens refreshed through its hook); what changes is who sends the
requests. Through the official client (``urllib3`` and ``http.client`` in a pool of threads), a
status write cost the operator ~760 µs of CPU, ~400 of it parsing and building HTTP in Python,
the rest the threads' handing over of the GIL; the official client's asyncio
package ~820 µs; aiohttp, whose HTTP parser is C, ~130 µs (docs/adr/0002, revised).
The retries, the typed errors, the count of requests and the codecs are :class:`KubeClient`'s.

Only the operator uses it: the gateway, the plugin and the archiver send a few requests each and
keep the official client (their import contracts keep aiohttp out of them).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp
import kubernetes.client

from asynctask_operator.adapters.kube import ApiError, RequestCounter, Resource
from asynctask_operator.adapters.kubeclient import USER_AGENT, KubeClient, RetryPolicy, api_error
from asynctask_operator.adapters.slimwire import Codec, compact_json

READ_SIZE = 65536


class AioKubeClient(KubeClient):
    """:class:`KubeClient` over aiohttp. Its session is made in the running loop at the first request;
    :meth:`aclose` closes it (:meth:`close` when the loop is gone)."""

    UNREACHABLE = (aiohttp.ClientError, TimeoutError, OSError)

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
        super().__init__(
            configuration, concurrency=1, retry=retry, counter=counter, user_agent=user_agent, codecs=codecs
        )
        self.configuration = configuration
        self.user_agent = user_agent
        self._concurrency = max(concurrency, 1)
        self._slots: asyncio.Semaphore | None = None
        self._session: aiohttp.ClientSession | None = None

    # -- the session

    def _open_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=0, ssl=_ssl_of(self.configuration))  # requests are bounded below
            self._session = aiohttp.ClientSession(
                connector=connector,
                headers={"User-Agent": self.user_agent},
                auto_decompress=False,
                skip_auto_headers=("Accept-Encoding",),
            )
            self._slots = asyncio.Semaphore(self._concurrency)
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
        super().close()

    def close(self) -> None:
        """Without a running loop (at exit): what is open is dropped with the process."""
        self._session = None
        super().close()

    def _headers(self, content_type: str | None = None, accept: str = "application/json") -> dict[str, str]:
        """Accept, Content-Type and the credentials, read from the configuration at each request (a
        token the official client refreshes is the current one)."""
        headers = {"Accept": accept}
        if content_type:
            headers["Content-Type"] = content_type
        settings: Any = self.configuration.auth_settings()
        for setting in settings.values():
            if setting.get("in") == "header" and setting.get("value"):
                headers[str(setting["key"])] = str(setting["value"])
        return headers

    def _url(self, path: str) -> str:
        return str(self.configuration.host).rstrip("/") + path

    def _proxy(self) -> str | None:
        return str(self.configuration.proxy) if self.configuration.proxy else None

    # -- requests

    async def _send(
        self,
        method: str,
        path: str,
        body: Any,
        content_type: str,
        query: list[tuple[str, str]],
        accept: str = "application/json",
    ) -> tuple[int, Mapping[str, str], bytes]:
        session = self._open_session()
        assert self._slots is not None
        data = compact_json(body) if body is not None else None
        timeout = aiohttp.ClientTimeout(total=self.retry.request_timeout)
        async with (
            self._slots,
            session.request(
                method,
                self._url(path),
                params=query or None,
                data=data,
                headers=self._headers(content_type if data is not None else None, accept),
                timeout=timeout,
                proxy=self._proxy(),
                server_hostname=self.configuration.tls_server_name or None,
            ) as response,
        ):
            return response.status, response.headers, await response.read()

    async def watch(
        self,
        resource: Resource,
        namespace: str | None,
        label_selector: str | None,
        resource_version: str,
        *,
        timeout_seconds: int = 300,
    ) -> AsyncIterator[dict[str, Any]]:
        """As :meth:`KubeClient.watch`, read in the event loop: each line decoded as it completes."""
        query = [("watch", "true"), ("allowWatchBookmarks", "true"), ("timeoutSeconds", str(timeout_seconds))]
        if label_selector:
            query.append(("labelSelector", label_selector))
        if resource_version:
            query.append(("resourceVersion", resource_version))
        codec = self.codecs.get(resource.plural)
        decode = codec.event if codec is not None else json.loads
        path = resource.path(namespace)
        timeout = aiohttp.ClientTimeout(total=None, connect=10.0, sock_read=timeout_seconds + 30.0)
        try:
            response = await self._open_session().get(
                self._url(path),
                params=query,
                headers=self._headers(),
                timeout=timeout,
                proxy=self._proxy(),
                server_hostname=self.configuration.tls_server_name or None,
            )
        except self.UNREACHABLE as exc:
            self.counter.add("watch", resource.plural, 0)
            raise ApiError(0, "Unreachable", f"GET {path} (watch): {exc}") from exc
        async with response:
            self.counter.add("watch", resource.plural, response.status)
            if not 200 <= response.status < 300:
                raise api_error(response.status, await response.read())
            buffer = b""
            try:
                async for chunk in response.content.iter_chunked(READ_SIZE):
                    buffer += chunk
                    *lines, buffer = buffer.split(b"\n")
                    for line in lines:
                        if line.strip():
                            yield decode(line)
                if buffer.strip():
                    yield decode(buffer)
            except (*self.UNREACHABLE, ValueError) as exc:  # dropped, timed out, or a line that is not JSON
                raise ApiError(0, "WatchBroken", str(exc) or type(exc).__name__) from exc


def _ssl_of(configuration: kubernetes.client.Configuration) -> ssl.SSLContext | bool:
    """The TLS settings of the official client's configuration, as aiohttp takes them."""
    if not str(configuration.host).startswith("https"):
        return False
    context = ssl.create_default_context(cafile=configuration.ssl_ca_cert or None)
    if not configuration.verify_ssl:  # insecure-skip-tls-verify (said once in the log: adapters/kubeconfig.py)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif configuration.assert_hostname is False:
        context.check_hostname = False
    if configuration.cert_file:
        context.load_cert_chain(configuration.cert_file, keyfile=configuration.key_file or None)
    return context


@contextlib.asynccontextmanager
async def operator_client(
    configuration: kubernetes.client.Configuration, **options: Any
) -> AsyncIterator[AioKubeClient]:
    """An :class:`AioKubeClient`, its session closed at the end."""
    client = AioKubeClient(configuration, **options)
    try:
        yield client
    finally:
        await client.aclose()
