"""Indicators: the latest value of each indicator type, for one symbol or several."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field
from quart import Blueprint, Response
from quart_schema import validate_querystring

from tickstock.auth import login_required
from tickstock.conditional import body_etag
from tickstock.errors import APIError
from tickstock.extensions.database import get_db
from tickstock.pagination import success
from tickstock.queries.indicators import (
    SOURCES,
    IndicatorItem,
    Source,
    select_latest_indicators,
)
from tickstock.queries.symbols import symbol_exists
from tickstock.validation import QueryModel, SymbolCSV, documented, parse_symbol

blueprint = Blueprint("indicators", __name__, url_prefix="/api/indicators")


class SourceQuery(QueryModel):
    source: Source | None = Field(None, description="daily or intraday; both when absent")


class SymbolsQuery(SourceQuery):
    symbols: SymbolCSV


class IndicatorList(BaseModel):
    """Latest value per indicator type, ordered by symbol, source, indicator."""

    status: Literal["success"]
    data: list[IndicatorItem]
    meta: dict[str, Any]


def _sources(source: Source | None) -> tuple[Source, ...]:
    return SOURCES if source is None else (source,)


@blueprint.get("")
@login_required
@validate_querystring(SymbolsQuery)
@documented(IndicatorList, 400)
async def latest_for_symbols(query_args: SymbolsQuery) -> Response:
    """Latest value of every indicator type for each of ``symbols`` (one query for all)."""
    symbols = query_args.symbols.split(",")
    async with get_db().read() as conn:
        items = await select_latest_indicators(conn, symbols, _sources(query_args.source))
    found = {item["symbol"] for item in items}
    return await body_etag(
        success(
            items,
            {
                "count": len(items),
                "symbols": symbols,
                "without_data": [symbol for symbol in symbols if symbol not in found],
            },
        )
    )


@blueprint.get("/<symbol>")
@login_required
@validate_querystring(SourceQuery)
@documented(IndicatorList, 400, 404)
async def latest_for_symbol(symbol: str, query_args: SourceQuery) -> Response:
    """Latest value of every indicator type of one symbol; 404 for an unknown symbol."""
    symbol = parse_symbol(symbol)
    async with get_db().read() as conn:
        items = await select_latest_indicators(conn, [symbol], _sources(query_args.source))
        if not items and not await symbol_exists(conn, symbol):
            raise APIError(404, "symbol_not_found", f"unknown symbol {symbol}")
    return await body_etag(success(items, {"count": len(items), "symbol": symbol}))
