"""Pattern history across the producer's tier tables, newest first, keyset-paginated.

Sort order everywhere: ``detection time DESC, tier DESC, id DESC`` (tier compared as ASCII text).
Within one table that is the ``(detection_timestamp DESC, id DESC)`` order its indexes serve; the
tier only breaks ties between tables whose ids may collide. Each branch of a multi-tier query is
an index scan bounded by the page size, and the page is merged from those few rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, NotRequired

import asyncpg
from typing_extensions import TypedDict

from tickstock.jsonutil import raw_json
from tickstock.queries._sql import Params
from tickstock.vocab import TIERS, Tier

__all__ = [
    "TABLE_TIERS",
    "TIER_WINDOWS",
    "ComboItem",
    "PatternDefinition",
    "PatternFilter",
    "PatternItem",
    "PatternKey",
    "Priority",
    "priority",
    "select_combo",
    "select_combo_versioned",
    "select_pattern_definitions",
    "select_patterns",
    "select_patterns_versioned",
]

Priority = Literal["CRITICAL", "HIGH", "MEDIUM", "LOW"]

# Tiers stored as one pattern table each; "combo" is pattern_detections (another shape).
TABLE_TIERS: Final[tuple[Tier, ...]] = tuple(t for t in TIERS if t != "combo")

# How far back GET /api/patterns/tiers/<tier> looks, measured from the request time.
TIER_WINDOWS: Final[dict[Tier, dt.timedelta]] = {
    "daily": dt.timedelta(days=7),
    "intraday": dt.timedelta(hours=24),
    "hourly": dt.timedelta(hours=48),
    "weekly": dt.timedelta(weeks=8),
    "monthly": dt.timedelta(days=365),
    "combo": dt.timedelta(days=30),
    "daily_intraday": dt.timedelta(hours=72),
}

_EXPIRY_COLUMN: Final[dict[Tier, str]] = {
    "daily": "expiration_date",
    "weekly": "expiration_date",
    "monthly": "expiration_date",
    "intraday": "expiration_timestamp",
    "hourly": "expiration_timestamp",
    "daily_intraday": "expiration_timestamp",
}
_COLUMNS: Final = (
    "id, symbol, pattern_type, confidence::float8 AS confidence, detection_timestamp,"
    " {expiry}::timestamptz AS expires_at, levels::float8[] AS levels, timeframe,"
    " pattern_data::text AS pattern_data, metadata::text AS metadata,"
    " '{tier}:' || id || ':' || xmin::text || ';' AS version"
)
# JSON columns are read as text and passed through to the response as they are (raw_json): no
# decode into Python objects and encode again for every row of every page.
_LINK_COLUMNS: Final = (
    "daily_pattern_id, daily_pattern_timestamp, intraday_signal::text AS intraday_signal"
)
_NO_LINK_COLUMNS: Final = (
    "NULL::bigint AS daily_pattern_id, NULL::timestamptz AS daily_pattern_timestamp,"
    " NULL::text AS intraday_signal"
)
_OUTER_COLUMNS: Final = (
    "tier, id, symbol, pattern_type, confidence, detection_timestamp, expires_at, levels,"
    " timeframe, pattern_data, metadata, daily_pattern_id, daily_pattern_timestamp,"
    " intraday_signal, version"
)


def priority(confidence: float) -> Priority:
    """CRITICAL >= 0.9, HIGH >= 0.8, MEDIUM >= 0.7, else LOW."""
    if confidence >= 0.9:
        return "CRITICAL"
    if confidence >= 0.8:
        return "HIGH"
    if confidence >= 0.7:
        return "MEDIUM"
    return "LOW"


@dataclass(frozen=True, slots=True)
class PatternFilter:
    """Optional filters; ``since`` is inclusive, ``until`` exclusive."""

    symbols: Sequence[str] | None = None
    pattern: str | None = None
    confidence_min: float | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class PatternKey:
    """The sort key of a row: where the next page starts (exclusive)."""

    detected_at: dt.datetime
    tier: str
    id: int


# Row shapes are TypedDicts (typing_extensions', which pydantic reads on Python 3.11): built
# from the SQL rows here, serialised as they are, and described to OpenAPI by the blueprints.


class PatternItem(TypedDict):
    """A detection from one of the tier tables, as the API returns it."""

    id: int
    tier: Tier
    symbol: str
    pattern: str
    confidence: float
    priority: Priority
    timeframe: str | None
    detected_at: dt.datetime
    expires_at: dt.datetime | None
    levels: list[float | None] | None
    pattern_data: Any
    metadata: Any
    daily_pattern_id: NotRequired[int | None]
    daily_pattern_timestamp: NotRequired[dt.datetime | None]
    intraday_signal: NotRequired[Any]


class ComboItem(TypedDict):
    """A detection of the combo tier (pattern_detections) with its later outcomes."""

    id: int
    tier: Literal["combo"]
    symbol: str
    pattern: str
    pattern_id: int
    category: str | None
    confidence: float
    priority: Priority
    detected_at: dt.datetime
    price: float | None
    volume: int | None
    pattern_data: Any
    outcome_1d: float | None
    outcome_5d: float | None
    outcome_30d: float | None


def _filters(
    params: Params, flt: PatternFilter, *, time_column: str, prefix: str = ""
) -> list[str]:
    conditions: list[str] = []
    if flt.symbols:
        if len(flt.symbols) == 1:
            conditions.append(f"{prefix}symbol = {params.add(flt.symbols[0])}")
        else:
            conditions.append(f"{prefix}symbol = ANY({params.add(list(flt.symbols), '::text[]')})")
    if flt.confidence_min is not None:
        conditions.append(f"{prefix}confidence >= {params.add(flt.confidence_min, '::float8')}")
    if flt.since is not None:
        conditions.append(f"{prefix}{time_column} >= {params.add(flt.since)}")
    if flt.until is not None:
        conditions.append(f"{prefix}{time_column} < {params.add(flt.until)}")
    return conditions


def _after(tier: str, after: PatternKey, at: str, ident: Callable[[], str]) -> str:
    """The keyset condition for one table, exact for the (time, tier, id) order."""
    if tier == after.tier:
        return f"(detection_timestamp, id) < ({at}, {ident()})"
    if tier < after.tier:  # sorts after the cursor's tier at an equal time
        return f"detection_timestamp <= {at}"
    return f"detection_timestamp < {at}"


def _where(conditions: list[str]) -> str:
    return f" WHERE {' AND '.join(conditions)}" if conditions else ""


def _item(row: asyncpg.Record) -> PatternItem:
    confidence: float = row["confidence"]
    item: PatternItem = {
        "id": row["id"],
        "tier": row["tier"],
        "symbol": row["symbol"],
        "pattern": row["pattern_type"],
        "confidence": confidence,
        "priority": priority(confidence),
        "timeframe": row["timeframe"],
        "detected_at": row["detection_timestamp"],
        "expires_at": row["expires_at"],
        "levels": row["levels"],
        "pattern_data": raw_json(row["pattern_data"]),
        "metadata": raw_json(row["metadata"]),
    }
    if item["tier"] == "daily_intraday":
        item["daily_pattern_id"] = row["daily_pattern_id"]
        item["daily_pattern_timestamp"] = row["daily_pattern_timestamp"]
        item["intraday_signal"] = raw_json(row["intraday_signal"])
    return item


def build_patterns_query(
    tiers: Sequence[Tier], flt: PatternFilter, *, after: PatternKey | None, limit: int
) -> tuple[str, list[object]]:
    """SQL and arguments of :func:`select_patterns` (exposed for EXPLAIN tests)."""
    if not tiers or any(tier not in _EXPIRY_COLUMN for tier in tiers):
        raise ValueError(f"tiers must be some of {TABLE_TIERS}")
    params = Params()
    common = _filters(params, flt, time_column="detection_timestamp")
    if flt.pattern is not None:
        common.append(f"pattern_type = {params.add(flt.pattern)}")
    at = params.add(after.detected_at) if after is not None else ""
    ident_param: list[str] = []

    def ident() -> str:
        # Only bound when a branch compares ids: an unused parameter has no type in SQL.
        if not ident_param:
            assert after is not None
            ident_param.append(params.add(after.id, "::bigint"))
        return ident_param[0]

    limit_param = params.add(limit, "::int")
    single = len(tiers) == 1
    branches = []
    for tier in sorted(set(tiers)):
        conditions = list(common)
        if after is not None:
            conditions.append(_after(tier, after, at, ident))
        columns = _COLUMNS.format(expiry=_EXPIRY_COLUMN[tier], tier=tier)
        links = _LINK_COLUMNS if tier == "daily_intraday" else _NO_LINK_COLUMNS
        branches.append(
            f"SELECT '{tier}'::text AS tier, {columns}, {links} FROM {tier}_patterns"
            f"{_where(conditions)}"
            f" ORDER BY detection_timestamp DESC, id DESC LIMIT {limit_param}"
        )
    if single:
        return branches[0], params.values
    union = " UNION ALL ".join(f"({branch})" for branch in branches)
    sql = (
        f"SELECT {_OUTER_COLUMNS} FROM ({union}) AS p"
        f' ORDER BY detection_timestamp DESC, tier COLLATE "C" DESC, id DESC LIMIT {limit_param}'
    )
    return sql, params.values


async def select_patterns(
    conn: asyncpg.Connection,
    tiers: Sequence[Tier],
    flt: PatternFilter,
    *,
    after: PatternKey | None = None,
    limit: int,
) -> list[PatternItem]:
    """Up to ``limit`` detections from the tables of ``tiers``, newest first, after ``after``."""
    _, items = await select_patterns_versioned(conn, tiers, flt, after=after, limit=limit)
    return items()


async def select_patterns_versioned(
    conn: asyncpg.Connection,
    tiers: Sequence[Tier],
    flt: PatternFilter,
    *,
    after: PatternKey | None = None,
    limit: int,
) -> tuple[list[str], Callable[[], list[PatternItem]]]:
    """Each row's ``tier:id:xmin;`` (built by PostgreSQL), and how to build the items when needed.

    The versions make an ETag; a client that already has the page never costs the items.
    """
    sql, args = build_patterns_query(tiers, flt, after=after, limit=limit)
    rows = await conn.fetch(sql, *args)
    versions = [row["version"] for row in rows]
    return versions, lambda: [_item(row) for row in rows]


def build_combo_query(
    flt: PatternFilter, *, after: PatternKey | None, limit: int
) -> tuple[str, list[object]]:
    """SQL and arguments of :func:`select_combo` (exposed for EXPLAIN tests)."""
    params = Params()
    conditions = ["pd.enabled", *_filters(params, flt, time_column="detected_at", prefix="d.")]
    if flt.pattern is not None:
        conditions.append(f"pd.name = {params.add(flt.pattern)}")
    if after is not None:
        conditions.append(
            f"(d.detected_at, d.id) < ({params.add(after.detected_at)},"
            f" {params.add(after.id, '::bigint')})"
        )
    sql = (
        "SELECT d.id, d.symbol, pd.name AS pattern, d.pattern_id, pd.category,"
        " d.confidence::float8 AS confidence, d.detected_at,"
        " d.price_at_detection::float8 AS price, d.volume_at_detection AS volume,"
        " d.pattern_data::text AS pattern_data, d.outcome_1d::float8 AS outcome_1d,"
        " d.outcome_5d::float8 AS outcome_5d, d.outcome_30d::float8 AS outcome_30d,"
        " d.id || ':' || d.xmin::text || '.' || pd.xmin::text || ';' AS version"
        " FROM pattern_detections AS d JOIN pattern_definitions AS pd ON pd.id = d.pattern_id"
        f"{_where(conditions)}"
        f" ORDER BY d.detected_at DESC, d.id DESC LIMIT {params.add(limit, '::int')}"
    )
    return sql, params.values


async def select_combo(
    conn: asyncpg.Connection,
    flt: PatternFilter,
    *,
    after: PatternKey | None = None,
    limit: int,
) -> list[ComboItem]:
    """Combo-tier detections of enabled pattern definitions, newest first, after ``after``."""
    _, items = await select_combo_versioned(conn, flt, after=after, limit=limit)
    return items()


async def select_combo_versioned(
    conn: asyncpg.Connection,
    flt: PatternFilter,
    *,
    after: PatternKey | None = None,
    limit: int,
) -> tuple[list[str], Callable[[], list[ComboItem]]]:
    """:func:`select_combo` and each row's ``id:xmin.xmin;`` (detection's and definition's)."""
    sql, args = build_combo_query(flt, after=after, limit=limit)
    rows = await conn.fetch(sql, *args)
    versions = [row["version"] for row in rows]
    return versions, lambda: [_combo_item(row) for row in rows]


