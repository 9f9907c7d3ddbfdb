"""Symbol search, detail and daily bars against the seeded database."""

from __future__ import annotations

import datetime as dt
from typing import Any

import asyncpg
import pytest


async def _get(client: Any, path: str, headers: dict[str, str], **query: Any) -> Any:
    response = await client.get(path, headers=headers, query_string=query)
    return response.status_code, await response.get_json()


async def test_requires_login(client: Any) -> None:
    for path in ("/api/symbols", "/api/symbols/AAPL", "/api/symbols/AAPL/ohlcv"):
        response = await client.get(path)
        assert response.status_code == 401, path


async def test_walk_every_symbol(
    client: Any, auth_headers: dict[str, str], conn: asyncpg.Connection
) -> None:
    expected = [
        row["symbol"] for row in await conn.fetch("SELECT symbol FROM symbols ORDER BY symbol")
    ]
    got: list[str] = []
    cursor = None
    pages = 0
    while True:
        query: dict[str, Any] = {"limit": 150}
        if cursor:
            query["cursor"] = cursor
        status, body = await _get(client, "/api/symbols", auth_headers, **query)
        assert status == 200
        got.extend(item["symbol"] for item in body["data"])
        pages += 1
        cursor = body["meta"]["next_cursor"]
        if cursor is None:
            break
    assert pages >= 3
    assert got == expected


async def test_search_prefix_or_name(
    client: Any, auth_headers: dict[str, str], conn: asyncpg.Connection
) -> None:
    expected = [
        row["symbol"]
        for row in await conn.fetch(
            "SELECT symbol FROM symbols WHERE symbol LIKE 'MS%' OR name ILIKE '%ms%'"
            " ORDER BY symbol"
        )
    ]
    status, body = await _get(client, "/api/symbols", auth_headers, q="ms", limit=500)
    assert status == 200
    assert [item["symbol"] for item in body["data"]] == expected
    assert "MSFT" in expected

    status, body = await _get(client, "/api/symbols", auth_headers, q="apple")
    assert [item["symbol"] for item in body["data"]] == ["AAPL"]
    item = body["data"][0]
    assert set(item) == {
        "symbol",
        "name",
        "exchange",
        "type",
        "sector",
        "industry",
        "market_cap",
        "active",
    }


async def test_search_is_literal(client: Any, auth_headers: dict[str, str]) -> None:
    for q in ("%", "_", "\\", "A%", "' OR 1=1--"):
        status, body = await _get(client, "/api/symbols", auth_headers, q=q)
        assert status == 200, q
        assert body["data"] == [], q


async def test_sector_filter(
    client: Any, auth_headers: dict[str, str], conn: asyncpg.Connection
) -> None:
    sector = await conn.fetchval("SELECT sector FROM symbols WHERE symbol = 'AAPL'")
    expected = [
        row["symbol"]
        for row in await conn.fetch(
            "SELECT symbol FROM symbols WHERE sector = $1 ORDER BY symbol LIMIT 500", sector
        )
    ]
    status, body = await _get(
        client, "/api/symbols", auth_headers, sector=sector.upper(), limit=500
    )
    assert status == 200
    assert [item["symbol"] for item in body["data"]] == expected
    assert {item["sector"] for item in body["data"]} == {sector}


async def test_detail(client: Any, auth_headers: dict[str, str], conn: asyncpg.Connection) -> None:
    status, body = await _get(client, "/api/symbols/aapl", auth_headers)
    assert status == 200
    data = body["data"]
    assert data["symbol"] == "AAPL" and data["name"].startswith("Apple")
    bar = await conn.fetchrow(
        "SELECT date, close, volume FROM ohlcv_daily WHERE symbol = 'AAPL' ORDER BY date DESC LIMIT 1"
    )
    assert bar is not None
    assert data["last_bar"]["date"] == bar["date"].isoformat()
    assert data["last_bar"]["close"] == pytest.approx(bar["close"])
    assert data["last_bar"]["volume"] == bar["volume"]


