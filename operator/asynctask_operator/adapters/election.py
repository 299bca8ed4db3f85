"""Leader election over a coordination.k8s.io/v1 Lease (``--leader-elect``).

One replica holds the Lease and runs; the others wait. The holder renews every
``retry_period``; if it cannot renew for ``renew_deadline`` (shorter than the
lease duration) it stops acting at once, before its Lease can expire and a standby
take over: there is never a moment with two leaders writing.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Callable
from typing import Any

from asynctask_operator.adapters.api import Kube
from asynctask_operator.adapters.kube import LEASES, PODS, ApiError, Conflict, NotFound
from asynctask_operator.core.leadership import LeaseRecord, lease_spec, next_move

logger = logging.getLogger(__name__)

LEADER_LABEL = "asynctask.dev/leader"
"""On the operator's own pod (``--pod-name``): "true" on the leader, "false" on a standby. The
chart's Service selects ``"true"``, so task reports reach the leader while every replica is Ready."""


class LeaderElector:
    def __init__(
        self,
        api: Kube,
        namespace: str,
        name: str,
        identity: str,
        *,
        lease_seconds: int = 15,
        renew_deadline: float = 10.0,
        retry_period: float = 2.0,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if not retry_period < renew_deadline < lease_seconds:
            raise ValueError("leader election needs retry period < renew deadline < lease duration")
        self.api = api
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.lease_seconds = lease_seconds
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self._monotonic = monotonic
        self._now = now
        self.leading = False

    async def try_once(self) -> bool:
        """One round: True if we hold the Lease afterwards."""
        try:
            lease = await self.api.get(LEASES, self.namespace, self.name)
            record: LeaseRecord | None = LeaseRecord.from_lease(lease)
        except NotFound:
            lease, record = {}, None
        now = self._now()
        move = next_move(record, self.identity, now)
        if move == "wait":
            return False
        transitions = 0 if record is None else record.transitions + (0 if move == "renew" else 1)
        spec = lease_spec(self.identity, now, self.lease_seconds, transitions)
        if move == "renew" and record is not None:
            spec["acquireTime"] = (lease.get("spec") or {}).get("acquireTime", spec["acquireTime"])
        metadata: dict[str, str] = {"name": self.name, "namespace": self.namespace}
        body: dict[str, Any] = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": metadata,
            "spec": spec,
        }
        try:
            if record is None:
                await self.api.create(LEASES, self.namespace, body)
            else:
                # A merge patch carrying the resourceVersion read: a stale one is a 409.
                patch = {"metadata": {"resourceVersion": record.resource_version}, "spec": spec}
                await self.api.patch(LEASES, self.namespace, self.name, patch)
        except Conflict:
            return False  # another candidate moved first
        if move != "renew":
            logger.info("leader election: %s now holds Lease %s/%s", self.identity, self.namespace, self.name)
        return True

    async def acquire(self) -> None:
        """Wait until this replica leads."""
        logger.info("leader election: %s waiting for Lease %s/%s", self.identity, self.namespace, self.name)
        while True:
            try:
                if await self.try_once():
                    self.leading = True
                    return
            except ApiError as exc:
                logger.warning("leader election: %s", exc)
            await asyncio.sleep(self.retry_period)

    async def keep(self, on_lost: Callable[[], None]) -> None:
        """Renew until renewal fails for ``renew_deadline``; then call ``on_lost`` and return."""
        last_renewed = self._monotonic()
        while True:
            await asyncio.sleep(self.retry_period)
            try:
                if await self.try_once():
                    last_renewed = self._monotonic()
                    continue
                logger.error("leader election: Lease %s/%s was taken over", self.namespace, self.name)
            except ApiError as exc:
                if self._monotonic() - last_renewed < self.renew_deadline:
                    logger.warning("leader election: renewal failed, retrying: %s", exc)
                    continue
                logger.error("leader election: could not renew for %.0fs: %s", self.renew_deadline, exc)
            self.leading = False
            on_lost()
            return

    async def release(self) -> None:
        """Give the Lease up on a clean shutdown, so that a standby takes over at once (not after
        ``lease_seconds``). Called only once this replica has stopped acting."""
        if not self.leading:
            return
        self.leading = False
        try:
            lease = await self.api.get(LEASES, self.namespace, self.name)
            record = LeaseRecord.from_lease(lease)
            if record.holder != self.identity:
                return
            patch = {"metadata": {"resourceVersion": record.resource_version}, "spec": {"holderIdentity": None}}
            await self.api.patch(LEASES, self.namespace, self.name, patch)
            logger.info("leader election: %s released Lease %s/%s", self.identity, self.namespace, self.name)
        except ApiError as exc:  # it expires on its own
            logger.warning("leader election: could not release Lease %s/%s: %s", self.namespace, self.name, exc)


async def label_own_pod(api: Kube, namespace: str, pod: str, leading: bool) -> bool:
    """Set :data:`LEADER_LABEL` on this replica's pod; False (logged) when that failed."""
    value = "true" if leading else "false"
    try:
        await api.patch(PODS, namespace, pod, {"metadata": {"labels": {LEADER_LABEL: value}}})
    except NotFound:
        logger.error("pod %s/%s (--pod-name) not found: cannot set %s=%s", namespace, pod, LEADER_LABEL, value)
        return False
    except ApiError as exc:
        logger.error("could not set %s=%s on pod %s/%s: %s", LEADER_LABEL, value, namespace, pod, exc)
        return False
    return True
