"""Who leads: the decision of one leader-election round over a coordination.k8s.io Lease.

Pure: the adapter reads the Lease, this decides, the adapter writes (with the Lease's
resourceVersion, so of two candidates racing for an expired Lease one gets a 409).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any, Literal

from asynctask_operator.core.timestamps import stamp

Move = Literal["create", "renew", "take", "wait"]


@dataclasses.dataclass(frozen=True)
class LeaseRecord:
    holder: str | None
    renew_time: dt.datetime | None
    duration_seconds: int
    transitions: int = 0
    resource_version: str = ""

    @classmethod
    def from_lease(cls, lease: dict[str, Any]) -> LeaseRecord:
        spec = lease.get("spec") or {}
        renew = spec.get("renewTime")
        return cls(
            holder=spec.get("holderIdentity") or None,
            renew_time=dt.datetime.fromisoformat(renew.replace("Z", "+00:00")) if renew else None,
            duration_seconds=int(spec.get("leaseDurationSeconds") or 15),
            transitions=int(spec.get("leaseTransitions") or 0),
            resource_version=str((lease.get("metadata") or {}).get("resourceVersion") or ""),
        )

    def expires(self) -> dt.datetime | None:
        if self.renew_time is None:
            return None
        return self.renew_time + dt.timedelta(seconds=self.duration_seconds)


def next_move(record: LeaseRecord | None, me: str, now: dt.datetime) -> Move:
    """What a candidate ``me`` does now: create the Lease, renew its own, take an expired one, or wait."""
    if record is None:
        return "create"
    if record.holder == me:
        return "renew"
    expires = record.expires()
    if record.holder is None or expires is None or expires <= now:
        return "take"
    return "wait"


def lease_spec(me: str, now: dt.datetime, duration_seconds: int, transitions: int) -> dict[str, Any]:
    at = stamp(now, micro=True)
    return {
        "holderIdentity": me,
        "leaseDurationSeconds": duration_seconds,
        "acquireTime": at,
        "renewTime": at,
        "leaseTransitions": transitions,
    }
