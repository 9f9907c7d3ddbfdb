"""Fast JSON (orjson) for responses, Socket.IO frames and Redis payloads."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from typing import Any

import orjson
from flask.json.provider import JSONProvider

_OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC
# Non-string keys make orjson take a slower path for every dict: only used when needed.
_OPTIONS_NON_STR_KEYS = _OPTIONS | orjson.OPT_NON_STR_KEYS


def _default(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def dumps(value: Any) -> bytes:
    """Serialise to JSON bytes; datetimes become ISO-8601 UTC with ``Z``."""
    try:
        return orjson.dumps(value, default=_default, option=_OPTIONS)
    except TypeError:
        return orjson.dumps(value, default=_default, option=_OPTIONS_NON_STR_KEYS)


def raw_json(text: str | None) -> orjson.Fragment | None:
    """JSON text from the database, embedded in a response as it is (not parsed again)."""
    return None if text is None else orjson.Fragment(text)


def dumps_str(value: Any) -> str:
    return dumps(value).decode()


def loads(data: bytes | bytearray | memoryview | str) -> Any:
    return orjson.loads(data)


def isoformat(value: dt.datetime | None) -> str | None:
    """ISO-8601 UTC with a ``Z`` suffix (naive values are taken as UTC)."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


class OrjsonProvider(JSONProvider):
    """Quart/Flask JSON provider backed by orjson."""

    mimetype = "application/json"

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        return dumps_str(obj)

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return orjson.loads(s)


class SocketJSON:
    """The ``json`` module interface python-socketio expects, backed by orjson."""

    @staticmethod
    def dumps(obj: Any, *args: Any, **kwargs: Any) -> str:
        return dumps_str(obj)

    @staticmethod
    def loads(s: str | bytes, *args: Any, **kwargs: Any) -> Any:
        return orjson.loads(s)
