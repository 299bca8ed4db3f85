"""The operator's runtime in the test's own event loop, against :class:`~asynctask_operator.testing.fakekube.FakeKube`.

What the process adds around it (kopf's frame, leader election, the HTTP server) is left
out: the runtime lists and watches every kind itself. :class:`JobController` plays the cluster's Job
controller and kubelet: each Job the operator creates gets a pod that runs to exit 0 and
the Job completes, each as a separate write, after the create's answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from asynctask_operator.adapters.kube import JOBS, PODS
from asynctask_operator.controllers.manager import Manager
from asynctask_operator.core.clocks import Clocks
from asynctask_operator.settings import OperatorSettings
from asynctask_operator.testing.fakekube import FakeKube, Obj


def tasktype(name: str = "echo", command: str = "true") -> Obj:
    """A TaskType manifest whose Job runs one container with ``command``."""
    container = {"name": "main", "image": "busybox:1.36", "command": [command]}
    return {
        "apiVersion": "asynctask.dev/v1alpha1",
        "kind": "TaskType",
        "metadata": {"name": name},
        "spec": {
            "jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [container]}}}}
        },
    }


def _stamp() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class JobController:
    """Runs every Job created in ``api`` to success: a pod created, its container terminated with exit 0,
    then the Job's status Complete (three writes, in that order, as the real controllers make them).

    ``auto=False``: Jobs are only recorded (``created``, in order); the test finishes each with :meth:`run`."""

    def __init__(self, api: FakeKube, *, exit_code: int = 0, auto: bool = True) -> None:
        self.api = api
        self.exit_code = exit_code
        self.auto = auto
        self.created: list[Obj] = []
        self.started: list[str] = []
        self._tasks: set[asyncio.Task[None]] = set()
        api.on_create(JOBS.plural, self._created)

    def _created(self, job: Obj) -> None:
        self.created.append(job)
        if not self.auto:
            return
        task = asyncio.get_running_loop().create_task(self.run(job))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def run(self, job: Obj) -> None:
        meta = job["metadata"]
        ns, name = meta["namespace"], meta["name"]
        self.started.append(name)
        labels = dict((job["spec"]["template"].get("metadata") or {}).get("labels") or {})
        labels["batch.kubernetes.io/job-name"] = name
        pod = await self.api.create(
            PODS,
            ns,
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": f"{name}-pod",
                    "labels": labels,
                    "ownerReferences": [{"kind": "Job", "name": name, "uid": meta["uid"], "controller": True}],
                },
            },
        )
        terminated = {"exitCode": self.exit_code, "reason": "Completed" if self.exit_code == 0 else "Error"}
        await self.api.patch(
            PODS,
            ns,
            pod["metadata"]["name"],
            {
                "status": {
                    "phase": "Succeeded" if self.exit_code == 0 else "Failed",
                    "containerStatuses": [{"name": "main", "state": {"terminated": terminated}}],
                }
            },
            subresource="status",
        )
        condition = (
            {"type": "Complete", "status": "True"}
            if self.exit_code == 0
            else {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "backoff limit"}
        )
        counts = {"succeeded": 1} if self.exit_code == 0 else {"failed": 1}
        await self.api.patch(
            JOBS,
            ns,
            name,
            {"status": {**counts, "startTime": _stamp(), "completionTime": _stamp(), "conditions": [condition]}},
            subresource="status",
        )


@contextlib.asynccontextmanager
async def running(
    api: FakeKube, settings: OperatorSettings | None = None, clocks: Clocks | None = None
) -> AsyncIterator[Manager]:
    """The runtime synced and running (workers, watches, clock, resync) until the block ends; ``clocks``:
    the time it reads (``Clocks.of_loop`` under ``looptime``: waits pass at once, in order)."""
    runtime = Manager(api, settings or OperatorSettings(http_port=0), clocks=clocks)
    versions = await runtime.sync()
    background = runtime.background(versions)
    try:
        yield runtime
    finally:
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        await runtime.callbacks.close()


async def until(
    check: Callable[[], bool | Awaitable[bool]],
    timeout: float = 10.0,
    what: str | Callable[[], str] = "",
    every: float = 0.01,
) -> None:
    """Wait for ``check`` to hold, looking every ``every`` seconds (no fixed sleeps); ``what`` says
    what was awaited (a callable: read when the wait fails, to show the state then). Under looptime
    a wait of hours looks less often: each look costs real time, the seconds between them none."""
    try:
        async with asyncio.timeout(timeout):
            while True:
                result: Any = check()
                if not isinstance(result, bool):
                    result = await result
                if result:
                    return
                await asyncio.sleep(every)
    except TimeoutError:
        said = what() if callable(what) else what
        raise AssertionError(f"timed out after {timeout}s waiting for {said or check}") from None
