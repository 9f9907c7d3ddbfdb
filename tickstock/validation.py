"""Shared request validation: symbols (SPEC §6), bounded text, timestamps, documented responses.

quart-schema validates query strings and bodies into pydantic models; the error handlers
(tickstock.errors) turn its validation errors into the SPEC §5 envelope, naming the parameter::

    {"status": "error", "code": "validation_error", "message": "limit: Input should be ..."}
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable
from typing import Annotated, Any, Final, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from quart import Quart, request
from quart_schema import document_response
from werkzeug.datastructures import MultiDict
from werkzeug.routing import IntegerConverter, Map

from tickstock.errors import APIError
from tickstock.realtime.events import SYMBOL_RE

__all__ = [
    "BIGINT_MAX",
    "MAX_JSON_DEPTH",
    "MAX_SYMBOLS",
    "ErrorBody",
    "PageMeta",
    "QueryModel",
    "SafeText",
    "SymbolCSV",
    "Timestamp",
    "check_symbols",
    "documented",
    "has_control_chars",
    "init_input_checks",
    "normalise_symbol",
    "parse_symbol",
    "parse_symbol_csv",
]

MAX_SYMBOLS: Final = 200
MAX_SYMBOL_CSV: Final = MAX_SYMBOLS * 11
SYMBOL_RULE: Final = "^[A-Z0-9][A-Z0-9.-]{0,9}$"

F = TypeVar("F", bound=Callable[..., Any])


def normalise_symbol(raw: str) -> str | None:
    """The upper-cased symbol, or None when it breaks the SPEC §6 rule."""
    if not raw.isascii():  # "ß".upper() == "SS": only ASCII may be upper-cased into a symbol
        return None
    symbol = raw.strip().upper()
    return symbol if SYMBOL_RE.fullmatch(symbol) else None


def parse_symbol(raw: str) -> str:
    """A path symbol, upper-cased; 400 ``invalid_symbol`` (never a query) otherwise."""
    symbol = normalise_symbol(raw)
    if symbol is None:
        raise APIError(400, "invalid_symbol", f"symbol must match {SYMBOL_RULE}")
    return symbol


def check_symbols(values: Iterable[str]) -> list[str]:
    """Upper-cased, de-duplicated (first occurrence wins), each valid; ValueError names the bad."""
    symbols: dict[str, None] = {}
    bad: list[str] = []
    for value in values:
        symbol = normalise_symbol(value)
        if symbol is None:
            bad.append(value[:20])
        else:
            symbols.setdefault(symbol)
    if bad:
        shown = ", ".join(repr(b) for b in bad[:5])
        raise ValueError(f"invalid symbol(s) {shown}; symbols must match {SYMBOL_RULE}")
    if len(symbols) > MAX_SYMBOLS:
        raise ValueError(f"at most {MAX_SYMBOLS} symbols")
    return list(symbols)


def parse_symbol_csv(value: str) -> list[str]:
    """``"aapl, msft"`` -> ``["AAPL", "MSFT"]``; empty items are skipped."""
    items = [item for item in value.split(",") if item.strip()]
    if not items:
        raise ValueError("give at least one symbol")
    return check_symbols(items)


# C0 and C1 control characters and DEL: PostgreSQL text cannot hold NUL, and none of them is
# meaningful in a name, a search or a setting; in a log line they would forge lines or colours.
CONTROL_CHARS: Final = re.compile("[\x00-\x1f\x7f-\x9f]")
CONTROL_CHARS_MESSAGE: Final = "control characters are not allowed"
BIGINT_MAX: Final = 2**63 - 1


def has_control_chars(value: str) -> bool:
    return CONTROL_CHARS.search(value) is not None


def _no_control_chars(value: str) -> str:
    if has_control_chars(value):
        raise ValueError(CONTROL_CHARS_MESSAGE)
    return value


MAX_JSON_DEPTH: Final = 32
NESTING_MESSAGE: Final = f"nested deeper than {MAX_JSON_DEPTH} levels"


class _TooDeep(Exception):
    """A decoded document nested deeper than ``MAX_JSON_DEPTH``."""


def _control_char_field(document: Any, where: str) -> str | None:
    """Where in a decoded JSON document or form a string holds a control character, or None.

    Walked with an explicit stack, not recursion: a body of a thousand nested lists must be a
    400, not a ``RecursionError``; deeper than ``MAX_JSON_DEPTH`` raises :class:`_TooDeep`
    (no request of this API nests more than a few levels).
    """
    stack: list[tuple[Any, str, int]] = [(document, where, 0)]
    while stack:
        value, name, depth = stack.pop()
        if isinstance(value, str):
            if has_control_chars(value):
                return name
            continue
        if isinstance(value, dict):
            items: Iterable[tuple[Any, Any]] = value.items()
        elif isinstance(value, list):
            items = enumerate(value)
        else:
            continue
        if depth >= MAX_JSON_DEPTH:
            raise _TooDeep
        children: list[tuple[Any, str, int]] = []
        for key, item in items:
            if isinstance(key, str) and has_control_chars(key):
                return name or "body"
            children.append((item, f"{name}.{key}" if name else str(key), depth + 1))
        stack.extend(reversed(children))  # first field first, as the message names one
    return None


def _refuse(field: str) -> APIError:
    return APIError(400, "validation_error", f"{field}: {CONTROL_CHARS_MESSAGE}")


async def reject_control_characters() -> None:
    """Refuse control characters in the path, query string, JSON body or form (400 naming them).

    Runs before every request, so no handler, query or log line ever sees them.
    """
    if has_control_chars(request.path):
        raise _refuse("path")
    _check_fields(request.args, "query")
    if request.method not in ("POST", "PUT", "PATCH", "DELETE"):
        return
    if request.is_json:
        try:
            document = await request.get_json(silent=True)
        except UnicodeDecodeError:
            return  # answered by the error handler when the route reads the body
        try:
            field = _control_char_field(document, "")
        except _TooDeep:
            raise APIError(400, "validation_error", f"body: {NESTING_MESSAGE}") from None
        if field is not None:
            raise _refuse(field or "body")
    elif request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        _check_fields(await request.form, "form")


def _check_fields(fields: MultiDict[str, str], what: str) -> None:
    for key, value in fields.items(multi=True):
        if has_control_chars(key):
            raise _refuse(what)
        if has_control_chars(value):
            raise _refuse(key)


class BigintConverter(IntegerConverter):
    """``<int:...>`` path segments within PostgreSQL's bigint: a larger id names nothing (404).

    ASCII digits only: werkzeug's ``\\d+`` and Python's ``int()`` also take fullwidth,
    Devanagari or Arabic-Indic digits, which would give one id many spellings.
    """

    regex = "[0-9]+"

    def __init__(self, map: Map, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", BIGINT_MAX)
        super().__init__(map, *args, **kwargs)


def init_input_checks(app: Quart) -> None:
    """Bounded ids in paths, and no control characters in any request text (see above)."""
    app.url_map.converters["int"] = BigintConverter
    app.before_request(reject_control_characters)


_EARLIEST: Final = dt.datetime(1900, 1, 1, tzinfo=dt.UTC)
_LATEST: Final = dt.datetime(2200, 1, 1, tzinfo=dt.UTC)


def _aware(value: dt.datetime) -> dt.datetime:
    # Naive timestamps are UTC, as everywhere in tickstock (SPEC §2).
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    # Bounded, so no far-off value can overflow on its way to PostgreSQL.
    if not _EARLIEST <= value <= _LATEST:
        raise ValueError("must be between 1900-01-01 and 2200-01-01")
    return value


SafeText = Annotated[str, AfterValidator(_no_control_chars)]
"""A string without control characters (NUL would reach PostgreSQL as an error)."""

Timestamp = Annotated[dt.datetime, AfterValidator(_aware)]
"""An ISO-8601 timestamp; naive values are UTC."""

SymbolCSV = Annotated[
    str,
    Field(
        max_length=MAX_SYMBOL_CSV,
        description=f"Comma-separated symbols (at most {MAX_SYMBOLS}), e.g. AAPL,MSFT,BRK.B",
    ),
    AfterValidator(lambda value: ",".join(parse_symbol_csv(value))),
]
"""A comma-separated symbol list, normalised to ``"AAPL,MSFT"`` (split it with ``split(",")``)."""


class QueryModel(BaseModel):
    """Base for query-string models: unknown parameters are a 400, not silently ignored."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class PageMeta(BaseModel):
    """Pagination of a list: pass ``next_cursor`` as ``cursor`` for the next page."""

    model_config = ConfigDict(extra="allow")

    count: int
    next_cursor: str | None
    limit: int


class ErrorBody(BaseModel):
    """The error envelope: a status, a snake_case code and a message in words."""

    status: Literal["error"]
    message: str
    code: str


def documented(model: type[BaseModel], *errors: int) -> Callable[[F], F]:
    """Document the 200 body ``model`` and the error envelope for each status in ``errors``."""

    def decorator(func: F) -> F:
        func = document_response(model, 200)(func)
        for status in (401, *errors):
            func = document_response(ErrorBody, status)(func)
        return func

    return decorator
