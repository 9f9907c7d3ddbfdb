"""Logging set-up: text for people, JSON lines in production."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

from tickstock.config import Settings
from tickstock.jsonutil import dumps_str
from tickstock.observability import RequestIdFilter

_RESERVED = set(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}


class JSONFormatter(logging.Formatter):
    """One JSON object per line, with any ``extra`` fields kept."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return dumps_str(entry)


class TextFormatter(logging.Formatter):
    """Human-readable lines, with the request id when there is one."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        request_id = getattr(record, "request_id", None)
        return f"{line} [request_id={request_id}]" if request_id else line


def configure_logging(settings: Settings) -> None:
    """Configure the root logger once per process (idempotent)."""
    root = logging.getLogger()
    root.setLevel(settings.log_level)
    handler = next((h for h in root.handlers if getattr(h, "_tickstock", False)), None)
    if handler is None:
        handler = logging.StreamHandler(sys.stderr)
        handler._tickstock = True  # type: ignore[attr-defined]
        handler.addFilter(RequestIdFilter())
        root.addHandler(handler)
    # Hypercorn writes its own lines through its own handlers; do not print them twice.
    for name in ("hypercorn.error", "hypercorn.access"):
        logging.getLogger(name).propagate = False
    if settings.log_format == "json":
        handler.setFormatter(JSONFormatter())
    else:
        handler.setFormatter(TextFormatter())
