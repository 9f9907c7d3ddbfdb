"""Pattern analytics: how often, and by how much, prices rose after each pattern."""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, Field
from quart import Blueprint, Response
from quart_schema import validate_querystring

from tickstock.auth import login_required
from tickstock.blueprints.patterns import TierName, tier_named
from tickstock.blueprints.screener import NameCSV
from tickstock.export import csv_response
from tickstock.extensions.database import get_db
from tickstock.extensions.results import get_results
from tickstock.pagination import success
from tickstock.queries.analytics import PatternStats, select_pattern_stats
from tickstock.queries.market import latest_day
from tickstock.queries.patterns import TABLE_TIERS
from tickstock.validation import QueryModel, Timestamp, documented
from tickstock.vocab import Tier

blueprint = Blueprint("analytics", __name__, url_prefix="/api/analytics")


class AnalyticsQuery(QueryModel):
    tier: TierName | None = Field(None, description="One tier; every tier when absent")
    sector: NameCSV | None = Field(None, description="Sector name(s), comma-separated")
    since: Timestamp | None = Field(None, description="Detections at or after (ISO-8601)")
    min_samples: Annotated[int, Field(ge=0, le=1_000_000)] = Field(
        0, description="Leave out patterns with fewer returns at +1 session"
    )
    format: Literal["json", "csv"] = Field("json", description="json, or csv for a download")


class AnalyticsBody(BaseModel):
    """Per pattern: detections and forward returns at +1, +5 and +30 trading days."""

    status: Literal["success"]
    data: list[PatternStats]
    meta: dict[str, Any]


_ALL_TIERS: Final[tuple[Tier, ...]] = (*TABLE_TIERS, "combo")
_HORIZON_COLUMNS: Final = tuple(
    f"{h}.{f}"
    for h in ("d1", "d5", "d30")
    for f in (
        "samples",
        "positive",
        "hit_rate",
        "hit_rate_low",
        "hit_rate_high",
        "mean_return",
        "median_return",
    )
)
_CSV_COLUMNS: Final = ("pattern", "detections", *_HORIZON_COLUMNS)


@blueprint.get("/patterns")
@login_required
@validate_querystring(AnalyticsQuery)
@documented(AnalyticsBody, 400, 404)
async def pattern_analytics(query_args: AnalyticsQuery) -> Response:
    """Per pattern type: detections; at +1, +5 and +30 trading days the share followed by a
    positive return (with its 95% Wilson interval), the mean and median return, sample sizes.

    Returns are close-to-close from ohlcv_daily (the combo tier's stored outcome_* where set);
    detections too recent for an outcome are not counted. ``format=csv`` downloads the table.
    """
    q = query_args
    tiers = _ALL_TIERS if q.tier is None else (tier_named(q.tier),)
    sectors = q.sector.split(",") if q.sector else None
    async with get_db().read() as conn:
        day, bars = await latest_day(conn)
        key = ("analytics", day, bars, tiers, q.sector, q.since, q.min_samples)
        items = await get_results().get_or_compute(
            key,
            lambda: select_pattern_stats(
                conn, tiers, sectors=sectors, since=q.since, min_samples=q.min_samples
            ),
        )
    if q.format == "csv":
        return csv_response("pattern-analytics.csv", _CSV_COLUMNS, items)
    meta = {"count": len(items), "tier": q.tier or "all", "sector": q.sector, "since": q.since}
    return success(items, meta)
