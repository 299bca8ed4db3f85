"""What each task costs on the wire, by path: the bytes of the operator's requests and of their answers,
the watch events the operator receives about the task (its own, its Jobs', its pods') and their bytes,
and the size of the stored task after each status write (what every watcher of AsyncTasks receives
then: ``kubectl get -w``, the gateway, the console).

Used by ``bench.api_budget``; the emulator measures (``Hit.sent``, ``Hit.received``, its watch
listeners), this attributes to tasks and paths.
"""

from __future__ import annotations

import collections
import json
import statistics
from collections.abc import Callable
from typing import Any

from asynctask_operator.adapters.kube import ASYNCTASKS
from asynctask_operator.testing.emulator import ApiServerEmulator
from asynctask_operator.testing.hits import Hit

KINDS = {"asynctasks": "task", "jobs": "job", "pods": "pod"}


def subject_of(obj: dict[str, Any]) -> str:
    """The name an object is about: a task's, a Job's (``<task>-<attempt>``), a pod's Job's."""
    meta = obj.get("metadata") or {}
    labels = meta.get("labels") or {}
    return str(labels.get("batch.kubernetes.io/job-name") or labels.get("job-name") or meta.get("name") or "")


class CostMeter:
    """Counts, per path (``path_of`` a name), the bytes and events described in the module docstring."""

    def __init__(self, k: ApiServerEmulator, path_of: Callable[[str], str | None]) -> None:
        self.k = k
        self.path_of = path_of
        self.events: collections.Counter[tuple[str, str]] = collections.Counter()  # (path, kind)
        self.event_bytes: collections.Counter[tuple[str, str]] = collections.Counter()
        self.sizes: dict[tuple[str, str], list[int]] = collections.defaultdict(list)  # (path, phase) -> bytes
        k.watch_listeners.append(self._on_event)
        k.listeners.append(self._on_hit)

    def _on_event(self, hit: Hit, event: Any, size: int) -> None:
        if not hit.operator or event.get("type") == "BOOKMARK":
            return
        path = self.path_of(subject_of(event.get("object") or {}))
        if path is not None:
            kind = KINDS.get(hit.resource, hit.resource)
            self.events[path, kind] += 1
            self.event_bytes[path, kind] += size

    def _on_hit(self, hit: Hit, request: Any) -> None:
        if hit.status != 200 or not hit.name or hit.resource not in ("asynctasks", "asynctasks/status"):
            return
        if hit.resource == "asynctasks" and (hit.operator or hit.verb != "create"):
            return
        path = self.path_of(hit.name)
        stored = self.k.model.objects.get((ASYNCTASKS, hit.namespace or "", hit.name))
        if path is None or stored is None:
            return
        phase = "created" if hit.verb == "create" else str((stored.get("status") or {}).get("phase") or "Pending")
        self.sizes[path, phase].append(len(json.dumps(stored, separators=(",", ":"))))

    def per_task(self, path: str, hits: list[Hit], n: int) -> dict[str, Any]:
        """The figures of ``path`` (its operator requests ``hits``), per task of ``n``."""
        kinds = sorted({kind for p, kind in self.events if p == path})
        return {
            "request_bytes_per_task": round(sum(h.sent for h in hits if h.verb != "watch") / n),
            "answer_bytes_per_task": round(sum(h.received for h in hits if h.verb != "watch") / n),
            "watch_events_per_task": {kind: round(self.events[path, kind] / n, 2) for kind in kinds},
            "watch_bytes_per_task": {kind: round(self.event_bytes[path, kind] / n) for kind in kinds},
            "task_bytes_by_phase": {
                phase: round(statistics.median(sizes)) for (p, phase), sizes in sorted(self.sizes.items()) if p == path
            },
        }
