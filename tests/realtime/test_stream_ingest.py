"""Stream ingest mode: the producer XADDs, a consumer group reads, nothing is lost across restarts."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import orjson
import redis.asyncio as aioredis

from tests.support.realtime import pattern, unique_symbol
from tickstock.realtime.wire import decode_event


async def test_stream_mode_delivers_and_loses_nothing_across_a_restart(
    serve_app: Any, connect: Any, redis_url: str, key_prefix: str
) -> None:
    stream = f"{key_prefix}:ingest:{secrets.token_hex(3)}"
    overrides = {"ingest_mode": "stream", "ingest_stream": stream}
    producer = aioredis.Redis.from_url(redis_url)
    symbol = unique_symbol()

    async def produce(name: str, channel: str = "tickstock.events.patterns") -> None:
        message = orjson.dumps(pattern(symbol, name))
        await producer.xadd(stream, {"channel": channel, "data": message})

    try:
        served = await serve_app(**overrides)
        client = await connect(served.url)
        await client.call("subscribe_patterns", {"symbol": symbol})
        await produce("Live1")
        await produce("Live2", channel="tickstock:patterns:streaming")
        await client.wait_for("pattern_detected", 2)
        last_offset = client.patterns()[-1]["offset"]
        await client.close()
        await served.stop()

        # Published while no node runs: kept in the stream, read by the group on the next start.
        for index in range(5):
            await produce(f"WhileDown{index}")

        restarted = await serve_app(**overrides)
        again = await connect(restarted.url)
        ack = await again.call(
            "subscribe_patterns", {"symbol": symbol, "since": {symbol: last_offset}}
        )
        assert ack["recovered"] == {symbol: True}
        await again.wait_for("pattern_detected", 5)
        await again.settle()
        assert [p["pattern"] for p in again.patterns()] == [f"WhileDown{i}" for i in range(5)]
        # Everything read was acknowledged.
        pending = await producer.xpending(stream, "tickstock-ingest")
        assert pending["pending"] == 0
    finally:
        await producer.delete(stream)
        await producer.aclose()


async def test_entries_a_crashed_consumer_left_are_taken_over(
    serve_app: Any, connect: Any, redis_url: str, key_prefix: str
) -> None:
    stream = f"{key_prefix}:ingest:{secrets.token_hex(3)}"
    producer = aioredis.Redis.from_url(redis_url)
    symbol = unique_symbol()
    try:
        await producer.xgroup_create(stream, "tickstock-ingest", id="0", mkstream=True)
        for index in range(3):
            message = orjson.dumps(pattern(symbol, f"Orphan{index}"))
            await producer.xadd(stream, {"channel": "tickstock.events.patterns", "data": message})
        # A node read them and died before acknowledging.
        taken = await producer.xreadgroup("tickstock-ingest", "dead-node", {stream: ">"}, count=10)
        assert len(taken[0][1]) == 3

        served = await serve_app(
            ingest_mode="stream", ingest_stream=stream, ingest_claim_idle_seconds=0
        )
        # Taken over at start-up, before any client could subscribe: they are in the history.
        store = served.app.extensions["tickstock.hub"].store
        async with asyncio.timeout(10):
            while len(stored := await store.latest(f"patterns:{symbol}", 10)) < 3:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        names = [decode_event(event)["data"]["pattern"] for event in stored]
        assert names == [f"Orphan{i}" for i in range(3)]
        assert (await producer.xpending(stream, "tickstock-ingest"))["pending"] == 0
    finally:
        await producer.delete(stream)
        await producer.aclose()
