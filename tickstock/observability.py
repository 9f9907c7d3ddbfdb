"""Per-request id, one log line per request, and HTTP metrics."""

from __future__ import annotations

import contextvars
import logging
import re
import time
import uuid

from quart import Quart, Response, g, request

from tickstock.metrics import HTTP_LATENCY, HTTP_REQUESTS

log = logging.getLogger("tickstock.request")

REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "tickstock_request_id", default=None
)
_VALID_ID = re.compile(r"^[A-Za-z0-9._\-]{8,64}$")
# Routes whose per-request line would drown the log (probes and scrapes).
_QUIET = {"/health", "/metrics"}


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` to every record logged while a request is handled."""

    def filter(self, record: logging.LogRecord) -> bool:
        request_id = REQUEST_ID.get()
        if request_id is not None and not hasattr(record, "request_id"):
            record.request_id = request_id
        return True


def init_observability(app: Quart) -> None:
    """Install the request hooks on ``app``."""

    @app.before_request
    async def _start() -> None:
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _VALID_ID.match(incoming) else uuid.uuid4().hex
        g.request_id = request_id
        g.request_started = time.perf_counter()
        REQUEST_ID.set(request_id)

    @app.after_request
    async def _finish(response: Response) -> Response:
        request_id = getattr(g, "request_id", None)
        if request_id:
            response.headers["X-Request-ID"] = request_id
        started = getattr(g, "request_started", None)
        elapsed = time.perf_counter() - started if started else 0.0
        route = request.url_rule.rule if request.url_rule is not None else "unmatched"
        HTTP_REQUESTS.labels(request.method, route, str(response.status_code)).inc()
        HTTP_LATENCY.labels(route).observe(elapsed)
        if log.isEnabledFor(logging.INFO) and (
            request.path not in _QUIET or response.status_code >= 400
        ):
            log.info(
                "%s %s %s %.1fms",
                request.method,
                request.path,
                response.status_code,
                elapsed * 1000,
                extra={
                    "method": request.method,
                    "path": request.path,
                    "status": response.status_code,
                    "duration_ms": round(elapsed * 1000, 2),
                    "remote": request.remote_addr,
                },
            )
        return response

    del _start, _finish
