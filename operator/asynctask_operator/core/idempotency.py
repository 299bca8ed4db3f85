"""Idempotency keys without a store: the task's name is the lock (draft-ietf-httpapi-idempotency-key-header).

A POST with ``Idempotency-Key: order-42`` creates the task named :func:`task_name_for_key` of
(namespace, user, key). The API server refuses a second object of that name (409), so two
requests with the same key can never create two tasks, whichever gateway replica they reach.
The body's :func:`fingerprint` is kept in an annotation: a replay with the same body is
answered with the original task, one with another body is refused (422). A key lives as long
as its task (until the TTL after it finished deletes it).

>>> task_name_for_key("media", "alice", "order-42")
't-tfkheicjqgvwv7tclhc6ive7ugdq6b53'
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

ANNOTATION_SUBMITTED_BY = "asynctask.dev/submitted-by"
ANNOTATION_FINGERPRINT = "asynctask.dev/idempotency-fingerprint"
NAME_PREFIX = "t-"
NAME_HASH_CHARS = 32  # 160 bits of sha256: no two keys meet by chance
MAX_KEY_LENGTH = 255


def task_name_for_key(namespace: str, user: str, key: str) -> str:
    """The task name a key stands for: a DNS label (``t-`` and lower-case base32), the same every time."""
    digest = hashlib.sha256(canonical_json([namespace, user, key]).encode()).digest()  # no separator to forge
    return NAME_PREFIX + base64.b32encode(digest).decode().lower().rstrip("=")[:NAME_HASH_CHARS]


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no spaces: equal values, equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def fingerprint(body: Any) -> str:
    """A short digest of a request body: equal for bodies equal as JSON (whatever their key order).

    >>> fingerprint({"a": 1, "b": 2}) == fingerprint({"b": 2, "a": 1})
    True
    """
    return "sha256:" + hashlib.sha256(canonical_json(body).encode()).hexdigest()[:32]


def valid_key(key: str) -> bool:
    """A key is 1-255 printable ASCII characters (it is hashed, never used as a name itself)."""
    return 0 < len(key) <= MAX_KEY_LENGTH and all(" " <= c <= "~" for c in key)
