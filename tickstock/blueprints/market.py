"""The market a detection happens in: breadth of the latest trading day, by sector, over time."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, Field
from quart import Blueprint, Response
from quart_schema import validate_querystring

from tickstock.auth import login_required
from tickstock.extensions.database import get_db
from tickstock.extensions.results import get_results
from tickstock.pagination import success
from tickstock.queries.market import (
    Breadth,
    BreadthDay,
    DetectionCount,
    Mover,
    SectorBreadth,
    latest_day,
    select_breadth_series,
    select_detection_counts,
    select_overview,
)
from tickstock.validation import QueryModel, documented

blueprint = Blueprint("market", __name__, url_prefix="/api/market")

MOVERS: Final = 10
MAX_DAYS: Final = 365


class OverviewData(BaseModel):
    date: dt.date | None
    market: Breadth | None
    sectors: list[SectorBreadth]
    gainers: list[Mover]
    losers: list[Mover]
    detections_by_tier: list[DetectionCount]
    detections_by_sector: list[DetectionCount]


class OverviewBody(BaseModel):
    """Breadth of the latest trading day, by sector, movers and recent detection counts."""

    status: Literal["success"]
    data: OverviewData
    meta: dict[str, Any]


class BreadthQuery(QueryModel):
    days: Annotated[int, Field(ge=1, le=MAX_DAYS, description=f"Trading days, 1 to {MAX_DAYS}")] = (
        90
    )


class BreadthBody(BaseModel):
    """Daily breadth figures, oldest first."""

    status: Literal["success"]
    data: list[BreadthDay]
    meta: dict[str, Any]


@blueprint.get("/overview")
@login_required
@documented(OverviewBody)
async def overview() -> Response:
    """Breadth of the latest trading day in ohlcv_daily, overall and by sector; movers; counts.

    Advancers/decliners/unchanged against each symbol's previous close; new 52-week highs/lows;
    the share of symbols above their 50- and 200-day average close; the top gainers and losers;
    detections by tier and by sector over the last 1, 7 and 30 days.
    """
    now = dt.datetime.now(dt.UTC)
    async with get_db().read() as conn:
        day, bars = await latest_day(conn)
        by_tier, by_sector = await select_detection_counts(conn, now)
        if day is None:
            figures: Any = (None, [], [], [])
        else:
            figures = await get_results().get_or_compute(
                ("overview", day, bars), lambda: select_overview(conn, day, MOVERS)
            )
    market, sectors, gainers, losers = figures
    data = {
        "date": day,
        "market": market,
        "sectors": sectors,
        "gainers": gainers,
        "losers": losers,
        "detections_by_tier": by_tier,
        "detections_by_sector": by_sector,
    }
    return success(data, {"as_of": now, "movers": MOVERS})


@blueprint.get("/breadth")
@login_required
@validate_querystring(BreadthQuery)
@documented(BreadthBody, 400)
async def breadth(query_args: BreadthQuery) -> Response:
    """The daily breadth series of the last ``days`` trading days (at most 365), oldest first."""
    days = query_args.days
    async with get_db().read() as conn:
        day, bars = await latest_day(conn)
        series: list[BreadthDay] = []
        if day is not None:
            series = await get_results().get_or_compute(
                ("breadth", day, bars, days), lambda: select_breadth_series(conn, day, days)
            )
    return success(series, {"count": len(series), "days": days, "latest": day})
