"""Fuzzing with hypothesis: the CRD schemas and the pure core, with valid and broken input.

docs/design.md §2: a bad manifest is refused by the API server (the CRD schema, CEL rules
included); whatever it accepts reaches the operator, and then a task either runs or ends
``Failed`` with a reason that says why: never an exception, never a silent hang. So every
generated spec (valid or broken: wrong types, out-of-bound numbers, missing required
fields, odd and large payloads, broken payload schemas, random retry policies) goes
through the generated CRD schema first (checked here with ``jsonschema``, and the CEL rules
with cel-python); what the schema admits must parse, and :func:`decide` must answer it
with a valid Job or a known reason. Job and pod observations, status dicts and the small
pure functions (retry delay, names, label values, attempt outcomes) are fuzzed too.

Examples are derandomized (the ``ci`` profile in tests/conftest.py), so CI sees the same
ones every run; ``HYPOTHESIS_PROFILE=explore`` searches further with fresh randomness.
"""

from __future__ import annotations

import copy
import datetime as dt
import functools
import json
import re
from collections.abc import Sequence
from typing import Any

import celpy
import jsonschema
from hypothesis import assume, event, given
from hypothesis import strategies as st

from asynctask_operator.core.config import CoreConfig
from asynctask_operator.core.crds import all_crds
from asynctask_operator.core.jobs import ENV_PREFIX
from asynctask_operator.core.lifecycle import Admission, Decision, Observed, decide
from asynctask_operator.core.models import AsyncTask, RetryPolicy, TaskType
from asynctask_operator.core.naming import (
    LABEL_ATTEMPT,
    LABEL_TASK,
    LABEL_TASK_UID,
    LABEL_TYPE,
    MAX_JOB_NAME,
    job_name,
    label_value,
)
from asynctask_operator.core.observed import JobView, PodView, job_view, pod_view
from asynctask_operator.core.outcomes import attempt_result
from asynctask_operator.core.retry import JITTER, next_retry_delay
from tests.unit.builders import observe

# --------------------------------------------------------------------------- the API server's side


