"""Market breadth from ``ohlcv_daily`` and detection counts from the pattern tables.

Definitions (every figure is counted over the symbols with a bar on the day):

- advancer / decliner / unchanged: the day's close above / below / equal to the symbol's
  previous bar's close (a symbol without a previous bar is not counted in any of the three);
- new 52-week high / low: the day's high above the highest high (low below the lowest low) of
  the symbol's bars of the 364 days before it (from the day minus 364 days) (a symbol with no earlier bar is not counted);
- above the 50- / 200-day average: the close above the mean close of the symbol's last 50 / 200
  bars up to and including the day (the share is over symbols with at least that many bars).
"""

from __future__ import annotations

import datetime as dt
from typing import Final

import asyncpg
from typing_extensions import TypedDict

from tickstock.queries.patterns import TABLE_TIERS

__all__ = [
    "BREADTH_SQL",
    "DETECTION_COUNTS_SQL",
    "LATEST_DAY_SQL",
    "OVERVIEW_SQL",
    "SERIES_START_SQL",
    "Breadth",
    "BreadthDay",
    "DetectionCount",
    "Mover",
    "SectorBreadth",
    "latest_day",
    "select_breadth_series",
    "select_detection_counts",
    "select_overview",
]

# The latest trading day and how many bars it has (the cache key of the bar-derived figures).
LATEST_DAY_SQL: Final = (
    "SELECT d.date, (SELECT count(*) FROM ohlcv_daily AS o WHERE o.date = d.date) AS bars"
    " FROM (SELECT max(date) AS date FROM ohlcv_daily) AS d"
)


class Breadth(TypedDict):
    """Breadth figures of one day (shares are 0-1, None when no symbol qualifies)."""

    symbols: int
    advancers: int
    decliners: int
    unchanged: int
    new_highs: int
    new_lows: int
    above_50d: float | None
    above_200d: float | None


class BreadthDay(Breadth):
    date: dt.date


class SectorBreadth(Breadth):
    sector: str


class Mover(TypedDict):
    symbol: str
    name: str | None
    sector: str | None
    close: float
    change_pct: float


class DetectionCount(TypedDict):
    """Detections of the last 1, 7 and 30 days for one tier or one sector."""

    key: str
    last_1d: int
    last_7d: int
    last_30d: int


# Per symbol on day $1: the bar, the previous bar, the 52-week extremes before it, and the 50-
# and 200-bar average closes. The year of bars is one range read of the (date) index.
_PER_SYMBOL: Final = """
    SELECT t.symbol, t.close, t.high, t.low,
           (SELECT p.close FROM ohlcv_daily AS p WHERE p.symbol = t.symbol AND p.date < t.date
            ORDER BY p.date DESC LIMIT 1) AS prev_close,
           y.prior_high, y.prior_low, y.sma50, y.sma200
    FROM ohlcv_daily AS t
    LEFT JOIN (
        SELECT symbol,
               max(high) FILTER (WHERE date < $1::date) AS prior_high,
               min(low) FILTER (WHERE date < $1::date) AS prior_low,
               CASE WHEN count(*) FILTER (WHERE rn <= 50) = 50
                    THEN avg(close) FILTER (WHERE rn <= 50) END AS sma50,
               CASE WHEN count(*) FILTER (WHERE rn <= 200) = 200
                    THEN avg(close) FILTER (WHERE rn <= 200) END AS sma200
        FROM (SELECT symbol, date, high, low, close,
                     row_number() OVER (PARTITION BY symbol ORDER BY date DESC) AS rn
              FROM ohlcv_daily WHERE date >= $1::date - 364 AND date <= $1::date) AS w
        GROUP BY symbol
    ) AS y ON y.symbol = t.symbol
    WHERE t.date = $1::date
"""

_FIGURES: Final = """
    count(*)::int AS symbols,
    count(*) FILTER (WHERE close > prev_close)::int AS advancers,
    count(*) FILTER (WHERE close < prev_close)::int AS decliners,
    count(*) FILTER (WHERE close = prev_close)::int AS unchanged,
    count(*) FILTER (WHERE high > prior_high)::int AS new_highs,
    count(*) FILTER (WHERE low < prior_low)::int AS new_lows,
    (count(*) FILTER (WHERE close > sma50))::float8
        / nullif(count(sma50), 0) AS above_50d,
    (count(*) FILTER (WHERE close > sma200))::float8
        / nullif(count(sma200), 0) AS above_200d
"""

