"""Pattern history across the producer's tier tables, newest first, keyset-paginated.

Sort order everywhere: ``detection time DESC, tier DESC, id DESC`` (tier compared as ASCII text).
Within one table that is the ``(detection_timestamp DESC, id DESC)`` order its indexes serve; the
tier only breaks ties between tables whose ids may collide. Each branch of a multi-tier query is
an index scan bounded by the page size, and the page is merged from those few rows.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, NotRequired

import asyncpg
from typing_extensions import TypedDict

from tickstock.detection import Detection, Priority, plain_levels, priority
from tickstock.jsonutil import raw_json
from tickstock.queries._sql import Params
from tickstock.vocab import TIER_TIMEFRAMES, TIERS, Tier, canonical_timeframe

__all__ = [
    "TABLE_TIERS",
    "TIER_WINDOWS",
    "ComboItem",
    "PatternDefinition",
    "PatternFilter",
    "PatternItem",
    "PatternKey",
    "PatternRows",
    "Priority",
    "iso_ms",
    "json_number",
    "priority",
    "resolve_pattern_names",
    "select_combo",
    "select_combo_versioned",
    "select_pattern_definitions",
    "select_patterns",
    "select_patterns_versioned",
    "stored_price",
    "timeframe_of",
]

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


def iso_ms(column: str) -> str:
    """SQL for ``column`` (timestamptz) as the text live events carry: ISO-8601 UTC with
    milliseconds (truncated, as the normaliser does) and a Z, e.g. 2026-11-26T14:30:00.000Z."""
    return f"""to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')"""


def json_number(path: str, source: str = "pattern_data") -> str:
    """SQL for the JSON number at ``path`` of ``source`` as float8; NULL when it is no number
    (a producer's stray string never fails a query)."""
    return (
        f"CASE WHEN jsonb_typeof({source} #> '{{{path}}}') = 'number'"
        f" THEN ({source} #>> '{{{path}}}')::float8 END"
    )


def stored_price(source: str = "pattern_data") -> str:
    """SQL for a stored detection's price: where the producer keeps it in ``pattern_data``
    (``price``, else ``current_price`` or ``price_at_detection``, the names the normaliser
    accepts on Redis too)."""
    return (
        f"coalesce({json_number('price', source)}, {json_number('current_price', source)},"
        f" {json_number('price_at_detection', source)})"
    )


def timeframe_of(stored: str | None, tier: Tier) -> str:
    """The timeframe in the one vocabulary (``1d`` -> ``daily`` ...), the tier's default if none."""
    if not stored:
        return TIER_TIMEFRAMES[tier]
    return canonical_timeframe(stored)


_INDICATORS: Final = (
    "CASE WHEN jsonb_typeof(pattern_data -> 'indicators') = 'object'"
    " THEN (pattern_data -> 'indicators')::text ELSE '{}' END"
)


def _columns(tier: Tier) -> str:
    """The columns of one tier table's branch."""
    return (
        "id, symbol, pattern_type, confidence::float8 AS confidence, detection_timestamp,"
        f" {iso_ms('detection_timestamp')} AS detected_at,"
        f" {iso_ms(_EXPIRY_COLUMN[tier] + '::timestamptz')} AS expires_at,"
        f" levels::float8[] AS levels, timeframe, {stored_price()} AS price,"
        f" {_INDICATORS} AS indicators, pattern_data::text AS pattern_data,"
        f" metadata::text AS metadata, '{tier}:' || id || ':' || xmin::text || ';' AS version"
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
    "tier, id, symbol, pattern_type, confidence, detection_timestamp, detected_at, expires_at,"
    " levels, timeframe, price, indicators, pattern_data, metadata, daily_pattern_id,"
    " daily_pattern_timestamp, intraday_signal, version"
)


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


class PatternItem(Detection):
    """A detection from one of the tier tables: the Detection every view carries, its row id,
    and the producer's stored pattern_data and metadata as they are."""

    id: int
    pattern_data: Any
    metadata: Any
    daily_pattern_id: NotRequired[int | None]
    daily_pattern_timestamp: NotRequired[dt.datetime | None]
    intraday_signal: NotRequired[Any]


class ComboItem(Detection):
    """A detection of the combo tier (pattern_detections) with its later outcomes: the
    Detection every view carries (no expiry and no levels: the table keeps none)."""

    id: int
    pattern_id: int
    category: str | None
    volume: int | None
    pattern_data: Any
    outcome_1d: float | None
    outcome_5d: float | None
    outcome_30d: float | None


Key = tuple[dt.datetime, str, int]


@dataclass(frozen=True, slots=True)
class PatternRows:
    """A query's rows: each one's version (for an ETag), and the items with their exact sort
    keys (the items' times are text to the millisecond; a cursor needs the stored instant),
    built only when needed."""

    versions: list[str]
    build: Callable[[], list[tuple[Any, Key]]]


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


