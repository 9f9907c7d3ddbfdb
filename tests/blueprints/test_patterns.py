"""Pattern endpoints against the seeded database: rows, order, filters, tiers and pagination."""

from __future__ import annotations

import base64
import datetime as dt
import re
from typing import Any

import asyncpg
import orjson
import pytest

from tickstock.detection import Detection
from tickstock.pagination import encode_cursor
from tickstock.vocab import canonical_timeframe

TABLE_TIERS = ("daily", "intraday", "hourly", "weekly", "monthly", "daily_intraday")
WINDOWS = {
    "daily": dt.timedelta(days=7),
    "intraday": dt.timedelta(hours=24),
    "hourly": dt.timedelta(hours=48),
    "weekly": dt.timedelta(weeks=8),
    "monthly": dt.timedelta(days=365),
    "combo": dt.timedelta(days=30),
    "daily_intraday": dt.timedelta(hours=72),
}


def _union(where: str, tiers: tuple[str, ...] = TABLE_TIERS) -> str:
    """Reference SQL, written independently of the query builder: (tier, id) in API order."""
    branches = " UNION ALL ".join(
        f"SELECT '{tier}' AS tier, id, detection_timestamp FROM {tier}_patterns WHERE {where}"
        for tier in tiers
    )
    return (
        f"SELECT tier, id FROM ({branches}) AS p"
        ' ORDER BY detection_timestamp DESC, tier COLLATE "C" DESC, id DESC'
    )


async def walk(
    client: Any, path: str, headers: dict[str, str], **params: Any
) -> list[dict[str, Any]]:
    """Every page of a list endpoint, following next_cursor."""
    pages = []
    cursor = None
    for _ in range(100):
        query = dict(params, **({"cursor": cursor} if cursor else {}))
        response = await client.get(path, headers=headers, query_string=query)
        assert response.status_code == 200, await response.get_data(as_text=True)
        body = await response.get_json()
        assert body["status"] == "success"
        assert body["meta"]["count"] == len(body["data"])
        pages.append(body)
        cursor = body["meta"]["next_cursor"]
        if cursor is None:
            return pages
    raise AssertionError("pagination did not end")


def _raw_cursor(payload: bytes) -> str:
    return base64.urlsafe_b64encode(payload).rstrip(b"=").decode()


def _ids(items: list[dict[str, Any]]) -> list[tuple[str, int]]:
    return [(item["tier"], item["id"]) for item in items]


