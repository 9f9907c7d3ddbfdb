"""One error path: every failure becomes the JSON envelope of SPEC §5."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import asyncpg
import redis.exceptions
from quart import Quart, Response, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
    500: "internal_error",
    503: "service_unavailable",
}


class APIError(Exception):
    """An error answered to the client: ``raise APIError(404, "symbol_not_found", "...")``."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.extra = extra or {}


class ServiceUnavailable(APIError):
    """A backing service (database, Redis) cannot be reached right now."""

    def __init__(self, component: str, detail: str = "") -> None:
        message = f"{component} is unavailable, try again shortly"
        super().__init__(
            503,
            f"{component}_unavailable",
            message if not detail else f"{message} ({detail})",
            headers={"Retry-After": "2"},
        )


def error_response(
    status: int,
    code: str,
    message: str,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> Response:
    body: dict[str, Any] = {"status": "error", "message": message, "code": code}
    if extra:
        body.update(extra)
    response = jsonify(body)
    response.status_code = status
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


# Failures that mean "a backing service is unreachable" rather than "a bug".
DATABASE_ERRORS: tuple[type[Exception], ...] = (
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.QueryCanceledError,
    asyncpg.exceptions.ConnectionFailureError,
)
REDIS_ERRORS: tuple[type[Exception], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.BusyLoadingError,
)
# Everything that means "unreachable", including a refused socket and a timed-out wait.
DATABASE_DOWN: tuple[type[Exception], ...] = (*DATABASE_ERRORS, OSError, TimeoutError)
REDIS_DOWN: tuple[type[Exception], ...] = (*REDIS_ERRORS, OSError, TimeoutError)


def register_error_handlers(app: Quart) -> None:
    """Install the JSON handlers on ``app``."""

    @app.errorhandler(APIError)
    async def _api_error(error: APIError) -> Response:
        if error.status >= 500:
            log.warning("%s %s -> %s %s", request.method, request.path, error.status, error.code)
        return error_response(error.status, error.code, error.message, error.headers, error.extra)

    @app.errorhandler(HTTPException)
    async def _http_error(error: HTTPException) -> Response:
        status = error.code or 500
        if status in (301, 302, 303, 307, 308):
            return error.get_response()  # type: ignore[return-value]
        code = _CODES.get(status, "http_error")
        message = error.description or error.name
        if status == 404:
            message = f"no such resource: {request.path}"
        elif status == 405:
            message = f"method {request.method} is not allowed on {request.path}"
        elif status == 413:
            message = "request body too large"
        headers = {}
        response = error.get_response()
        if "Allow" in response.headers:
            headers["Allow"] = response.headers["Allow"]
        if "Retry-After" in response.headers:
            headers["Retry-After"] = response.headers["Retry-After"]
        return error_response(status, code, message, headers)

    @app.errorhandler(Exception)
    async def _unexpected(error: Exception) -> Response:
        if isinstance(error, DATABASE_ERRORS) or _is_os_error(error, "database"):
            log.warning("database unavailable on %s %s: %r", request.method, request.path, error)
            return _unavailable("database")
        if isinstance(error, REDIS_ERRORS):
            log.warning("redis unavailable on %s %s: %r", request.method, request.path, error)
            return _unavailable("redis")
        if isinstance(error, asyncio.TimeoutError | TimeoutError):
            log.warning("timeout on %s %s", request.method, request.path)
            return _unavailable("database")
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal_error", "internal server error")

    del _api_error, _http_error, _unexpected


def _is_os_error(error: BaseException, _component: str) -> bool:
    # asyncpg raises plain OSError/ConnectionRefusedError when the server is gone entirely.
    return isinstance(error, OSError)


def _unavailable(component: str) -> Response:
    err = ServiceUnavailable(component)
    current_app.logger.debug("answering 503 for %s", component)
    return error_response(err.status, err.code, err.message, err.headers)
