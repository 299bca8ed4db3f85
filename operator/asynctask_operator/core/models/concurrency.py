"""Concurrency keys and fair admission: a task's key (``spec.concurrency``), how a TaskType derives
one (``defaults.concurrency.keyFrom``), a queue's fairness (``spec.fairness``), and what the status
says about them (``status.waitingForKey``, ``status.fairness``, a queue's ``busiestKeys``).

The schema refuses what it can with a message that names the field (a key's length and
characters, a limit under 1, a policy misspelt, a ``keyFrom`` that names no source or two);
what only the payload or the labels can tell is a terminal reason (core/concurrency.py).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field

from asynctask_operator.core.models.base import Model, cel, k8s

KEY_MAX = 128
KEY_RULE = r"^[A-Za-z0-9]([-A-Za-z0-9_.:/]*[A-Za-z0-9])?$"
KEY_WORDS = "letters, digits and - _ . : / (starting and ending with a letter or digit)"
LIMIT_MAX = 10000
HOLDERS_SHOWN = 10  # holders named in a waiting task's status
BUSIEST_SHOWN = 5  # keys listed in a queue's status

Policy = Literal["Queue", "CancelInProgress", "CancelNewest"]
FairBy = Literal["Key", "Label"]

# A label key as Kubernetes has them: an optional DNS-subdomain prefix and a name of 63 at most.
LABEL_KEY_RULE = r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
POINTER_RULE = r"^(/([^/~]|~[01])*)+$"  # RFC 6901, not the whole document


def _key_field(where: str, description: str, default: Any = ...) -> Any:
    """A key's field: its bounds in the schema, its characters checked by CEL (a message, not a regex)."""
    return Field(
        default,
        min_length=1,
        max_length=KEY_MAX,
        description=description,
        json_schema_extra=k8s(
            validations=[
                cel(
                    f"self.matches('{KEY_RULE}')",
                    f"{where} must be {KEY_WORDS}",
                    reason="FieldValueInvalid",
                    plain={"pattern": KEY_RULE},
                )
            ]
        ),
    )


class ConcurrencySpec(Model):
    """At most ``limit`` tasks of the namespace hold ``key`` at once: a mutex (1) or a semaphore."""

    key: str = _key_field(
        "spec.concurrency.key",
        f"The key, scoped to the namespace: 1 to {KEY_MAX} {KEY_WORDS}. Tasks of any type and queue that "
        "name the same key share it.",
    )
    limit: int | None = Field(
        None,
        ge=1,
        le=LIMIT_MAX,
        description="Most tasks holding the key at once. Default 1 (a mutex). Each task's own limit applies "
        "to it: it starts only while fewer than its limit hold the key.",
    )
    policy: Policy | None = Field(
        None,
        description="When the key is busy: Queue (default) waits Pending/WaitingForKey; CancelInProgress "
        "cancels every older task holding or waiting for the key (reason Superseded) and waits for them to "
        "stop; CancelNewest ends this task Cancelled/KeyBusy and the holders run on.",
    )


class KeyFrom(Model):
    """Where a TaskType's tasks take their key from: exactly one of ``payload``, ``label``, ``value``."""

    model_config = ConfigDict(
        json_schema_extra=k8s(
            validations=[
                cel(
                    "[has(self.payload), has(self.label), has(self.value)].filter(x, x).size() == 1",
                    "defaults.concurrency.keyFrom must set exactly one of payload (a JSON pointer), label "
                    "(a label name) or value (a constant key)",
                )
            ]
        ),
    )

    payload: str | None = Field(
        None,
        max_length=256,
        pattern=POINTER_RULE,
        description="A JSON pointer into the payload (RFC 6901), e.g. /videoId. The value there must be a "
        "string or an integer; absent, or an object or list, ends the task Failed/InvalidConcurrencyKey.",
    )
    label: str | None = Field(
        None,
        max_length=316,
        pattern=LABEL_KEY_RULE,
        description="A label of the task, e.g. tenant. A task without it ends Failed/InvalidConcurrencyKey.",
    )
    value: str | None = _key_field(
        "defaults.concurrency.keyFrom.value", "A constant key: every task of the type shares it.", None
    )


class ConcurrencyDefault(Model):
    """The key a TaskType's tasks get when they set no ``spec.concurrency``."""

    key_from: KeyFrom = Field(description="Where each task's key comes from.")
    limit: int | None = Field(None, ge=1, le=LIMIT_MAX, description="As spec.concurrency.limit. Default 1.")
    policy: Policy | None = Field(None, description="As spec.concurrency.policy. Default Queue.")


class Fairness(Model):
    """Round-robin admission across groups of a queue's waiting tasks, within each priority."""

    model_config = ConfigDict(
        json_schema_extra=k8s(
            validations=[
                cel(
                    "!has(self.by) || (self.by == 'Label') == has(self.label)",
                    "fairness.label is required with by: Label, and only then",
                    fieldPath=".label",
                )
            ]
        ),
    )

    by: FairBy = Field(
        description="Key: one group per concurrency key (tasks without a key form one group); Label: one "
        "group per value of the label named in `label` (tasks without it form one group)."
    )
    label: str | None = Field(None, max_length=316, pattern=LABEL_KEY_RULE, description="The label, with by: Label.")


class KeyWait(Model):
    """What a task waits for: its key, and the tasks that held it when the wait began."""

    key: str
    limit: int
    holders: list[str] = Field(default_factory=list, max_length=HOLDERS_SHOWN)


class FairTurn(Model):
    """The task's group in its queue's round robin, and the turn it was admitted at."""

    group: str
    turn: int | None = Field(
        None, description="Set at admission; the next turn of the queue is one more than its highest."
    )


class BusyKey(Model):
    """A key of the queue's tasks: how many of them hold it, how many wait for it."""

    key: str
    holding: int
    waiting: int