def _combo_item(row: asyncpg.Record) -> ComboItem:
    confidence: float = row["confidence"]
    return {
        "id": row["id"],
        "tier": "combo",
        "symbol": row["symbol"],
        "pattern": row["pattern"],
        "pattern_id": row["pattern_id"],
        "category": row["category"],
        "confidence": confidence,
        "priority": priority(confidence),
        "detected_at": row["detected_at"],
        "price": row["price"],
        "volume": row["volume"],
        "pattern_data": raw_json(row["pattern_data"]),
        "outcome_1d": row["outcome_1d"],
        "outcome_5d": row["outcome_5d"],
        "outcome_30d": row["outcome_30d"],
    }


class PatternDefinition(TypedDict):
    """A pattern the producer knows how to detect."""

    id: int
    name: str
    short_description: str | None
    category: str | None
    enabled: bool
    confidence_threshold: float
    risk_level: str | None
    applicable_timeframes: list[str]
    display_order: int


_DEFINITION_COLUMNS: Final = (
    "id, name, short_description, category, enabled,"
    " confidence_threshold::float8 AS confidence_threshold, risk_level,"
    " applicable_timeframes, display_order"
)


async def select_pattern_definitions(
    conn: asyncpg.Connection, *, enabled: bool | None = None, category: str | None = None
) -> list[PatternDefinition]:
    """Every definition (a small table), in display order."""
    params = Params()
    conditions = []
    if enabled is not None:
        conditions.append(f"enabled = {params.add(enabled)}")
    if category is not None:
        conditions.append(f"category = {params.add(category)}")
    sql = (
        f"SELECT {_DEFINITION_COLUMNS} FROM pattern_definitions{_where(conditions)}"
        " ORDER BY display_order, name"
    )
    return [
        {
            "id": row["id"],
            "name": row["name"],
            "short_description": row["short_description"],
            "category": row["category"],
            "enabled": row["enabled"],
            "confidence_threshold": row["confidence_threshold"],
            "risk_level": row["risk_level"],
            "applicable_timeframes": list(row["applicable_timeframes"] or []),
            "display_order": row["display_order"],
        }
        for row in await conn.fetch(sql, *params.values)
    ]
