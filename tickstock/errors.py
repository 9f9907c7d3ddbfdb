"""One error path: every failure becomes the JSON envelope of SPEC §5."""

from __future__ import annotations

import logging
import traceback
from typing import Any, Final

import asyncpg
import redis.exceptions
from pydantic import ValidationError
from quart import Quart, Response, current_app, jsonify, request
from quart_schema import RequestSchemaValidationError
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

_MAX_MESSAGE: Final = 500

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


def format_validation_error(error: BaseException) -> str:
    """``"limit: Input should be less than or equal to 500; ..."`` from a pydantic error."""
    if isinstance(error, ValidationError):
        parts = []
        for item in error.errors(include_url=False, include_input=False):
            location = ".".join(str(part) for part in item["loc"])
            message = str(item["msg"]).removeprefix("Value error, ")
            parts.append(f"{location}: {message}" if location else message)
        text = "; ".join(parts)
    else:
        text = str(error) or "invalid request"
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "..."


def register_error_handlers(app: Quart) -> None:
    """Install the JSON handlers on ``app``, quart-schema's validation errors included."""

    @app.errorhandler(APIError)
    async def _api_error(error: APIError) -> Response:
        if error.status >= 500:
            log.warning("%s %s -> %s %s", request.method, request.path, error.status, error.code)
        return error_response(error.status, error.code, error.message, error.headers, error.extra)

    @app.errorhandler(RequestSchemaValidationError)
    async def _validation_error(error: RequestSchemaValidationError) -> Response:
        message = format_validation_error(error.validation_error)
        return error_response(400, "validation_error", message)

    @app.errorhandler(UnicodeDecodeError)
    async def _undecodable(error: UnicodeDecodeError) -> Response:
        # Quart decodes a JSON body before its own error handling starts, so a body that is not
        # UTF-8 surfaces here; any other decode error is a bug like any other.
        body = await request.get_data(True, False, False)
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            return error_response(400, "bad_request", "request body is not valid UTF-8")
        log.error("unhandled error on %s %s", request.method, request.path, exc_info=error)
        return error_response(500, "internal_error", "internal server error")

    @app.errorhandler(HTTPException)
    async def _http_error(error: HTTPException) -> Response:
        status = error.code or 500
        if status in (301, 302, 303, 307, 308):
            return error.get_response()  # type: ignore[return-value]
        code = _CODES.get(status, "http_error")
        message = error.description or error.name
        if status == 404:
            message = _not_found_message()
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
        component = _unavailable_component(error)
        if component is not None:
            log.warning(
                "%s unavailable on %s %s: %r", component, request.method, request.path, error
            )
            return _unavailable(component)
        if _is_file_error(error) and _is_static_request():
            # A path the file system refuses (too long, not a directory ...) names no file.
            return error_response(404, "not_found", _not_found_message())
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal_error", "internal server error")

    del _api_error, _validation_error, _undecodable, _http_error, _unexpected


# The client libraries whose frames say which backing service failed.
_ORIGINS: Final = (
    ("asyncpg", "database"),
    ("tickstock.extensions.database", "database"),
    ("redis", "redis"),
    ("tickstock.extensions.redis", "redis"),
)


def _origin(error: BaseException) -> str | None:
    """The backing service whose client raised ``error`` (or what it was raised from).

    The innermost frame of a known client decides: asyncpg raises a bare
    ``ConnectionRefusedError`` when PostgreSQL is gone, and ``asyncio.timeout`` turns a
    cancelled Redis read into a bare ``TimeoutError`` whose context ran through redis-py.
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        found = None
        for frame, _ in traceback.walk_tb(current.__traceback__):
            module = str(frame.f_globals.get("__name__", ""))
            for prefix, component in _ORIGINS:
                if module == prefix or module.startswith(prefix + "."):
                    found = component
        if found is not None:
            return found
        current = current.__cause__ or current.__context__
    return None


def _is_file_error(error: BaseException) -> bool:
    # The file system names the path it refused; a socket error never carries one.
    return isinstance(error, OSError) and error.filename is not None


def _is_os_error(error: BaseException) -> bool:
    return isinstance(error, OSError | TimeoutError) and not _is_file_error(error)


def _unavailable_component(error: BaseException) -> str | None:
    """``database``, ``redis`` or ``service`` when ``error`` means "unreachable", else None."""
    if isinstance(error, DATABASE_ERRORS):
        return "database"
    if isinstance(error, REDIS_ERRORS):
        return "redis"
    if not _is_os_error(error):
        return None
    # A refused socket or a timed-out wait: which service depends on who was waiting.
    return _origin(error) or "service"


def _is_static_request() -> bool:
    endpoint = request.endpoint or ""
    return endpoint == "static" or endpoint.endswith(".static")


def _not_found_message() -> str:
    return f"no such resource: {request.path}"


def _unavailable(component: str) -> Response:
    err = ServiceUnavailable(component)
    current_app.logger.debug("answering 503 for %s", component)
    return error_response(err.status, err.code, err.message, err.headers)
