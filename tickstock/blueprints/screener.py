"""The screener: the latest detections of a tier window, filtered by market figures and sorted."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Annotated, Any, Final, Literal

from pydantic import AfterValidator, BaseModel, Field, model_validator
from quart import Blueprint, Response
from quart_schema import validate_querystring

from tickstock.auth import login_required
from tickstock.blueprints.patterns import Exportable, TierName, tier_named
from tickstock.export import csv_response
from tickstock.extensions.database import get_db
from tickstock.pagination import decode_cursor, paginate, success
from tickstock.queries.patterns import TIER_WINDOWS, resolve_pattern_names
from tickstock.queries.screener import (
    SORT_FIELDS,
    ScanFilter,
    ScanItem,
    ScanKey,
    ScanRow,
    SortField,
    select_scan,
    sort_kind,
)
from tickstock.validation import PageMeta, SafeText, documented

blueprint = Blueprint("screener", __name__)

_MAX_ITEMS: Final = 50


def _csv_list(value: str) -> str:
    items = [item.strip() for item in value.split(",") if item.strip()]
    if not items:
        raise ValueError("give at least one name")
    if len(items) > _MAX_ITEMS:
        raise ValueError(f"at most {_MAX_ITEMS} names")
    if any(len(item) > 100 for item in items):
        raise ValueError("names are at most 100 characters")
    return ",".join(dict.fromkeys(items))


NameCSV = Annotated[SafeText, Field(max_length=5000), AfterValidator(_csv_list)]
Sort = Annotated[
    str,
    Field(
        pattern="^-?(" + "|".join(SORT_FIELDS) + ")$",
        description="One of " + ", ".join(SORT_FIELDS) + "; a leading - sorts descending",
    ),
]
Figure = Annotated[float, Field(ge=-1e12, le=1e12)]


class ScanQuery(Exportable):
    tier: TierName = Field("daily", description="The tier whose window is screened")
    patterns: NameCSV | None = Field(
        None, description="Comma-separated pattern names (case and spaces do not matter)"
    )
    sectors: NameCSV | None = Field(None, description="Comma-separated sector names")
    min_confidence: Annotated[float, Field(ge=0.0, le=1.0)] | None = None
    rs_min: Annotated[float, Field(ge=0.0, le=100.0)] | None = Field(
        None, description="Minimum relative strength (1-99)"
    )
    rel_volume_min: Annotated[float, Field(ge=0.0, le=1e6)] | None = Field(
        None, description="Minimum volume relative to the 20-session average"
    )
    rsi_min: Annotated[float, Field(ge=0.0, le=100.0)] | None = None
    rsi_max: Annotated[float, Field(ge=0.0, le=100.0)] | None = None
    price_min: Annotated[Figure, Field(ge=0.0)] | None = None
    price_max: Annotated[Figure, Field(ge=0.0)] | None = None
    market_cap_min: Annotated[int, Field(ge=0, le=10**15)] | None = None
    sort: Sort = "-confidence"

    @model_validator(mode="after")
    def _ranges(self) -> ScanQuery:
        if self.rsi_min is not None and self.rsi_max is not None and self.rsi_min > self.rsi_max:
            raise ValueError("rsi_max: must not be below rsi_min")
        if (
            self.price_min is not None
            and self.price_max is not None
            and self.price_min > self.price_max
        ):
            raise ValueError("price_max: must not be below price_min")
        return self


class ScanPage(BaseModel):
    """A page of screener rows in the requested order."""

    status: Literal["success"]
    data: list[ScanItem]
    meta: PageMeta


_COLUMNS: Final = tuple(ScanItem.__annotations__)


def _after(cursor: str | None, field: SortField) -> ScanKey | None:
    if cursor is None:
        return None
    kind, _ = sort_kind(field)
    value, missing, ident = decode_cursor(cursor, (kind, "int", "int"))
    assert isinstance(ident, int)
    if missing:
        return ScanKey(None, ident)
    assert not isinstance(value, int)  # float cursors decode as float
    return ScanKey(value, ident)


def _key(field: SortField) -> Any:
    kind, _ = sort_kind(field)
    empty = {"float": 0.0, "time": dt.datetime(1970, 1, 1, tzinfo=dt.UTC), "text": "-"}[kind]

    def key(row: ScanRow) -> tuple[Any, int, int]:
        item, value = row
        return (empty, 1, item["id"]) if value is None else (value, 0, item["id"])

    return key


@blueprint.get("/api/patterns/scan")
@login_required
@validate_querystring(ScanQuery)
@documented(ScanPage, 400, 404)
async def scan(query_args: ScanQuery) -> Response:
    """Screen the latest detection of each symbol and pattern in a tier's window.

    Filters are inclusive bounds; ``sort`` is confidence, detected, rs, rel_volume, rsi, change
    or symbol (``-`` for descending; rows without the value come last). ``rs``, ``rel_volume``
    and ``rsi`` come from the detection's data, else the symbol's latest daily indicators.
    ``format=csv`` downloads the rows (up to 10,000).
    """
    q = query_args
    tier = tier_named(q.tier)
    field: SortField = q.sort.lstrip("-")  # type: ignore[assignment]
    descending = q.sort.startswith("-")
    window = TIER_WINDOWS[tier]
    since = dt.datetime.now(dt.UTC) - window
    flt = ScanFilter(
        since=since,
        patterns=q.patterns.split(",") if q.patterns else None,
        sectors=q.sectors.split(",") if q.sectors else None,
        min_confidence=q.min_confidence,
        rs_min=q.rs_min,
        rel_volume_min=q.rel_volume_min,
        rsi_min=q.rsi_min,
        rsi_max=q.rsi_max,
        price_min=q.price_min,
        price_max=q.price_max,
        market_cap_min=q.market_cap_min,
    )
    limit = q.page_size
    async with get_db().read() as conn:
        if flt.patterns:
            flt = replace(flt, patterns=await resolve_pattern_names(conn, flt.patterns))
        rows = await select_scan(
            conn,
            tier,
            flt,
            sort=field,
            descending=descending,
            after=_after(q.cursor, field),
            limit=limit + 1,
        )
    page = paginate(rows, limit, _key(field))
    items = [item for item, _ in page.items]
    if q.format == "csv":
        more = {"X-Next-Cursor": page.next_cursor} if page.next_cursor else {}
        return csv_response(f"scan-{tier}.csv", _COLUMNS, items, more)
    return success(
        items,
        page.meta(tier=tier, sort=q.sort, since=since, window_seconds=int(window.total_seconds())),
    )
