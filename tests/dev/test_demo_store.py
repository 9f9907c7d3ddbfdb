"""The demo producer stores what it publishes, as the real producer does: live and REST agree."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import json
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import asyncpg
import pytest
import redis.asyncio as aioredis

from tests.support.auth import MakeToken, MakeUser
from tests.support.realtime import Recorder
from tickstock.detection import Detection
from tickstock.dev.demo_producer import DEFAULT_SYMBOLS, DemoChannels, run_demo_producer
from tickstock.dev.demo_store import DemoStore

# Every table the demo store writes: what a test stores is removed after it, so the seeded
# history other tests compare against (market figures, combo outcomes, links) stays as seeded.
_WRITTEN = (
    "daily_intraday_patterns",
    "daily_patterns",
    "weekly_patterns",
    "monthly_patterns",
    "intraday_patterns",
    "hourly_patterns",
    "pattern_detections",
    "daily_indicators",
    "intraday_indicators",
)


@pytest.fixture(name="store")
async def _store(database_url: str) -> AsyncIterator[DemoStore]:
    store = await DemoStore.open(database_url)
    async with store.pool.acquire() as conn:
        last = {
            table: await conn.fetchval(f"SELECT coalesce(max(id), 0) FROM {table}")
            for table in _WRITTEN
        }
    yield store
    async with store.pool.acquire() as conn:
        for table, before in last.items():
            await conn.execute(f"DELETE FROM {table} WHERE id > $1", before)
    await store.close()


def _when(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


async def test_live_demo_detections_are_returned_by_rest_within_5_s(
    serve_app: Any,
    store: DemoStore,
    redis_url: str,
    make_user: MakeUser,
    make_token: MakeToken,
) -> None:
    channels = DemoChannels().prefixed(f"demo-{secrets.token_hex(3)}:")
    served = await serve_app(ingest_channels=list(channels.all()))
    token = await make_token(await make_user())
    headers = {"Authorization": f"Bearer {token}"}
    recorder = await Recorder().connect(served.url, auth={"token": token})
    assert (await recorder.call("subscribe_patterns", {"symbol": "*"}))["status"] == "success"
    redis = aioredis.Redis.from_url(redis_url)
    stop = asyncio.Event()
    producer = asyncio.create_task(
        run_demo_producer(redis, rate=10, stop=stop, channels=channels, seed=7, store=store)
    )
    try:
        # Every pattern shape of the rotation goes by (8 shapes, some carrying several).
        events = [e["data"] for e in await recorder.wait_for("pattern_detected", 12, within=10)]
        async with aiohttp.ClientSession(headers=headers) as http:
            for event in events:
                seen = time.monotonic()
                found: list[dict[str, Any]] = []
                while not found and time.monotonic() - seen < 5:
                    url = f"{served.url}/api/patterns/{event['symbol']}"
                    params = {"tier": event["tier"], "limit": "100"}
                    async with http.get(url, params=params) as response:
                        assert response.status == 200, await response.text()
                        items = (await response.json())["data"]
                    found = [
                        item
                        for item in items
                        if item["pattern"] == event["pattern"]
                        and _when(item["detected_at"]) == _when(event["detected_at"])
                    ]
                    if not found:
                        await asyncio.sleep(0.1)
                assert found, f"{event} never reached /api/patterns/{event['symbol']}"
                assert found[0]["confidence"] == pytest.approx(event["confidence"], abs=1e-6)
    finally:
        stop.set()
        await producer
        await recorder.close()
        await redis.aclose()


async def test_prices_continue_from_the_seeded_bars(
    conn: asyncpg.Connection, store: DemoStore, redis_url: str
) -> None:
    closes = await store.last_closes(DEFAULT_SYMBOLS)
    assert set(closes) == set(DEFAULT_SYMBOLS)  # the seed has bars for every demo symbol
    channels = DemoChannels().prefixed(f"demo-{secrets.token_hex(3)}:")
    redis = aioredis.Redis.from_url(redis_url)
    started = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)
    try:
        await run_demo_producer(
            redis, rate=40, duration=1.0, channels=channels, seed=3, store=store
        )
    finally:
        await redis.aclose()
    rows = await conn.fetch(
        "SELECT symbol, (pattern_data->>'price')::float8 AS price FROM intraday_patterns"
        " WHERE detection_timestamp >= $1 AND metadata->>'generator' = 'tickstock-demo'",
        started,
    )
    assert len(rows) >= 5
    for row in rows:
        # A random walk of a few basis points per event: within 5% of the last close.
        assert row["price"] == pytest.approx(closes[row["symbol"]], rel=0.05), row
    indicators = await conn.fetchval(
        "SELECT count(*) FROM intraday_indicators"
        " WHERE calculation_timestamp >= $1 AND metadata->>'generator' = 'tickstock-demo'",
        started,
    )
    assert indicators > 0


def _shared(view: dict[str, Any]) -> dict[str, Any]:
    """The detection fields of one view (every field the shared shape declares)."""
    return {field: view[field] for field in Detection.__annotations__}


async def test_one_stored_detection_reads_the_same_in_rest_live_alerts_csv_and_scan(
    serve_app: Any,
    store: DemoStore,
    redis_url: str,
    make_user: MakeUser,
    make_token: MakeToken,
) -> None:
    """Each detection the demo producer stores and publishes (every message shape of its
    rotation) has the same value for every shared field in its REST row, its live
    ``pattern_detected`` data, the ``event`` of an alert built from it, its CSV row and its
    screener row."""
    channels = DemoChannels().prefixed(f"demo-{secrets.token_hex(3)}:")
    # Every event makes an alert here: no minimum cooldown and room in the user's alert rate.
    served = await serve_app(
        ingest_channels=list(channels.all()),
        alert_min_cooldown_seconds=0,
        alert_rate_per_user_per_minute=10_000,
    )
    token = await make_token(await make_user())
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(headers=headers) as http:
        rule = {"name": "everything", "symbols": "*", "min_confidence": 0, "cooldown_seconds": 0}
        async with http.post(f"{served.url}/api/user/alerts/rules", json=rule) as response:
            assert response.status == 201, await response.text()
        recorder = await Recorder().connect(served.url, auth={"token": token})
        assert (await recorder.call("subscribe_patterns", {"symbol": "*"}))["status"] == "success"
        redis = aioredis.Redis.from_url(redis_url)
        stop = asyncio.Event()
        producer = asyncio.create_task(
            run_demo_producer(redis, rate=10, stop=stop, channels=channels, seed=11, store=store)
        )
        try:
            # Two turns of the 8-shape rotation (some shapes carry several detections).
            live = [e["data"] for e in await recorder.wait_for("pattern_detected", 20, within=15)]
        finally:
            stop.set()
            await producer
            await redis.aclose()
        try:
            by_event = {}
            within = time.monotonic() + 10
            while time.monotonic() < within:
                by_event = {
                    alert["data"]["event"]["data"]["event_id"]: alert["data"]
                    for alert in recorder.events["alert"]
                }
                if all(event["event_id"] in by_event for event in live):
                    break
                await asyncio.sleep(0.1)
        finally:
            await recorder.close()

        assert {event["tier"] for event in live} >= {"intraday", "daily"}
        assert all(event["price"] is not None for event in live)  # no shape loses the price
        compared_scan = 0
        for event in live:
            expected = _shared(event)
            where = f"{served.url}/api/patterns/{event['symbol']}"
            params = {"tier": event["tier"], "limit": "500"}
            async with http.get(where, params=params) as response:
                assert response.status == 200, await response.text()
                rows = [
                    row
                    for row in (await response.json())["data"]
                    if row["pattern"] == event["pattern"]
                    and row["detected_at"] == event["detected_at"]
                ]
            assert len(rows) == 1, (event, rows)
            assert _shared(rows[0]) == expected, event

            alert = by_event.get(event["event_id"])
            assert alert is not None, f"no alert for {event}"
            assert _shared(alert["event"]["data"]) == expected

            async with http.get(where, params={**params, "format": "csv"}) as response:
                assert response.status == 200
                table = list(csv.DictReader(io.StringIO(await response.text())))
            (line,) = [line for line in table if line["id"] == str(rows[0]["id"])]
            assert _from_csv(line) == expected, line

            scan = f"{served.url}/api/patterns/scan"
            query = {"tier": event["tier"], "patterns": event["pattern"], "limit": "500"}
            async with http.get(scan, params=query) as response:
                assert response.status == 200, await response.text()
                found = [
                    row
                    for row in (await response.json())["data"]
                    if row["symbol"] == event["symbol"]
                ]
            assert len(found) == 1
            # The screener shows the latest detection of a symbol and pattern: a later one of
            # the same may have replaced this one.
            if found[0]["detected_at"] == event["detected_at"]:
                assert _shared(found[0]) == expected
                compared_scan += 1
        assert compared_scan >= len(live) - 3


_NUMBERS = frozenset({"confidence", "price"})
_JSON = frozenset({"levels", "indicators"})


def _from_csv(line: dict[str, str]) -> dict[str, Any]:
    """A CSV row's shared fields as the JSON views carry them (empty cell = null)."""
    values: dict[str, Any] = {}
    for field in Detection.__annotations__:
        cell = line[field]
        if cell == "":
            values[field] = None
        elif field in _NUMBERS:
            values[field] = float(cell)
        elif field in _JSON:
            values[field] = json.loads(cell)
        else:
            values[field] = cell
    return values
