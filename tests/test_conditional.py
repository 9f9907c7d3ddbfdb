"""Conditional reads: a client that already has a page gets 304 and no body."""

from __future__ import annotations

from typing import Any

import asyncpg


async def _get(client: Any, path: str, headers: dict[str, str], etag: str | None = None) -> Any:
    extra = {"If-None-Match": etag} if etag else {}
    return await client.get(path, headers={**headers, **extra})


async def test_pattern_page_revalidates_to_304(client: Any, auth_headers: dict[str, str]) -> None:
    first = await _get(client, "/api/patterns/AAPL", auth_headers)
    assert first.status_code == 200
    etag = first.headers["ETag"]
    assert etag.startswith('W/"')
    assert first.headers["Cache-Control"] == "private, no-cache"
    assert (await first.get_json())["data"]

    again = await _get(client, "/api/patterns/AAPL", auth_headers, etag)
    assert again.status_code == 304
    assert await again.get_data() == b""
    assert again.headers["ETag"] == etag
    assert again.headers["Cache-Control"] == "private, no-cache"
    # A list of tags, or the strong form of the same tag, matches too (weak comparison).
    listed = await _get(client, "/api/patterns/AAPL", auth_headers, f'"x", {etag[2:]}')
    assert listed.status_code == 304


async def test_another_page_or_a_stale_tag_gets_the_body(
    client: Any, auth_headers: dict[str, str]
) -> None:
    etag = (await _get(client, "/api/patterns/AAPL", auth_headers)).headers["ETag"]
    other = await _get(client, "/api/patterns/AAPL?limit=5", auth_headers, etag)
    assert other.status_code == 200
    assert other.headers["ETag"] != etag
    assert len((await other.get_json())["data"]) == 5
    stale = await _get(client, "/api/patterns/AAPL", auth_headers, 'W/"0123456789abcdef01234567"')
    assert stale.status_code == 200
    assert (await stale.get_json())["data"]


async def test_a_changed_row_changes_the_tag(
    client: Any, auth_headers: dict[str, str], conn: asyncpg.Connection
) -> None:
    first = await _get(client, "/api/patterns/MSFT?tier=daily", auth_headers)
    etag = first.headers["ETag"]
    row = (await first.get_json())["data"][0]
    await conn.execute("UPDATE daily_patterns SET confidence = confidence WHERE id = $1", row["id"])
    # Same content, new row version: the client is sent the page again rather than a 304.
    after = await _get(client, "/api/patterns/MSFT?tier=daily", auth_headers, etag)
    assert after.status_code == 200
    assert after.headers["ETag"] != etag
    assert (await after.get_json())["data"][0] == row


async def test_older_pages_are_cached_for_a_minute_combo_never(
    client: Any, auth_headers: dict[str, str]
) -> None:
    first = await (await _get(client, "/api/patterns?limit=5", auth_headers)).get_json()
    cursor = first["meta"]["next_cursor"]
    older = await _get(client, f"/api/patterns?limit=5&cursor={cursor}", auth_headers)
    assert older.status_code == 200
    assert older.headers["Cache-Control"] == "private, max-age=60"
    assert (
        await _get(
            client, f"/api/patterns?limit=5&cursor={cursor}", auth_headers, older.headers["ETag"]
        )
    ).status_code == 304

    combo = await (await _get(client, "/api/patterns?tier=combo&limit=5", auth_headers)).get_json()
    combo_cursor = combo["meta"]["next_cursor"]
    later = await _get(
        client, f"/api/patterns?tier=combo&limit=5&cursor={combo_cursor}", auth_headers
    )
    # Combo detections gain outcomes later: revalidated every time.
    assert later.headers["Cache-Control"] == "private, no-cache"


async def test_tier_view_has_no_tag(client: Any, auth_headers: dict[str, str]) -> None:
    response = await _get(client, "/api/patterns/tiers/daily", auth_headers)
    assert response.status_code == 200
    assert "ETag" not in response.headers


async def test_indicator_and_symbol_reads_revalidate_to_304(
    client: Any, auth_headers: dict[str, str]
) -> None:
    for path in (
        "/api/indicators/NVDA",
        "/api/indicators?symbols=NVDA,AAPL",
        "/api/symbols/AAPL",
        "/api/symbols?q=A",
        "/api/symbols/AAPL/ohlcv",
    ):
        first = await _get(client, path, auth_headers)
        assert first.status_code == 200, path
        assert first.headers["Cache-Control"] == "private, no-cache", path
        again = await _get(client, path, auth_headers, first.headers["ETag"])
        assert again.status_code == 304, path
        assert await again.get_data() == b"", path
    past = await _get(client, "/api/symbols/AAPL/ohlcv?end=2020-01-31", auth_headers)
    assert past.headers["Cache-Control"] == "private, max-age=60"


async def test_errors_carry_no_tag(client: Any, auth_headers: dict[str, str]) -> None:
    for path in ("/api/patterns/ZZZZZZ", "/api/symbols/ZZZZZZ", "/api/indicators/ZZZZZZ"):
        response = await _get(client, path, auth_headers, "*")
        assert response.status_code == 404, path
        assert "ETag" not in response.headers, path
