"""Redis ingest -> normalised events -> symbol rooms, against a real served app."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from tests.support.realtime import Publisher, Recorder, pattern, unique_symbol

PATTERN_CHANNELS = (
    "tickstock.events.patterns",
    "tickstock:patterns:streaming",
    "tickstock:patterns:detected",
)


def shapes(message: dict[str, Any]) -> list[dict[str, Any]]:
    """The envelopes the producer has used, each carrying ``message`` once."""
    return [
        message,
        {"type": "pattern_detected", "data": message},
        {"data": {"data": message}},
        {"detection": message},
        {"payload": message},
        {"patterns": [message]},
    ]


Connect = Callable[..., Awaitable[Recorder]]


async def test_every_channel_and_shape_reaches_exactly_the_subscribers(
    served: Any, connect: Connect, publisher: Publisher
) -> None:
    symbol, other = unique_symbol(), unique_symbol()
    mine = await connect(served.url)
    everything = await connect(served.url)
    bystander = await connect(served.url)
    assert (await mine.call("subscribe_patterns", {"symbol": symbol}))["status"] == "success"
    assert (await everything.call("subscribe_patterns", {"symbol": "*"}))["status"] == "success"
    assert (await bystander.call("subscribe_patterns", {"symbol": other}))["status"] == "success"

    sent = []
    for channel in PATTERN_CHANNELS:
        for index in range(len(shapes({}))):
            name = f"Shape{len(sent)}"
            sent.append(name)
            await publisher.publish(channel, shapes(pattern(symbol, name))[index])

    received = await mine.wait_for("pattern_detected", len(sent))
    await everything.wait_for("pattern_detected", len(sent))
    await mine.settle()
    assert len(mine.patterns()) == len(sent)
    assert [p["pattern"] for p in mine.patterns()] == sent
    assert [p for p in everything.patterns() if p["symbol"] == symbol] == mine.patterns()
    assert bystander.patterns() == []

    first = received[0]
    assert first["type"] == "pattern_detected"
    assert isinstance(first["timestamp"], float)
    data = first["data"]
    assert data["symbol"] == symbol
    assert data["pattern"] == "Shape0"
    assert data["confidence"] == 0.88
    assert data["tier"] == "daily"
    assert data["price"] == 185.2
    assert data["channel"] == "tickstock.events.patterns"
    assert data["detected_at"].endswith("Z")
    assert data["offset"]
    # Offsets grow in per-symbol order.
    offsets = [tuple(map(int, p["offset"].split("-"))) for p in mine.patterns()]
    assert offsets == sorted(offsets)


async def test_same_detection_on_two_channels_is_delivered_once(
    served: Any, connect: Connect, publisher: Publisher
) -> None:
    symbol = unique_symbol()
    client = await connect(served.url)
    await client.call("subscribe_patterns", {"symbols": [symbol]})
    detection = pattern(symbol, "BullishEngulfing", tier="intraday", timeframe="1min")
    await publisher.publish("tickstock:patterns:streaming", detection)
    await publisher.publish("tickstock:patterns:detected", {"data": detection})
    await client.wait_for("pattern_detected", 1)
    await client.settle(0.5)
    assert len(client.patterns()) == 1


async def test_events_keep_flowing_after_redis_forgets_its_scripts(
    served: Any, connect: Connect, publisher: Publisher
) -> None:
    # A Redis restart or SCRIPT FLUSH empties the script cache: the store loads it again and
    # nothing is lost or stored twice, whether the events come alone or in a burst.
    symbol = unique_symbol()
    client = await connect(served.url)
    await client.call("subscribe_patterns", {"symbols": [symbol]})
    await publisher.publish("tickstock.events.patterns", pattern(symbol, "First"))
    await client.wait_for("pattern_detected", 1)
    total = 1
    for burst in (1, 20):
        await publisher.client.script_flush()
        for index in range(burst):
            await publisher.publish("tickstock.events.patterns", pattern(symbol, f"P{index}"))
        total += burst
        await client.wait_for("pattern_detected", total)
    await client.settle(0.3)
    offsets = [event["offset"] for event in client.patterns()]
    assert len(offsets) == 22 and len(set(offsets)) == 22


async def test_reconnect_with_offset_replays_missed_events_exactly_once(
    served: Any, connect: Connect, publisher: Publisher
) -> None:
    symbol = unique_symbol()
    first = await connect(served.url)
    await first.call("subscribe_patterns", {"symbol": symbol})
    await publisher.publish("tickstock.events.patterns", pattern(symbol, "Before"))
    await first.wait_for("pattern_detected", 1)
    last_offset = first.patterns()[-1]["offset"]
    await first.close()

    for index in range(50):
        await publisher.publish("tickstock.events.patterns", pattern(symbol, f"Missed{index}"))
    # Wait until the server has stored all 50 (history is what the replay reads).
    watcher = await connect(served.url)
    await watcher.call("subscribe_patterns", {"symbol": symbol})
    await asyncio.sleep(0.5)

    again = await connect(served.url)
    ack = await again.call(
        "subscribe_patterns", {"symbols": [symbol], "since": {symbol: last_offset}}
    )
    assert ack["recovered"] == {symbol: True}
    await publisher.publish("tickstock.events.patterns", pattern(symbol, "Live"))
    await again.wait_for("pattern_detected", 51)
    await again.settle()
    names = [p["pattern"] for p in again.patterns()]
    assert names == [f"Missed{i}" for i in range(50)] + ["Live"]
    subscribed = await again.wait_for("subscribed", 1)
    assert subscribed[0]["recovered"] == {symbol: True}


async def test_resume_from_the_ack_baseline_loses_nothing_for_a_symbol_without_events(
    served: Any, connect: Connect, publisher: Publisher
) -> None:
    """The README's recipe: resume each symbol from its last offset, else the ack's baseline."""
    quiet, busy = unique_symbol(), unique_symbol()
    await publisher.publish("tickstock.events.patterns", pattern(busy, "Old"))
    first = await connect(served.url)
    ack = await first.call("subscribe_patterns", {"symbols": [quiet, busy]})
    assert set(ack["offsets"]) == {quiet, busy}
    await publisher.publish("tickstock.events.patterns", pattern(busy, "Seen"))
    await first.wait_for("pattern_detected", 1)
    last = {event["symbol"]: event["offset"] for event in first.patterns()}
    await first.close()

    # While it is away: the first events ever of the quiet symbol, and more of the busy one
    # (stored once the watcher has them: the replay reads history).
    watcher = await connect(served.url)
    await watcher.call("subscribe_patterns", {"symbols": [quiet, busy]})
    await publisher.publish("tickstock.events.patterns", pattern(quiet, "First"))
    await publisher.publish("tickstock.events.patterns", pattern(busy, "Missed"))
    await publisher.publish("tickstock.events.patterns", pattern(quiet, "Second"))
    await watcher.wait_for("pattern_detected", 3)

    since = {symbol: last.get(symbol, ack["offsets"][symbol]) for symbol in (quiet, busy)}
    again = await connect(served.url)
    resumed = await again.call("subscribe_patterns", {"symbols": [quiet, busy], "since": since})
    assert resumed["recovered"] == {quiet: True, busy: True}
    await again.wait_for("pattern_detected", 3)
    await again.settle()
    assert [(p["symbol"], p["pattern"]) for p in again.patterns()] == [
        (quiet, "First"),
        (quiet, "Second"),
        (busy, "Missed"),
    ]
    # The new ack's baselines are past what was replayed: resuming from them repeats nothing.
    for symbol in (quiet, busy):
        newest = [p["offset"] for p in again.patterns() if p["symbol"] == symbol][-1]
        assert resumed["offsets"][symbol] >= newest


async def test_offset_older_than_history_is_not_recovered(
    serve_app: Any, connect: Connect, publisher: Publisher
) -> None:
    served = await serve_app(history_max_events=5)
    symbol = unique_symbol()
    client = await connect(served.url)
    await client.call("subscribe_patterns", {"symbol": symbol})
    for index in range(40):
        await publisher.publish("tickstock.events.patterns", pattern(symbol, f"P{index}"))
    await client.wait_for("pattern_detected", 40)
    oldest = client.patterns()[0]["offset"]

    late = await connect(served.url)
    ack = await late.call("subscribe_patterns", {"symbol": symbol, "since": {symbol: oldest}})
    assert ack["recovered"] == {symbol: False}
    await late.settle()
    assert late.patterns() == []
    # An offset from before any retention window (1970) is not recoverable either.
    ack = await late.call("subscribe_patterns", {"symbol": symbol, "since": {symbol: "1-0"}})
    assert ack["recovered"] == {symbol: False}


async def test_two_nodes_deliver_every_event_once(
    serve_app: Any, connect: Connect, publisher: Publisher
) -> None:
    node_a, node_b = await serve_app(), await serve_app()
    symbol = unique_symbol()
    on_a, on_b = await connect(node_a.url), await connect(node_b.url)
    await on_a.call("subscribe_patterns", {"symbol": symbol})
    await on_b.call("subscribe_patterns", {"symbol": symbol})
    for index in range(30):
        await publisher.publish("tickstock.events.patterns", pattern(symbol, f"N{index}"))
    await on_a.wait_for("pattern_detected", 30)
    await on_b.wait_for("pattern_detected", 30)
    await on_a.settle(0.5)
    for client in (on_a, on_b):
        assert [p["pattern"] for p in client.patterns()] == [f"N{i}" for i in range(30)]
    assert [p["offset"] for p in on_a.patterns()] == [p["offset"] for p in on_b.patterns()]


async def test_subscription_validation_errors_keep_the_socket(
    served: Any, connect: Connect
) -> None:
    client = await connect(served.url)
    for bad in (
        {"symbol": "AAPL;DROP"},
        {"symbols": "AAPL"},
        {"symbol": 42},
        {},
        {"symbol": "AAPL", "since": {"AAPL": "yesterday"}},
        ["A" * 30],
    ):
        ack = await client.call("subscribe_patterns", bad)
        assert ack["status"] == "error", bad
        assert ack["message"]
    errors = await client.wait_for("error", 6)
    assert all(e["status"] == "error" for e in errors)
    assert client.client.connected
    ack = await client.call("subscribe_patterns", {"symbol": "brk.b"})
    assert ack == {**ack, "status": "success", "symbols": ["BRK.B"]}


async def test_per_connection_symbol_cap(serve_app: Any, connect: Connect) -> None:
    served = await serve_app(max_symbols_per_client=3)
    client = await connect(served.url)
    ok = await client.call("subscribe_patterns", {"symbols": ["AAPL", "MSFT", "NVDA"]})
    assert ok["status"] == "success"
    over = await client.call("subscribe_patterns", {"symbol": "AMZN"})
    assert over["status"] == "error" and "at most 3" in over["message"]
    await client.call("unsubscribe_patterns", {"symbol": "AAPL"})
    assert (await client.call("subscribe_patterns", {"symbol": "AMZN"}))["status"] == "success"
    # The all-symbols room and the other subscription type have their own room under the cap.
    assert (await client.call("subscribe_patterns", {"symbol": "*"}))["status"] == "success"
    ok = await client.call("subscribe_indicators", {"symbols": ["AAPL", "MSFT", "NVDA"]})
    assert ok["status"] == "success"


async def test_indicators_and_system_events(
    served: Any, connect: Connect, publisher: Publisher
) -> None:
    symbol = unique_symbol()
    client = await connect(served.url)
    await client.call("subscribe_indicators", {"symbol": symbol})
    await publisher.publish(
        "tickstock.events.indicators",
        {"symbol": symbol, "indicator": "RSI", "value": 64.2, "timestamp": 1_795_000_000},
    )
    updates = await client.wait_for("indicator_update", 1)
    assert updates[0]["data"]["symbol"] == symbol
    assert updates[0]["data"]["offset"]
    await publisher.publish(
        "tickstock:streaming:health", {"status": "healthy", "active_symbols": 42}
    )
    health = await client.wait_for("system_health", 1)
    assert health[0]["type"] == "system_health"


async def test_subscriptions_are_recorded_and_removed(
    served: Any, connect: Connect, database_url: str
) -> None:
    import asyncpg

    symbol = unique_symbol()
    client = await connect(served.url)
    await client.call("subscribe_patterns", {"symbol": symbol})
    conn = await asyncpg.connect(database_url)
    try:
        room = f"patterns:{symbol}"
        for _ in range(40):
            rows = await conn.fetch("SELECT sid FROM ws_subscriptions WHERE room = $1", room)
            if rows:
                break
            await asyncio.sleep(0.1)
        assert len(rows) == 1
        await client.close()
        for _ in range(40):
            rows = await conn.fetch("SELECT sid FROM ws_subscriptions WHERE room = $1", room)
            if not rows:
                break
            await asyncio.sleep(0.1)
        assert rows == []
    finally:
        await conn.close()


async def test_bad_messages_are_counted_and_valid_ones_still_flow(
    served: Any, connect: Connect, publisher: Publisher, database_url: str
) -> None:
    symbol = unique_symbol()
    client = await connect(served.url)
    await client.call("subscribe_patterns", {"symbol": symbol})
    channel = "tickstock.events.patterns"
    await publisher.publish(channel, b"{not json")
    await publisher.publish(channel, {"pattern": "Breakout", "confidence": 0.9})
    await publisher.publish(channel, pattern("AAPL;DROP TABLE"))
    await publisher.publish(channel, pattern(symbol, "Big", metadata={"blob": "x" * 70_000}))
    await publisher.publish(channel, {"test": "health_check"})
    await publisher.publish(channel, pattern(symbol, "Good"))
    received = await client.wait_for("pattern_detected", 1)
    assert received[0]["data"]["pattern"] == "Good"

    async with aiohttp.ClientSession() as http, http.get(f"{served.url}/health") as response:
        assert (await response.json())["components"]["realtime"]["status"] == "up"
    stats = served.app.extensions["tickstock.hub"].ingest.stats.channels[channel]
    assert stats.rejected["invalid_json"] >= 1
    assert stats.rejected["missing_symbol"] >= 1
    assert stats.rejected["invalid_symbol"] >= 1
    assert stats.rejected["too_large"] >= 1
    assert stats.ignored >= 1