OVERVIEW_SQL: Final = f"""
WITH b AS ({_PER_SYMBOL}),
bs AS (
    SELECT b.*, sy.name, sy.sector,
           CASE WHEN b.prev_close > 0 THEN (b.close / b.prev_close - 1.0) * 100.0 END
               AS change_pct
    FROM b LEFT JOIN symbols AS sy ON sy.symbol = b.symbol
)
SELECT 'market' AS kind, NULL::text AS sector, {_FIGURES},
       NULL::text AS symbol, NULL::text AS name, NULL::float8 AS close, NULL::float8 AS change_pct
FROM bs
UNION ALL
SELECT 'sector', sector, {_FIGURES}, NULL, NULL, NULL, NULL
FROM bs WHERE sector IS NOT NULL GROUP BY sector
UNION ALL
(SELECT 'gainer', sector, 0, 0, 0, 0, 0, 0, NULL, NULL, symbol, name, close, change_pct
 FROM bs WHERE change_pct > 0 ORDER BY change_pct DESC, symbol LIMIT $2)
UNION ALL
(SELECT 'loser', sector, 0, 0, 0, 0, 0, 0, NULL, NULL, symbol, name, close, change_pct
 FROM bs WHERE change_pct < 0 ORDER BY change_pct ASC, symbol LIMIT $2)
"""

# The daily series: one pass of window functions over each symbol's bars (the year before the
# first day is read too, for the 52-week extremes and the 200-bar average).
BREADTH_SQL: Final = """
WITH w AS (
    SELECT date, close, high, low,
           lag(close) OVER s AS prev_close,
           max(high) OVER (s RANGE BETWEEN '364 days' PRECEDING AND '1 day' PRECEDING)
               AS prior_high,
           min(low) OVER (s RANGE BETWEEN '364 days' PRECEDING AND '1 day' PRECEDING)
               AS prior_low,
           CASE WHEN count(*) OVER (s ROWS 49 PRECEDING) = 50
                THEN avg(close::numeric) OVER (s ROWS 49 PRECEDING) END AS sma50,
           CASE WHEN count(*) OVER (s ROWS 199 PRECEDING) = 200
                THEN avg(close::numeric) OVER (s ROWS 199 PRECEDING) END AS sma200
    FROM ohlcv_daily
    WHERE date >= $1::date - 364 AND date <= $2
    WINDOW s AS (PARTITION BY symbol ORDER BY date)
)
SELECT date,
    count(*)::int AS symbols,
    count(*) FILTER (WHERE close > prev_close)::int AS advancers,
    count(*) FILTER (WHERE close < prev_close)::int AS decliners,
    count(*) FILTER (WHERE close = prev_close)::int AS unchanged,
    count(*) FILTER (WHERE high > prior_high)::int AS new_highs,
    count(*) FILTER (WHERE low < prior_low)::int AS new_lows,
    (count(*) FILTER (WHERE close > sma50))::float8 / nullif(count(sma50), 0) AS above_50d,
    (count(*) FILTER (WHERE close > sma200))::float8 / nullif(count(sma200), 0) AS above_200d
FROM w WHERE date >= $1
GROUP BY date ORDER BY date
"""

# The first of the last $1 trading days up to $2 (a walk down the (date) index, one row a day).
SERIES_START_SQL: Final = """
WITH RECURSIVE days(date, n) AS (
    SELECT $2::date, 1
    UNION ALL
    SELECT (SELECT max(o.date) FROM ohlcv_daily AS o WHERE o.date < days.date), n + 1
    FROM days WHERE n < $1 AND days.date IS NOT NULL
)
SELECT min(date) FROM days
"""


def _detection_branches() -> str:
    branches = [
        f"SELECT '{tier}' AS tier, symbol, detection_timestamp AS at FROM {tier}_patterns"
        " WHERE detection_timestamp >= $1::timestamptz - interval '30 days'"
        for tier in TABLE_TIERS
    ]
    branches.append(
        "SELECT 'combo', symbol, detected_at FROM pattern_detections"
        " WHERE detected_at >= $1::timestamptz - interval '30 days'"
    )
    return " UNION ALL ".join(branches)


