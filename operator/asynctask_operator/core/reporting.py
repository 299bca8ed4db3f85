"""Progress and results reported by a running task (docs/design.md §3.2): tokens, validation, coalescing.

A task container gets ``ASYNCTASK_REPORT_URL`` (the operator's endpoint for this task)
and ``ASYNCTASK_REPORT_TOKEN``: an HMAC of namespace, name, uid and attempt under the
operator's key, so a token is good for one attempt of one task only and no per-task
Secret is needed. The key lives in one Secret that every replica and restart reads.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import hmac
import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from asynctask_operator.core.timestamps import stamp

TOKEN_VERSION = "v1"


def _mac(key: bytes, namespace: str, name: str, uid: str, attempt: int) -> str:
    message = f"{namespace}/{name}/{uid}/{attempt}".encode()
    digest = hmac.new(key, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def mint_token(key: bytes, namespace: str, name: str, uid: str, attempt: int) -> str:
    """``v1.<attempt>.<mac>``: the attempt is readable, the rest is proved by the MAC.

    >>> mint_token(b"k", "ns", "t", "u", 2).startswith("v1.2.")
    True
    """
    return f"{TOKEN_VERSION}.{attempt}.{_mac(key, namespace, name, uid, attempt)}"


class TokenRefused(Exception):
    """``status`` is the HTTP answer: 401 malformed or missing, 403 wrong, 409 not the running attempt."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def verify_token(key: bytes, token: str, namespace: str, name: str, uid: str, running_attempt: int | None) -> int:
    """Return the token's attempt if it is genuine for this task and that attempt is running now."""
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != TOKEN_VERSION or not parts[1].isdigit():
        raise TokenRefused(401, "missing or malformed token: send 'Authorization: Bearer $ASYNCTASK_REPORT_TOKEN'")
    attempt = int(parts[1])
    if not hmac.compare_digest(parts[2], _mac(key, namespace, name, uid, attempt)):
        raise TokenRefused(403, "the token is not valid for this task")
    if running_attempt != attempt:
        raise TokenRefused(409, f"attempt {attempt} of this task is not running (finished or superseded)")
    return attempt


class ProgressReport(BaseModel):
    """The body of ``POST .../progress``; unknown fields are refused."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    percent: int | None = Field(None, ge=0, le=100)
    message: str | None = Field(None, max_length=1024)
    step: str | None = Field(None, max_length=253)
    steps_done: int | None = Field(None, alias="stepsDone", ge=0)
    steps_total: int | None = Field(None, alias="stepsTotal", ge=0)

    @model_validator(mode="after")
    def _steps_in_range(self) -> ProgressReport:
        if self.steps_done is not None and self.steps_total is not None and self.steps_done > self.steps_total:
            raise ValueError("stepsDone must not exceed stepsTotal")
        return self


class BadReport(Exception):
    """``status`` is the HTTP answer (400 or 413); ``message`` says what is wrong."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def parse_progress(body: bytes) -> ProgressReport:
    try:
        data = json.loads(body or b"null")
    except ValueError as exc:
        raise BadReport(400, f"the body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise BadReport(400, 'the body must be a JSON object like {"percent": 40, "message": "encoding"}')
    try:
        return ProgressReport.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors(include_url=False)
        )
        raise BadReport(400, problems) from None


def parse_result(body: bytes, limit_bytes: int) -> Any:
    if len(body) > limit_bytes:
        raise BadReport(
            413,
            f"the result is {len(body)} bytes, over the limit of {limit_bytes}: store large output elsewhere "
            "(for example an object store) and report its URL",
        )
    try:
        return json.loads(body)
    except ValueError as exc:
        raise BadReport(400, f"the result is not JSON: {exc}") from None


def result_from_termination_message(message: str, limit_bytes: int) -> Any:
    """What a container wrote to /dev/termination-log: JSON if it parses, else the text itself."""
    text = message.strip()
    if not text or len(text.encode()) > limit_bytes:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


@dataclasses.dataclass(frozen=True)
class Reported:
    """What the running attempt reported and the operator has not necessarily written yet."""

    attempt: int
    progress: dict[str, Any] | None = None  # wire form of status.progress, with updateTime
    result: Any = None
    has_result: bool = False
    progress_written_at: dt.datetime | None = None  # when progress last went into a status write


def progress_status(report: ProgressReport, now: dt.datetime) -> dict[str, Any]:
    fields = report.model_dump(by_alias=True, exclude_none=True)
    fields["updateTime"] = stamp(now)
    return fields
