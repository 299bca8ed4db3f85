"""Logging: one JSON object per line for machines, plain lines for a terminal."""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys

CONTEXT_FIELDS = ("namespace", "name", "uid", "type", "attempt", "phase")
HTTP_FIELDS = ("method", "path", "status", "duration_ms", "client")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        context = getattr(record, "task", None)  # logger.info(..., extra={"task": {...}})
        if isinstance(context, dict):
            line.update({k: v for k, v in context.items() if k in CONTEXT_FIELDS and v is not None})
        request = getattr(record, "http", None)  # the gateway's access log: extra={"http": {...}}
        if isinstance(request, dict):
            line.update({k: v for k, v in request.items() if k in HTTP_FIELDS and v is not None})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def setup_logging(fmt: str = "auto", verbose: bool = False) -> None:
    if fmt == "auto":
        fmt = "text" if sys.stderr.isatty() else "json"
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    # Python's warnings go through the same handler (logger "py.warnings"): a library's warning is one
    # line in the log's format, not two raw lines between the JSON objects.
    logging.captureWarnings(True)
    # httpx logs every callback request at INFO; the operator logs each delivery's outcome itself.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.INFO)
    if not verbose:
        logging.getLogger("kopf").setLevel(logging.WARNING)
        logging.getLogger("urllib3").setLevel(logging.WARNING)