_COUNTS: Final = (
    "count(*) FILTER (WHERE at >= $1::timestamptz - interval '1 day')::int AS last_1d,"
    " count(*) FILTER (WHERE at >= $1::timestamptz - interval '7 days')::int AS last_7d,"
    " count(*)::int AS last_30d"
)

# Detections of the last 1 / 7 / 30 days (before $1, the request time) by tier and by sector.
DETECTION_COUNTS_SQL: Final = f"""
WITH d AS (SELECT tier, symbol, at FROM ({_detection_branches()}) AS u WHERE at <= $1::timestamptz)
SELECT 'tier' AS kind, tier AS key, {_COUNTS} FROM d GROUP BY tier
UNION ALL
SELECT 'sector', coalesce(sy.sector, 'Unknown'), {_COUNTS}
FROM d LEFT JOIN symbols AS sy ON sy.symbol = d.symbol
GROUP BY coalesce(sy.sector, 'Unknown')
"""


def _breadth(row: asyncpg.Record) -> Breadth:
    return {
        "symbols": row["symbols"],
        "advancers": row["advancers"],
        "decliners": row["decliners"],
        "unchanged": row["unchanged"],
        "new_highs": row["new_highs"],
        "new_lows": row["new_lows"],
        "above_50d": row["above_50d"],
        "above_200d": row["above_200d"],
    }


async def latest_day(conn: asyncpg.Connection) -> tuple[dt.date | None, int]:
    """The latest trading day in ``ohlcv_daily`` and its number of bars."""
    row = await conn.fetchrow(LATEST_DAY_SQL)
    assert row is not None
    return row["date"], row["bars"]


async def select_overview(
    conn: asyncpg.Connection, day: dt.date, movers: int
) -> tuple[Breadth, list[SectorBreadth], list[Mover], list[Mover]]:
    """Breadth of ``day`` for the market and each sector, and its top ``movers`` each way."""
    market: Breadth | None = None
    sectors: list[SectorBreadth] = []
    gainers: list[Mover] = []
    losers: list[Mover] = []
    for row in await conn.fetch(OVERVIEW_SQL, day, movers):
        kind = row["kind"]
        if kind == "market":
            market = _breadth(row)
        elif kind == "sector":
            sectors.append({"sector": row["sector"], **_breadth(row)})
        else:
            mover: Mover = {
                "symbol": row["symbol"],
                "name": row["name"],
                "sector": row["sector"],
                "close": row["close"],
                "change_pct": row["change_pct"],
            }
            (gainers if kind == "gainer" else losers).append(mover)
    assert market is not None
    sectors.sort(key=lambda s: s["sector"])
    return market, sectors, gainers, losers


async def select_breadth_series(
    conn: asyncpg.Connection, day: dt.date, days: int
) -> list[BreadthDay]:
    """The breadth of each of the last ``days`` trading days up to ``day``, oldest first."""
    start = await conn.fetchval(SERIES_START_SQL, days, day)
    if start is None:
        return []
    return [
        {"date": row["date"], **_breadth(row)} for row in await conn.fetch(BREADTH_SQL, start, day)
    ]


async def select_detection_counts(
    conn: asyncpg.Connection, now: dt.datetime
) -> tuple[list[DetectionCount], list[DetectionCount]]:
    """Detections of the last 1 / 7 / 30 days by tier and by sector (largest first)."""
    by_tier: list[DetectionCount] = []
    by_sector: list[DetectionCount] = []
    for row in await conn.fetch(DETECTION_COUNTS_SQL, now):
        count: DetectionCount = {
            "key": row["key"],
            "last_1d": row["last_1d"],
            "last_7d": row["last_7d"],
            "last_30d": row["last_30d"],
        }
        (by_tier if row["kind"] == "tier" else by_sector).append(count)
    by_tier.sort(key=lambda c: (-c["last_30d"], c["key"]))
    by_sector.sort(key=lambda c: (-c["last_30d"], c["key"]))
    return by_tier, by_sector
