"""Symbols: search, detail and daily bars for charts."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, model_validator
from quart import Blueprint, Response
from quart_schema import validate_querystring

from tickstock.auth import login_required
from tickstock.conditional import HISTORY, REVALIDATE, body_etag
from tickstock.errors import APIError
from tickstock.extensions.database import get_db
from tickstock.pagination import DEFAULT_LIMIT, MAX_LIMIT, decode_cursor, paginate, success
from tickstock.queries.symbols import (
    Bar,
    SymbolDetail,
    SymbolItem,
    select_ohlcv,
    select_symbol,
    select_symbols,
    symbol_exists,
)
from tickstock.validation import PageMeta, QueryModel, SafeText, documented, parse_symbol

blueprint = Blueprint("symbols", __name__, url_prefix="/api/symbols")

OHLCV_DEFAULT_LIMIT = 260
OHLCV_MAX_LIMIT = 2000
_EARLIEST = dt.date(1900, 1, 1)
_LATEST = dt.date(2200, 1, 1)


class SymbolsQuery(QueryModel):
    q: Annotated[SafeText, Field(max_length=64)] | None = Field(
        None, description="Ticker prefix or name substring (case-insensitive)"
    )
    sector: Annotated[SafeText, Field(max_length=64)] | None = Field(
        None, description="Sector, case-insensitive, e.g. Information Technology"
    )
    active: bool | None = None
    limit: Annotated[int, Field(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT
    cursor: str | None = Field(None, description="next_cursor of the previous page (opaque)")


class OhlcvQuery(QueryModel):
    start: dt.date | None = Field(None, description="First date (inclusive), YYYY-MM-DD")
    end: dt.date | None = Field(None, description="Last date (inclusive), YYYY-MM-DD")
    limit: Annotated[int, Field(ge=1, le=OHLCV_MAX_LIMIT)] = Field(
        OHLCV_DEFAULT_LIMIT, description="At most this many bars: the latest in the range"
    )

    @model_validator(mode="after")
    def _ordered(self) -> OhlcvQuery:
        for name in ("start", "end"):
            value = getattr(self, name)
            if value is not None and not _EARLIEST <= value <= _LATEST:
                raise ValueError(f"{name}: must be between 1900-01-01 and 2200-01-01")
        if self.start is not None and self.end is not None and self.start > self.end:
            raise ValueError("end: must not be before start")
        return self


class SymbolPage(BaseModel):
    """Symbols in ticker order."""

    status: Literal["success"]
    data: list[SymbolItem]
    meta: PageMeta


class SymbolDetailBody(BaseModel):
    """One symbol with its latest daily bar."""

    status: Literal["success"]
    data: SymbolDetail
    meta: dict[str, Any]


class BarList(BaseModel):
    """Daily bars, oldest first."""

    status: Literal["success"]
    data: list[Bar]
    meta: dict[str, Any]


def _key(item: SymbolItem) -> tuple[str]:
    return (item["symbol"],)


@blueprint.get("")
@login_required
@validate_querystring(SymbolsQuery)
@documented(SymbolPage, 400)
async def search(query_args: SymbolsQuery) -> Response:
    """Search symbols by ticker prefix or name substring, optionally by sector, in ticker order."""
    q = query_args
    after = None
    if q.cursor is not None:
        (value,) = decode_cursor(q.cursor, ("text",))
        assert isinstance(value, str)
        after = value
    async with get_db().read() as conn:
        rows = await select_symbols(
            conn, q=q.q or None, sector=q.sector, active=q.active, after=after, limit=q.limit + 1
        )
    page = paginate(rows, q.limit, _key)
    return await body_etag(success(page.items, page.meta()))


@blueprint.get("/<symbol>")
@login_required
@documented(SymbolDetailBody, 400, 404)
async def detail(symbol: str) -> Response:
    """One symbol (name, exchange, sector, market cap) with its latest daily bar."""
    symbol = parse_symbol(symbol)
    async with get_db().read() as conn:
        item = await select_symbol(conn, symbol)
    if item is None:
        raise APIError(404, "symbol_not_found", f"unknown symbol {symbol}")
    return await body_etag(success(item))


@blueprint.get("/<symbol>/ohlcv")
@login_required
@validate_querystring(OhlcvQuery)
@documented(BarList, 400, 404)
async def ohlcv(symbol: str, query_args: OhlcvQuery) -> Response:
    """Daily bars, oldest first for charting: the latest ``limit`` (default 260) in start..end."""
    symbol = parse_symbol(symbol)
    q = query_args
    async with get_db().read() as conn:
        bars = await select_ohlcv(conn, symbol, start=q.start, end=q.end, limit=q.limit)
        if not bars and not await symbol_exists(conn, symbol):
            raise APIError(404, "symbol_not_found", f"unknown symbol {symbol}")
    response = success(
        bars,
        {"symbol": symbol, "count": len(bars), "limit": q.limit, "start": q.start, "end": q.end},
    )
    # Bars of days before today are history; today's bar changes until the close.
    past = q.end is not None and q.end < dt.datetime.now(dt.UTC).date()
    return await body_etag(response, HISTORY if past else REVALIDATE)
