"""Keyset pagination with opaque cursors, and the lean success envelope of list endpoints.

A cursor is the base64url (unpadded) of the orjson array of the last row's sort key, for example
``[1732631400000000, "daily", 4711]`` (detection time in epoch microseconds, tier, id). Clients
treat it as opaque; the server decodes it strictly and answers anything else with 400
``invalid_cursor``, so a cursor can never reach SQL as anything but typed parameters.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Generic, Literal, TypeVar

import orjson
from quart import Response

from tickstock.errors import APIError
from tickstock.jsonutil import dumps

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_CURSOR_LENGTH",
    "MAX_LIMIT",
    "CursorKind",
    "Page",
    "decode_cursor",
    "encode_cursor",
    "from_micros",
    "paginate",
    "success",
    "to_micros",
]

DEFAULT_LIMIT: Final = 50
MAX_LIMIT: Final = 500
MAX_CURSOR_LENGTH: Final = 256
_MAX_TEXT: Final = 64
_MAX_BIGINT: Final = 2**63 - 1
_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
# datetime's own range, in microseconds from the epoch.
_MIN_MICROS: Final = -62135596800_000000
_MAX_MICROS: Final = 253402300799_999999
_BASE64URL: Final = re.compile(r"[A-Za-z0-9_-]+")

CursorKind = Literal["time", "int", "text", "float"]
CursorValue = dt.datetime | int | float | str
T = TypeVar("T")


def to_micros(value: dt.datetime) -> int:
    """Exact epoch microseconds of an aware datetime (PostgreSQL's own precision)."""
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(value: int) -> dt.datetime:
    return _EPOCH + dt.timedelta(microseconds=value)


def encode_cursor(key: Sequence[CursorValue]) -> str:
    """The opaque cursor for a sort key (datetimes travel as epoch microseconds)."""
    values = [to_micros(v) if isinstance(v, dt.datetime) else v for v in key]
    return base64.urlsafe_b64encode(orjson.dumps(values)).rstrip(b"=").decode("ascii")


def _invalid() -> APIError:
    return APIError(400, "invalid_cursor", "cursor is not valid; use next_cursor as returned")


def decode_cursor(cursor: str, kinds: Sequence[CursorKind]) -> list[CursorValue]:
    """The sort key in ``cursor``, checked against ``kinds``; 400 ``invalid_cursor`` otherwise."""
    if len(cursor) > MAX_CURSOR_LENGTH or not _BASE64URL.fullmatch(cursor):
        raise _invalid()
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = orjson.loads(raw)
    except (binascii.Error, ValueError) as exc:
        raise _invalid() from exc
    if not isinstance(values, list) or len(values) != len(kinds):
        raise _invalid()
    key: list[CursorValue] = []
    for kind, value in zip(kinds, values, strict=True):
        if kind == "text":
            if not isinstance(value, str) or not 0 < len(value) <= _MAX_TEXT:
                raise _invalid()
            if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
                raise _invalid()
            key.append(value)
            continue
        if kind == "float":
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise _invalid()
            if not math.isfinite(value):
                raise _invalid()
            key.append(float(value))
            continue
        # bool is an int in Python, never in a cursor.
        if not isinstance(value, int) or isinstance(value, bool):
            raise _invalid()
        if kind == "time":
            if not _MIN_MICROS <= value <= _MAX_MICROS:
                raise _invalid()
            key.append(from_micros(value))
        else:
            if not 0 <= value <= _MAX_BIGINT:
                raise _invalid()
            key.append(value)
    return key


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of rows and the cursor of the next (None on the last page)."""

    items: list[T]
    next_cursor: str | None
    limit: int

    def meta(self, **extra: Any) -> dict[str, Any]:
        return {
            "count": len(self.items),
            "next_cursor": self.next_cursor,
            "limit": self.limit,
            **extra,
        }


def paginate(rows: list[T], limit: int, key: Callable[[T], Sequence[CursorValue]]) -> Page[T]:
    """A page from ``rows`` fetched with ``limit + 1``: the extra row only says "there is more"."""
    if len(rows) <= limit:
        return Page(rows, None, limit)
    items = rows[:limit]
    return Page(items, encode_cursor(key(items[-1])), limit)


def success(data: Any, meta: dict[str, Any] | None = None, status: int = 200) -> Response:
    """The success envelope, serialised once with orjson (no intermediate str or model pass)."""
    body = dumps({"status": "success", "data": data, "meta": meta or {}})
    return Response(body, status=status, mimetype="application/json")