def _item(row: asyncpg.Record) -> tuple[PatternItem, Key]:
    confidence: float = row["confidence"]
    tier: Tier = row["tier"]
    price: float | None = row["price"]
    item: PatternItem = {
        "id": row["id"],
        "tier": tier,
        "symbol": row["symbol"],
        "pattern": row["pattern_type"],
        "confidence": confidence,
        "priority": priority(confidence),
        "timeframe": timeframe_of(row["timeframe"], tier),
        "detected_at": row["detected_at"],
        "expires_at": row["expires_at"],
        "price": price,
        "levels": plain_levels(row["levels"] or (), price),
        "indicators": raw_json(row["indicators"]),  # type: ignore[typeddict-item]
        "pattern_data": raw_json(row["pattern_data"]),
        "metadata": raw_json(row["metadata"]),
    }
    if tier == "daily_intraday":
        item["daily_pattern_id"] = row["daily_pattern_id"]
        item["daily_pattern_timestamp"] = row["daily_pattern_timestamp"]
        item["intraday_signal"] = raw_json(row["intraday_signal"])
    return item, (row["detection_timestamp"], tier, row["id"])


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
        columns = _columns(tier)
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
    rows = await select_patterns_versioned(conn, tiers, flt, after=after, limit=limit)
    return [item for item, _ in rows.build()]


async def select_patterns_versioned(
    conn: asyncpg.Connection,
    tiers: Sequence[Tier],
    flt: PatternFilter,
    *,
    after: PatternKey | None = None,
    limit: int,
) -> PatternRows:
    """Each row's ``tier:id:xmin;`` (built by PostgreSQL), and how to build the items when needed.

    The versions make an ETag; a client that already has the page never costs the items.
    """
    sql, args = build_patterns_query(tiers, flt, after=after, limit=limit)
    rows = await conn.fetch(sql, *args)
    return PatternRows([row["version"] for row in rows], lambda: [_item(row) for row in rows])


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
        f" {iso_ms('d.detected_at')} AS detected_text,"
        f" coalesce(d.price_at_detection::float8, {stored_price('d.pattern_data')}) AS price,"
        " d.volume_at_detection AS volume,"
        " CASE WHEN jsonb_typeof(d.pattern_data -> 'indicators') = 'object'"
        " THEN (d.pattern_data -> 'indicators')::text ELSE '{}' END AS indicators,"
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
    rows = await select_combo_versioned(conn, flt, after=after, limit=limit)
    return [item for item, _ in rows.build()]


async def select_combo_versioned(
    conn: asyncpg.Connection,
    flt: PatternFilter,
    *,
    after: PatternKey | None = None,
    limit: int,
) -> PatternRows:
    """:func:`select_combo` and each row's ``id:xmin.xmin;`` (detection's and definition's)."""
    sql, args = build_combo_query(flt, after=after, limit=limit)
    rows = await conn.fetch(sql, *args)
    return PatternRows([row["version"] for row in rows], lambda: [_combo_item(r) for r in rows])


def _combo_item(row: asyncpg.Record) -> tuple[ComboItem, Key]:
    confidence: float = row["confidence"]
    item: ComboItem = {
        "id": row["id"],
        "tier": "combo",
        "symbol": row["symbol"],
        "pattern": row["pattern"],
        "confidence": confidence,
        "priority": priority(confidence),
        "timeframe": TIER_TIMEFRAMES["combo"],
        "detected_at": row["detected_text"],
        "expires_at": None,
        "price": row["price"],
        "levels": [],
        "indicators": raw_json(row["indicators"]),  # type: ignore[typeddict-item]
        "pattern_id": row["pattern_id"],
        "category": row["category"],
        "volume": row["volume"],
        "pattern_data": raw_json(row["pattern_data"]),
        "outcome_1d": row["outcome_1d"],
        "outcome_5d": row["outcome_5d"],
        "outcome_30d": row["outcome_30d"],
    }
    return item, (row["detected_at"], "combo", row["id"])


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


_NAME_NOISE: Final = re.compile(r"[^0-9a-z]")


def _folded(name: str) -> str:
    return _NAME_NOISE.sub("", name.lower())


async def resolve_pattern_names(conn: asyncpg.Connection, names: Sequence[str]) -> list[str]:
    """Each name as the producer spells it, found case- and space-insensitively among the
    pattern definitions ("head and shoulders" -> HeadAndShoulders); unknown names as given."""
    rows = await conn.fetch("SELECT name FROM pattern_definitions")
    known = {_folded(row["name"]): row["name"] for row in rows}
    return [known.get(_folded(name), name) for name in names]
