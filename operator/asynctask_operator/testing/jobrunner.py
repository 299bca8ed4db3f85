"""The cluster's own controllers, played on the fake API server: the Job controller, the scheduler and
the kubelet, with the writes a real cluster makes for one Job and its pod, in their order.

kmock runs no controllers, and the simplest play (a Job marked Complete in one write, as
:class:`~asynctask_operator.testing.cluster.Cluster` does for the tests) hides what a real cluster
costs a watcher of Jobs and pods: for each Job, the operator receives about ten watch events of
objects several KB large (:mod:`~asynctask_operator.testing.realobjects`). With the model's
``real_objects`` on, each write also carries the writer's ``managedFields``.

One Job, as Kubernetes 1.31+ runs it (each line one write, so one watch event or one Event)::

    Job controller  pod created (finalizer job-tracking)      Event SuccessfulCreate
    Job controller  Job status: startTime, active 1
    scheduler       pod bound to a node (nodeName, PodScheduled) Event Scheduled
    kubelet         pod Pending, container ContainerCreating   Events Pulled, Created, Started
    kubelet         pod Running, container running, Ready
    Job controller  Job status: ready 1
      ... the container runs ``run_seconds`` ...
    kubelet         pod Succeeded / Failed, container terminated
    Job controller  Job status: uncountedTerminatedPods, active 0
    Job controller  pod finalizer removed
    Job controller  Job status: succeeded/failed 1, conditions, completionTime   Event Completed / BackoffLimitExceeded

Writes go straight to the model (no HTTP request: the benchmark process plays a whole cluster), and
are counted in :attr:`JobRunner.writes` by component, verb and resource.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import time
from collections.abc import Callable

from asynctask_operator.adapters.kube import EVENTS, JOBS, PODS, NotFound, Resource
from asynctask_operator.core.wire import Obj
from asynctask_operator.testing import realobjects as real
from asynctask_operator.testing.apiserver import ApiServer
from asynctask_operator.testing.background import Background
from asynctask_operator.testing.semantics import stamp
from asynctask_operator.testing.watches import Event

CONTROLLER, SCHEDULER, KUBELET = "kube-controller-manager", "kube-scheduler", "kubelet"
Outcome = tuple[bool, int, str]  # succeeded, exit code, termination message


class JobRunner:
    """Runs every Job the operator creates (``auto``), or the Jobs it is told to (:meth:`start`, :meth:`finish`).

    ``step_seconds`` between two writes of one Job (a real cluster's controllers take milliseconds
    to a second each; 0 writes them all at once, which no cluster does), ``run_seconds`` the
    container's run, ``outcome(job)`` how each Job ends (default: exit 0). ``events``: post the
    Events a cluster posts (the operator does not read them; the API server stores them)."""

    def __init__(
        self,
        model: ApiServer,
        *,
        auto: bool = True,
        step_seconds: float = 0.02,
        run_seconds: float = 0.0,
        outcome: Callable[[str], Outcome] | None = None,
        events: bool = True,
    ) -> None:
        self.model = model
        self.auto = auto
        self.step = step_seconds
        self.run_seconds = run_seconds
        self.outcome = outcome or (lambda job: (True, 0, ""))
        self.events = events
        self.writes: collections.Counter[tuple[str, str, str]] = collections.Counter()
        self.stored_bytes = 0  # JSON of the objects these writes left: what each watcher of them receives
        self.completed: dict[str, float] = {}  # Job -> monotonic time its last status was written
        self._background = Background()
        self.errors = self._background.errors
        self._pods: dict[str, str] = {}  # Job -> its pod's name
        model.listeners.append(self._on_event)

    # -- what to run

    def _on_event(self, event: Event) -> None:
        if self.auto and event.resource == JOBS and event.type == "ADDED":
            name, namespace = str(event.object["metadata"]["name"]), str(event.object["metadata"]["namespace"])
            self._background.spawn(self._whole(name, namespace))

    async def _whole(self, job: str, namespace: str) -> None:
        with contextlib.suppress(NotFound):  # deleted under us (cancelled): its pods went with it
            await self.start(job, namespace)
            if self.run_seconds:
                await asyncio.sleep(self.run_seconds)
            await self.finish(job, namespace, *self.outcome(job))

    @property
    def started(self) -> int:
        """Jobs whose pod this runner created."""
        return len(self._pods)

    async def close(self) -> None:
        await self._background.close()

    # -- one Job

    async def start(self, job: str, namespace: str) -> None:
        """From a new Job to its pod running. :class:`NotFound` if the Job is deleted meanwhile."""
        obj = self.model.get(JOBS, namespace, job)
        pod = self._write(CONTROLLER, "create", PODS, lambda: self.model.create(PODS, namespace, real.pod_for(obj), manager=CONTROLLER).answer)  # fmt: skip
        name = self._pods[job] = str(pod["metadata"]["name"])
        self._event(obj, "SuccessfulCreate", f"Created pod: {name}", CONTROLLER)
        self._status(CONTROLLER, JOBS, namespace, job, real.job_started(self._now()))
        await self._pause()
        self._write(SCHEDULER, "create", Resource("", "v1", "pods/binding"), lambda: self.model.bind(namespace, name, real.NODE, self._now()).answer)  # fmt: skip
        self._event(pod, "Scheduled", f"Successfully assigned {namespace}/{name} to {real.NODE}", SCHEDULER)
        await self._pause()
        pod = self._status(KUBELET, PODS, namespace, name, real.pod_status(self.model.get(PODS, namespace, name), "creating", self._now()))  # fmt: skip
        for reason, message in (("Pulled", "Container image already present on machine"), ("Created", "Created container: main"), ("Started", "Started container main")):  # fmt: skip
            self._event(pod, reason, message, KUBELET)
        await self._pause()
        self._status(KUBELET, PODS, namespace, name, real.pod_status(pod, "running", self._now()))
        await self._pause()
        self._status(CONTROLLER, JOBS, namespace, job, real.job_ready(1))

    async def finish(
        self, job: str, namespace: str, succeeded: bool = True, exit_code: int = 0, message: str = ""
    ) -> None:
        """The pod ends (exit ``exit_code``), then the Job. :class:`NotFound` if deleted meanwhile."""
        name = self._pods[job]
        pod = self.model.get(PODS, namespace, name)
        code = 0 if succeeded else (exit_code or 1)
        pod = self._status(
            KUBELET, PODS, namespace, name, real.pod_status(pod, "terminated", self._now(), code, message)
        )
        await self._pause()
        self._status(CONTROLLER, JOBS, namespace, job, real.job_uncounted(str(pod["metadata"]["uid"]), succeeded))
        self._write(CONTROLLER, "patch", PODS, lambda: self.model.patch(PODS, namespace, name, {"metadata": {"finalizers": None}}, manager=CONTROLLER).answer)  # fmt: skip
        await self._pause()
        done = self._status(CONTROLLER, JOBS, namespace, job, real.job_finished(self._now(), succeeded))
        reason = "Completed" if succeeded else "BackoffLimitExceeded"
        self._event(done, reason, "Job completed" if succeeded else "Job has reached the specified backoff limit", CONTROLLER, "Normal" if succeeded else "Warning")  # fmt: skip
        self.completed[job] = time.monotonic()

    # -- writes

    def _status(self, component: str, resource: Resource, namespace: str, name: str, patch: Obj) -> Obj:
        return self._write(component, "patch", Resource(resource.group, resource.version, f"{resource.plural}/status"), lambda: self.model.patch(resource, namespace, name, patch, subresource="status", manager=component).answer)  # fmt: skip

    def _event(self, about: Obj, reason: str, message: str, component: str, type_: str = "Normal") -> None:
        if self.events:
            body = real.event(about, reason, message, component, self._now(), type_)
            self._write(component, "create", EVENTS, lambda: self.model.create(EVENTS, str(about["metadata"]["namespace"]), body, manager=component).answer)  # fmt: skip

    def _write(self, component: str, verb: str, resource: Resource, call: Callable[[], Obj]) -> Obj:
        answer = call()
        self.writes[component, verb, resource.plural] += 1
        self.stored_bytes += len(json.dumps(answer))
        return answer

    async def _pause(self) -> None:
        await asyncio.sleep(self.step)

    def _now(self) -> str:
        return stamp(self.model.now())
