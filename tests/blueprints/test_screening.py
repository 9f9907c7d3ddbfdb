"""Screener, market overview, breadth and pattern analytics against the seeded database.

Every expected figure is computed here in plain Python over the same rows the API reads (raw
``SELECT``s of the tables), independently of the SQL behind the endpoints.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
import statistics
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable
from typing import Any

import asyncpg
import orjson
import pytest

from tests.blueprints.test_patterns import walk

NOW = dt.datetime.now(dt.UTC)
DAILY_WINDOW = dt.timedelta(days=7)


pytestmark = pytest.mark.heavy

# --- reference data ---------------------------------------------------------------------------


async def _bars(conn: asyncpg.Connection) -> dict[str, list[asyncpg.Record]]:
    bars: dict[str, list[asyncpg.Record]] = defaultdict(list)
    for row in await conn.fetch(
        "SELECT symbol, date, high, low, close FROM ohlcv_daily ORDER BY symbol, date"
    ):
        bars[row["symbol"]].append(row)
    return bars


def _number(data: dict[str, Any], key: str) -> float | None:
    value = data.get("indicators", {}).get(key) if isinstance(data, dict) else None
    return float(value) if isinstance(value, int | float) else None


async def _expected_scan(
    conn: asyncpg.Connection, min_confidence: float = 0.0, patterns: str | None = None
) -> list[dict[str, Any]]:
    """The daily-window screener rows from the raw tables: per (symbol, pattern) the latest
    detection meeting the detection filters (confidence, pattern), before any market filter."""
    rows = await conn.fetch(
        "SELECT id, symbol, pattern_type, confidence, detection_timestamp, pattern_data::text"
        " AS data FROM daily_patterns WHERE detection_timestamp >= $1",
        NOW - DAILY_WINDOW,
    )
    latest: dict[tuple[str, str], asyncpg.Record] = {}
    for row in rows:
        if row["confidence"] < min_confidence:
            continue
        if patterns is not None and row["pattern_type"] not in patterns.split(","):
            continue
        key = (row["symbol"], row["pattern_type"])
        best = latest.get(key)
        if best is None or (row["detection_timestamp"], row["id"]) > (
            best["detection_timestamp"],
            best["id"],
        ):
            latest[key] = row
    symbols = sorted({symbol for symbol, _ in latest})
    indicators: dict[tuple[str, str], tuple[dt.datetime, float]] = {}
    for row in await conn.fetch(
        "SELECT symbol, indicator_type, value_data::text AS v, calculation_timestamp"
        " FROM daily_indicators WHERE symbol = ANY($1)",
        symbols,
    ):
        value = orjson.loads(row["v"]).get("value")
        key = (row["symbol"], row["indicator_type"])
        if key not in indicators or row["calculation_timestamp"] > indicators[key][0]:
            indicators[key] = (row["calculation_timestamp"], value)
    closes: dict[str, list[float]] = defaultdict(list)
    for row in await conn.fetch(
        "SELECT symbol, close FROM ohlcv_daily WHERE symbol = ANY($1) ORDER BY symbol, date DESC",
        symbols,
    ):
        closes[row["symbol"]].append(row["close"])
    info = {
        row["symbol"]: row
        for row in await conn.fetch(
            "SELECT symbol, name, sector, market_cap FROM symbols WHERE symbol = ANY($1)", symbols
        )
    }
    out = []
    for (symbol, pattern), row in latest.items():
        data = orjson.loads(row["data"])
        last = closes.get(symbol, [])

        def figure(key: str, kind: str, data: Any = data, symbol: str = symbol) -> float | None:
            own = _number(data, key)
            if own is not None:
                return own
            found = indicators.get((symbol, kind))
            return found[1] if found else None

        price = data.get("price") if isinstance(data.get("price"), int | float) else None
        out.append(
            {
                "id": row["id"],
                "symbol": symbol,
                "name": info[symbol]["name"] if symbol in info else None,
                "sector": info[symbol]["sector"] if symbol in info else None,
                "market_cap": info[symbol]["market_cap"] if symbol in info else None,
                "pattern": pattern,
                "confidence": row["confidence"],
                "detected_at": row["detection_timestamp"],
                "price": price if price is not None else (last[0] if last else None),
                "change_pct": (last[0] / last[1] - 1) * 100 if len(last) > 1 else None,
                "rs": figure("rs", "RS"),
                "rel_volume": figure("rel_volume", "RelVolume"),
                "rsi": figure("rsi", "RSI"),
            }
        )
    return out


def _sorted(rows: list[dict[str, Any]], sort: str) -> list[dict[str, Any]]:
    field = sort.lstrip("-")
    column = {"detected": "detected_at", "change": "change_pct"}.get(field, field)
    descending = sort.startswith("-")
    present = [r for r in rows if r[column] is not None]
    missing = [r for r in rows if r[column] is None]
    present.sort(key=lambda r: (r[column], r["id"]), reverse=descending)
    missing.sort(key=lambda r: r["id"], reverse=descending)
    return present + missing


def _close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def _same_rows(api: list[dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    assert [(r["symbol"], r["pattern"], r["id"]) for r in api] == [
        (r["symbol"], r["pattern"], r["id"]) for r in expected
    ]
    for got, want in zip(api, expected, strict=True):
        for key in ("price", "change_pct", "rs", "rel_volume", "rsi", "confidence"):
            assert _close(got[key], want[key]), (key, got, want)
        assert got["name"] == want["name"] and got["sector"] == want["sector"]


# --- screener ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "keep"),
    [
        ({}, lambda r: True),
        ({"min_confidence": "0.85"}, lambda r: r["confidence"] >= 0.85),
        (
            {"sectors": "Information Technology,Energy", "rs_min": "60"},
            lambda r: (
                r["sector"] in ("Information Technology", "Energy")
                and r["rs"] is not None
                and r["rs"] >= 60
            ),
        ),
        (
            {"rsi_min": "40", "rsi_max": "60", "rel_volume_min": "1.2"},
            lambda r: (
                r["rsi"] is not None
                and 40 <= r["rsi"] <= 60
                and r["rel_volume"] is not None
                and r["rel_volume"] >= 1.2
            ),
        ),
        (
            {"price_min": "20", "price_max": "150", "market_cap_min": "10000000000"},
            lambda r: (
                r["price"] is not None
                and 20 <= r["price"] <= 150
                and (r["market_cap"] or 0) >= 10_000_000_000
            ),
        ),
        ({"patterns": "Breakout,Doji"}, lambda r: r["pattern"] in ("Breakout", "Doji")),
        ({"patterns": "NoSuchPattern"}, lambda r: False),
    ],
)
@pytest.mark.parametrize("sort", ["-confidence", "rs", "-change", "symbol", "-detected"])
async def test_scan_matches_reference(
    client: Any,
    auth_headers: dict[str, str],
    conn: asyncpg.Connection,
    params: dict[str, str],
    keep: Any,
    sort: str,
) -> None:
    scan_rows = await _expected_scan(
        conn, float(params.get("min_confidence", 0)), params.get("patterns")
    )
    expected = _sorted([r for r in scan_rows if keep(r)], sort)
    pages = await walk(client, "/api/patterns/scan", auth_headers, sort=sort, limit=100, **params)
    rows = [item for page in pages for item in page["data"]]
    for row in rows:
        row["detected_at"] = dt.datetime.fromisoformat(row["detected_at"])
    _same_rows(rows, expected)
    if params.get("patterns") == "NoSuchPattern":
        assert rows == [] and pages[0]["meta"]["next_cursor"] is None
    else:
        assert rows  # the seeded market has matches for these screens


async def test_scan_rows_carry_the_documented_fields(
    client: Any, auth_headers: dict[str, str]
) -> None:
    response = await client.get(
        "/api/patterns/scan", headers=auth_headers, query_string={"limit": 3}
    )
    body = await response.get_json()
    assert set(body["data"][0]) == {
        "id",
        "symbol",
        "name",
        "sector",
        "pattern",
        "tier",
        "confidence",
        "priority",
        "timeframe",
        "detected_at",
        "expires_at",
        "price",
        "levels",
        "indicators",
        "change_pct",
        "rs",
        "rel_volume",
        "rsi",
    }
    assert body["meta"]["tier"] == "daily" and body["meta"]["sort"] == "-confidence"


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"sort": "volume"}, "sort"),
        ({"rsi_min": "abc"}, "rsi_min"),
        ({"rsi_min": "150"}, "rsi_min"),
        ({"min_confidence": "2"}, "min_confidence"),
        ({"rsi_min": "70", "rsi_max": "30"}, "rsi_max"),
        ({"price_min": "-1"}, "price_min"),
        ({"limit": "501"}, "limit"),
        ({"bogus": "1"}, "bogus"),
        ({"format": "xml"}, "format"),
    ],
)
async def test_scan_rejects_bad_parameters(
    client: Any, auth_headers: dict[str, str], params: dict[str, str], name: str
) -> None:
    response = await client.get("/api/patterns/scan", headers=auth_headers, query_string=params)
    assert response.status_code == 400
    body = await response.get_json()
    assert body["status"] == "error" and name in body["message"]


async def test_scan_unknown_tier_is_404(client: Any, auth_headers: dict[str, str]) -> None:
    response = await client.get(
        "/api/patterns/scan", headers=auth_headers, query_string={"tier": "yearly"}
    )
    assert response.status_code == 404


# --- a sector with one symbol -----------------------------------------------------------------

ONE = "ONESEC"
ONE_SECTOR = "Single Symbol Sector"


@pytest.fixture(name="one_symbol_sector")
async def _one_symbol_sector(conn: asyncpg.Connection) -> AsyncIterator[dict[str, Any]]:
    """A sector holding one symbol: bars on the last 40 trading days; a daily Breakout ten
    sessions ago and a Doji the session before the latest."""
    dates = [
        row["date"]
        for row in await conn.fetch(
            "SELECT DISTINCT date FROM ohlcv_daily ORDER BY date DESC LIMIT 40"
        )
    ][::-1]
    closes = [50.0 + (i % 7) - (i % 3) for i in range(len(dates))]
    await conn.execute(
        "INSERT INTO symbols (symbol, name, sector, market_cap) VALUES ($1, 'One Corp', $2, 5e9)",
        ONE,
        ONE_SECTOR,
    )
    await conn.executemany(
        "INSERT INTO ohlcv_daily (symbol, date, open, high, low, close, volume)"
        " VALUES ($1, $2, $3::float8, $3::float8 + 1, $3::float8 - 1, $3::float8, 1000)",
        [(ONE, day, close) for day, close in zip(dates, closes, strict=True)],
    )
    detected = dt.datetime.combine(dates[-10], dt.time(21), tzinfo=dt.UTC)
    await conn.execute(
        "INSERT INTO daily_patterns (symbol, pattern_type, confidence, detection_timestamp,"
        " pattern_data) VALUES ($1, 'Breakout', 0.9, $2, '{}')",
        ONE,
        detected,
    )
    recent = await conn.fetchval(
        "INSERT INTO daily_patterns (symbol, pattern_type, confidence, detection_timestamp,"
        " pattern_data) VALUES ($1, 'Doji', 0.7, $2, '{}') RETURNING id",
        ONE,
        dt.datetime.combine(dates[-2], dt.time(21), tzinfo=dt.UTC),
    )
    try:
        yield {"dates": dates, "closes": closes, "detected": detected, "id": recent}
    finally:
        await conn.execute("DELETE FROM daily_patterns WHERE symbol = $1", ONE)
        await conn.execute("DELETE FROM ohlcv_daily WHERE symbol = $1", ONE)
        await conn.execute("DELETE FROM symbols WHERE symbol = $1", ONE)


async def test_one_symbol_sector(
    client: Any, auth_headers: dict[str, str], one_symbol_sector: dict[str, Any]
) -> None:
    closes = one_symbol_sector["closes"]
    # Screener: the one detection, with the latest bars' figures (no indicators in its data).
    response = await client.get(
        "/api/patterns/scan", headers=auth_headers, query_string={"sectors": ONE_SECTOR}
    )
    rows = (await response.get_json())["data"]
    assert [(r["symbol"], r["pattern"], r["id"]) for r in rows] == [
        (ONE, "Doji", one_symbol_sector["id"])
    ]
    assert rows[0]["price"] == closes[-1]
    assert math.isclose(rows[0]["change_pct"], (closes[-1] / closes[-2] - 1) * 100)
    assert rows[0]["rsi"] is None and rows[0]["rs"] is None

    # Analytics: one detection, returns from its session's close 1 and 5 sessions on.
    response = await client.get(
        "/api/analytics/patterns",
        headers=auth_headers,
        query_string={"sector": ONE_SECTOR, "tier": "daily"},
    )
    data = (await response.get_json())["data"]
    session = len(closes) - 10
    assert [item["pattern"] for item in data] == ["Breakout", "Doji"]
    doji = data[1]
    assert (doji["detections"], doji["d1"]["samples"], doji["d5"]["samples"]) == (1, 1, 0)
    assert math.isclose(doji["d1"]["mean_return"], (closes[-1] / closes[-2] - 1) * 100)
    item = data[0]
    assert item["detections"] == 1
    r1 = (closes[session + 1] / closes[session] - 1) * 100
    r5 = (closes[session + 5] / closes[session] - 1) * 100
    assert math.isclose(item["d1"]["mean_return"], r1)
    assert math.isclose(item["d5"]["median_return"], r5)
    assert item["d1"]["samples"] == 1 and item["d30"]["samples"] == 0
    assert item["d30"]["hit_rate"] is None

    # Overview: the sector's breadth is its one symbol's.
    response = await client.get("/api/market/overview", headers=auth_headers)
    sectors = {s["sector"]: s for s in (await response.get_json())["data"]["sectors"]}
    one = sectors[ONE_SECTOR]
    assert one["symbols"] == 1
    assert (one["advancers"], one["decliners"], one["unchanged"]) == (
        int(closes[-1] > closes[-2]),
        int(closes[-1] < closes[-2]),
        int(closes[-1] == closes[-2]),
    )
    assert one["above_200d"] is None  # 40 bars: no 200-day average
    assert one["above_50d"] is None


# --- market overview and breadth ---------------------------------------------------------------


def _breadth_of(day: dt.date, bars: dict[str, list[asyncpg.Record]], symbols: Iterable[str]) -> Any:
    figures = defaultdict(int)
    above = {50: [0, 0], 200: [0, 0]}
    for symbol in symbols:
        series = [b for b in bars[symbol] if b["date"] <= day]
        if not series or series[-1]["date"] != day:
            continue
        today = series[-1]
        figures["symbols"] += 1
        if len(series) > 1:
            prev = series[-2]["close"]
            key = (
                "advancers"
                if today["close"] > prev
                else "decliners"
                if today["close"] < prev
                else "unchanged"
            )
            figures[key] += 1
        year = [b for b in series[:-1] if b["date"] >= day - dt.timedelta(days=364)]
        if year:
            figures["new_highs"] += today["high"] > max(b["high"] for b in year)
            figures["new_lows"] += today["low"] < min(b["low"] for b in year)
        recent = [b for b in series if b["date"] >= day - dt.timedelta(days=364)]
        for n in (50, 200):
            if len(recent) >= n:
                mean = statistics.fmean(b["close"] for b in recent[-n:])
                above[n][1] += 1
                above[n][0] += today["close"] > mean
    for n in (50, 200):
        figures[f"above_{n}d"] = above[n][0] / above[n][1] if above[n][1] else None
    return figures


def _assert_breadth(got: dict[str, Any], want: Any) -> None:
    for key in ("symbols", "advancers", "decliners", "unchanged", "new_highs", "new_lows"):
        assert got[key] == want[key], key
    for key in ("above_50d", "above_200d"):
        assert _close(got[key], want[key]), key


async def test_overview_matches_reference(
    client: Any, auth_headers: dict[str, str], conn: asyncpg.Connection
) -> None:
    bars = await _bars(conn)
    sector_of = {
        r["symbol"]: r["sector"] for r in await conn.fetch("SELECT symbol, sector FROM symbols")
    }
    day = max(b[-1]["date"] for b in bars.values())
    response = await client.get("/api/market/overview", headers=auth_headers)
    assert response.status_code == 200
    data = (await response.get_json())["data"]
    assert data["date"] == day.isoformat()
    _assert_breadth(data["market"], _breadth_of(day, bars, bars))
    by_sector: dict[str, list[str]] = defaultdict(list)
    for symbol in bars:
        if sector_of.get(symbol):
            by_sector[sector_of[symbol]].append(symbol)
    assert [s["sector"] for s in data["sectors"]] == sorted(by_sector)
    for sector in data["sectors"]:
        _assert_breadth(sector, _breadth_of(day, bars, by_sector[sector["sector"]]))

    changes = sorted(
        (
            ((b[-1]["close"] / b[-2]["close"] - 1) * 100, symbol)
            for symbol, b in bars.items()
            if b[-1]["date"] == day and len(b) > 1
        ),
    )
    gainers = sorted((c for c in changes if c[0] > 0), key=lambda c: (-c[0], c[1]))[:10]
    losers = [c for c in changes if c[0] < 0][:10]
    assert [g["symbol"] for g in data["gainers"]] == [s for _, s in gainers]
    assert [g["symbol"] for g in data["losers"]] == [s for _, s in losers]

    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    tables = {
        "daily": ("daily_patterns", "detection_timestamp"),
        "intraday": ("intraday_patterns", "detection_timestamp"),
        "combo": ("pattern_detections", "detected_at"),
    }
    for tier, (table, column) in tables.items():
        for row in await conn.fetch(
            f"SELECT {column} AS at FROM {table} WHERE {column} >= $1 AND {column} <= $2",
            NOW - dt.timedelta(days=30),
            NOW,
        ):
            age = NOW - row["at"]
            for i, span in enumerate((1, 7, 30)):
                counts[tier][i] += age <= dt.timedelta(days=span)
    got = {
        c["key"]: [c["last_1d"], c["last_7d"], c["last_30d"]] for c in data["detections_by_tier"]
    }
    for tier, want in counts.items():
        # The API counts from its own request time, a moment later: at most a few rows differ.
        assert all(abs(g - w) <= 3 for g, w in zip(got[tier], want, strict=True)), tier
    assert sum(c["last_30d"] for c in data["detections_by_sector"]) == sum(
        c["last_30d"] for c in data["detections_by_tier"]
    )


async def test_breadth_series_matches_reference(
    client: Any, auth_headers: dict[str, str], conn: asyncpg.Connection
) -> None:
    bars = await _bars(conn)
    response = await client.get(
        "/api/market/breadth", headers=auth_headers, query_string={"days": 6}
    )
    assert response.status_code == 200
    series = (await response.get_json())["data"]
    days = sorted({b["date"] for rows in bars.values() for b in rows})[-6:]
    assert [d["date"] for d in series] == [d.isoformat() for d in days]
    for point, day in zip(series, days, strict=True):
        _assert_breadth(point, _breadth_of(day, bars, bars))


@pytest.mark.parametrize(
    ("params", "name"),
    [({"days": "0"}, "days"), ({"days": "366"}, "days"), ({"days": "x"}, "days")],
)
async def test_breadth_rejects_bad_days(
    client: Any, auth_headers: dict[str, str], params: dict[str, str], name: str
) -> None:
    response = await client.get("/api/market/breadth", headers=auth_headers, query_string=params)
    assert response.status_code == 400
    assert name in (await response.get_json())["message"]


# --- analytics --------------------------------------------------------------------------------


def _wilson(k: int, n: int) -> tuple[float, float]:
    """Wilson's score interval written as (n·p + z²/2 ± z·sqrt(n·p·q + z²/4)) / (n + z²)."""
    z = 1.959963984540054
    p = k / n
    root = z * math.sqrt(n * p * (1 - p) + z * z / 4)
    return (n * p + z * z / 2 - root) / (n + z * z), (n * p + z * z / 2 + root) / (n + z * z)


