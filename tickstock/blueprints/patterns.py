"""Pattern history over REST: across tiers, per symbol, per tier view, and the definitions.

Items mirror the live ``pattern_detected`` events (``pattern``, ``detected_at``, ``tier``) so a
dashboard can merge history and live feed; each carries a ``priority`` from its confidence.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, Field, model_validator
from quart import Blueprint, Response
from quart_schema import validate_querystring

from tickstock.auth import login_required
from tickstock.conditional import HISTORY, REVALIDATE, conditional, etag_of
from tickstock.errors import APIError
from tickstock.export import CSV_MAX_ROWS, csv_response
from tickstock.extensions.database import get_db
from tickstock.pagination import DEFAULT_LIMIT, MAX_LIMIT, decode_cursor, paginate, success
from tickstock.queries.patterns import (
    TABLE_TIERS,
    TIER_WINDOWS,
    ComboItem,
    PatternDefinition,
    PatternFilter,
    PatternItem,
    PatternKey,
    resolve_pattern_names,
    select_combo_versioned,
    select_pattern_definitions,
    select_patterns_versioned,
)
from tickstock.queries.symbols import symbol_exists
from tickstock.validation import (
    PageMeta,
    QueryModel,
    SafeText,
    SymbolCSV,
    Timestamp,
    documented,
    parse_symbol,
)
from tickstock.vocab import TIERS, Tier

blueprint = Blueprint("patterns", __name__)

PatternName = Annotated[SafeText, Field(min_length=1, max_length=100)]
TierName = Annotated[
    str,
    Field(
        max_length=32,
        description="One of " + ", ".join(TIERS),
        json_schema_extra={"enum": list(TIERS)},
    ),
]
Limit = Annotated[
    int,
    Field(
        ge=1,
        le=CSV_MAX_ROWS,
        description=f"Page size: default {DEFAULT_LIMIT}, at most {MAX_LIMIT}"
        f" (format=csv: default and at most {CSV_MAX_ROWS})",
    ),
]
Format = Literal["json", "csv"]
Cursor = Annotated[str, Field(description="next_cursor of the previous page (opaque)")]
Confidence = Annotated[float, Field(ge=0.0, le=1.0, description="Minimum confidence, 0 to 1")]


class Exportable(QueryModel):
    """A list that can also be downloaded as CSV (``format=csv``, up to 10,000 rows)."""

    format: Format = Field("json", description="json, or csv for a CSV download")
    limit: Limit | None = None
    cursor: Cursor | None = None

    @model_validator(mode="after")
    def _bounded(self) -> Exportable:
        if self.format == "json" and self.limit is not None and self.limit > MAX_LIMIT:
            raise ValueError(f"limit: at most {MAX_LIMIT} (format=csv: {CSV_MAX_ROWS})")
        return self

    @property
    def page_size(self) -> int:
        if self.limit is not None:
            return self.limit
        return CSV_MAX_ROWS if self.format == "csv" else DEFAULT_LIMIT


class _Filters(Exportable):
    pattern: PatternName | None = Field(
        None,
        description="A pattern name (GET /api/pattern-definitions), e.g. Breakout; case and"
        " spaces do not matter (head and shoulders finds HeadAndShoulders)",
    )
    confidence_min: Confidence | None = None


class _TimeRange(_Filters):
    since: Timestamp | None = Field(None, description="Detected at or after (ISO-8601)")
    until: Timestamp | None = Field(None, description="Detected before (ISO-8601)")

    @model_validator(mode="after")
    def _ordered(self) -> _TimeRange:
        if self.since is not None and self.until is not None and self.since >= self.until:
            raise ValueError("until: must be later than since")
        return self


class PatternsQuery(_TimeRange):
    tier: TierName | None = Field(None, description="One tier; all pattern tables when absent")
    symbols: SymbolCSV | None = None


class SymbolPatternsQuery(_TimeRange):
    tier: TierName | None = Field(None, description="One tier; all pattern tables when absent")


class TierQuery(_Filters):
    symbols: SymbolCSV | None = None


class DefinitionsQuery(QueryModel):
    enabled: bool | None = None
    category: Annotated[SafeText, Field(max_length=64)] | None = None


class PatternPage(BaseModel):
    """A page of detections, newest first."""

    status: Literal["success"]
    data: list[PatternItem | ComboItem]
    meta: PageMeta


class DefinitionList(BaseModel):
    """Pattern definitions in display order."""

    status: Literal["success"]
    data: list[PatternDefinition]
    meta: dict[str, Any]


def tier_named(name: str) -> Tier:
    """The tier called ``name``; 404 ``unknown_tier`` otherwise."""
    for tier in TIERS:
        if tier == name:
            return tier
    raise APIError(404, "unknown_tier", f"unknown tier {name[:32]!r}; tiers: {', '.join(TIERS)}")


def _after(cursor: str | None) -> PatternKey | None:
    if cursor is None:
        return None
    detected_at, tier, ident = decode_cursor(cursor, ("time", "text", "int"))
    if tier not in TIERS:
        raise APIError(400, "invalid_cursor", "cursor is not valid; use next_cursor as returned")
    assert isinstance(detected_at, dt.datetime) and isinstance(tier, str)
    assert isinstance(ident, int)
    return PatternKey(detected_at, tier, ident)


def _key(pair: tuple[Any, tuple[dt.datetime, str, int]]) -> tuple[dt.datetime, str, int]:
    return pair[1]


_PATTERN_COLUMNS: Final = tuple(PatternItem.__annotations__)
_COMBO_COLUMNS: Final = tuple(ComboItem.__annotations__)


async def _page(
    tier: Tier | None,
    flt: PatternFilter,
    cursor: str | None,
    limit: int,
    *,
    symbol: str | None = None,
    export: str | None = None,
    validators: bool = True,
    **meta: Any,
) -> Response:
    """One query: the tier's table, or every pattern table; 404 for a symbol nobody knows.

    With ``validators`` the page carries an ETag made from its rows' versions, and a client
    that already has it gets 304 before any item is built or encoded.
    """
    after = _after(cursor)
    async with get_db().read() as conn:
        if flt.pattern is not None:
            (name,) = await resolve_pattern_names(conn, [flt.pattern])
            flt = replace(flt, pattern=name)
        if tier == "combo":
            rows = await select_combo_versioned(conn, flt, after=after, limit=limit + 1)
        else:
            tiers = TABLE_TIERS if tier is None else (tier,)
            rows = await select_patterns_versioned(conn, tiers, flt, after=after, limit=limit + 1)
        versions = rows.versions
        if (
            symbol is not None
            and not versions
            and after is None
            and not await symbol_exists(conn, symbol)
        ):
            raise APIError(404, "symbol_not_found", f"unknown symbol {symbol}")
    if symbol is not None:
        meta["symbol"] = symbol

    if export is not None:
        exported = paginate(rows.build(), limit, _key)
        columns = _COMBO_COLUMNS if tier == "combo" else _PATTERN_COLUMNS
        more = {"X-Next-Cursor": exported.next_cursor} if exported.next_cursor else {}
        return csv_response(export, columns, [item for item, _ in exported.items], more)

    def respond() -> Response:
        page = paginate(rows.build(), limit, _key)
        items = [item for item, _ in page.items]
        return success(items, page.meta(tier=tier or "all", **meta))

    if not validators:
        return respond()
    # Behind a cursor lies older history, which the producer only appends to (combo rows gain
    # outcomes later, so they are always revalidated).
    cache_control = HISTORY if after is not None and tier != "combo" else REVALIDATE
    return conditional(etag_of(versions), respond, cache_control)


@blueprint.get("/api/patterns")
@login_required
@validate_querystring(PatternsQuery)
@documented(PatternPage, 400, 404)
async def list_patterns(query_args: PatternsQuery) -> Response:
    """Pattern detections, newest first, filtered and keyset-paginated (``format=csv``: a file).

    Without ``tier`` the six pattern tables (daily, intraday, hourly, weekly, monthly,
    daily_intraday) are read together; the combo tier (pattern_detections) only with
    ``tier=combo``. ``since`` is inclusive, ``until`` exclusive. Unknown tier: 404.
    """
    q = query_args
    tier = tier_named(q.tier) if q.tier is not None else None
    flt = PatternFilter(
        symbols=q.symbols.split(",") if q.symbols else None,
        pattern=q.pattern,
        confidence_min=q.confidence_min,
        since=q.since,
        until=q.until,
    )
    export = "patterns.csv" if q.format == "csv" else None
    return await _page(tier, flt, q.cursor, q.page_size, export=export)


@blueprint.get("/api/patterns/<symbol>")
@login_required
@validate_querystring(SymbolPatternsQuery)
@documented(PatternPage, 400, 404)
async def symbol_patterns(symbol: str, query_args: SymbolPatternsQuery) -> Response:
    """One symbol's detections across the pattern tables (or one ``tier``), newest first.

    Same filters as /api/patterns (and ``format=csv``); 404 ``symbol_not_found`` for a symbol that does not exist.
    """
    symbol = parse_symbol(symbol)
    q = query_args
    tier = tier_named(q.tier) if q.tier is not None else None
    flt = PatternFilter(
        symbols=[symbol],
        pattern=q.pattern,
        confidence_min=q.confidence_min,
        since=q.since,
        until=q.until,
    )
    export = f"patterns-{symbol}.csv" if q.format == "csv" else None
    return await _page(tier, flt, q.cursor, q.page_size, symbol=symbol, export=export)


@blueprint.get("/api/patterns/tiers/<tier>")
@login_required
@validate_querystring(TierQuery)
@documented(PatternPage, 400, 404)
async def tier_patterns(tier: str, query_args: TierQuery) -> Response:
    """The recent detections of one tier, newest first, each with its priority.

    Windows, from the request time: daily 7 days, intraday 24 hours, hourly 48 hours, weekly
    8 weeks, monthly 365 days, combo 30 days (pattern_detections of enabled definitions only),
    daily_intraday 72 hours. Unknown tier: 404 ``unknown_tier``.
    """
    name = tier_named(tier)
    q = query_args
    window = TIER_WINDOWS[name]
    since = dt.datetime.now(dt.UTC) - window
    flt = PatternFilter(
        symbols=q.symbols.split(",") if q.symbols else None,
        pattern=q.pattern,
        confidence_min=q.confidence_min,
        since=since,
    )
    export = f"patterns-{name}.csv" if q.format == "csv" else None
    # No ETag: the window (and the page's meta) moves with the clock.
    return await _page(
        name,
        flt,
        q.cursor,
        q.page_size,
        export=export,
        validators=False,
        since=since,
        window_seconds=int(window.total_seconds()),
    )


@blueprint.get("/api/pattern-definitions")
@login_required
@validate_querystring(DefinitionsQuery)
@documented(DefinitionList, 400)
async def pattern_definitions(query_args: DefinitionsQuery) -> Response:
    """The patterns the producer detects, in display order (``enabled``, ``category`` filter)."""
    async with get_db().read() as conn:
        items = await select_pattern_definitions(
            conn, enabled=query_args.enabled, category=query_args.category
        )
    return success(items, {"count": len(items)})
