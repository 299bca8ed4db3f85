"""TaskType: a kind of work (a Job template, a payload schema), and the defaults its tasks
inherit (queue, priority, :class:`RetryPolicy`, :class:`CallbackSpec`)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field

from asynctask_operator.core.models.base import API_VERSION, CONDITIONS_MAX, Condition, Model, ObjectMeta, cel, k8s
from asynctask_operator.core.models.concurrency import ConcurrencyDefault

PRIORITY_MIN = -1000  # of a task, and of a type's default for its tasks
PRIORITY_MAX = 1000

RetryableOutcome = Literal["Failed", "Timeout", "PodError"]
CallbackEvent = Literal["Succeeded", "Failed", "Cancelled", "Running", "Retrying"]


class RetryPolicy(Model):
    """How failed attempts are retried. Every field left out falls back to the
    TaskType's ``defaults.retry``, then to the built-in default shown here."""

    max_retries: int | None = Field(
        None,
        ge=0,
        le=100,
        description="Retries after the first attempt (attempts = maxRetries + 1). Default 3.",
    )
    backoff: Literal["Exponential", "Fixed"] | None = Field(
        None,
        description="Exponential: baseSeconds * 2^(n-1), capped at maxSeconds. Fixed: baseSeconds. "
        "Default Exponential.",
    )
    base_seconds: int | None = Field(None, ge=0, le=86400, description="Default 10.")
    max_seconds: int | None = Field(None, ge=0, le=604800, description="Cap on one delay; 0 means no cap. Default 600.")
    jitter: bool | None = Field(None, description="Spread each delay by +/-20%. Default true.")
    retry_on: list[RetryableOutcome] | None = Field(
        None,
        max_length=3,
        description="Attempt outcomes that are retried. Default [Failed, Timeout, PodError].",
        json_schema_extra=k8s(list_type="set"),
    )
    non_retryable_exit_codes: list[int] | None = Field(
        None,
        max_length=64,
        description="Exit codes that mean a permanent failure: the task fails at once.",
        json_schema_extra=k8s(list_type="set"),
    )


