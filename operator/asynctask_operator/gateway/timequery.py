"""Times in a query string: RFC 3339, read as epoch seconds, a 400 naming the parameter otherwise."""

from __future__ import annotations

import re
from typing import Any

from asynctask_operator.core.timestamps import parse_stamp
from asynctask_operator.gateway.problems import Problem

TIME: dict[str, Any] = {"json_schema_extra": {"format": "date-time"}}
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)$")


def moment(name: str, text: str | None) -> float | None:
    """Epoch seconds of a query's RFC 3339 time; 400 for anything else."""
    if text is None:
        return None
    parsed_ = parse_stamp(text.upper()) if RFC3339.match(text) else None
    if parsed_ is None:
        raise Problem(400, f"{name} must be an RFC 3339 time (2026-01-02T03:04:05Z)")
    return parsed_.timestamp()
