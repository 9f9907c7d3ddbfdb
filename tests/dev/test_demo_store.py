"""The demo producer stores what it publishes, as the real producer does: live and REST agree."""

from __future__ import annotations

import asyncio
import datetime as dt
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
from tickstock.dev.demo_producer import DEFAULT_SYMBOLS, DemoChannels, run_demo_producer
from tickstock.dev.demo_store import DemoStore


@pytest.fixture(name="store")
async def _store(database_url: str) -> AsyncIterator[DemoStore]:
    store = await DemoStore.open(database_url)
    yield store
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
