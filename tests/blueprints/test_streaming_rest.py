"""/api/streaming/history validates its query string like every other endpoint."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"kind": "trades"}, "kind"),
        ({"limit": "0"}, "limit"),
        ({"limit": "1001"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"since": "yesterday"}, "since"),
        ({"since": "1-2-3"}, "since"),
        ({"unknown": "1"}, "unknown"),
    ],
)
async def test_history_query_errors_name_the_field(
    client: Any, auth_headers: dict[str, str], query: dict[str, str], field: str
) -> None:
    response = await client.get(
        "/api/streaming/history/AAPL", headers=auth_headers, query_string=query
    )
    assert response.status_code == 400
    body = await response.get_json()
    assert (body["status"], body["code"]) == ("error", "validation_error")
    assert body["message"].startswith(f"{field}:"), body


async def test_history_symbol_is_checked(client: Any, auth_headers: dict[str, str]) -> None:
    response = await client.get("/api/streaming/history/%27OR1=1", headers=auth_headers)
    assert response.status_code == 400
    assert (await response.get_json())["code"] == "invalid_symbol"


async def test_history_of_a_quiet_symbol(client: Any, auth_headers: dict[str, str]) -> None:
    response = await client.get(
        "/api/streaming/history/zzqq",
        headers=auth_headers,
        query_string={"kind": "indicators", "limit": "5", "since": "1-0"},
    )
    assert response.status_code == 200
    body = await response.get_json()
    assert body["status"] == "success" and body["data"] == []
    assert body["meta"]["symbol"] == "ZZQQ" and body["meta"]["kind"] == "indicators"
    assert body["meta"]["count"] == 0
