"""The screener: the latest detections of a tier window with price, change and indicators.

One row per (symbol, pattern): the latest detection of that pattern for that symbol inside the
tier's window (``TIER_WINDOWS``), so a pattern that fired five times this week is one row.

Where the figures come from:

- ``rsi``, ``rs``, ``rel_volume``: the detection's own ``pattern_data.indicators`` (the values
  the producer saw when it detected the pattern) where present and numeric, else the symbol's
  latest ``daily_indicators`` row of type ``RSI``, ``RS`` and ``RelVolume``
  (``value_data.value``). ``RS`` is the producer's relative strength rating (1-99, the
  percentile rank of the symbol's three-month return); ``RelVolume`` the day's volume over its
  20-session average.
- ``price``: the detection's price (as every view of a detection reads it: ``pattern_data.price``,
  ``price_at_detection`` for the combo tier), else the symbol's latest close in ``ohlcv_daily``.
- ``change_pct``: the latest daily bar's close against the bar before it, in percent.

Sorting is keyset-paginated on (sort value, id); rows without a value for the sort column come
last in both directions.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

import asyncpg

from tickstock.detection import Detection, plain_levels, priority
from tickstock.jsonutil import raw_json
from tickstock.pagination import CursorKind
from tickstock.queries._sql import Params
from tickstock.queries.patterns import iso_ms, json_number, stored_price, timeframe_of
from tickstock.vocab import Tier

__all__ = [
    "SORT_FIELDS",
    "ScanFilter",
    "ScanItem",
    "ScanKey",
    "ScanRow",
    "SortField",
    "build_scan_query",
    "select_scan",
]

SortField = Literal["confidence", "detected", "rs", "rel_volume", "rsi", "change", "symbol"]
SORT_FIELDS: Final[tuple[SortField, ...]] = (
    "confidence",
    "detected",
    "rs",
    "rel_volume",
    "rsi",
    "change",
    "symbol",
)
# Sort field -> (column of the result, the kind of its cursor value, may it be NULL).
_SORT_COLUMNS: Final[dict[SortField, tuple[str, CursorKind, bool]]] = {
    "confidence": ("confidence", "float", False),
    "detected": ("detection_timestamp", "time", False),
    "rs": ("rs", "float", True),
    "rel_volume": ("rel_volume", "float", True),
    "rsi": ("rsi", "float", True),
    "change": ("change_pct", "float", True),
    "symbol": ('symbol COLLATE "C"', "text", False),
}


class ScanItem(Detection):
    """One screener row: a symbol's latest detection of one pattern (the Detection every view
    carries; a detection stored without a price shows the latest close), with its market
    figures."""

    id: int
    name: str | None
    sector: str | None
    change_pct: float | None
    rs: float | None
    rel_volume: float | None
    rsi: float | None


@dataclass(frozen=True, slots=True)
class ScanFilter:
    """The screener's filters; ``None`` leaves a filter out. Bounds are inclusive."""

    since: dt.datetime
    patterns: Sequence[str] | None = None
    sectors: Sequence[str] | None = None
    min_confidence: float | None = None
    rs_min: float | None = None
    rel_volume_min: float | None = None
    rsi_min: float | None = None
    rsi_max: float | None = None
    price_min: float | None = None
    price_max: float | None = None
    market_cap_min: int | None = None


@dataclass(frozen=True, slots=True)
class ScanKey:
    """Where the next page starts: the last row's sort value (None = no value) and id."""

    value: float | dt.datetime | str | None
    id: int


ScanRow = tuple[ScanItem, float | dt.datetime | str | None]
"""A row and the value it is sorted by (the exact stored time for ``detected``)."""


def sort_kind(field: SortField) -> tuple[CursorKind, bool]:
    """(cursor kind of the sort value, whether it may be NULL)."""
    _, kind, nullable = _SORT_COLUMNS[field]
    return kind, nullable


_number = json_number


def _latest_indicator(kind: str) -> str:
    return (
        f"(SELECT {_number('value', 'i.value_data')} FROM daily_indicators AS i"
        f" WHERE i.symbol = s.symbol AND i.indicator_type = '{kind}'"
        " ORDER BY i.calculation_timestamp DESC LIMIT 1)"
    )


