"""The archive in the plugin's words: tasks past their TTL, read through the API server.

The gateway serves the aggregated API ``archive.asynctask.dev/v1alpha1`` and the chart registers it
with an APIService, so the plugin reads archived tasks from the API server it already talks to, with
the kubeconfig's own credentials (a token, a client certificate, an exec plugin: whatever the API
server accepts). The API server authenticates the user, checks their ``get``/``list archivedtasks`` (the chart gives it to the
view, edit and admin roles) and proxies the request; the gateway authorizes each read as it does a live
one (``list``/``get asynctasks``, ``get pods/log``). Nothing to configure.

Where no APIService is installed, the group's paths are 404: :meth:`Archive.served` asks its discovery
document once to tell that from a task the archive does not hold, and the plugin says so once, naming
the chart's values that turn it on.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

from asynctask_operator.adapters.api import RawReads
from asynctask_operator.adapters.kube import ASYNCTASKS, ApiError
from asynctask_operator.core.wire import Obj
from asynctask_operator.kubectl.errors import CliError, explain, refused

if TYPE_CHECKING:
    from asynctask_operator.kubectl.context import Context

GROUP_VERSION = "/apis/archive.asynctask.dev/v1alpha1"
KIND = "ArchivedTask"
ENABLE = "set the chart's gateway.enabled and archive.enabled (with PostgreSQL); gateway.aggregation.enabled is on by default"
API_SERVER_RULE = (
    "the API server asks get/list on archivedtasks.archive.asynctask.dev, which the view, edit and admin roles "
    "have from the chart: bind one, or add that rule to your Role (docs/cli.md)"
)
NOT_SERVED = f"the archive is not served in this cluster (no APIService v1alpha1.archive.asynctask.dev): {ENABLE}"


def is_archived(obj: Obj) -> bool:
    return obj.get("kind") == KIND


def archived_time(obj: Obj) -> str:
    return str((obj.get("archive") or {}).get("archivedTime") or "")


class Archive:
    """The archive's API for one run of the plugin: whether it is served (asked once), and its reads."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._served: bool | None = None
        self._said = False

    def _client(self) -> RawReads:
        if not hasattr(self.ctx.api, "raw_get"):
            raise CliError("this API client cannot read the archive")
        return cast(RawReads, self.ctx.api)

    async def _get(self, path: str, query: Sequence[tuple[str, str]] = (), accept: str = "application/json") -> bytes:
        return await self._client().raw_get(GROUP_VERSION + path, query, accept=accept)

    async def served(self) -> bool:
        """Whether the API server serves the archive's group (its APIService is installed)."""
        if self._served is None:
            try:
                await self._get("")
                self._served = True
            except ApiError as exc:
                if exc.status != 404:
                    raise self.refused(exc, "list", None) from None
                self._served = False
        return self._served

    def say_not_served(self) -> None:
        """One line on stderr, once a run: where the archive would be, and how to turn it on."""
        if not self._said:
            self._said = True
            self.ctx.err.print(f"note: {NOT_SERVED}", highlight=False, soft_wrap=True)

    def refused(self, exc: ApiError, verb: str, namespace: str | None, name: str | None = None) -> CliError:
        """The archive's answer, said for a person (its Status message names what the user may not do)."""
        if exc.status == 403:
            if '"archivedtasks' in exc.message:  # the API server's own check, before it proxies
                return CliError(f"you may not read the archive: {exc.message}; {API_SERVER_RULE}")
            return CliError(f"you may not read the archive: {exc.message}")
        if exc.status == 503:
            return CliError(f"the archive is unavailable (503): {exc.message}")
        if exc.status in (400, 405, 429):
            return CliError(f"the archive refused the request ({exc.status}): {exc.message}")
        return CliError(explain(exc, verb, "archivedtasks", namespace, name))

    async def task(self, namespace: str, name: str, uid: str | None = None) -> Obj | None:
        """The archived task of that name (the newest; ``uid``: exactly that one); None when there is none."""
        try:
            text = await self._get(f"/namespaces/{namespace}/archivedtasks/{name}", [("uid", uid)] if uid else [])
        except ApiError as exc:
            if exc.status != 404:
                raise self.refused(exc, "get", namespace, name) from None
            if not await self.served():
                self.say_not_served()
            return None
        return cast(Obj, json.loads(text))

    async def page(self, namespace: str | None, query: Sequence[tuple[str, str]]) -> tuple[list[Obj], str]:
        """One page of the history (newest first) and the token of the next ("" on the last)."""
        where = f"/namespaces/{namespace}/archivedtasks" if namespace else "/archivedtasks"
        try:
            answer: dict[str, Any] = json.loads(await self._get(where, query))
        except ApiError as exc:
            if exc.status == 404 and not await self.served():
                raise CliError(NOT_SERVED) from None
            raise self.refused(exc, "list", namespace) from None
        return list(answer.get("items") or []), str((answer.get("metadata") or {}).get("continue") or "")

    async def log(self, namespace: str, name: str, uid: str, attempt: int) -> str:
        """One attempt's log as the archive kept it (``attempt`` 0: the last)."""
        query = [("uid", uid)] + ([("attempt", str(attempt))] if attempt else [])
        try:
            return (await self._get(f"/namespaces/{namespace}/archivedtasks/{name}/log", query, "text/plain")).decode(
                errors="replace"
            )
        except ApiError as exc:
            if exc.status == 404:
                raise CliError(
                    f"no log of attempt {attempt or 'last'} of asynctask '{name}' is kept: {exc.message}"
                ) from None
            raise self.refused(exc, "get", namespace, name) from None


def archive_of(ctx: Context) -> Archive:
    """The run's :class:`Archive` (one per run: the discovery is asked once, the note said once)."""
    if ctx.archive is None:
        ctx.archive = Archive(ctx)
    return cast(Archive, ctx.archive)


async def live_or_archived(ctx: Context, name: str) -> Obj:
    """The task: live, else from the archive once it is gone (saying so on stderr, with when it was recorded)."""
    namespace = ctx.namespace
    try:
        return await ctx.api.get(ASYNCTASKS, namespace, name)
    except ApiError as exc:
        if exc.status != 404:
            raise refused(exc, "get", "asynctasks", namespace, name) from None
    archive = archive_of(ctx)
    found = await archive.task(namespace, name)
    if found is None:
        gone = ", live or archived" if await archive.served() else ""
        raise CliError(f"no AsyncTask '{name}' in namespace '{namespace}'{gone}")
    ctx.err.print(
        f"asynctask/{name} is archived: gone from the cluster, read from the archive (recorded {archived_time(found)})",
        highlight=False,
        soft_wrap=True,
    )
    return found
