"""The TaskType reconcile: write its ``Ready`` condition when the computed status differs.

The status itself is a pure function of the TaskType (:func:`~asynctask_operator.core.tasktypes.tasktype_status`);
this only writes it. The answer goes the way of a watch event (``took``): it may carry a spec
the user changed since the last event, whose own event would then find that spec held already
and wake none of the type's tasks.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from asynctask_operator.adapters.api import Kube
from asynctask_operator.adapters.kube import TASKTYPES, NotFound
from asynctask_operator.controllers.cache import Cache
from asynctask_operator.core.tasktypes import tasktype_status
from asynctask_operator.core.wire import Key, Obj


class TaskTypeReconciler:
    def __init__(self, cache: Cache, api: Kube, took: Callable[[Obj, float], None]) -> None:
        self.cache = cache
        self.api = api
        self._took = took

    async def reconcile(self, key: Key, now: dt.datetime) -> None:
        tasktype = self.cache.tasktypes.get(key)
        if tasktype is None:
            return
        status = tasktype_status(tasktype, now)
        if status is None:
            return
        sent = self.cache.monotonic()
        try:
            updated = await self.api.patch(TASKTYPES, key[0], key[1], {"status": status.dump()}, subresource="status")
        except NotFound:
            return
        self._took(updated, sent)