class SecretKeyRef(Model):
    """One key of a Secret in the task's namespace."""

    name: str = Field(min_length=1, max_length=253, pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    key: str = Field(min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$")


class SecretRef(Model):
    """A Secret in the task's namespace."""

    name: str = Field(min_length=1, max_length=253, pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


class CallbackSpec(Model):
    """A webhook the operator calls when the task reaches one of ``events`` (docs/design.md §3.4)."""

    url: str = Field(
        min_length=8,
        max_length=2048,
        pattern=r"^https?://[^\s/?#@]+([/?#]\S*)?$",
        description="http:// or https:// URL that receives a CloudEvents 1.0 JSON event (POST). Addresses that "
        "are loopback, link-local, private or unspecified are refused unless the operator allows them.",
    )
    events: list[CallbackEvent] | None = Field(
        None,
        min_length=1,
        max_length=5,
        description="Phases that trigger a call. Default [Succeeded, Failed, Cancelled].",
        json_schema_extra=k8s(list_type="set"),
    )
    secret_ref: SecretKeyRef | None = Field(
        None,
        description="Secret key holding the Standard Webhooks signing secret (whsec_<base64>, or any bytes "
        "used as the raw key). Unset: the calls are not signed.",
    )
    headers_secret_ref: SecretRef | None = Field(
        None,
        description="Secret whose every key is sent as an HTTP header of that name (e.g. an API key).",
    )
    max_attempts: int | None = Field(
        None, ge=1, le=20, description="Deliveries tried before giving up. Default: the operator's (6)."
    )
    timeout_seconds: int | None = Field(
        None, ge=1, le=60, description="Per-request timeout. Default: the operator's (10)."
    )


TTL_MAX = 31536000  # a year, the bound of every TTL field


class TtlStrategy(Model):
    """How long a finished task is kept, by how it ended (Argo Workflows' names). A value set here
    wins over ``ttlSecondsAfterFinished`` for that outcome; one left out falls back to it."""

    model_config = ConfigDict(
        json_schema_extra=k8s(
            validations=[
                cel(
                    "has(self.secondsAfterSuccess) || has(self.secondsAfterFailure) || has(self.secondsAfterCancelled)",
                    "ttlStrategy sets none of secondsAfterSuccess, secondsAfterFailure, secondsAfterCancelled: "
                    "set one, or leave ttlStrategy out",
                    plain={"minProperties": 1},
                )
            ]
        ),
    )

    seconds_after_success: int | None = Field(
        None, ge=0, le=TTL_MAX, description="Delete a Succeeded task this long after it finished."
    )
    seconds_after_failure: int | None = Field(
        None, ge=0, le=TTL_MAX, description="Delete a Failed task (DeadlineExceeded too) this long after it finished."
    )
    seconds_after_cancelled: int | None = Field(
        None, ge=0, le=TTL_MAX, description="Delete a Cancelled task this long after it finished."
    )

    def for_phase(self, phase: str) -> int | None:
        """The value for a task that ended in ``phase``; ``None`` when this strategy does not say."""
        return {
            "Succeeded": self.seconds_after_success,
            "Failed": self.seconds_after_failure,
            "Cancelled": self.seconds_after_cancelled,
        }.get(phase)


class TaskDefaults(Model):
    """Values an AsyncTask of this type gets where it leaves a field out."""

    queue: str | None = Field(None, min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    priority: int | None = Field(None, ge=PRIORITY_MIN, le=PRIORITY_MAX)
    timeout_seconds: int | None = Field(None, ge=1, le=31536000)
    deadline_seconds: int | None = Field(None, ge=1, le=31536000)
    retry: RetryPolicy | None = None
    ttl_seconds_after_finished: int | None = Field(None, ge=0, le=TTL_MAX)
    ttl_strategy: TtlStrategy | None = Field(
        None, description="Per-outcome TTLs of this type's tasks, where a task sets neither TTL field."
    )
    callback: CallbackSpec | None = None
    concurrency: ConcurrencyDefault | None = Field(
        None,
        description="A concurrency key for each task that sets no spec.concurrency, taken from its payload, "
        "a label or a constant (e.g. one transcode per videoId at a time).",
    )


# Only the skeleton of a JobTemplateSpec is declared, so that the schema can require
# a pod template with containers; the rest is kept as written (the API server
# validates it for real when the operator creates the Job).
JOB_TEMPLATE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "A batch/v1 JobTemplateSpec. Its pod template is required; restartPolicy must be Never "
    "(the operator owns retries); backoffLimit is forced to 0.",
    "required": ["spec"],
    "properties": {
        "metadata": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        "spec": {
            "type": "object",
            "required": ["template"],
            "x-kubernetes-preserve-unknown-fields": True,
            "properties": {
                "template": {
                    "type": "object",
                    "required": ["spec"],
                    "x-kubernetes-preserve-unknown-fields": True,
                    "properties": {
                        "metadata": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                        "spec": {
                            "type": "object",
                            "required": ["containers"],
                            "x-kubernetes-preserve-unknown-fields": True,
                            "properties": {
                                "restartPolicy": {
                                    "type": "string",
                                    "maxLength": 16,  # Always, OnFailure, Never: bounds the rule's cost
                                    "x-kubernetes-validations": [
                                        cel(
                                            "self == 'Never'",
                                            "jobTemplate.spec.template.spec.restartPolicy must be Never "
                                            "(or left out): the operator retries failed attempts itself",
                                        )
                                    ],
                                },
                                "containers": {
                                    "type": "array",
                                    "minItems": 1,
                                    "items": {
                                        "type": "object",
                                        "required": ["name"],
                                        "x-kubernetes-preserve-unknown-fields": True,
                                        "properties": {
                                            "name": {"type": "string"},
                                            "image": {"type": "string"},
                                        },
                                    },
                                },
                            },
                        },
                    },
                },
            },
        },
    },
}

PAYLOAD_SCHEMA_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Optional JSON Schema (draft 2020-12) every payload of this type must satisfy.",
    "x-kubernetes-preserve-unknown-fields": True,
}


class TaskTypeSpec(Model):
    job_template: dict[str, Any] = Field(json_schema_extra={"x-asynctask-schema": JOB_TEMPLATE_SCHEMA})
    payload_schema: dict[str, Any] | None = Field(None, json_schema_extra={"x-asynctask-schema": PAYLOAD_SCHEMA_SCHEMA})
    defaults: TaskDefaults | None = None


class TaskTypeStatus(Model):
    observed_generation: int | None = None
    conditions: list[Condition] | None = Field(None, max_length=CONDITIONS_MAX)


class TaskType(Model):
    api_version: str = API_VERSION
    kind: Literal["TaskType"] = "TaskType"
    metadata: ObjectMeta
    spec: TaskTypeSpec
    status: TaskTypeStatus | None = None