async def _expected_analytics(
    conn: asyncpg.Connection, tiers: list[str], sector: str | None, since: dt.datetime | None
) -> dict[str, dict[str, Any]]:
    bars = await _bars(conn)
    sector_of = {
        r["symbol"]: r["sector"] for r in await conn.fetch("SELECT symbol, sector FROM symbols")
    }
    detections: list[tuple[str, str, dt.datetime, float | None, list[float | None]]] = []
    for tier in tiers:
        if tier == "combo":
            rows = await conn.fetch(
                "SELECT d.symbol, p.name, d.detected_at, d.price_at_detection, d.outcome_1d,"
                " d.outcome_5d, d.outcome_30d FROM pattern_detections d"
                " JOIN pattern_definitions p ON p.id = d.pattern_id WHERE p.enabled"
            )
            detections += [
                (r[0], r[1], r[2], r[3], [r["outcome_1d"], r["outcome_5d"], r["outcome_30d"]])
                for r in rows
            ]
        else:
            rows = await conn.fetch(
                f"SELECT symbol, pattern_type, detection_timestamp FROM {tier}_patterns"
            )
            detections += [(r[0], r[1], r[2], None, [None, None, None]) for r in rows]
    out: dict[str, dict[str, Any]] = {}
    returns: dict[str, list[list[float]]] = defaultdict(lambda: [[], [], []])
    for symbol, pattern, at, base, stored in detections:
        if since is not None and at < since:
            continue
        if sector is not None and sector_of.get(symbol) != sector:
            continue
        out.setdefault(pattern, {"detections": 0})["detections"] += 1
        series = [b for b in bars.get(symbol, []) if b["date"] >= at.astimezone(dt.UTC).date()]
        for i, n in enumerate((1, 5, 30)):
            value = stored[i]
            if value is None and len(series) > n:
                start = base if base else series[0]["close"]
                value = (series[n]["close"] / start - 1) * 100
            if value is not None:
                returns[pattern][i].append(value)
    for pattern, figures in out.items():
        for i, n in enumerate((1, 5, 30)):
            values = returns[pattern][i]
            positive = sum(v > 0 for v in values)
            figures[f"d{n}"] = {
                "samples": len(values),
                "positive": positive,
                "hit_rate": positive / len(values) if values else None,
                "interval": _wilson(positive, len(values)) if values else None,
                "mean_return": statistics.fmean(values) if values else None,
                "median_return": statistics.median(values) if values else None,
            }
    return out


