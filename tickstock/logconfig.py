"""Logging set-up: text for people, JSON lines in production."""

from __future__ import annotations

import collections
import logging
import os
import sys
import threading
import time
from typing import Any, Final, TextIO

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


class QueueStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Formats each record where it is logged and hands the line to a writer thread.

    A request never waits on the stream (a slow pipe, a full terminal): it appends one finished
    line to a queue and goes on. The writer thread sleeps until a line is queued, lets the lines
    of :attr:`INTERVAL` seconds gather and writes them in one call, so a busy server pays one
    write per batch of lines, no thread switch per line, and a quiet one no wake-up at all. ``flush()`` waits until every line queued before it is written
    (``logging.shutdown`` calls it at exit).
    """

    INTERVAL = 0.05
    _FLUSH_TIMEOUT = 5.0

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__(stream)
        # deque.append and popleft are atomic: no lock between the callers and the writer.
        self._lines: collections.deque[str] = collections.deque()
        self._flushes: collections.deque[threading.Event] = collections.deque()
        self._wake = threading.Event()
        self._closing = False
        self._writer: threading.Thread | None = None
        self._start_writer()
        os.register_at_fork(after_in_child=self._after_fork)

    def _start_writer(self) -> None:
        self._writer = threading.Thread(
            target=self._write_lines, name="tickstock-log-writer", daemon=True
        )
        self._writer.start()

    def _after_fork(self) -> None:
        # The child has the parent's queue (its lines are the parent's to write), not its thread.
        self._lines.clear()
        self._flushes.clear()
        self._start_writer()

    def handle(self, record: logging.LogRecord) -> bool:
        # No handler lock: the queue is thread-safe and the line is built by the caller.
        if not self.filter(record):
            return False
        self.emit(record)
        return True

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._lines.append(self.format(record))
        except Exception:
            self.handleError(record)
            return
        # After the append: a writer that cleared the flag before this line drains it anyway.
        if not self._wake.is_set():
            self._wake.set()

    def flush(self) -> None:
        """Wait (bounded) until the lines queued so far are written and the stream flushed."""
        writer = self._writer
        if writer is None or not writer.is_alive() or writer is threading.current_thread():
            return
        done = threading.Event()
        self._flushes.append(done)
        self._wake.set()
        done.wait(self._FLUSH_TIMEOUT)

    def close(self) -> None:
        writer = self._writer
        if writer is not None and writer.is_alive():
            self._closing = True
            self._wake.set()
            writer.join(self._FLUSH_TIMEOUT)
        self._writer = None
        super().close()

    def _write_lines(self) -> None:
        while True:
            self._wake.wait()
            if not (self._flushes or self._closing):
                time.sleep(self.INTERVAL)  # let the lines of a burst gather: one write for all
            self._wake.clear()
            closing = self._closing
            # Flushes taken first: every line queued before them is drained below.
            flushes = []
            while self._flushes:
                flushes.append(self._flushes.popleft())
            batch = []
            while self._lines:
                batch.append(self._lines.popleft())
            self._write(batch, flush=bool(flushes) or closing)
            for done in flushes:
                done.set()
            if closing:
                return

    def _write(self, batch: list[str], *, flush: bool) -> None:
        stream = self.stream
        try:
            if batch:
                batch.append("")
                stream.write(self.terminator.join(batch))
            if batch or flush:
                stream.flush()
        except Exception:  # a closed or broken stream must not end the writer
            pass


def configure_logging(settings: Settings) -> None:
    """Configure the root logger once per process (idempotent)."""
    root = logging.getLogger()
    root.setLevel(settings.log_level)
    handler = next((h for h in root.handlers if getattr(h, "_tickstock", False)), None)
    if handler is None:
        handler = QueueStreamHandler(sys.stderr)
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
