"""The span of the stored daily bars (``ohlcv_daily``): the dates a backtest may cover."""

from __future__ import annotations

import datetime as dt
from typing import Final

import asyncpg

__all__ = ["BAR_RANGE_SQL", "select_bar_range"]

# min/max walk the (date, symbol) index from either end.
BAR_RANGE_SQL: Final = "SELECT min(date) AS first, max(date) AS last FROM ohlcv_daily"


async def select_bar_range(conn: asyncpg.Connection) -> tuple[dt.date | None, dt.date | None]:
    """The first and last date with a daily bar (both None when none is stored)."""
    row = await conn.fetchrow(BAR_RANGE_SQL)
    assert row is not None
    return row["first"], row["last"]