def _detections(tier: Tier, params: Params, flt: ScanFilter) -> str:
    """The latest detection per (symbol, pattern) of ``tier`` since ``flt.since``."""
    conditions: list[str] = []
    if tier == "combo":
        time, pattern = "d.detected_at", "pd.name"
        price = f"coalesce(d.price_at_detection::float8, {stored_price('d.pattern_data')})"
        source = "pattern_detections AS d JOIN pattern_definitions AS pd ON pd.id = d.pattern_id"
        conditions.append("pd.enabled")
        shape = "NULL::text AS timeframe, NULL::text AS expires_at, NULL::float8[] AS levels"
    else:
        time, pattern, price = (
            "d.detection_timestamp",
            "d.pattern_type",
            stored_price("d.pattern_data"),
        )
        source = f"{tier}_patterns AS d"
        expiry = (
            "expiration_date" if tier in ("daily", "weekly", "monthly") else "expiration_timestamp"
        )
        shape = (
            f"d.timeframe, {iso_ms(f'd.{expiry}::timestamptz')} AS expires_at,"
            " d.levels::float8[] AS levels"
        )
    conditions.append(f"{time} >= {params.add(flt.since)}")
    if flt.patterns:
        conditions.append(f"{pattern} = ANY({params.add(list(flt.patterns), '::text[]')})")
    if flt.min_confidence is not None:
        conditions.append(f"d.confidence >= {params.add(flt.min_confidence, '::float8')}")
    return (
        f"SELECT DISTINCT ON (d.symbol, {pattern}) d.id, d.symbol, {pattern} AS pattern,"
        f" d.confidence::float8 AS confidence, {time} AS detection_timestamp,"
        f" {iso_ms(time)} AS detected_at, {shape}, {price} AS stored_price, {price} AS price,"
        " CASE WHEN jsonb_typeof(d.pattern_data -> 'indicators') = 'object'"
        " THEN (d.pattern_data -> 'indicators')::text ELSE '{}' END AS indicators,"
        f" {_number('indicators,rsi')} AS rsi, {_number('indicators,rs')} AS rs,"
        f" {_number('indicators,rel_volume')} AS rel_volume"
        f" FROM {source} WHERE {' AND '.join(conditions)}"
        f" ORDER BY d.symbol, {pattern}, {time} DESC, d.id DESC"
    )


def _keyset(params: Params, field: SortField, descending: bool, after: ScanKey) -> str:
    column, kind, nullable = _SORT_COLUMNS[field]
    op = "<" if descending else ">"
    ident = params.add(after.id, "::bigint")
    if after.value is None:
        # The cursor is among the rows without a value: only those, by id, remain.
        return f"({column.split(' ')[0]} IS NULL AND id {op} {ident})"
    cast = {"float": "::float8", "time": "::timestamptz", "text": "::text"}[kind]
    value = params.add(after.value, cast)
    if kind == "text":
        value = f'{value} COLLATE "C"'
    condition = f"({column}, id) {op} ({value}, {ident})"
    if nullable:
        condition = f"({condition} OR {column} IS NULL)"
    return condition


