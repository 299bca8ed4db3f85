"""Deterministic names and label values.

The Job of an attempt is named ``<task>-<attempt>``: creating it twice is a 409 from
the API server, never a second run, so the name is the lock. Job names must fit in
63 characters (the Job controller copies them into a pod label), so long task names
are shortened with a hash of the full name to stay unique.
"""

from __future__ import annotations

import hashlib
import re

MAX_JOB_NAME = 63
MAX_LABEL_VALUE = 63

LABEL_TASK = "asynctask.dev/task"
LABEL_TASK_UID = "asynctask.dev/task-uid"
LABEL_TYPE = "asynctask.dev/type"
LABEL_ATTEMPT = "asynctask.dev/attempt"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGER = "asynctask-operator"
RESERVED_LABEL_PREFIX = "asynctask.dev/"
LABEL_SCHEDULED_TASK = "asynctask.dev/scheduled-task"
ANNOTATION_SCHEDULED_TIME = "asynctask.dev/scheduled-time"
ANNOTATION_RUN_NOW = "asynctask.dev/run-now"
ANNOTATION_CONCURRENCY_KEY = "asynctask.dev/concurrency-key"  # on a Job: the key its task holds
MAX_OBJECT_NAME = 253

_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def short_hash(text: str, length: int = 8) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def _shorten(name: str, suffix: str, limit: int) -> str:
    """``name`` + ``suffix`` if it fits in ``limit``; else a cut of ``name``, a hash, and ``suffix``."""
    if len(name) + len(suffix) <= limit:
        return name + suffix
    tag = "-" + short_hash(name)
    head = name[: limit - len(tag) - len(suffix)].rstrip("-.")
    return head + tag + suffix


def job_name(task_name: str, attempt: int) -> str:
    """Name of the Job of one attempt.

    >>> job_name("transcode-7f3a", 2)
    'transcode-7f3a-2'
    """
    if attempt < 1:
        raise ValueError(f"attempts are numbered from 1, got {attempt}")
    return _shorten(task_name, f"-{attempt}", MAX_JOB_NAME)


def label_value(value: str) -> str:
    """A valid label value standing for ``value`` (itself when it is one)."""
    if len(value) <= MAX_LABEL_VALUE and _LABEL_VALUE.match(value):
        return value
    cleaned = re.sub(r"[^-A-Za-z0-9_.]", "-", value).strip("-_.")
    return _shorten(cleaned, "", MAX_LABEL_VALUE).strip("-_.") or short_hash(value)


def scheduled_run_name(scheduled_task: str, unix_minute: int) -> str:
    """Name of the AsyncTask a ScheduledTask creates for one fire time: the name is the lock.

    >>> scheduled_run_name("nightly-report", 29384720)
    'nightly-report-29384720'
    """
    return _shorten(scheduled_task, f"-{unix_minute}", MAX_OBJECT_NAME)


def manual_run_name(scheduled_task: str, run_now: str) -> str:
    """Name of the AsyncTask one ``asynctask.dev/run-now`` value creates.

    >>> manual_run_name("nightly-report", "1767225600")
    'nightly-report-manual-d66f78a8'
    """
    return _shorten(scheduled_task, f"-manual-{short_hash(run_now)}", MAX_OBJECT_NAME)
