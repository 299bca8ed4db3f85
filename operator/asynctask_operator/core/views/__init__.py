"""How a person sees a task, a queue and a schedule: the one reading every front door shows
(:mod:`~asynctask_operator.core.views.tasks`, :mod:`~asynctask_operator.core.views.queues`,
:mod:`~asynctask_operator.core.views.schedules`)."""

from asynctask_operator.core.views.queues import BusyKeyView, QueueView, queue_views
from asynctask_operator.core.views.schedules import ScheduleView
from asynctask_operator.core.views.tasks import KeyWaitView, TaskView, reported_percent

__all__ = ["BusyKeyView", "KeyWaitView", "QueueView", "ScheduleView", "TaskView", "queue_views", "reported_percent"]
