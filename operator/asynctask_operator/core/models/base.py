"""What every kind shares: the API group, the wire conventions (:class:`Model`), the schema
extras only the API server reads (:func:`k8s`, :func:`cel`), and the metav1 parts the operator
reads (:class:`ObjectMeta`, :class:`Condition`)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

GROUP = "asynctask.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"


def k8s(**extra: Any) -> dict[str, Any]:
    """Schema extras for a field: ``Field(json_schema_extra=k8s(validations=[...]))``.

    ``validations`` becomes ``x-kubernetes-validations``; every other keyword is
    written as ``x-kubernetes-<kebab-case>`` (``preserve_unknown_fields=True``).
    """
    out: dict[str, Any] = {}
    for key, value in extra.items():
        out["x-kubernetes-" + key.replace("_", "-")] = value
    return out


PLAIN = "x-asynctask-plain"


def cel(rule: str, message: str, *, plain: dict[str, Any] | None = None, **more: str) -> dict[str, Any]:
    """A CEL rule and its message. ``plain``: the same check in plain OpenAPI (``{"minProperties": 1}``),
    put in its place where a rule's message is not worth its cost: in a status, which only the
    operator writes (core/crds.py)."""
    return {"rule": rule, "message": message, **more, **({PLAIN: plain} if plain else {})}


class Model(BaseModel):
    """Base: camelCase on the wire, snake_case in Python, tolerant of unknown fields."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore",
        frozen=True,
    )

    def dump(self) -> dict[str, Any]:
        """The wire form: camelCase keys, unset optional fields left out."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class ObjectMeta(Model):
    """The parts of metav1.ObjectMeta the operator reads."""

    name: str
    namespace: str = "default"
    uid: str = ""
    generation: int = 0
    resource_version: str = ""
    creation_timestamp: str | None = None
    deletion_timestamp: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


CONDITIONS_MAX = 16
"""Conditions of one object: one per type, and no kind has more than eight types. A bound on the list
keeps the API server's cost estimate of any rule over it low (unbounded, it assumes the largest list
a request can carry)."""


class Condition(Model):
    """A metav1.Condition."""

    type: str
    status: Literal["True", "False", "Unknown"]
    reason: str
    message: str = ""
    last_transition_time: str
    observed_generation: int | None = None
