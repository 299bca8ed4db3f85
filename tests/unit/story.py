"""Walk one task through :func:`decide`, applying each decision's status as the operator would.

    s = Story(task("t").retry(max_retries=1).build())
    s.step(5)                            # admitted: creates Job t-1, status Running
    s.step(30, **attempt_failed("t", 1))  # Job t-1 failed with exit code 1: Retrying

``step`` observes at ``at(seconds)``. ``story.jobs`` is the cluster's Jobs of this task:
a Job the story creates appears there (active), and a Job passed to a step replaces
what was there for its attempt, so the world persists between steps.
"""

from __future__ import annotations

from typing import Any

from asynctask_operator.core.config import CoreConfig
from asynctask_operator.core.lifecycle import Decision, decide
from asynctask_operator.core.models import AsyncTask, AsyncTaskStatus, TaskType
from asynctask_operator.core.observed import JobView, PodView, job_view
from tests.unit.builders import at, job, observe, pod, tasktype, terminated, with_status

CONFIG = CoreConfig(unknown_type_grace_seconds=10, default_ttl_seconds=7 * 24 * 3600)
ECHO = tasktype("echo").build()


def attempt_succeeded(name: str, attempt: int) -> dict[str, Any]:
    job_name = f"{name}-{attempt}"
    return {
        "jobs": (job(name, attempt).complete().view(),),
        "pods": (pod(job_name).phase("Succeeded").container("main", terminated(0)).view(),),
    }


def attempt_failed(name: str, attempt: int, exit_code: int = 1) -> dict[str, Any]:
    job_name = f"{name}-{attempt}"
    return {
        "jobs": (job(name, attempt).failed().view(),),
        "pods": (pod(job_name).phase("Failed").container("main", terminated(exit_code)).view(),),
    }


def attempt_running(name: str, attempt: int) -> dict[str, Any]:
    return {"jobs": (job(name, attempt).view(),), "pods": ()}


class Story:
    def __init__(self, obj: AsyncTask, tasktype: TaskType | None = ECHO, config: CoreConfig = CONFIG) -> None:
        self.task = obj
        self.tasktype = tasktype
        self.config = config
        self.jobs: dict[int, JobView] = {}  # the task's Jobs in the cluster, by attempt

    def decide(
        self,
        seconds: float,
        *,
        jobs: tuple[JobView, ...] | None = None,
        pods: tuple[PodView, ...] = (),
        **more: Any,
    ) -> Decision:
        """The decision at ``at(seconds)``, without applying it."""
        present = {**self.jobs, **{j.attempt: j for j in jobs or () if j.attempt is not None}}
        obs = observe(
            self.task, now=at(seconds), tasktype=self.tasktype, jobs=tuple(present.values()), pods=pods, **more
        )
        return decide(obs, self.config)

    def step(self, seconds: float, **observed: Any) -> Decision:
        """Decide at ``at(seconds)`` and apply the decision's status and Job creation."""
        decision = self.decide(seconds, **observed)
        self.task = with_status(self.task, decision.status)
        for seen in observed.get("jobs") or ():
            self.jobs[seen.attempt] = seen
        if decision.create_job is not None:
            view = job_view(decision.create_job)
            self.jobs[view.attempt or 0] = view
        return decision

    @property
    def status(self) -> AsyncTaskStatus:
        return self.task.status