ALL_TIERS = ["daily", "intraday", "hourly", "weekly", "monthly", "daily_intraday", "combo"]


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"tier": "combo"},
        {"tier": "daily", "sector": "Financials"},
        {"tier": "weekly", "since": (NOW - dt.timedelta(days=30)).isoformat()},
    ],
)
async def test_analytics_matches_reference(
    client: Any, auth_headers: dict[str, str], conn: asyncpg.Connection, params: dict[str, str]
) -> None:
    tiers = [params["tier"]] if "tier" in params else ALL_TIERS
    since = dt.datetime.fromisoformat(params["since"]) if "since" in params else None
    expected = await _expected_analytics(conn, tiers, params.get("sector"), since)
    response = await client.get(
        "/api/analytics/patterns", headers=auth_headers, query_string=params
    )
    assert response.status_code == 200
    data = (await response.get_json())["data"]
    assert [item["pattern"] for item in data] == sorted(expected)
    assert data
    for item in data:
        want = expected[item["pattern"]]
        assert item["detections"] == want["detections"]
        for h in ("d1", "d5", "d30"):
            got, ref = item[h], want[h]
            assert (got["samples"], got["positive"]) == (ref["samples"], ref["positive"])
            for key in ("hit_rate", "mean_return", "median_return"):
                assert _close(got[key], ref[key]) or math.isclose(got[key], ref[key]), key
            if ref["interval"] is None:
                assert got["hit_rate_low"] is None
            else:
                assert math.isclose(got["hit_rate_low"], ref["interval"][0])
                assert math.isclose(got["hit_rate_high"], ref["interval"][1])
                assert got["hit_rate_low"] <= got["hit_rate"] <= got["hit_rate_high"]