def build_scan_query(
    tier: Tier,
    flt: ScanFilter,
    *,
    sort: SortField,
    descending: bool,
    after: ScanKey | None,
    limit: int,
) -> tuple[str, list[object]]:
    """SQL and arguments of :func:`select_scan` (exposed for EXPLAIN tests)."""
    params = Params()
    detections = _detections(tier, params, flt)
    outer: list[str] = []
    joined: list[str] = []
    if flt.sectors:
        joined.append(f"sy.sector = ANY({params.add(list(flt.sectors), '::text[]')})")
    if flt.market_cap_min is not None:
        joined.append(f"sy.market_cap >= {params.add(flt.market_cap_min, '::bigint')}")
    bounds = (
        ("rs", ">=", flt.rs_min),
        ("rel_volume", ">=", flt.rel_volume_min),
        ("rsi", ">=", flt.rsi_min),
        ("rsi", "<=", flt.rsi_max),
        ("price", ">=", flt.price_min),
        ("price", "<=", flt.price_max),
    )
    for column, op, bound in bounds:
        if bound is not None:
            outer.append(f"{column} {op} {params.add(bound, '::float8')}")
    if after is not None:
        outer.append(_keyset(params, sort, descending, after))
    column = _SORT_COLUMNS[sort][0]
    direction = "DESC" if descending else "ASC"
    where = f" WHERE {' AND '.join(outer)}" if outer else ""
    joined_where = f" WHERE {' AND '.join(joined)}" if joined else ""
    sql = (
        f"WITH d AS ({detections}),"
        " s AS (SELECT DISTINCT symbol FROM d),"
        " latest AS ("
        "  SELECT s.symbol, bars.close, bars.prev_close,"
        f"  {_latest_indicator('RSI')} AS rsi, {_latest_indicator('RS')} AS rs,"
        f"  {_latest_indicator('RelVolume')} AS rel_volume"
        "  FROM s LEFT JOIN LATERAL ("
        "   SELECT (array_agg(b.close ORDER BY b.date DESC))[1] AS close,"
        "    (array_agg(b.close ORDER BY b.date DESC))[2] AS prev_close"
        "   FROM (SELECT o.close, o.date FROM ohlcv_daily AS o WHERE o.symbol = s.symbol"
        "         ORDER BY o.date DESC LIMIT 2) AS b"
        "  ) AS bars ON true),"
        " r AS ("
        "  SELECT d.id, d.symbol, sy.name, sy.sector, d.pattern, d.confidence,"
        "   d.detection_timestamp, d.detected_at, d.timeframe, d.expires_at, d.levels,"
        "   d.indicators, d.stored_price, coalesce(d.price, l.close) AS price,"
        "   CASE WHEN l.prev_close > 0 THEN (l.close / l.prev_close - 1.0) * 100.0 END"
        "    AS change_pct,"
        "   coalesce(d.rs, l.rs) AS rs, coalesce(d.rel_volume, l.rel_volume) AS rel_volume,"
        "   coalesce(d.rsi, l.rsi) AS rsi"
        "  FROM d JOIN latest AS l ON l.symbol = d.symbol"
        f"  LEFT JOIN symbols AS sy ON sy.symbol = d.symbol{joined_where})"
        " SELECT id, symbol, name, sector, pattern, confidence, detection_timestamp,"
        " detected_at, timeframe, expires_at, levels, indicators, stored_price, price,"
        f" change_pct, rs, rel_volume, rsi FROM r{where}"
        f" ORDER BY {column} {direction} NULLS LAST, id {direction}"
        f" LIMIT {params.add(limit, '::int')}"
    )
    return sql, params.values


async def select_scan(
    conn: asyncpg.Connection,
    tier: Tier,
    flt: ScanFilter,
    *,
    sort: SortField = "confidence",
    descending: bool = True,
    after: ScanKey | None = None,
    limit: int,
) -> list[ScanRow]:
    """Up to ``limit`` screener rows in ``sort`` order after ``after``, each with its sort value."""
    sql, args = build_scan_query(
        tier, flt, sort=sort, descending=descending, after=after, limit=limit
    )
    sort_column = _SORT_COLUMNS[sort][0].split(" ")[0]
    rows: list[ScanRow] = []
    for row in await conn.fetch(sql, *args):
        confidence: float = row["confidence"]
        item: ScanItem = {
            "id": row["id"],
            "symbol": row["symbol"],
            "name": row["name"],
            "sector": row["sector"],
            "pattern": row["pattern"],
            "tier": tier,
            "confidence": confidence,
            "priority": priority(confidence),
            "timeframe": timeframe_of(row["timeframe"], tier),
            "detected_at": row["detected_at"],
            "expires_at": row["expires_at"],
            "price": row["price"],
            "levels": plain_levels(row["levels"] or (), row["stored_price"]),
            "indicators": raw_json(row["indicators"]),  # type: ignore[typeddict-item]
            "change_pct": row["change_pct"],
            "rs": row["rs"],
            "rel_volume": row["rel_volume"],
            "rsi": row["rsi"],
        }
        rows.append((item, row[sort_column]))
    return rows
