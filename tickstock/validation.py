"""Shared request validation: symbols (SPEC §6), bounded text, timestamps, documented responses.

quart-schema validates query strings and bodies into pydantic models; the error handlers
(tickstock.errors) turn its validation errors into the SPEC §5 envelope, naming the parameter::

    {"status": "error", "code": "validation_error", "message": "limit: Input should be ..."}
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from typing import Annotated, Any, Final, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from quart_schema import document_response

from tickstock.errors import APIError
from tickstock.realtime.events import SYMBOL_RE

__all__ = [
    "MAX_SYMBOLS",
    "ErrorBody",
    "PageMeta",
    "QueryModel",
    "SafeText",
    "SymbolCSV",
    "Timestamp",
    "check_symbols",
    "documented",
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


def _no_control_chars(value: str) -> str:
    # PostgreSQL text cannot hold NUL; other control characters are never meaningful here.
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        raise ValueError("control characters are not allowed")
    return value


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
    """The error envelope (SPEC §5)."""

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
