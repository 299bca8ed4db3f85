"""Pydantic models of the CRDs: the single source of truth for the API.

The CRD YAML in ``crds/`` is generated from these models (``core/crds.py``), so a
field, bound, default or validation rule is written once, here. Extra schema that
only the API server understands (CEL rules, ``x-kubernetes-*`` markers) is attached
with :func:`k8s` and ends up verbatim in the generated schema.

The models parse objects *read from* the API server leniently (unknown fields are
ignored, so an older operator survives a newer CRD), while the CRD schema is what
refuses bad input at admission.

One module per kind (:mod:`.tasktype`, :mod:`.asynctask`, :mod:`.taskqueue`,
:mod:`.scheduledtask`) over :mod:`.base`, what they share. Import from here: every name
is re-exported, so a model can move between the modules without its importers changing.
"""

from __future__ import annotations

from asynctask_operator.core.models.asynctask import (
    IDLE_PHASES,
    TERMINAL_PHASES,
    AsyncTask,
    AsyncTaskSpec,
    AsyncTaskStatus,
    Attempt,
    CallbackState,
    CallbackStatus,
    EffectiveSpec,
    Outcome,
    Phase,
    Progress,
    RetryRound,
    TaskError,
)
from asynctask_operator.core.models.base import (
    API_VERSION,
    CONDITIONS_MAX,
    GROUP,
    PLAIN,
    VERSION,
    Condition,
    Model,
    ObjectMeta,
    cel,
    k8s,
)
from asynctask_operator.core.models.concurrency import (
    BusyKey,
    ConcurrencyDefault,
    ConcurrencySpec,
    Fairness,
    FairTurn,
    KeyFrom,
    KeyWait,
    Policy,
)
from asynctask_operator.core.models.scheduledtask import (
    CRON_MACROS,
    SCHEDULE_RULE,
    TIME_ZONE_PATTERN,
    ConcurrencyPolicy,
    ScheduleCounts,
    ScheduledTask,
    ScheduledTaskSpec,
    ScheduledTaskStatus,
    TaskTemplate,
    TaskTemplateMeta,
)
from asynctask_operator.core.models.taskqueue import (
    TaskQueue,
    TaskQueueSpec,
    TaskQueueStatus,
)
from asynctask_operator.core.models.tasktype import (
    JOB_TEMPLATE_SCHEMA,
    PAYLOAD_SCHEMA_SCHEMA,
    PRIORITY_MAX,
    PRIORITY_MIN,
    CallbackEvent,
    CallbackSpec,
    RetryableOutcome,
    RetryPolicy,
    SecretKeyRef,
    SecretRef,
    TaskDefaults,
    TaskType,
    TaskTypeSpec,
    TaskTypeStatus,
    TtlStrategy,
)

__all__ = [
    "API_VERSION",
    "CONDITIONS_MAX",
    "CRON_MACROS",
    "GROUP",
    "IDLE_PHASES",
    "JOB_TEMPLATE_SCHEMA",
    "PAYLOAD_SCHEMA_SCHEMA",
    "PLAIN",
    "PRIORITY_MAX",
    "PRIORITY_MIN",
    "SCHEDULE_RULE",
    "TERMINAL_PHASES",
    "TIME_ZONE_PATTERN",
    "VERSION",
    "AsyncTask",
    "AsyncTaskSpec",
    "AsyncTaskStatus",
    "Attempt",
    "BusyKey",
    "CallbackEvent",
    "CallbackSpec",
    "CallbackState",
    "CallbackStatus",
    "ConcurrencyDefault",
    "ConcurrencyPolicy",
    "ConcurrencySpec",
    "Condition",
    "EffectiveSpec",
    "FairTurn",
    "Fairness",
    "KeyFrom",
    "KeyWait",
    "Model",
    "ObjectMeta",
    "Outcome",
    "Phase",
    "Policy",
    "Progress",
    "RetryPolicy",
    "RetryRound",
    "RetryableOutcome",
    "ScheduleCounts",
    "ScheduledTask",
    "ScheduledTaskSpec",
    "ScheduledTaskStatus",
    "SecretKeyRef",
    "SecretRef",
    "TaskDefaults",
    "TaskError",
    "TaskQueue",
    "TaskQueueSpec",
    "TaskQueueStatus",
    "TaskTemplate",
    "TaskTemplateMeta",
    "TaskType",
    "TaskTypeSpec",
    "TaskTypeStatus",
    "TtlStrategy",
    "cel",
    "k8s",
]
