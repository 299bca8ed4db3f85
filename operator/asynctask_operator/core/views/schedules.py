"""How a person sees a ScheduledTask: its schedule, its last and next fire, its runs.

>>> s = ScheduleView.of({"metadata": {"name": "nightly"}, "spec": {"schedule": "0 2 * * *",
...     "taskTemplate": {"spec": {"type": "report"}}}, "status": {"active": ["nightly-1"]}})
>>> (s.time_zone, s.type, s.active)
('UTC', 'report', ('nightly-1',))
"""

from __future__ import annotations

import dataclasses

from asynctask_operator.core.views.tasks import _count, _text
from asynctask_operator.core.wire import Obj


@dataclasses.dataclass(frozen=True, slots=True)
class ScheduleView:
    namespace: str
    name: str
    schedule: str
    time_zone: str
    suspend: bool
    concurrency_policy: str
    type: str
    last_schedule_time: str | None
    """The fire time of the last run it started."""
    next_schedule_time: str | None
    """Its next fire time."""
    last_successful_time: str | None
    active: tuple[str, ...]
    missed_runs: int
    succeeded: int
    failed: int
    skipped: int
    created_time: str | None
    resource_version: str

    @classmethod
    def of(cls, obj: Obj) -> ScheduleView:
        meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
        counts = status.get("counts") or {}
        template = (spec.get("taskTemplate") or {}).get("spec") or {}
        active = status.get("active")
        active = active if isinstance(active, list) else []
        return cls(
            namespace=_text(meta.get("namespace")),
            name=_text(meta.get("name")),
            schedule=_text(spec.get("schedule")),
            time_zone=_text(spec.get("timeZone")) or "UTC",
            suspend=spec.get("suspend") is True,
            concurrency_policy=_text(spec.get("concurrencyPolicy")) or "Allow",
            type=_text(template.get("type")),
            last_schedule_time=_text(status.get("lastScheduleTime")) or None,
            next_schedule_time=_text(status.get("nextScheduleTime")) or None,
            last_successful_time=_text(status.get("lastSuccessfulTime")) or None,
            active=tuple(str(a) for a in active),
            missed_runs=_count(status.get("missedRuns")) or 0,
            succeeded=_count(counts.get("succeeded")) or 0,
            failed=_count(counts.get("failed")) or 0,
            skipped=_count(counts.get("skipped")) or 0,
            created_time=_text(meta.get("creationTimestamp")) or None,
            resource_version=_text(meta.get("resourceVersion")),
        )
