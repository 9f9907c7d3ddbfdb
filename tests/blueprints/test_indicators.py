"""Latest indicator values against the seeded database."""

from __future__ import annotations

import datetime as dt
from typing import Any

import asyncpg
import orjson


async def _latest(conn: asyncpg.Connection, source: str, symbol: str) -> dict[str, Any]:
    """Reference: the newest row of each type, by a plain max() rather than DISTINCT ON."""
    rows = await conn.fetch(
        f"SELECT indicator_type, value_data, calculation_timestamp FROM {source}_indicators i"
        " WHERE symbol = $1 AND calculation_timestamp = (SELECT max(calculation_timestamp)"
        f" FROM {source}_indicators j WHERE j.symbol = i.symbol"
        " AND j.indicator_type = i.indicator_type)",
        symbol,
    )
    return {
        row["indicator_type"]: {
            "value_data": orjson.loads(row["value_data"]),
            "calculation_timestamp": row["calculation_timestamp"],
        }
        for row in rows
    }


async def test_requires_login(client: Any) -> None:
    for path in ("/api/indicators/AAPL", "/api/indicators?symbols=AAPL"):
        response = await client.get(path)
        assert response.status_code == 401, path


async def test_latest_for_symbol(
    client: Any, auth_headers: dict[str, str], conn: asyncpg.Connection
) -> None:
    response = await client.get("/api/indicators/nvda", headers=auth_headers)
    assert response.status_code == 200
    body = await response.get_json()
    items = body["data"]
    assert body["meta"] == {"count": len(items), "symbol": "NVDA"}
    for source in ("daily", "intraday"):
        expected = await _latest(conn, source, "NVDA")
        mine = {item["indicator"]: item for item in items if item["source"] == source}
        kinds = {"RSI", "SMA20", "SMA50", "MACD"}
        if source == "daily":  # the screener's relative strength and volume are daily only
            kinds |= {"RS", "RelVolume"}
        assert set(mine) == set(expected) == kinds
        for name, item in mine.items():
            assert item["symbol"] == "NVDA"
            assert item["value"] == expected[name]["value_data"]
            calculated = dt.datetime.fromisoformat(item["calculated_at"])
            assert calculated == expected[name]["calculation_timestamp"]
    order = [(item["source"], item["indicator"]) for item in items]
    assert order == sorted(order)


async def test_source_filter(client: Any, auth_headers: dict[str, str]) -> None:
    response = await client.get(
        "/api/indicators/AAPL", headers=auth_headers, query_string={"source": "intraday"}
    )
    items = (await response.get_json())["data"]
    assert items and {item["source"] for item in items} == {"intraday"}
    response = await client.get(
        "/api/indicators/AAPL", headers=auth_headers, query_string={"source": "weekly"}
    )
    assert response.status_code == 400
    assert (await response.get_json())["message"].startswith("source: ")


async def test_latest_for_several_symbols(
    client: Any, auth_headers: dict[str, str], conn: asyncpg.Connection
) -> None:
    response = await client.get(
        "/api/indicators",
        headers=auth_headers,
        query_string={"symbols": "msft,AAPL,ZZZZ9,AAPL", "source": "daily"},
    )
    assert response.status_code == 200
    body = await response.get_json()
    assert body["meta"]["symbols"] == ["MSFT", "AAPL", "ZZZZ9"]
    assert body["meta"]["without_data"] == ["ZZZZ9"]
    items = body["data"]
    assert [item["symbol"] for item in items] == ["AAPL"] * 6 + ["MSFT"] * 6
    expected = await _latest(conn, "daily", "MSFT")
    for item in items[6:]:
        assert item["value"] == expected[item["indicator"]]["value_data"]


async def test_errors(client: Any, auth_headers: dict[str, str]) -> None:
    response = await client.get("/api/indicators/NOPE1", headers=auth_headers)
    assert response.status_code == 404
    assert (await response.get_json())["code"] == "symbol_not_found"
    response = await client.get("/api/indicators", headers=auth_headers)
    assert response.status_code == 400
    assert (await response.get_json())["message"] == "symbols: Field required"
    too_many = ",".join(f"S{i}" for i in range(201))
    response = await client.get(
        "/api/indicators", headers=auth_headers, query_string={"symbols": too_many}
    )
    assert response.status_code == 400
    assert "at most 200 symbols" in (await response.get_json())["message"]
