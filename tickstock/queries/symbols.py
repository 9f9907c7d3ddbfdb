"""Symbols (search, detail, existence) and their daily bars."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Final

import asyncpg
from typing_extensions import TypedDict

from tickstock.queries._sql import Params, escape_like

__all__ = [
    "Bar",
    "SymbolDetail",
    "SymbolItem",
    "select_ohlcv",
    "select_symbol",
    "select_symbols",
    "select_unknown_symbols",
    "symbol_exists",
]


class SymbolItem(TypedDict):
    symbol: str
    name: str
    exchange: str | None
    type: str | None
    sector: str | None
    industry: str | None
    market_cap: int | None
    active: bool


class Bar(TypedDict):
    date: dt.date
    open: float
    high: float
    low: float
    close: float
    volume: int


class SymbolDetail(SymbolItem):
    last_bar: Bar | None


_COLUMNS: Final = "symbol, name, exchange, type, sector, industry, market_cap::bigint, active"
_BAR_COLUMNS: Final = (
    "date, open::float8 AS open, high::float8 AS high, low::float8 AS low,"
    " close::float8 AS close, volume::bigint AS volume"
)


def _symbol(row: asyncpg.Record) -> SymbolItem:
    return {
        "symbol": row["symbol"],
        "name": row["name"],
        "exchange": row["exchange"],
        "type": row["type"],
        "sector": row["sector"],
        "industry": row["industry"],
        "market_cap": row["market_cap"],
        "active": row["active"],
    }


def _bar(row: asyncpg.Record) -> Bar:
    return {
        "date": row["date"],
        "open": row["open"],
        "high": row["high"],
        "low": row["low"],
        "close": row["close"],
        "volume": row["volume"],
    }


async def symbol_exists(conn: asyncpg.Connection, symbol: str) -> bool:
    return bool(
        await conn.fetchval("SELECT EXISTS (SELECT 1 FROM symbols WHERE symbol = $1)", symbol)
    )


async def select_unknown_symbols(conn: asyncpg.Connection, symbols: Sequence[str]) -> list[str]:
    """Those of ``symbols`` that are not in the symbols table, in the given order (one query)."""
    if not symbols:
        return []
    rows = await conn.fetch(
        "SELECT wanted.symbol FROM unnest($1::text[]) WITH ORDINALITY AS wanted (symbol, n)"
        " WHERE NOT EXISTS (SELECT 1 FROM symbols AS s WHERE s.symbol = wanted.symbol)"
        " ORDER BY wanted.n",
        list(symbols),
    )
    return [row["symbol"] for row in rows]


def build_symbols_query(
    *,
    q: str | None,
    sector: str | None,
    active: bool | None,
    after: str | None,
    limit: int,
) -> tuple[str, list[object]]:
    """SQL and arguments of :func:`select_symbols` (exposed for EXPLAIN tests)."""
    params = Params()
    conditions: list[str] = []
    if q:
        conditions.append(
            f"(symbol LIKE {params.add(escape_like(q.upper()) + '%')}"
            f" OR name ILIKE {params.add('%' + escape_like(q) + '%')})"
        )
    if sector is not None:
        conditions.append(f"lower(sector) = lower({params.add(sector)})")
    if active is not None:
        conditions.append(f"active = {params.add(active)}")
    if after is not None:
        conditions.append(f"symbol > {params.add(after)}")
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    sql = (
        f"SELECT {_COLUMNS} FROM symbols{where} ORDER BY symbol LIMIT {params.add(limit, '::int')}"
    )
    return sql, params.values


async def select_symbols(
    conn: asyncpg.Connection,
    *,
    q: str | None = None,
    sector: str | None = None,
    active: bool | None = None,
    after: str | None = None,
    limit: int,
) -> list[SymbolItem]:
    """Symbols whose ticker starts with ``q`` or whose name contains it, by symbol."""
    sql, args = build_symbols_query(q=q, sector=sector, active=active, after=after, limit=limit)
    return [_symbol(row) for row in await conn.fetch(sql, *args)]


SYMBOL_DETAIL_SQL: Final = (
    f"SELECT {', '.join('s.' + c for c in _COLUMNS.split(', '))},"
    " b.date, b.open, b.high, b.low, b.close, b.volume"
    " FROM symbols AS s LEFT JOIN LATERAL ("
    f"SELECT {_BAR_COLUMNS} FROM ohlcv_daily WHERE symbol = s.symbol"
    " ORDER BY date DESC LIMIT 1) AS b ON true WHERE s.symbol = $1"
)


async def select_symbol(conn: asyncpg.Connection, symbol: str) -> SymbolDetail | None:
    """One symbol with its latest daily bar (None when the symbol does not exist)."""
    row = await conn.fetchrow(SYMBOL_DETAIL_SQL, symbol)
    if row is None:
        return None
    item = _symbol(row)
    return {**item, "last_bar": _bar(row) if row["date"] is not None else None}


def build_ohlcv_query(
    symbol: str, *, start: dt.date | None, end: dt.date | None, limit: int
) -> tuple[str, list[object]]:
    """SQL and arguments of :func:`select_ohlcv` (exposed for EXPLAIN tests)."""
    params = Params()
    conditions = [f"symbol = {params.add(symbol)}"]
    if start is not None:
        conditions.append(f"date >= {params.add(start)}")
    if end is not None:
        conditions.append(f"date <= {params.add(end)}")
    sql = (
        f"SELECT {_BAR_COLUMNS} FROM (SELECT date, open, high, low, close, volume"
        f" FROM ohlcv_daily WHERE {' AND '.join(conditions)}"
        f" ORDER BY date DESC LIMIT {params.add(limit, '::int')}) AS recent ORDER BY date"
    )
    return sql, params.values


async def select_ohlcv(
    conn: asyncpg.Connection,
    symbol: str,
    *,
    start: dt.date | None = None,
    end: dt.date | None = None,
    limit: int,
) -> list[Bar]:
    """The latest ``limit`` bars between ``start`` and ``end`` (inclusive), oldest first."""
    sql, args = build_ohlcv_query(symbol, start=start, end=end, limit=limit)
    return [_bar(row) for row in await conn.fetch(sql, *args)]