def _json_schema(node: Any) -> Any:
    """A structural OpenAPI schema as JSON Schema: ``x-kubernetes-*`` dropped (a node with
    ``x-kubernetes-preserve-unknown-fields`` and no type accepts anything, as in JSON Schema),
    ``x-kubernetes-list-type: set`` as ``uniqueItems``. Unknown fields of an object are
    pruned by the API server, not refused; JSON Schema accepts them, and the models ignore them."""
    if isinstance(node, list):
        return [_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "properties":
            out[key] = {name: _json_schema(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties"):
            out[key] = _json_schema(value)
        elif key == "x-kubernetes-list-type":
            if value == "set":
                out["uniqueItems"] = True
        elif not key.startswith("x-kubernetes-") and key != "description":
            out[key] = value
    return out


def _root(file: str) -> dict[str, Any]:
    root: dict[str, Any] = all_crds()[file]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return root


class Admission_:
    """What the API server does with a spec on create: the schema, then the CEL rules."""

    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema = schema
        self.validator = jsonschema.Draft202012Validator(_json_schema(schema))

    def admits(self, value: Any) -> bool:
        return self.validator.is_valid(value) and not list(_cel_violations(self.schema, value))


@functools.cache
def _cel_program(rule: str) -> Any:
    env = celpy.Environment()
    return env.program(env.compile(rule))


def _cel_violations(schema: dict[str, Any], value: Any, path: str = "") -> Any:
    for rule in schema.get("x-kubernetes-validations", ()):
        if "oldSelf" in rule["rule"]:  # transition rules apply to updates only
            continue
        if not _cel_program(rule["rule"]).evaluate({"self": celpy.json_to_cel(value)}):
            yield f"{path}: {rule['message']}"
    if isinstance(value, dict):
        for name, sub in (schema.get("properties") or {}).items():
            if name in value:
                yield from _cel_violations(sub, value[name], f"{path}.{name}")
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            yield from _cel_violations(schema["items"], item, f"{path}[{i}]")


TASK_SPEC = Admission_(_root("asynctask.dev_asynctasks.yaml")["properties"]["spec"])
TASK_STATUS = Admission_(_root("asynctask.dev_asynctasks.yaml")["properties"]["status"])
TYPE_SPEC = Admission_(_root("asynctask.dev_tasktypes.yaml")["properties"]["spec"])

GRANTED = Admission()
CONFIG = CoreConfig(unknown_type_grace_seconds=10, payload_limit_bytes=64 * 1024)
CREATED = dt.datetime(2025, 3, 1, 12, 0, 0, tzinfo=dt.UTC)
FAILED_REASONS = {
    "PodFailed",
    "PodError",
    "Timeout",
    "DeadlineExceeded",
    "RetriesExhausted",
    "NonRetryableExitCode",
    "UnknownTaskType",
    "InvalidPayload",
    "PayloadTooLarge",
    "InvalidTaskType",
    "JobDeleted",
}
REASONS_BEFORE_A_JOB = FAILED_REASONS - {"PodFailed", "PodError", "Timeout", "RetriesExhausted", "JobDeleted"}
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
OUR_ENV = {"ASYNCTASK_NAME", "ASYNCTASK_NAMESPACE", "ASYNCTASK_UID", "ASYNCTASK_TYPE", "ASYNCTASK_ATTEMPT"}

# --------------------------------------------------------------------------- strategies
#
# Specs are drawn valid first (every field in its bounds), then half of them are broken by
# a mutation: one field, anywhere in the tree, deleted or replaced by a value of another
# type or out of its bounds. So both sides of the schema are reached, and a broken spec
# differs from an admitted one in one place, as a user's mistake does.

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10,
)
SMALL_JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=5,
)


def nested(depth: int, leaf: Any) -> Any:
    for i in range(depth):
        leaf = [leaf] if i % 2 else {"k": leaf}
    return leaf


PAYLOADS = st.one_of(
    JSON,
    st.builds(
        lambda n, c: {"blob": c * n}, st.integers(21_000, 70_000), st.sampled_from(["x", "é", "€", "\U0001f600"])
    ),
    st.builds(nested, st.integers(1, 60), SCALARS),
    st.sampled_from(
        ["", "\u0000", "\u2028", {"": None}, {"\u0000": "\ud7ff"}, [[], {}], 1e308, -0.0, 2**63, -(2**63) - 1]
    ),
)
DNS_NAME = st.from_regex(r"\A[a-z0-9]([-a-z0-9]{0,40}[a-z0-9])?\Z")
SUBDOMAIN = st.one_of(
    DNS_NAME,
    st.from_regex(r"\A[a-z0-9]([-a-z0-9.]{0,250}[a-z0-9])?\Z"),
    st.builds(lambda n: "a" * n, st.integers(60, 253)),
)
WRONG = st.sampled_from(
    [
        None,
        True,
        False,
        -1,
        0,
        1001,
        -1001,
        2**31,
        2**64,
        1.5,
        "",
        "x",
        "10",
        "Always",
        "A_B",
        "-a",
        [],
        [1],
        {},
        {"a": 1},
    ]
)
OUTCOMES = ["Failed", "Timeout", "PodError"]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Any:
    if isinstance(value, dict):
        for key, sub in value.items():
            yield (*prefix, key)
            yield from _paths(sub, (*prefix, key))
    elif isinstance(value, list):
        for i, sub in enumerate(value):
            yield (*prefix, i)
            yield from _paths(sub, (*prefix, i))


def _mutated(value: Any, path: tuple[Any, ...], delete: bool, wrong: Any) -> Any:
    value = copy.deepcopy(value)
    parent = value
    for step in path[:-1]:
        parent = parent[step]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = wrong
    return value


def _mutations(value: Any) -> st.SearchStrategy[Any]:
    paths = list(_paths(value))
    if not paths:
        return st.builds(lambda wrong: wrong, WRONG)  # the whole thing of the wrong type
    return st.builds(functools.partial(_mutated, value), st.sampled_from(paths), st.booleans(), WRONG)


def broken_sometimes(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Half valid, half with one mutation somewhere in the tree."""
    return st.one_of(valid, valid.flatmap(_mutations))


RETRY_OK = st.fixed_dictionaries(
    {},
    optional={
        "maxRetries": st.integers(0, 100),
        "backoff": st.sampled_from(["Exponential", "Fixed"]),
        "baseSeconds": st.integers(0, 86400),
        "maxSeconds": st.integers(0, 604800),
        "jitter": st.booleans(),
        "retryOn": st.lists(st.sampled_from(OUTCOMES), max_size=3, unique=True),
        "nonRetryableExitCodes": st.lists(st.integers(-5, 300), max_size=4, unique=True),
    },
)
TASK_FIELDS = {
    "queue": DNS_NAME,
    "priority": st.integers(-1000, 1000),
    "timeoutSeconds": st.integers(1, 31536000),
    "deadlineSeconds": st.integers(1, 31536000),
    "retry": RETRY_OK,
    "ttlSecondsAfterFinished": st.integers(0, 31536000),
    "cancel": st.booleans(),
}
TASK_SPECS_OK = st.fixed_dictionaries(
    {"type": st.one_of(st.just("echo"), st.just("echo"), SUBDOMAIN)}, optional={"payload": PAYLOADS, **TASK_FIELDS}
)
TASK_SPECS = broken_sometimes(TASK_SPECS_OK)
# For decide(): admitted by construction, small, so that its examples go to statuses and Jobs.
SMALL_TASK_SPECS = st.fixed_dictionaries({"type": st.just("echo")}, optional={"payload": SMALL_JSON, **TASK_FIELDS})

LABEL_KEYS = st.from_regex(r"\A([a-z0-9]([-a-z0-9.]{0,10}[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,20}[A-Za-z0-9])?\Z")
LABEL_VALUES = st.from_regex(r"\A(([A-Za-z0-9][-A-Za-z0-9_.]{0,40})?[A-Za-z0-9])?\Z")
LABELS = st.dictionaries(LABEL_KEYS, LABEL_VALUES, max_size=2)
ENV = st.lists(
    st.fixed_dictionaries(
        {"name": st.sampled_from(["ASYNCTASK_PAYLOAD", "ASYNCTASK_NAME", "HOME", "LOG_LEVEL"])},
        optional={"value": st.text(max_size=8)},
    ),
    max_size=2,
)
CONTAINER = st.fixed_dictionaries(
    {"name": DNS_NAME}, optional={"image": st.just("busybox"), "env": ENV, "command": st.lists(st.text(max_size=5))}
)
JOB_TEMPLATES_OK = st.fixed_dictionaries(
    {
        "spec": st.fixed_dictionaries(
            {
                "template": st.fixed_dictionaries(
                    {
                        "spec": st.fixed_dictionaries(
                            {"containers": st.lists(CONTAINER, min_size=1, max_size=2)},
                            optional={
                                "restartPolicy": st.just("Never"),
                                "initContainers": st.lists(CONTAINER, max_size=1),
                            },
                        )
                    },
                    optional={"metadata": st.fixed_dictionaries({}, optional={"labels": LABELS})},
                )
            },
            optional={
                "backoffLimit": st.integers(0, 6),
                "activeDeadlineSeconds": st.integers(1, 100),
                "ttlSecondsAfterFinished": st.integers(0, 100),
                "selector": st.just({"matchLabels": {"a": "b"}}),
            },
        )
    },
    optional={"metadata": st.fixed_dictionaries({}, optional={"labels": LABELS, "annotations": LABELS})},
)
SCHEMA_KEYWORDS = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["object", "string", "integer", "array", "null", "number", "nonsense"]),
        "required": st.lists(st.text(max_size=4), max_size=2) | WRONG,
        "properties": st.dictionaries(st.text(max_size=4), st.just({"type": "string"}), max_size=2),
        "minimum": st.integers(-5, 5) | WRONG,
        "maxLength": st.integers(0, 5) | WRONG,
        "pattern": st.sampled_from(["^s3://", "[a-z]+", "(", "\\", "x{2,1}"]),
        "enum": st.lists(SCALARS, min_size=1, max_size=3) | WRONG,
        "items": st.just({"type": "integer"}) | WRONG,
        "additionalProperties": st.booleans() | WRONG,
        "format": st.sampled_from(["email", "date-time", "nonsense"]),
        "$ref": st.sampled_from(["#", "#/$defs/a", "#/$defs/missing", "http://example.com/s.json", "urn:x"]),
        "$schema": st.sampled_from(
            [
                "https://json-schema.org/draft/2020-12/schema",
                "http://json-schema.org/draft-07/schema#",
                "http://json-schema.org/draft-04/schema#",
                "https://example.com/unknown",
            ]
        )
        | WRONG,
        "$defs": st.just({"a": {"type": "string"}}),
    },
)
PAYLOAD_SCHEMAS = st.one_of(
    SCHEMA_KEYWORDS,
    st.just({"type": "object", "required": ["input"], "properties": {"input": {"type": "string"}}}),
    st.just({"$anchor": "x", "$ref": "#x"}),
    st.just({"properties": {"a": {"$ref": "#/$defs/a"}}, "$defs": {"a": {"type": "integer"}}}),
)
DEFAULTS_OK = st.fixed_dictionaries({}, optional={k: v for k, v in TASK_FIELDS.items() if k != "cancel"})
TYPE_SPECS_OK = st.fixed_dictionaries(
    {"jobTemplate": JOB_TEMPLATES_OK}, optional={"payloadSchema": PAYLOAD_SCHEMAS, "defaults": DEFAULTS_OK}
)
TYPE_SPECS = broken_sometimes(TYPE_SPECS_OK)


# -- observations: Jobs and pods as the API server returns them (typed as batch/v1 and v1 say)

TIMES = st.one_of(
    st.datetimes(dt.datetime(2000, 1, 1), dt.datetime(2100, 1, 1)).map(
        lambda d: d.replace(tzinfo=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    ),
    st.sampled_from(["2025-03-01T12:00:00Z", "2025-03-01T12:00:00.123456+02:00", "9999-12-31T23:59:59Z"]),
)
REASON_WORDS = st.one_of(st.text(max_size=12), st.sampled_from(["DeadlineExceeded", "BackoffLimitExceeded", "Evicted"]))


def raw_job(task_name: str, task_uid: str) -> st.SearchStrategy[dict[str, Any]]:
    condition = st.fixed_dictionaries(
        {
            "type": st.one_of(
                st.sampled_from(["Complete", "Failed", "Suspended", "FailureTarget"]), st.text(max_size=8)
            ),
            "status": st.sampled_from(["True", "False", "Unknown"]),
        },
        optional={"reason": REASON_WORDS, "message": st.text(max_size=20)},
    )
    return st.builds(
        lambda attempt, own, conditions, start, done, deleting, other: {
            "metadata": {
                "name": f"{task_name}-{attempt}",
                "namespace": "media",
                "uid": f"job-{attempt}",
                "labels": {LABEL_ATTEMPT: attempt, LABEL_TASK_UID: task_uid if own else other},
                "ownerReferences": [{"kind": "AsyncTask", "name": task_name, "uid": task_uid, "controller": True}]
                if own
                else [],
                **({"deletionTimestamp": "2025-03-01T12:01:00Z"} if deleting else {}),
            },
            "status": {
                "conditions": conditions,
                **({"startTime": start} if start else {}),
                **({"completionTime": done} if done else {}),
            },
        },
        st.one_of(st.integers(0, 12).map(str), LABEL_VALUES),
        st.booleans(),
        st.lists(condition, max_size=3),
        st.none() | TIMES,
        st.none() | TIMES,
        st.booleans(),
        st.text(max_size=6),
    )


STATES = st.one_of(
    st.fixed_dictionaries(
        {
            "terminated": st.fixed_dictionaries(
                {"exitCode": st.integers(-(2**31), 2**31 - 1)},
                optional={"reason": REASON_WORDS | st.just("OOMKilled"), "message": st.text(max_size=30)},
            )
        }
    ),
    st.fixed_dictionaries(
        {
            "waiting": st.fixed_dictionaries(
                {},
                optional={
                    "reason": st.sampled_from(
                        ["ImagePullBackOff", "ErrImagePull", "CrashLoopBackOff", "InvalidImageName"]
                    )
                    | st.text(max_size=6),
                    "message": st.text(max_size=10),
                },
            )
        }
    ),
    st.just({"running": {"startedAt": "2025-03-01T12:00:05Z"}}),
    st.just({}),
)
CONTAINER_STATUSES = st.lists(
    st.fixed_dictionaries(
        {"name": st.sampled_from(["main", "side"]), "state": STATES}, optional={"ready": st.booleans()}
    ),
    max_size=2,
)


def raw_pod(job: str) -> st.SearchStrategy[dict[str, Any]]:
    return st.builds(
        lambda suffix, phase, reason, message, inits, mains, disrupted, created: {
            "metadata": {
                "name": f"{job}-{suffix}",
                "namespace": "media",
                "labels": {"batch.kubernetes.io/job-name": job},
                **({"creationTimestamp": created} if created else {}),
            },
            "status": {
                "phase": phase,
                **({"reason": reason} if reason else {}),
                **({"message": message} if message else {}),
                "initContainerStatuses": inits,
                "containerStatuses": mains,
                "conditions": [{"type": "DisruptionTarget", "status": "True", "reason": "EvictionByEvictionAPI"}]
                if disrupted
                else [],
            },
        },
        st.from_regex(r"\A[a-z0-9]{5}\Z"),
        st.sampled_from(["Pending", "Running", "Succeeded", "Failed", "Unknown"]),
        st.none() | REASON_WORDS,
        st.none() | st.text(max_size=10),
        CONTAINER_STATUSES,
        CONTAINER_STATUSES,
        st.booleans(),
        st.none() | TIMES,
    )


# -- status: what the operator writes, and what a hand with the status subresource could

STATUS_TIMES = st.one_of(TIMES, st.sampled_from(["", "yesterday", "2025-13-01T00:00:00Z", "0001-01-01T00:00:00Z"]))
ATTEMPT = st.fixed_dictionaries(
    {"attempt": st.integers(-2, 14), "job": st.text(max_size=10)},
    optional={
        "startTime": STATUS_TIMES,
        "finishTime": STATUS_TIMES,
        "outcome": st.sampled_from(["Succeeded", "Failed", "Timeout", "PodError", "JobDeleted", "Cancelled"]),
        "exitCode": st.integers(-5, 300),
        "reason": st.text(max_size=8),
    },
)
EFFECTIVE = st.fixed_dictionaries(
    {
        "queue": DNS_NAME,
        "ttlSecondsAfterFinished": st.integers(-10, 10**12),
        "retry": RETRY_OK,
    },
    optional={"timeoutSeconds": st.integers(-10, 10**12), "deadlineSeconds": st.integers(-10, 10**12)},
)
STATUSES = st.fixed_dictionaries(
    {},
    optional={
        "phase": st.sampled_from(["Pending", "Running", "Retrying", "Succeeded", "Failed", "Cancelled"]),
        "reason": st.text(max_size=12),
        "attempt": st.one_of(st.integers(-3, 14), st.integers()),
        "attempts": st.lists(ATTEMPT, max_size=4),
        "nextRetryTime": STATUS_TIMES,
        "queuedTime": STATUS_TIMES,
        "startTime": STATUS_TIMES,
        "completionTime": STATUS_TIMES,
        "durationSeconds": st.floats(allow_nan=False, allow_infinity=False),
        "result": SMALL_JSON,
        "error": st.fixed_dictionaries({"code": st.text(max_size=8), "message": st.text(max_size=8)}),
        "effective": EFFECTIVE,
        "round": st.fixed_dictionaries(
            {}, optional={"firstAttempt": st.integers(-3, 20), "requested": st.none() | st.text(max_size=5)}
        ),
        "observedGeneration": st.integers(0, 5),
    },
)

# --------------------------------------------------------------------------- helpers


def task_object(
    spec: dict[str, Any], status: dict[str, Any] | None = None, name: str = "t", **meta: Any
) -> dict[str, Any]:
    return {
        "apiVersion": "asynctask.dev/v1alpha1",
        "kind": "AsyncTask",
        "metadata": {
            "name": name,
            "namespace": "media",
            "uid": "uid-t",
            "generation": 1,
            "creationTimestamp": "2025-03-01T12:00:00Z",
            **meta,
        },
        "spec": spec,
        **({"status": status} if status is not None else {}),
    }


def type_object(spec: dict[str, Any]) -> TaskType:
    return TaskType.model_validate({"metadata": {"name": "echo", "namespace": "media"}, "spec": spec})


def observed(
    task: AsyncTask,
    tasktype: TaskType | None,
    now: dt.datetime,
    jobs: Sequence[JobView] = (),
    pods: Sequence[PodView] = (),
    jitter: float = 0.5,
    admission: Admission = GRANTED,
) -> Observed:
    return observe(
        task, now=now, tasktype=tasktype, jobs=tuple(jobs), pods=tuple(pods), jitter_sample=jitter, admission=admission
    )


def check_job(job: dict[str, Any], task: AsyncTask, decision: Decision, attempt: int) -> None:
    """The Job of an attempt has the shape docs/design.md §3.1 promises, whatever the template said."""
    meta, spec = job["metadata"], job["spec"]
    assert meta["name"] == job_name(task.metadata.name, attempt)
    assert len(meta["name"]) <= MAX_JOB_NAME and DNS_SUBDOMAIN.match(meta["name"]), meta["name"]
    assert meta["namespace"] == task.metadata.namespace
    [owner] = meta["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == (
        "AsyncTask",
        task.metadata.name,
        task.metadata.uid,
        True,
    )
    assert spec["backoffLimit"] == 0
    assert not {"ttlSecondsAfterFinished", "selector", "manualSelector"} & set(spec)
    assert decision.status is not None and decision.status.effective is not None  # recorded at admission
    assert spec.get("activeDeadlineSeconds") == (decision.status.effective.timeout_seconds or None)
    pod = spec["template"]
    assert pod["spec"]["restartPolicy"] == "Never"
    for labels in (meta["labels"], pod["metadata"]["labels"]):
        for key in (LABEL_TASK, LABEL_TYPE, LABEL_ATTEMPT, LABEL_TASK_UID):
            assert LABEL_VALUE.match(labels[key]) and len(labels[key]) <= 63, (key, labels[key])
        assert labels[LABEL_ATTEMPT] == str(attempt)
    containers = pod["spec"]["containers"] + (pod["spec"].get("initContainers") or [])
    assert containers
    for container in containers:
        names = [e.get("name") for e in container["env"]]
        ours = [n for n in names if isinstance(n, str) and n.startswith(ENV_PREFIX)]
        assert OUR_ENV | {"ASYNCTASK_PAYLOAD"} <= set(ours) and len(ours) == len(set(ours)), names
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert json.loads(env["ASYNCTASK_PAYLOAD"]) == task.spec.payload
        assert env["ASYNCTASK_ATTEMPT"] == str(attempt)


def phase_change(task: AsyncTask, decision: Decision) -> tuple[str, str] | None:
    new = decision.status
    if new is None or (new.phase, new.reason) == (task.status.phase, task.status.reason):
        return None
    return str(new.phase), str(new.reason)


# --------------------------------------------------------------------------- the tests


@given(spec=TASK_SPECS, type_spec=st.none() | TYPE_SPECS, seconds=st.floats(11, 10**6))
def test_a_task_the_api_server_admits_runs_or_fails_with_a_reason(
    spec: dict[str, Any], type_spec: dict[str, Any] | None, seconds: float
) -> None:
    """A new task, past the grace for its TaskType: a valid Job, or Failed with a specific reason."""
    assume(TASK_SPEC.admits(spec))
    tasktype = type_object(type_spec) if type_spec is not None and TYPE_SPEC.admits(type_spec) else None
    task = AsyncTask.model_validate(task_object(spec))
    decision = decide(observed(task, tasktype, CREATED + dt.timedelta(seconds=seconds)), CONFIG)
    assert decision.status is not None
    if decision.create_job is not None:
        assert tasktype is not None and not task.spec.cancel
        assert decision.status.phase == "Running"
        check_job(decision.create_job, task, decision, 1)
        return
    assert decision.status.phase in ("Failed", "Cancelled"), decision.status
    assert decision.status.reason in REASONS_BEFORE_A_JOB | {"Cancelled"}, decision.status.reason
    assert decision.status.error is not None and decision.status.error.code == decision.status.reason
    if tasktype is None and not task.spec.cancel:
        assert decision.status.reason in ("UnknownTaskType", "DeadlineExceeded")


@given(spec=TASK_SPECS)
def test_what_the_schema_admits_parses(spec: dict[str, Any]) -> None:
    """The models and the CRD schema generated from them agree: nothing admitted fails to parse."""
    if not TASK_SPEC.admits(spec):
        error = jsonschema.exceptions.best_match(TASK_SPEC.validator.iter_errors(spec))
        event(f"refused: {error.validator if error else 'CEL'}")  # (shown by --hypothesis-show-statistics)
        return
    event("admitted")
    AsyncTask.model_validate(task_object(spec))


@given(type_spec=TYPE_SPECS)
def test_a_tasktype_the_api_server_admits_parses(type_spec: dict[str, Any]) -> None:
    assume(TYPE_SPEC.admits(type_spec))
    type_object(type_spec)


@given(
    spec=SMALL_TASK_SPECS,
    type_spec=TYPE_SPECS,
    status=STATUSES,
    data=st.data(),
    seconds=st.floats(-100, 10**7),
    jitter=st.floats(0, 1, exclude_max=True),
    granted=st.booleans(),
    annotations=st.dictionaries(st.just("asynctask.dev/retry-requested"), st.text(max_size=3), max_size=1),
)
def test_decide_never_raises_whatever_it_observes(
    spec: dict[str, Any],
    type_spec: dict[str, Any],
    status: dict[str, Any],
    data: st.DataObject,
    seconds: float,
    jitter: float,
    granted: bool,
    annotations: dict[str, str],
) -> None:
    """Any admitted task and status, any Jobs and pods: decide() answers, with known reasons."""
    assume(TASK_SPEC.admits(spec) and TASK_STATUS.admits(status))
    tasktype = type_object(type_spec) if TYPE_SPEC.admits(type_spec) else None
    task = AsyncTask.model_validate(task_object(spec, status, annotations=annotations))
    jobs = [job_view(j) for j in data.draw(st.lists(raw_job("t", "uid-t"), max_size=2))]
    pods = [pod_view(p) for j in jobs for p in data.draw(st.lists(raw_pod(j.name), max_size=1))]
    admission = Admission() if granted else Admission(granted=False, reason="QueuePaused", message="paused")
    decision = decide(
        observed(task, tasktype, CREATED + dt.timedelta(seconds=seconds), jobs, pods, jitter, admission), CONFIG
    )
    change = phase_change(task, decision)
    if change is not None and change[0] == "Failed":
        assert change[1] in FAILED_REASONS, change
    if decision.requeue_after is not None:
        assert decision.requeue_after >= 0
    if decision.create_job is not None and decision.status is not None:
        check_job(decision.create_job, task, decision, decision.status.attempt or 0)


@given(job=raw_job("t", "uid-t"), pods=st.lists(raw_pod("t-1"), max_size=3), timeout=st.none() | st.integers(1, 100))
def test_attempt_result_never_raises(job: dict[str, Any], pods: list[dict[str, Any]], timeout: int | None) -> None:
    view = job_view(job)
    result = attempt_result(view, [pod_view(p) for p in pods], timeout)
    if result is None:
        assert not view.finished  # a finished Job always has an outcome
        return
    assert result.outcome in ("Succeeded", "Failed", "Timeout", "PodError", "JobDeleted")
    assert result.succeeded == (result.outcome == "Succeeded")
    assert len(result.message) <= 1024
    if view.complete:
        assert result.succeeded


@given(
    policy=st.builds(
        RetryPolicy,
        max_retries=st.none() | st.integers(0, 100),
        backoff=st.none() | st.sampled_from(["Exponential", "Fixed"]),
        base_seconds=st.none() | st.integers(0, 86400),
        max_seconds=st.none() | st.integers(0, 604800),
        jitter=st.none() | st.booleans(),
    ),
    attempt=st.integers(-5, 10_000),
    sample=st.floats(0, 1, exclude_max=True),
)
def test_retry_delay_stays_within_its_bounds(policy: RetryPolicy, attempt: int, sample: float) -> None:
    delay = next_retry_delay(policy, attempt, sample)
    base = float(policy.base_seconds if policy.base_seconds is not None else 10)
    cap = float(policy.max_seconds if policy.max_seconds is not None else 600)
    nominal = base if policy.backoff == "Fixed" else base * 2.0 ** min(max(attempt - 1, 0), 62)
    if cap > 0:
        nominal = min(nominal, cap)
    assert delay >= 0
    if policy.jitter is False:
        assert delay == nominal
    else:
        assert nominal * (1 - JITTER) - 1e-9 <= delay <= nominal * (1 + JITTER) + 1e-9
    if cap > 0:
        assert delay <= cap
    assert next_retry_delay(policy, attempt, sample) == delay


@given(first=SUBDOMAIN, second=SUBDOMAIN, attempt=st.integers(1, 10**6), other=st.integers(1, 10**6))
def test_job_names_fit_are_deterministic_and_distinct(first: str, second: str, attempt: int, other: int) -> None:
    name = job_name(first, attempt)
    assert len(name) <= MAX_JOB_NAME and DNS_SUBDOMAIN.match(name) and name.endswith(f"-{attempt}")
    assert job_name(first, attempt) == name
    if (first, attempt) != (second, other):
        assert job_name(second, other) != name


@given(value=st.text(max_size=300) | st.from_regex(r"\A[-_.a-zA-Z0-9]{0,100}\Z"))
def test_label_values_are_valid_and_deterministic(value: str) -> None:
    label = label_value(value)
    assert len(label) <= 63 and LABEL_VALUE.match(label), label
    assert label_value(value) == label
    if len(value) <= 63 and LABEL_VALUE.match(value):
        assert label == value


def test_the_generators_reach_both_sides_of_the_schema() -> None:
    """A guard for the fuzzing itself: broken specs are generated, and so are admitted ones."""
    admitted = [TASK_SPEC.admits(s) for s in ({"type": "echo"}, {}, {"type": 5}, {"type": "echo", "priority": 5000})]
    assert admitted == [True, False, False, False]
    assert TYPE_SPEC.admits({"jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "m"}]}}}}})
    assert not TYPE_SPEC.admits(
        {"jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "m"}], "restartPolicy": "Always"}}}}}
    )
    assert not TYPE_SPEC.admits({"jobTemplate": {"spec": {"template": {"spec": {"containers": []}}}}})