async def test_analytics_min_samples_and_empty(client: Any, auth_headers: dict[str, str]) -> None:
    response = await client.get(
        "/api/analytics/patterns", headers=auth_headers, query_string={"tier": "combo"}
    )
    data = (await response.get_json())["data"]
    threshold = sorted(item["d1"]["samples"] for item in data)[len(data) // 2]
    response = await client.get(
        "/api/analytics/patterns",
        headers=auth_headers,
        query_string={"tier": "combo", "min_samples": threshold},
    )
    kept = (await response.get_json())["data"]
    assert [i["pattern"] for i in kept] == [
        i["pattern"] for i in data if i["d1"]["samples"] >= threshold
    ]
    response = await client.get(
        "/api/analytics/patterns",
        headers=auth_headers,
        query_string={"since": (NOW + dt.timedelta(days=1)).isoformat()},
    )
    assert (await response.get_json())["data"] == []


async def test_seeded_combo_outcomes_agree_with_the_bars(conn: asyncpg.Connection) -> None:
    bars = await _bars(conn)
    rows = await conn.fetch(
        "SELECT symbol, detected_at, price_at_detection, outcome_1d, outcome_5d, outcome_30d"
        " FROM pattern_detections"
    )
    checked = 0
    for row in rows:
        series = [b for b in bars[row["symbol"]] if b["date"] >= row["detected_at"].date()]
        assert series and series[0]["date"] == row["detected_at"].date()  # sits on a bar
        for n, stored in ((1, row["outcome_1d"]), (5, row["outcome_5d"]), (30, row["outcome_30d"])):
            if len(series) <= n:
                assert stored is None
            else:
                want = round((series[n]["close"] / row["price_at_detection"] - 1) * 100, 2)
                assert stored == pytest.approx(want, abs=0.006)
                checked += 1
    assert checked > len(rows)


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"min_samples": "-1"}, "min_samples"),
        ({"since": "yesterday"}, "since"),
        ({"tier": "x" * 40}, "tier"),
        ({"format": "pdf"}, "format"),
    ],
)
async def test_analytics_rejects_bad_parameters(
    client: Any, auth_headers: dict[str, str], params: dict[str, str], name: str
) -> None:
    response = await client.get(
        "/api/analytics/patterns", headers=auth_headers, query_string=params
    )
    assert response.status_code == 400
    assert name in (await response.get_json())["message"]


