"""The demo producer: every message it sends normalises, and it paces itself on a real Redis."""

from __future__ import annotations

import asyncio
import os
import random
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis

from tickstock.dev.demo_producer import (
    DEFAULT_SYMBOLS,
    PATTERN_SHAPES,
    DemoChannels,
    DemoFeed,
    build_messages,
    run_demo_producer,
)
from tickstock.realtime.events import channel_kind, normalise

REDIS_URL = os.environ.get("TICKSTOCK_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
NOW = 1795703400.0  # 2026-11-26T14:30:00Z
EXPECTED_KIND = {
    "patterns": "pattern",
    "patterns_streaming": "pattern",
    "patterns_detected": "pattern",
    "indicators": "indicator",
    "indicators_streaming": "indicator",
    "indicator_alerts": "alert",
    "critical_alerts": "alert",
    "health": "health",
    "health_status": "health",
    "session_started": "session",
    "session_stopped": "session",
}


def received(now: float) -> datetime:
    return datetime.fromtimestamp(now + 0.01, UTC)


@pytest.mark.parametrize("seed", range(5))
def test_every_demo_message_normalises(seed: int) -> None:
    messages = build_messages(random.Random(seed), DEFAULT_SYMBOLS, NOW)
    channels = DemoChannels()
    kinds = {getattr(channels, name): kind for name, kind in EXPECTED_KIND.items()}
    assert set(kinds) == {channel for channel, _ in messages}  # every channel is used
    for channel, body in messages:
        result = normalise(body, channel, received_at=received(NOW))
        assert result.rejects == [] and not result.ignored, (channel, body, result.rejects)
        assert result.events, (channel, body)
        assert {event.kind for event in result.events} == {kinds[channel]}
    events = [
        event
        for channel, body in messages
        for event in normalise(body, channel, received_at=received(NOW)).events
    ]
    assert {event.event_type for event in events} == {
        "pattern_detected",
        "indicator_update",
        "indicator_alert",
        "critical_alert",
        "system_health",
        "streaming_session",
    }
    statuses = [e.data["status"] for e in events if e.kind == "session"]
    assert statuses == ["started", "stopped"]


def test_pattern_rotation_covers_the_producer_shapes() -> None:
    feed = DemoFeed(random.Random(1), ["AAPL", "brk.b"])
    bodies = [body for _ in PATTERN_SHAPES for _, body in feed.patterns(NOW)[0]]
    text = b"\n".join(bodies)
    for marker in (
        b'"data":{"type":"pattern","data":{',  # data.data
        b'"detection":{',
        b'"payload":{',
        b'"patterns":[',
        b'"pattern_data":{',
        b'"pattern_type":',
        b'"pattern_name":',
        b'"source":"',
        b'"timeframe":"',
        b'"tier":"',
        b'"levels":[{"type":"support"',  # levels as objects
        b"-05:00",  # ISO with an offset
        b'"confidence":"0.',  # confidence as text
    ):
        assert marker in text, marker
    assert b'"BRK.B"' in text or b'"brk.b"' in text


def test_many_rotations_always_normalise_and_duplicates_share_an_id() -> None:
    feed = DemoFeed(random.Random(7), DEFAULT_SYMBOLS)
    detections = 0
    for turn in range(400):
        now = NOW + turn
        messages, count = feed.patterns(now)
        events = []
        for channel, body in messages:
            result = normalise(body, channel, received_at=received(now))
            assert result.rejects == [], (body, result.rejects)
            events.extend(result.events)
        detections += count
        assert 1 <= len({event.event_id for event in events}) == count
        for event in events:
            assert 0.5 <= event.data["confidence"] <= 0.99
            assert event.data["price"] is None or event.data["price"] > 0
    assert detections > 400
    for turn in range(40):
        for channel, body in feed.indicators(NOW + turn):
            assert normalise(body, channel, received_at=received(NOW + turn)).rejects == []


def test_prefixed_channels_keep_their_kind() -> None:
    channels = DemoChannels().prefixed("test-0a1b:")
    for name, kind in EXPECTED_KIND.items():
        assert channel_kind(getattr(channels, name)) == kind
    assert all(channel.startswith("test-0a1b:") for channel in channels.all())


def test_invalid_symbols_and_rates_are_refused() -> None:
    with pytest.raises(ValueError, match="symbol"):
        DemoFeed(random.Random(1), ["AAPL;DROP"])
    with pytest.raises(ValueError, match="symbol"):
        DemoFeed(random.Random(1), [])


@pytest.fixture(name="redis")
async def _redis() -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        yield client
    finally:
        await client.aclose()


async def test_refuses_a_non_positive_rate(redis: aioredis.Redis) -> None:
    with pytest.raises(ValueError, match="rate"):
        await run_demo_producer(redis, symbols=["AAPL"], rate=0)


async def test_publishes_paced_traffic_on_a_real_redis(redis: aioredis.Redis) -> None:
    channels = DemoChannels().prefixed(f"test-{uuid.uuid4().hex[:12]}:")
    arrived: list[tuple[str, bytes, float]] = []
    async with redis.pubsub() as pubsub:
        await pubsub.subscribe(*channels.all())
        started = time.monotonic()
        producer = asyncio.create_task(
            run_demo_producer(
                redis, symbols=DEFAULT_SYMBOLS, rate=50, duration=1.0, channels=channels, seed=3
            )
        )
        while not producer.done() or time.monotonic() - started < 1.5:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
            if message is not None:
                arrived.append((message["channel"].decode(), message["data"], time.time()))
            if time.monotonic() - started > 10:
                break
        published = await producer
    assert published == len(arrived)  # subscribed first, on localhost: nothing is lost
    by_channel = Counter(channel for channel, _, _ in arrived)
    assert by_channel[channels.session_started] == 1
    assert by_channel[channels.session_stopped] == 1
    assert by_channel[channels.health] == 1
    assert by_channel[channels.patterns] > 0
    assert by_channel[channels.indicators] + by_channel[channels.indicators_streaming] > 0
    assert len(by_channel) >= 6
    # The demo is on schedule: no system alert claims otherwise.
    assert by_channel[channels.critical_alerts] == 0
    detections = 0
    for channel, body, when in arrived:
        result = normalise(body, channel, received_at=datetime.fromtimestamp(when, UTC))
        assert result.rejects == [] and result.events, (channel, body, result.rejects)
        detections += sum(1 for e in result.events if e.kind == "pattern")
    # ~50 detections in one second (a few more: the streaming pair sends one detection twice).
    assert 40 <= detections <= 80, detections
    assert arrived[0][0] == channels.session_started
    assert arrived[-1][0] == channels.session_stopped


async def test_its_system_alert_says_only_what_is_true_of_the_demo(
    redis: aioredis.Redis,
) -> None:
    channels = DemoChannels().prefixed(f"test-{uuid.uuid4().hex[:12]}:")
    alerts: list[dict[str, Any]] = []
    health: list[dict[str, Any]] = []
    async with redis.pubsub() as pubsub:
        await pubsub.subscribe(channels.critical_alerts, channels.health, channels.health_status)
        stop = asyncio.Event()
        producer = asyncio.create_task(
            run_demo_producer(redis, symbols=["AAPL"], rate=20, stop=stop, channels=channels)
        )

        async def listen(seconds: float) -> None:
            until = time.monotonic() + seconds
            while time.monotonic() < until:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
                if message is None:
                    continue
                body = orjson.loads(message["data"])
                target = (
                    alerts if message["channel"].decode() == channels.critical_alerts else health
                )
                target.append(body)

        await listen(1.0)
        assert alerts == []  # on schedule: nothing to report
        time.sleep(2.6)  # a busy machine: the event loop (and the demo) stalls  # noqa: ASYNC251
        await listen(1.0)
        stop.set()
        await producer
    (alert,) = alerts
    assert alert["message"].startswith("Demo producer ")
    assert "behind its schedule" in alert["message"]
    assert alert["data"]["demo"] is True and alert["data"]["lag_seconds"] >= 2.0
    # Health figures are the demo's own, never invented.
    statuses = [report.get("health", report)["status"] for report in health]
    assert statuses and set(statuses) == {"healthy"}


async def test_stop_event_ends_an_open_ended_run(redis: aioredis.Redis) -> None:
    channels = DemoChannels().prefixed(f"test-{uuid.uuid4().hex[:12]}:")
    stop = asyncio.Event()
    producer = asyncio.create_task(
        run_demo_producer(redis, symbols=["AAPL"], rate=0.5, stop=stop, channels=channels)
    )
    await asyncio.sleep(0.3)
    began = time.monotonic()
    stop.set()
    published = await asyncio.wait_for(producer, 2.0)
    assert time.monotonic() - began < 0.5
    # session started, the first detection and health report at t=0, session stopped.
    assert published == 4


async def test_high_rates_are_pipelined_and_keep_pace(redis: aioredis.Redis) -> None:
    channels = DemoChannels().prefixed(f"test-{uuid.uuid4().hex[:12]}:")
    began = time.monotonic()
    published = await run_demo_producer(
        redis, symbols=DEFAULT_SYMBOLS, rate=2000, duration=0.5, channels=channels, seed=1
    )
    elapsed = time.monotonic() - began
    # 1,000 detections (a few batch items each) + indicators at rate / 2 + alerts, in ~0.5 s.
    assert published > 900
    assert elapsed < 1.5


@pytest.mark.fault
async def test_survives_an_unreachable_redis() -> None:
    client = aioredis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    try:
        began = time.monotonic()
        published = await run_demo_producer(client, symbols=["AAPL"], rate=20, duration=0.5)
    finally:
        await client.aclose()
    assert published == 0
    assert time.monotonic() - began < 5.0


async def test_the_command_publishes_on_its_own_channels(redis: aioredis.Redis) -> None:
    """``tickstock demo-producer --channel-prefix`` feeds nodes with prefixed ingest channels."""
    prefix = f"test-{uuid.uuid4().hex[:12]}:"
    channels = DemoChannels().prefixed(prefix)
    pubsub = redis.pubsub()
    await pubsub.psubscribe(f"{prefix}*")
    try:
        process = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "tickstock", "demo-producer", "--redis-url", REDIS_URL),
            *("--rate", "20", "--duration", "1", "--symbols", "AAPL", "--channel-prefix", prefix),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await asyncio.wait_for(process.communicate(), 30)
        assert process.returncode == 0, output.decode()
        seen: Counter[str] = Counter()
        while message := await pubsub.get_message(timeout=0.5):
            if message["type"] == "pmessage":
                seen[message["channel"].decode()] += 1
    finally:
        await pubsub.aclose()
    assert seen[channels.patterns] >= 10
    assert set(seen) <= set(channels.all())