async def test_detail_errors(client: Any, auth_headers: dict[str, str]) -> None:
    status, body = await _get(client, "/api/symbols/NOPE1", auth_headers)
    assert (status, body["code"]) == (404, "symbol_not_found")
    status, body = await _get(client, "/api/symbols/TOOLONGSYMBOL", auth_headers)
    assert (status, body["code"]) == (400, "invalid_symbol")
    # Unicode upper-casing must not turn a non-ASCII name into a ticker ("ß" -> "SS").
    status, body = await _get(client, "/api/symbols/%C3%9F", auth_headers)
    assert (status, body["code"]) == (400, "invalid_symbol")


async def test_ohlcv_default_is_latest_260_oldest_first(
    client: Any, auth_headers: dict[str, str], conn: asyncpg.Connection
) -> None:
    rows = await conn.fetch(
        "SELECT date, open, high, low, close, volume FROM ohlcv_daily WHERE symbol = 'MSFT'"
        " ORDER BY date DESC LIMIT 260"
    )
    status, body = await _get(client, "/api/symbols/MSFT/ohlcv", auth_headers)
    assert status == 200
    bars = body["data"]
    assert len(bars) == 260 == body["meta"]["count"]
    assert [bar["date"] for bar in bars] == [row["date"].isoformat() for row in reversed(rows)]
    assert bars[-1]["close"] == pytest.approx(rows[0]["close"])
    assert set(bars[0]) == {"date", "open", "high", "low", "close", "volume"}


async def test_ohlcv_range(
    client: Any, auth_headers: dict[str, str], conn: asyncpg.Connection
) -> None:
    last = await conn.fetchval("SELECT max(date) FROM ohlcv_daily WHERE symbol = 'MSFT'")
    start, end = last - dt.timedelta(days=30), last - dt.timedelta(days=10)
    expected = [
        row["date"].isoformat()
        for row in await conn.fetch(
            "SELECT date FROM ohlcv_daily WHERE symbol = 'MSFT' AND date BETWEEN $1 AND $2"
            " ORDER BY date",
            start,
            end,
        )
    ]
    status, body = await _get(
        client,
        "/api/symbols/MSFT/ohlcv",
        auth_headers,
        start=start.isoformat(),
        end=end.isoformat(),
    )
    assert status == 200
    assert [bar["date"] for bar in body["data"]] == expected
    # limit keeps the latest bars of the range
    status, body = await _get(
        client,
        "/api/symbols/MSFT/ohlcv",
        auth_headers,
        start=start.isoformat(),
        end=end.isoformat(),
        limit=3,
    )
    assert [bar["date"] for bar in body["data"]] == expected[-3:]
    # a range without bars is empty, not an error
    status, body = await _get(
        client, "/api/symbols/MSFT/ohlcv", auth_headers, start="1990-01-01", end="1990-02-01"
    )
    assert (status, body["data"]) == (200, [])


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"limit": 2001}, "limit: "),
        ({"limit": 0}, "limit: "),
        ({"start": "2024-02-30"}, "start: "),
        ({"start": "2024-03-01", "end": "2024-02-01"}, "end: must not be before start"),
        ({"start": "0001-01-01"}, "start: must be between"),
    ],
)
async def test_ohlcv_bad_parameters(
    client: Any, auth_headers: dict[str, str], query: dict[str, Any], message: str
) -> None:
    status, body = await _get(client, "/api/symbols/MSFT/ohlcv", auth_headers, **query)
    assert status == 400
    assert body["code"] == "validation_error"
    assert body["message"].startswith(message)


async def test_ohlcv_unknown_symbol(client: Any, auth_headers: dict[str, str]) -> None:
    status, body = await _get(client, "/api/symbols/NOPE1/ohlcv", auth_headers)
    assert (status, body["code"]) == (404, "symbol_not_found")
