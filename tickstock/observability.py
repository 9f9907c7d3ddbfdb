"""Per-request id, one log line per request, and HTTP metrics."""

from __future__ import annotations

import contextvars
import logging
import os
import re
import time
from typing import Any

from quart import Quart, Response, request

from tickstock.metrics import HTTP_LATENCY, HTTP_REQUESTS

log = logging.getLogger("tickstock.request")

REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "tickstock_request_id", default=None
)
# Each request is handled in a task of its own, so these never leak from one to the next.
_STARTED: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "tickstock_request_started", default=None
)
_VALID_ID = re.compile(r"^[A-Za-z0-9._\-]{8,64}$")
# Routes whose per-request line would drown the log (probes and scrapes).
_QUIET = {"/health", "/metrics"}
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` to every record logged while a request is handled."""

    def filter(self, record: logging.LogRecord) -> bool:
        request_id = REQUEST_ID.get()
        if request_id is not None and not hasattr(record, "request_id"):
            record.request_id = request_id
        return True


def init_observability(app: Quart) -> None:
    """Install the request hooks on ``app``."""

    # Metric children by label values: labels() takes a lock and builds keys on every call.
    counters: dict[tuple[str, str, int], Any] = {}
    histograms: dict[str, Any] = {}

    @app.before_request
    async def _start() -> None:
        _STARTED.set(time.perf_counter())
        incoming = request.headers.get("X-Request-ID")
        valid = incoming is not None and _VALID_ID.match(incoming)
        REQUEST_ID.set(incoming if valid else os.urandom(16).hex())

    @app.after_request
    async def _finish(response: Response) -> Response:
        req = request._get_current_object()  # type: ignore[attr-defined]
        request_id = REQUEST_ID.get()
        if request_id:
            response.headers["X-Request-ID"] = request_id
        started = _STARTED.get()
        elapsed = time.perf_counter() - started if started is not None else 0.0
        rule = req.url_rule
        route = rule.rule if rule is not None else "unmatched"
        status = response.status_code
        method = req.method if req.method in _METHODS else "OTHER"  # bounded label values
        key = (method, route, status)
        counter = counters.get(key)
        if counter is None:
            counter = counters[key] = HTTP_REQUESTS.labels(method, route, str(status))
        counter.inc()
        histogram = histograms.get(route)
        if histogram is None:
            histogram = histograms[route] = HTTP_LATENCY.labels(route)
        histogram.observe(elapsed)
        if log.isEnabledFor(logging.INFO) and (req.path not in _QUIET or status >= 400):
            log.info(
                "%s %s %s %.1fms from %s",
                req.method,
                req.path,
                status,
                elapsed * 1000,
                req.remote_addr,
                extra={
                    "method": req.method,
                    "path": req.path,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                    "remote": req.remote_addr,
                },
            )
        return response

    del _start, _finish