def _flatten(pages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [item for page in pages for item in page["data"]]


async def test_requires_login(client: Any) -> None:
    for path in (
        "/api/patterns",
        "/api/patterns/AAPL",
        "/api/patterns/tiers/daily",
        "/api/pattern-definitions",
    ):
        response = await client.get(path)
        assert response.status_code == 401, path
        body = await response.get_json()
        assert body == {"status": "error", "message": "login required", "code": "unauthorized"}


async def test_symbol_daily_pages_match_sql(
    client: Any, auth_headers: dict[str, str], conn: asyncpg.Connection
) -> None:
    expected = [
        ("daily", row["id"])
        for row in await conn.fetch(
            "SELECT id FROM daily_patterns WHERE symbol = 'AAPL'"
            " ORDER BY detection_timestamp DESC, id DESC"
        )
    ]
    assert len(expected) >= 60  # the seed guarantees AAPL history for this walk
    pages = await walk(client, "/api/patterns/AAPL", auth_headers, tier="daily", limit=20)
    assert len(pages) >= 3
    assert [len(page["data"]) for page in pages[:-1]] == [20] * (len(pages) - 1)
    assert _ids(_flatten(pages)) == expected  # no gaps, no repeats, same order
    assert pages[-1]["meta"]["next_cursor"] is None
    assert all(page["meta"]["limit"] == 20 for page in pages)


async def test_symbol_across_tiers_matches_sql(
    client: Any, auth_headers: dict[str, str], conn: asyncpg.Connection
) -> None:
    expected = [(row["tier"], row["id"]) for row in await conn.fetch(_union("symbol = 'AAPL'"))]
    assert {tier for tier, _ in expected} >= {"daily", "intraday"}
    pages = await walk(client, "/api/patterns/aapl", auth_headers, limit=37)
    items = _flatten(pages)
    assert _ids(items) == expected
    assert len(set(_ids(items))) == len(items)
    assert {item["symbol"] for item in items} == {"AAPL"}
    stamps = [item["detected_at"] for item in items]
    assert stamps == sorted(stamps, reverse=True)
    assert pages[0]["meta"]["symbol"] == "AAPL"


async def test_item_shape(
    client: Any, auth_headers: dict[str, str], conn: asyncpg.Connection
) -> None:
    response = await client.get(
        "/api/patterns/AAPL", headers=auth_headers, query_string={"tier": "daily", "limit": 1}
    )
    body = await response.get_json()
    (item,) = body["data"]
    row = await conn.fetchrow(
        "SELECT id, pattern_type, confidence, detection_timestamp, expiration_date, levels,"
        " timeframe FROM daily_patterns WHERE id = $1",
        item["id"],
    )
    assert row is not None
    assert item["pattern"] == row["pattern_type"]
    assert item["confidence"] == pytest.approx(row["confidence"])
    # Times as live events write them: UTC, milliseconds, Z.
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", item["detected_at"])
    stored = row["detection_timestamp"]
    assert dt.datetime.fromisoformat(item["detected_at"]) == stored.replace(
        microsecond=stored.microsecond // 1000 * 1000
    )
    assert dt.datetime.fromisoformat(item["expires_at"]) == row["expiration_date"]
    # The price at the top level; the stored numbers as typed levels (below the price: support).
    assert isinstance(item["pattern_data"], dict)
    assert item["price"] == item["pattern_data"]["price"]
    assert item["indicators"] == item["pattern_data"]["indicators"]
    assert item["levels"] == [
        {"type": "support" if level <= item["price"] else "resistance", "value": float(level)}
        for level in row["levels"]
    ]
    assert {level["type"] for level in item["levels"]} == {"support", "resistance"}
    assert item["timeframe"] == canonical_timeframe(row["timeframe"]) == "daily"  # 1d, D ...
    assert set(item) >= set(Detection.__annotations__)
    assert item["tier"] == "daily"
    assert "daily_pattern_id" not in item


async def test_items_keep_exact_times_and_json_as_stored(
    client: Any, auth_headers: dict[str, str], conn: asyncpg.Connection
) -> None:
    # Times in UTC with Z to the millisecond (as live events carry them), SQL NULL as null, and
    # the JSON columns exactly as the producer wrote them.
    data = {"note": 'quote " backslash \\ caf\u00e9 \u2713', "nested": {"list": [1, 2.5, None]}}
    ids = [
        await conn.fetchval(
            "INSERT INTO daily_patterns (symbol, pattern_type, confidence, pattern_data,"
            " detection_timestamp, expiration_date, levels, metadata)"
            " VALUES ('ZZJSON', 'Breakout', $1, $2::jsonb, $3, NULL, $4, '{}') RETURNING id",
            confidence,
            orjson.dumps(data).decode(),
            at,
            levels,
        )
        for confidence, at, levels in [
            (0.9, dt.datetime(2001, 2, 3, 4, 5, 6, 789012, tzinfo=dt.UTC), [10, 12.25]),
            (0.5, dt.datetime(2001, 2, 3, 4, 5, 6, tzinfo=dt.UTC), []),
        ]
    ]
    try:
        response = await client.get("/api/patterns/ZZJSON", headers=auth_headers)
        body = await response.get_json()
    finally:
        await conn.execute("DELETE FROM daily_patterns WHERE id = ANY($1::bigint[])", ids)
    first, second = body["data"]
    assert [first["id"], second["id"]] == ids
    assert first["detected_at"] == "2001-02-03T04:05:06.789Z"
    assert second["detected_at"] == "2001-02-03T04:05:06.000Z"
    assert first["expires_at"] is None
    # No price stored: the levels cannot be placed against it, so they are plain levels.
    assert first["price"] is None and first["indicators"] == {}
    assert first["levels"] == [{"type": "level", "value": 10}, {"type": "level", "value": 12.25}]
    assert second["levels"] == []
    assert first["pattern_data"] == data and first["metadata"] == {}
    assert (first["confidence"], first["priority"]) == (0.9, "CRITICAL")
    assert (second["confidence"], second["priority"]) == (0.5, "LOW")


async def test_priority_follows_confidence(client: Any, auth_headers: dict[str, str]) -> None:
    pages = await walk(client, "/api/patterns/tiers/daily", auth_headers, limit=500)
    items = _flatten(pages)
    seen = set()
    for item in items:
        confidence = item["confidence"]
        expected = (
            "CRITICAL"
            if confidence >= 0.9
            else "HIGH"
            if confidence >= 0.8
            else "MEDIUM"
            if confidence >= 0.7
            else "LOW"
        )
        assert item["priority"] == expected
        seen.add(expected)
    assert seen == {"CRITICAL", "HIGH", "MEDIUM", "LOW"}


async def test_list_filters_symbols_pattern_confidence(
    client: Any, auth_headers: dict[str, str], conn: asyncpg.Connection
) -> None:
    pattern = await conn.fetchval(
        "SELECT pattern_type FROM daily_patterns WHERE symbol IN ('AAPL', 'MSFT')"
        " GROUP BY pattern_type ORDER BY count(*) DESC, pattern_type LIMIT 1"
    )
    where = "symbol = ANY(ARRAY['AAPL', 'MSFT']) AND pattern_type = $1 AND confidence >= 0.7"
    expected = [(r["tier"], r["id"]) for r in await conn.fetch(_union(where), pattern)]
    assert expected
    pages = await walk(
        client,
        "/api/patterns",
        auth_headers,
        symbols="msft, AAPL,aapl",
        pattern=pattern,
        confidence_min=0.7,
        limit=5,
    )
    items = _flatten(pages)
    assert _ids(items) == expected
    assert {item["symbol"] for item in items} <= {"AAPL", "MSFT"}
    assert all(item["pattern"] == pattern and item["confidence"] >= 0.7 for item in items)


async def test_list_time_range(
    client: Any, auth_headers: dict[str, str], conn: asyncpg.Connection
) -> None:
    newest = await conn.fetchval("SELECT max(detection_timestamp) FROM daily_patterns")
    since = newest - dt.timedelta(days=3)
    until = newest  # exclusive: the newest session's rows are not included
    expected = [
        ("daily", row["id"])
        for row in await conn.fetch(
            "SELECT id FROM daily_patterns WHERE detection_timestamp >= $1"
            " AND detection_timestamp < $2 ORDER BY detection_timestamp DESC, id DESC",
            since,
            until,
        )
    ]
    assert expected
    pages = await walk(
        client,
        "/api/patterns",
        auth_headers,
        tier="daily",
        since=since.isoformat(),
        until=until.isoformat().replace("+00:00", "Z"),
        limit=100,
    )
    assert _ids(_flatten(pages)) == expected


async def test_list_without_tier_reads_every_pattern_table(
    client: Any, auth_headers: dict[str, str], conn: asyncpg.Connection
) -> None:
    expected = [(r["tier"], r["id"]) for r in await conn.fetch(_union("true") + " LIMIT 120")]
    response = await client.get("/api/patterns", headers=auth_headers, query_string={"limit": 120})
    body = await response.get_json()
    assert _ids(body["data"]) == expected
    assert body["meta"]["tier"] == "all"
    assert body["meta"]["next_cursor"] is not None


async def test_default_limit_and_bounds(client: Any, auth_headers: dict[str, str]) -> None:
    response = await client.get("/api/patterns", headers=auth_headers)
    body = await response.get_json()
    assert len(body["data"]) == 50 and body["meta"]["limit"] == 50
    response = await client.get("/api/patterns", headers=auth_headers, query_string={"limit": 501})
    assert response.status_code == 400
    body = await response.get_json()
    assert body["code"] == "validation_error"
    assert body["message"].startswith("limit: ")


@pytest.mark.parametrize(
    "tier", ["daily", "intraday", "hourly", "weekly", "monthly", "daily_intraday"]
)
async def test_tier_window(
    client: Any, auth_headers: dict[str, str], conn: asyncpg.Connection, tier: str
) -> None:
    async def reference() -> list[tuple[str, int]]:
        since = dt.datetime.now(dt.UTC) - WINDOWS[tier]
        rows = await conn.fetch(
            f"SELECT id FROM {tier}_patterns WHERE detection_timestamp >= $1"
            " ORDER BY detection_timestamp DESC, id DESC",
            since,
        )
        return [(tier, row["id"]) for row in rows]

    before = await reference()
    pages = await walk(client, f"/api/patterns/tiers/{tier}", auth_headers, limit=500)
    after = await reference()
    got = _ids(_flatten(pages))
    assert got, f"the seed has recent {tier} rows"
    # A row may cross the window's edge between the queries; then either side is right.
    assert got in (before, after)
    meta = pages[0]["meta"]
    assert meta["tier"] == tier
    assert meta["window_seconds"] == int(WINDOWS[tier].total_seconds())
    # The window excludes older rows that exist in the table.
    total = await conn.fetchval(f"SELECT count(*) FROM {tier}_patterns")
    if tier in ("daily", "intraday", "hourly"):
        assert total > len(got)


async def test_combo_tier_only_enabled_definitions(
    client: Any, auth_headers: dict[str, str], conn: asyncpg.Connection
) -> None:
    # The seed only detects enabled patterns: add a recent detection of a disabled one.
    hidden = await conn.fetchval(
        "INSERT INTO pattern_detections (pattern_id, symbol, detected_at, confidence)"
        " SELECT id, 'AAPL', now() - interval '1 hour', 0.95 FROM pattern_definitions"
        " WHERE NOT enabled ORDER BY id LIMIT 1 RETURNING id"
    )
    assert hidden is not None
    try:
        since = dt.datetime.now(dt.UTC) - WINDOWS["combo"]
        expected = [
            row["id"]
            for row in await conn.fetch(
                "SELECT d.id FROM pattern_detections d JOIN pattern_definitions p"
                " ON p.id = d.pattern_id WHERE p.enabled AND d.detected_at >= $1"
                " ORDER BY d.detected_at DESC, d.id DESC",
                since,
            )
        ]
        pages = await walk(client, "/api/patterns/tiers/combo", auth_headers, limit=250)
    finally:
        await conn.execute("DELETE FROM pattern_detections WHERE id = $1", hidden)
    items = _flatten(pages)
    assert [item["id"] for item in items] == expected
    assert hidden not in {item["id"] for item in items}
    item = items[0]
    assert item["tier"] == "combo"
    assert {"pattern", "pattern_id", "price", "volume", "outcome_1d", "priority"} <= set(item)


async def test_daily_intraday_items_carry_their_link(
    client: Any, auth_headers: dict[str, str]
) -> None:
    response = await client.get(
        "/api/patterns", headers=auth_headers, query_string={"tier": "daily_intraday", "limit": 3}
    )
    body = await response.get_json()
    assert body["data"]
    for item in body["data"]:
        assert item["tier"] == "daily_intraday"
        assert isinstance(item["daily_pattern_id"], int)
        assert item["daily_pattern_timestamp"].endswith("Z")
        assert "pattern" in item["intraday_signal"]


async def test_unknown_tier_is_404(client: Any, auth_headers: dict[str, str]) -> None:
    for path, query in (
        ("/api/patterns/tiers/yearly", {}),
        ("/api/patterns", {"tier": "yearly"}),
        ("/api/patterns/AAPL", {"tier": "Daily"}),
    ):
        response = await client.get(path, headers=auth_headers, query_string=query)
        assert response.status_code == 404, path
        body = await response.get_json()
        assert body["code"] == "unknown_tier"


async def test_symbol_errors(client: Any, auth_headers: dict[str, str]) -> None:
    response = await client.get("/api/patterns/ZZZZZZ", headers=auth_headers)
    assert response.status_code == 404
    assert (await response.get_json())["code"] == "symbol_not_found"
    response = await client.get("/api/patterns/AA$PL", headers=auth_headers)
    assert response.status_code == 400
    assert (await response.get_json())["code"] == "invalid_symbol"
    response = await client.get(
        "/api/patterns", headers=auth_headers, query_string={"symbols": "AAPL,A' OR 1=1--"}
    )
    assert response.status_code == 400
    body = await response.get_json()
    assert body["code"] == "validation_error" and body["message"].startswith("symbols: ")


@pytest.mark.parametrize(
    "cursor",
    [
        "not a cursor",
        "e30",  # {}
        encode_cursor([1, "daily"]),
        encode_cursor([1, "yearly", 5]),
        encode_cursor(["x", "daily", 5]),
        _raw_cursor(b'[100000000000000000000000000000, "daily", 5]'),
        _raw_cursor(b'[1.5, "daily", 5]'),
        encode_cursor([1, "daily", -5]),
        encode_cursor([1, "daily", True]),
        "A" * 300,
    ],
)
async def test_bad_cursor(client: Any, auth_headers: dict[str, str], cursor: str) -> None:
    response = await client.get(
        "/api/patterns/AAPL", headers=auth_headers, query_string={"cursor": cursor}
    )
    assert response.status_code == 400
    assert (await response.get_json())["code"] == "invalid_cursor"


async def test_since_after_until_is_400(client: Any, auth_headers: dict[str, str]) -> None:
    response = await client.get(
        "/api/patterns",
        headers=auth_headers,
        query_string={"since": "2025-02-01T00:00:00Z", "until": "2025-01-01T00:00:00Z"},
    )
    assert response.status_code == 400
    assert (await response.get_json())["message"] == "until: must be later than since"


async def test_unknown_parameter_is_400(client: Any, auth_headers: dict[str, str]) -> None:
    response = await client.get(
        "/api/patterns", headers=auth_headers, query_string={"confidence": "0.5"}
    )
    assert response.status_code == 400
    body = await response.get_json()
    assert body["message"] == "confidence: Extra inputs are not permitted"


async def test_pattern_definitions(
    client: Any, auth_headers: dict[str, str], conn: asyncpg.Connection
) -> None:
    response = await client.get("/api/pattern-definitions", headers=auth_headers)
    body = await response.get_json()
    names = await conn.fetch("SELECT name FROM pattern_definitions ORDER BY display_order, name")
    assert [item["name"] for item in body["data"]] == [row["name"] for row in names]
    assert body["meta"]["count"] == len(names)
    response = await client.get(
        "/api/pattern-definitions", headers=auth_headers, query_string={"enabled": "false"}
    )
    disabled = (await response.get_json())["data"]
    assert disabled and all(not item["enabled"] for item in disabled)
    assert isinstance(disabled[0]["applicable_timeframes"], list)


@pytest.mark.parametrize(
    ("path", "cursor_tier"),
    [
        ("/api/patterns/tiers/intraday", "daily"),
        ("/api/patterns", "combo"),
        ("/api/patterns/tiers/combo", "weekly"),
        ("/api/patterns/AAPL", "hourly"),
    ],
)
async def test_cursor_from_another_tier_is_just_a_position(
    client: Any, auth_headers: dict[str, str], path: str, cursor_tier: str
) -> None:
    at = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    cursor = encode_cursor([at, cursor_tier, 10])
    response = await client.get(path, headers=auth_headers, query_string={"cursor": cursor})
    assert response.status_code == 200
    body = await response.get_json()
    assert all(dt.datetime.fromisoformat(item["detected_at"]) <= at for item in body["data"])


@pytest.mark.parametrize("spelling", ["breakout", "BREAKOUT", " Break out"])
async def test_a_pattern_filter_finds_the_name_in_any_case(
    client: Any, auth_headers: dict[str, str], spelling: str
) -> None:
    async def names(pattern: str) -> list[tuple[str, int]]:
        response = await client.get(
            "/api/patterns",
            headers=auth_headers,
            query_string={"pattern": pattern, "tier": "daily", "limit": 100},
        )
        assert response.status_code == 200
        items = (await response.get_json())["data"]
        assert {item["pattern"] for item in items} <= {"Breakout"}
        return [(item["tier"], item["id"]) for item in items]

    exact = await names("Breakout")
    assert exact  # the seed has daily breakouts
    assert await names(spelling) == exact


async def test_the_screener_finds_pattern_names_in_any_case(
    client: Any, auth_headers: dict[str, str]
) -> None:
    async def rows(patterns: str) -> list[int]:
        response = await client.get(
            "/api/patterns/scan",
            headers=auth_headers,
            query_string={"patterns": patterns, "tier": "monthly", "limit": 200},
        )
        assert response.status_code == 200
        return [item["id"] for item in (await response.get_json())["data"]]

    exact = await rows("Breakout,HeadAndShoulders,Doji")
    assert exact
    assert await rows("breakout,head and shoulders,DOJI") == exact
