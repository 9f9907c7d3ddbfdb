"""Logging set-up: text for people, JSON lines in production."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any, Final

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


# Control characters as Python escapes (``\n``, ``\x1b``): a client-chosen path or name can
# then neither start a forged line nor colour the terminal.
_ESCAPES: Final = {code: repr(chr(code))[1:-1] for code in (*range(0x20), *range(0x7F, 0xA0))}
_TRACEBACK_ESCAPES: Final = {code: text for code, text in _ESCAPES.items() if code != 0x0A}


def escape_controls(text: str) -> str:
    return text.translate(_ESCAPES)


class TextFormatter(logging.Formatter):
    """Human-readable lines, with the request id when there is one; control characters escaped.

    A record is exactly one line; only a traceback spans several (its own line breaks kept).
    """

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = escape_controls(super().formatMessage(record))
        request_id = getattr(record, "request_id", None)
        return f"{line} [request_id={escape_controls(str(request_id))}]" if request_id else line

    def formatException(self, ei: Any) -> str:
        return super().formatException(ei).translate(_TRACEBACK_ESCAPES)

    def formatStack(self, stack_info: str) -> str:
        return super().formatStack(stack_info).translate(_TRACEBACK_ESCAPES)


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
