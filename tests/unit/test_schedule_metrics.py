"""asynctask_scheduled_runs_total{outcome}: what the ScheduledTask reconciler counts (docs/design.md §4.1)."""

from __future__ import annotations

import datetime as dt
from typing import Any, cast

from asynctask_operator.adapters.kube import ASYNCTASKS, SCHEDULEDTASKS, Invalid, Resource
from asynctask_operator.adapters.kubeclient import KubeClient
from asynctask_operator.adapters.metrics import Metrics
from asynctask_operator.controllers.admission import Admissions
from asynctask_operator.controllers.cache import Cache
from asynctask_operator.controllers.intake import TaskIntake
from asynctask_operator.controllers.schedules import ScheduleReconciler
from asynctask_operator.core.models import ScheduleCounts
from tests.unit.schedule_builders import run, run_name, scheduled, utc


class FakeApi:
    """Creates succeed (or are refused as Invalid), status writes are echoed back."""

    def __init__(self, refuse: bool = False) -> None:
        self.refuse = refuse
        self.created: list[str] = []

    async def create(self, resource: Resource, namespace: str | None, body: dict[str, Any]) -> dict[str, Any]:
        assert resource == ASYNCTASKS
        if self.refuse:
            raise Invalid(422, "Invalid", "spec.type: Invalid value")
        self.created.append(body["metadata"]["name"])
        return body

    async def patch(
        self, resource: Resource, namespace: str | None, name: str, patch: dict[str, Any], **_: Any
    ) -> dict[str, Any]:
        assert resource == SCHEDULEDTASKS
        return {}


def counted(metrics: Metrics, outcome: str) -> float:
    return float(metrics.scheduled_runs.labels("media", outcome)._value.get())


async def reconcile(obj: Any, api: FakeApi, now: dt.datetime, runs: tuple[Any, ...] = ()) -> Metrics:
    metrics = Metrics()
    cache = Cache()
    cache.put_scheduledtask(obj.model_dump(by_alias=True, exclude_none=True, mode="json"))
    for child in runs:  # owned by the ScheduledTask, as the controller finds its runs
        raw = child.model_dump(by_alias=True, exclude_none=True, mode="json")
        owner = {"kind": "ScheduledTask", "controller": True, "uid": obj.metadata.uid, "name": obj.metadata.name}
        raw["metadata"]["ownerReferences"] = [owner]
        cache.put_task(raw)
    admissions = Admissions(None, lambda key: None, lambda key, at: None)
    intake = TaskIntake(cache, admissions, lambda key: None, lambda key: None, lambda: "default")
    reconciler = ScheduleReconciler(cache, cast(KubeClient, api), intake, wake=lambda key: None, metrics=metrics)
    await reconciler.reconcile((obj.metadata.namespace, obj.metadata.name), now)
    return metrics


async def test_a_started_run_is_counted() -> None:
    api = FakeApi()
    metrics = await reconcile(scheduled().run_now("go").build(), api, utc(2026, 1, 5, 1))
    assert api.created and counted(metrics, "started") == 1
    assert counted(metrics, "refused") == 0


async def test_a_refused_run_is_counted() -> None:
    metrics = await reconcile(scheduled().run_now("go").build(), FakeApi(refuse=True), utc(2026, 1, 5, 1))
    assert counted(metrics, "refused") == 1 and counted(metrics, "started") == 0


async def test_finished_and_skipped_runs_are_counted_once_from_the_status_counts() -> None:
    fire = utc(2026, 1, 5, 2)
    done = run(run_name(fire), "Succeeded", finished=fire + dt.timedelta(minutes=3))
    obj = scheduled().status(active=[run_name(fire)], counts=ScheduleCounts(succeeded=4, failed=1, skipped=2)).build()
    metrics = await reconcile(obj, FakeApi(), fire + dt.timedelta(minutes=5), runs=(done,))
    assert counted(metrics, "succeeded") == 1  # 4 -> 5: only what this write added
    assert counted(metrics, "failed") == 0 and counted(metrics, "skipped") == 0
