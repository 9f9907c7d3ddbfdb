"""Latest indicator values per (symbol, indicator type), daily and intraday."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, Final, Literal

import asyncpg
from typing_extensions import TypedDict

__all__ = ["SOURCES", "IndicatorItem", "Source", "build_latest_query", "select_latest_indicators"]

Source = Literal["daily", "intraday"]
SOURCES: Final[tuple[Source, ...]] = ("daily", "intraday")


class IndicatorItem(TypedDict):
    symbol: str
    source: Source
    indicator: str
    value: Any
    timeframe: str | None
    calculated_at: dt.datetime
    metadata: Any


# DISTINCT ON walks {table}_symbol_type_time_idx (symbol, indicator_type, time DESC): the first
# row of each (symbol, type) group is the latest.
_BRANCH: Final = (
    "SELECT DISTINCT ON (symbol, indicator_type) '{source}'::text AS source, symbol,"
    " indicator_type, value_data, timeframe, calculation_timestamp, metadata"
    " FROM {source}_indicators WHERE symbol = ANY($1::text[])"
    " ORDER BY symbol, indicator_type, calculation_timestamp DESC"
)


def build_latest_query(sources: Sequence[Source]) -> str:
    """SQL of :func:`select_latest_indicators` (exposed for EXPLAIN tests); ``$1`` = symbols."""
    if not sources or any(source not in SOURCES for source in sources):
        raise ValueError(f"sources must be some of {SOURCES}")
    branches = [_BRANCH.format(source=source) for source in sorted(set(sources))]
    if len(branches) == 1:
        return branches[0]
    union = " UNION ALL ".join(f"({branch})" for branch in branches)
    return (
        "SELECT source, symbol, indicator_type, value_data, timeframe, calculation_timestamp,"
        f" metadata FROM ({union}) AS latest ORDER BY symbol, source, indicator_type"
    )


async def select_latest_indicators(
    conn: asyncpg.Connection, symbols: Sequence[str], sources: Sequence[Source] = SOURCES
) -> list[IndicatorItem]:
    """The latest value of every indicator type of ``symbols``, by symbol, source, type."""
    rows = await conn.fetch(build_latest_query(sources), list(symbols))
    return [
        {
            "symbol": row["symbol"],
            "source": row["source"],
            "indicator": row["indicator_type"],
            "value": row["value_data"],
            "timeframe": row["timeframe"],
            "calculated_at": row["calculation_timestamp"],
            "metadata": row["metadata"],
        }
        for row in rows
    ]
