"""Callback deliveries, off the reconcile path: each one its own asyncio task, at most N at once.

The reconciler asks for a delivery (``Decision.send_callback``) after the status write
that recorded the event; :class:`CallbackDispatcher` makes it in the background and
keeps the outcome in memory for the reconciler to write into ``status.callback``. A
slow or dead receiver therefore holds one delivery slot for at most its timeout, never
a worker. Nothing here writes to the API server: the status is the reconciler's, and an
outcome lost in a crash only means one more delivery (the receiver de-duplicates on
``webhook-id``).

The outcomes of a task's last few events stay known until the task is deleted. A cache
copy older than the write that recorded a delivery (a watch event overtaken by the
operator's own write) then asks for that delivery again: it is not made twice; the
known outcome is handed to the decision once more instead (which rewrites the record,
or is refused with a 409 by the API server when the copy was stale).
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import logging
import time
from collections.abc import Callable

from asynctask_operator.adapters.api import Kube
from asynctask_operator.adapters.kube import SECRETS, ApiError, NotFound
from asynctask_operator.adapters.metrics import Metrics
from asynctask_operator.adapters.webhooks import Sender
from asynctask_operator.core.callbacks import (
    CallbackSend,
    DeliveryOutcome,
    custom_headers,
    verdict,
    webhook_headers,
)
from asynctask_operator.core.destinations import url_refusal
from asynctask_operator.core.wire import Key

logger = logging.getLogger(__name__)

SECRET_TTL = 30.0
OUTCOMES_KEPT = 3  # per task: its latest events (a newer event replaces an undelivered older one)


class SecretMissing(Exception):
    """A referenced Secret or key is not there (yet): retried, like a network error."""


class SecretReader:
    """Reads the Secrets callbacks reference (GET only, cached for a short while)."""

    def __init__(self, api: Kube, ttl: float = SECRET_TTL, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.api = api
        self.ttl = ttl
        self._monotonic = monotonic
        self._cache: dict[Key, tuple[float, dict[str, bytes] | None]] = {}

    async def data(self, namespace: str, name: str) -> dict[str, bytes]:
        key = (namespace, name)
        cached = self._cache.get(key)
        if cached is not None and self._monotonic() - cached[0] < self.ttl:
            found = cached[1]
        else:
            try:
                secret = await self.api.get(SECRETS, namespace, name)
                found = {k: base64.b64decode(v) for k, v in (secret.get("data") or {}).items()}
            except NotFound:
                found = None
            self._cache[key] = (self._monotonic(), found)
        if found is None:
            raise SecretMissing(f"Secret {namespace}/{name} not found: create it, or fix the callback's secret refs")
        return found

    async def signing_secret(self, send: CallbackSend) -> bytes | None:
        ref = send.secret_ref
        if ref is None:
            return None
        data = await self.data(send.namespace, ref.name)
        value = data.get(ref.key)
        if not value:
            raise SecretMissing(f"Secret {send.namespace}/{ref.name} has no key {ref.key!r} (callback.secretRef.key)")
        return value

    async def headers(self, send: CallbackSend) -> dict[str, str]:
        ref = send.headers_secret_ref
        if ref is None:
            return {}
        return custom_headers(f"{send.namespace}/{ref.name}", await self.data(send.namespace, ref.name))


class CallbackDispatcher:
    def __init__(
        self,
        sender: Sender,
        secrets: SecretReader,
        wake: Callable[[Key], None],
        max_in_flight: int = 64,
        metrics: Metrics | None = None,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.sender = sender
        self.secrets = secrets
        self._wake = wake
        self._slots = asyncio.Semaphore(max_in_flight)
        self._metrics = metrics
        self._now = now
        self._in_flight: dict[Key, tuple[str, int]] = {}
        self._outcomes: dict[Key, dict[str, DeliveryOutcome]] = {}  # by task, then by event id
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    def outcome(self, key: Key, event_id: str | None) -> DeliveryOutcome | None:
        """The latest known outcome of delivering event ``event_id`` of the task at ``key``."""
        if event_id is None:
            return None
        return self._outcomes.get(key, {}).get(event_id)

    def submit(self, key: Key, send: CallbackSend) -> None:
        """Start ``send`` unless that very delivery is under way or has been made already."""
        wanted = (send.id, send.delivery)
        if self._in_flight.get(key) == wanted:
            return
        known = self.outcome(key, send.id)
        if known is not None and known.delivery >= send.delivery:
            return
        self._in_flight[key] = wanted
        task = asyncio.create_task(self._deliver(key, send), name=f"callback {key[0]}/{key[1]}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def forget(self, key: Key) -> None:
        """The task is gone."""
        self._outcomes.pop(key, None)

    def _keep(self, key: Key, outcome: DeliveryOutcome) -> None:
        kept = self._outcomes.setdefault(key, {})
        kept.pop(outcome.id, None)
        kept[outcome.id] = outcome
        while len(kept) > OUTCOMES_KEPT:
            del kept[next(iter(kept))]

    def cancel(self) -> None:
        """Stop every delivery under way (leadership lost: another replica takes over from the status)."""
        for task in list(self._tasks):
            task.cancel()

    async def close(self) -> None:
        self.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.sender.aclose()

    async def _deliver(self, key: Key, send: CallbackSend) -> None:
        try:
            async with self._slots:
                outcome = await self._attempt(send)
        finally:
            if self._in_flight.get(key) == (send.id, send.delivery):
                del self._in_flight[key]
        self._keep(key, outcome)
        kind, message = verdict(outcome)
        if kind == "retry" and send.delivery >= send.max_attempts:
            kind = "failed"  # the last delivery allowed: the event is given up
        if self._metrics is not None:
            self._metrics.callbacks.labels(send.namespace, kind).inc()
        level = logging.INFO if kind == "delivered" else logging.WARNING
        logger.log(
            level,
            "callback %s of AsyncTask %s/%s, delivery %d: %s%s",
            send.event.get("type"),
            key[0],
            key[1],
            send.delivery,
            kind,
            f" ({message})" if message else "",
        )
        self._wake(key)

    async def _attempt(self, send: CallbackSend) -> DeliveryOutcome:
        def outcome(**fields: object) -> DeliveryOutcome:
            return DeliveryOutcome(id=send.id, delivery=send.delivery, at=self._now(), **fields)  # type: ignore[arg-type]

        refusal = url_refusal(send.url)
        if refusal is not None:
            return outcome(refused=refusal)
        body = json.dumps(send.event, separators=(",", ":"), ensure_ascii=False).encode()
        try:
            secret = await self.secrets.signing_secret(send)
            extra = await self.secrets.headers(send)
            headers = {**extra, **webhook_headers(send.id, self._now(), body, secret)}
        except SecretMissing as exc:
            return outcome(error=str(exc))
        except ValueError as exc:  # a reserved header or a malformed key in the Secret: no retry can fix that
            ref = send.secret_ref
            where = f" (Secret {send.namespace}/{ref.name} key {ref.key})" if ref and "signing" in str(exc) else ""
            return outcome(fatal=f"{exc}{where}")
        except ApiError as exc:
            return outcome(error=f"reading the callback's Secret failed: {exc}")
        try:
            answer = await self.sender.send(send.url, body, headers, send.timeout_seconds)
        except Exception as exc:  # a delivery always ends with an outcome, or its callback would hang
            logger.exception("callback delivery to %s failed unexpectedly", send.url)
            return outcome(error=f"{type(exc).__name__}: {exc}")
        return answer.outcome(send.id, send.delivery, self._now())
