"""How patterns did afterwards: forward returns of detections, per pattern type.

A detection's session is the first bar of its symbol in ``ohlcv_daily`` dated on or after the
detection's UTC date. Its return at +N trading days is the close N bars after that session over
the base price, in percent: the base is the session's close (the combo tier: the detection's
``price_at_detection`` when set). For the combo tier the stored ``outcome_1d/5d/30d`` are used
where set. A detection whose bar N sessions on does not exist yet has no return at +N and is not
counted there.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from typing import Final

import asyncpg
from typing_extensions import TypedDict

from tickstock.queries._sql import Params
from tickstock.queries.patterns import TABLE_TIERS
from tickstock.vocab import Tier

__all__ = [
    "HORIZONS",
    "HorizonStats",
    "PatternStats",
    "build_analytics_query",
    "select_pattern_stats",
    "wilson",
]

HORIZONS: Final = (1, 5, 30)
_Z95: Final = 1.959963984540054


class HorizonStats(TypedDict):
    """Returns N trading days after detection (percent); ``hit_rate`` is the share above 0."""

    samples: int
    positive: int
    hit_rate: float | None
    hit_rate_low: float | None
    hit_rate_high: float | None
    mean_return: float | None
    median_return: float | None


class PatternStats(TypedDict):
    pattern: str
    detections: int
    d1: HorizonStats
    d5: HorizonStats
    d30: HorizonStats


def wilson(positive: int, samples: int, z: float = _Z95) -> tuple[float, float] | None:
    """The Wilson score interval of ``positive`` out of ``samples`` (95% by default)."""
    if samples <= 0:
        return None
    p = positive / samples
    denominator = 1.0 + z * z / samples
    centre = (p + z * z / (2 * samples)) / denominator
    half = z * math.sqrt(p * (1 - p) / samples + z * z / (4 * samples * samples)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def build_analytics_query(
    tiers: Sequence[Tier],
    *,
    sectors: Sequence[str] | None = None,
    since: dt.datetime | None = None,
) -> tuple[str, list[object]]:
    """SQL and arguments of :func:`select_pattern_stats` (exposed for EXPLAIN tests)."""
    params = Params()
    since_param = params.add(since, "::timestamptz") if since is not None else None
    branches: list[str] = []
    for tier in tiers:
        if tier == "combo":
            condition = f" AND d.detected_at >= {since_param}" if since_param else ""
            branches.append(
                "SELECT d.symbol, pd.name AS pattern, d.detected_at AS at,"
                " d.price_at_detection::float8 AS base, d.outcome_1d::float8 AS o1,"
                " d.outcome_5d::float8 AS o5, d.outcome_30d::float8 AS o30"
                " FROM pattern_detections AS d JOIN pattern_definitions AS pd"
                f" ON pd.id = d.pattern_id WHERE pd.enabled{condition}"
            )
        else:
            condition = f" WHERE detection_timestamp >= {since_param}" if since_param else ""
            branches.append(
                "SELECT symbol, pattern_type AS pattern, detection_timestamp AS at,"
                " NULL::float8 AS base, NULL::float8 AS o1, NULL::float8 AS o5,"
                f" NULL::float8 AS o30 FROM {tier}_patterns{condition}"
            )
    sector_join = ""
    if sectors:
        sector_join = (
            " JOIN symbols AS sy ON sy.symbol = u.symbol"
            f" AND sy.sector = ANY({params.add(list(sectors), '::text[]')})"
        )
    returns = []
    for n in HORIZONS:
        returns.append(
            f"coalesce(o{n}, (c.closes[{n + 1}] / coalesce(nullif(base, 0), c.closes[1]) - 1.0)"
            f" * 100.0) AS r{n}"
        )
    stats = []
    for n in HORIZONS:
        stats.append(
            f"count(r{n})::int AS n{n}, (count(*) FILTER (WHERE r{n} > 0))::int AS pos{n},"
            f" avg(r{n}) AS mean{n},"
            f" percentile_cont(0.5) WITHIN GROUP (ORDER BY r{n}) AS median{n}"
        )
    sql = (
        f"WITH u AS ({' UNION ALL '.join(branches)}),"
        " r AS ("
        f"  SELECT u.pattern, {', '.join(returns)}"
        f"  FROM u{sector_join}"
        "  LEFT JOIN LATERAL ("
        "   SELECT array_agg(b.close ORDER BY b.date) AS closes"
        "   FROM (SELECT o.close, o.date FROM ohlcv_daily AS o"
        "         WHERE o.symbol = u.symbol AND o.date >= (u.at AT TIME ZONE 'UTC')::date"
        f"         ORDER BY o.date LIMIT {max(HORIZONS) + 1}) AS b"
        "  ) AS c ON true)"
        f" SELECT pattern, count(*)::int AS detections, {', '.join(stats)}"
        " FROM r GROUP BY pattern ORDER BY pattern"
    )
    return sql, params.values


def _horizon(row: asyncpg.Record, n: int) -> HorizonStats:
    samples: int = row[f"n{n}"]
    positive: int = row[f"pos{n}"]
    interval = wilson(positive, samples)
    return {
        "samples": samples,
        "positive": positive,
        "hit_rate": positive / samples if samples else None,
        "hit_rate_low": interval[0] if interval else None,
        "hit_rate_high": interval[1] if interval else None,
        "mean_return": row[f"mean{n}"],
        "median_return": row[f"median{n}"],
    }


async def select_pattern_stats(
    conn: asyncpg.Connection,
    tiers: Sequence[Tier] = (*TABLE_TIERS, "combo"),
    *,
    sectors: Sequence[str] | None = None,
    since: dt.datetime | None = None,
    min_samples: int = 0,
) -> list[PatternStats]:
    """Per pattern type: detections and forward-return figures at +1, +5 and +30 sessions.

    Patterns with fewer than ``min_samples`` returns at +1 session are left out.
    """
    sql, args = build_analytics_query(tiers, sectors=sectors, since=since)
    items: list[PatternStats] = []
    for row in await conn.fetch(sql, *args):
        if row["n1"] < min_samples:
            continue
        items.append(
            {
                "pattern": row["pattern"],
                "detections": row["detections"],
                "d1": _horizon(row, 1),
                "d5": _horizon(row, 5),
                "d30": _horizon(row, 30),
            }
        )
    return items