# --- CSV export ---------------------------------------------------------------------------------


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


def _flat(row: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, dict) and key in ("d1", "d5", "d30"):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/api/patterns", {"limit": "300", "confidence_min": "0.8"}),
        ("/api/patterns", {"tier": "combo", "limit": "200"}),
        ("/api/patterns/AAPL", {"tier": "daily", "limit": "40"}),
        ("/api/patterns/scan", {"sort": "-rs", "limit": "250", "min_confidence": "0.7"}),
        ("/api/analytics/patterns", {"tier": "daily"}),
    ],
)
async def test_csv_equals_json(
    client: Any, auth_headers: dict[str, str], path: str, params: dict[str, str]
) -> None:
    response = await client.get(path, headers=auth_headers, query_string=params)
    rows = [_flat(r) for r in (await response.get_json())["data"]]
    assert rows
    response = await client.get(
        path, headers=auth_headers, query_string={**params, "format": "csv"}
    )
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"].startswith('attachment; filename="')
    parsed = list(csv.DictReader(io.StringIO(await response.get_data(as_text=True))))
    assert len(parsed) == len(rows)
    for got, want in zip(parsed, rows, strict=True):
        for key, value in want.items():
            if isinstance(value, dict | list):  # JSON objects travel as JSON text
                assert orjson.loads(got[key]) == value, key
            else:
                assert got[key] == _cell(value), (key, got[key], value)


async def test_csv_export_allows_up_to_ten_thousand_rows(
    client: Any, auth_headers: dict[str, str], conn: asyncpg.Connection
) -> None:
    total = await conn.fetchval("SELECT count(*) FROM intraday_patterns")
    response = await client.get(
        "/api/patterns", headers=auth_headers, query_string={"tier": "intraday", "format": "csv"}
    )
    lines = list(csv.reader(io.StringIO(await response.get_data(as_text=True))))
    assert len(lines) - 1 == min(total, 10_000)
    response = await client.get(
        "/api/patterns", headers=auth_headers, query_string={"format": "csv", "limit": "10001"}
    )
    assert response.status_code == 400
    assert "limit" in (await response.get_json())["message"]
    response = await client.get(
        "/api/patterns", headers=auth_headers, query_string={"limit": "600"}
    )
    assert response.status_code == 400
    assert "limit" in (await response.get_json())["message"]


async def test_new_endpoints_require_login(client: Any) -> None:
    for path in (
        "/api/patterns/scan",
        "/api/market/overview",
        "/api/market/breadth",
        "/api/analytics/patterns",
    ):
        response = await client.get(path)
        assert response.status_code == 401, path
