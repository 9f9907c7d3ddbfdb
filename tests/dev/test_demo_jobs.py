"""The demo producer runs the jobs of SPEC §13: backtests and data loads, with progress and cancel."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import orjson
import pytest
import redis.asyncio as aioredis

from tests.dev.test_seed import ADMIN_DSN, scratch_database
from tickstock.dev.backtest import Bar, Detection, Parameters, run_backtest
from tickstock.dev.demo_jobs import JobChannels, run_job_runner


class Producer:
    """A job runner on channels of its own, and a listener on what it answers."""

    def __init__(self, redis: aioredis.Redis, channels: JobChannels) -> None:
        self.redis = redis
        self.channels = channels
        self.messages: list[tuple[str, dict[str, Any]]] = []
        self.arrived = asyncio.Condition()

    async def listen(self) -> None:
        pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        c = self.channels
        await pubsub.subscribe(c.backtest_progress, c.backtest_results, c.data_load_progress)
        self.subscribed.set()
        try:
            async for message in pubsub.listen():
                async with self.arrived:
                    self.messages.append(
                        (message["channel"].decode(), orjson.loads(message["data"]))
                    )
                    self.arrived.notify_all()
        finally:
            await pubsub.aclose()

    async def send(self, channel: str, message: dict[str, Any] | bytes) -> None:
        body = message if isinstance(message, bytes) else orjson.dumps(message)
        await self.redis.publish(channel, body)

    def of(self, job_id: object) -> list[tuple[str, dict[str, Any]]]:
        return [(ch, m) for ch, m in self.messages if m.get("job_id") == job_id]

    async def until_final(self, job_id: object, within: float = 20) -> dict[str, Any]:
        def final() -> bool:
            return any(
                m.get("status") in ("completed", "failed", "cancelled") for _, m in self.of(job_id)
            )

        async with self.arrived:
            await asyncio.wait_for(self.arrived.wait_for(final), within)
        return next(
            m for _, m in self.of(job_id) if m.get("status") in ("completed", "failed", "cancelled")
        )

    async def until(self, job_id: object, count: int, within: float = 20) -> None:
        async with self.arrived:
            await asyncio.wait_for(
                self.arrived.wait_for(lambda: len(self.of(job_id)) >= count), within
            )

    subscribed: asyncio.Event


async def start_producer(
    redis_url: str, pool: asyncpg.Pool, pace: float
) -> AsyncIterator[Producer]:
    redis = aioredis.Redis.from_url(redis_url)
    channels = JobChannels().prefixed(f"jobs-{secrets.token_hex(4)}:")
    producer = Producer(redis, channels)
    producer.subscribed = asyncio.Event()
    listener = asyncio.create_task(producer.listen())
    stop = asyncio.Event()
    ready = asyncio.Event()
    runner = asyncio.create_task(
        run_job_runner(redis, pool, stop=stop, channels=channels, pace=pace, ready=ready.set)
    )
    await asyncio.wait_for(asyncio.gather(ready.wait(), producer.subscribed.wait()), 10)
    try:
        yield producer
    finally:
        stop.set()
        await asyncio.wait_for(runner, 10)
        listener.cancel()
        await asyncio.gather(listener, return_exceptions=True)
        await redis.aclose()


@pytest.fixture(name="pool")
async def _pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    yield pool
    await pool.close()


@pytest.fixture(name="producer")
async def _producer(redis_url: str, pool: asyncpg.Pool) -> AsyncIterator[Producer]:
    async for producer in start_producer(redis_url, pool, pace=0.0):
        yield producer


async def _window(conn: asyncpg.Connection) -> tuple[date, date]:
    last = await conn.fetchval("SELECT max(date) FROM ohlcv_daily WHERE symbol = 'AAPL'")
    return last - timedelta(days=120), last


def _job(
    job_id: str, symbols: list[str], start: date, end: date, **parameters: Any
) -> dict[str, Any]:
    return {
        "type": "backtest_job",
        "job_id": job_id,
        "user_id": 1,
        "symbols": symbols,
        "start_date": start.isoformat(),
        "end_date": end.isoformat(),
        "patterns": [],
        "parameters": {"initial_capital": 50_000, "max_position_size": 0.2, **parameters},
        "timestamp": datetime.now(UTC).isoformat(),
        "source": "tickstock",
    }


async def test_a_backtest_reports_progress_per_symbol_then_the_results(
    producer: Producer, conn: asyncpg.Connection
) -> None:
    start, end = await _window(conn)
    symbols = ["AAPL", "MSFT", "NVDA"]
    job_id = str(uuid.uuid4())
    await producer.send(producer.channels.backtest, _job(job_id, symbols, start, end))
    final = await producer.until_final(job_id)

    progress = [m for ch, m in producer.of(job_id) if ch == producer.channels.backtest_progress]
    assert [m["progress"] for m in progress] == sorted(m["progress"] for m in progress)
    assert [m.get("current_symbol") for m in progress[1:]] == symbols
    assert all(m["status"] == "running" and m["timestamp"] for m in progress)
    assert final["status"] == "completed"
    results = final["results"]
    # The same rows through the module give the same figures: the runner reads what is stored.
    bars = [
        Bar(*r)
        for r in await conn.fetch(
            "SELECT symbol, date, open, high, low, close FROM ohlcv_daily"
            " WHERE symbol = ANY($1) AND date BETWEEN $2 AND $3",
            symbols,
            start,
            end,
        )
    ]
    detections = [
        Detection(*r)
        for r in await conn.fetch(
            "SELECT symbol, pattern_type, detection_timestamp, confidence FROM daily_patterns"
            " WHERE symbol = ANY($1) UNION ALL SELECT symbol, pattern_type, detection_timestamp,"
            " confidence FROM weekly_patterns WHERE symbol = ANY($1) UNION ALL SELECT symbol,"
            " pattern_type, detection_timestamp, confidence FROM monthly_patterns WHERE symbol ="
            " ANY($1) UNION ALL SELECT d.symbol, p.name, d.detected_at, d.confidence FROM"
            " pattern_detections d JOIN pattern_definitions p ON p.id = d.pattern_id"
            " WHERE d.symbol = ANY($1)",
            symbols,
        )
    ]
    expected = run_backtest(
        bars,
        detections,
        start=start,
        end=end,
        parameters=Parameters(initial_capital=50_000, max_position_size=0.2),
    )
    assert results == expected
    assert results["trades"], "the seeded window should trade"


async def test_a_job_announced_again_runs_once(
    producer: Producer, conn: asyncpg.Connection
) -> None:
    start, end = await _window(conn)
    job_id = str(uuid.uuid4())
    for _ in range(3):
        await producer.send(producer.channels.backtest, _job(job_id, ["AAPL"], start, end))
    await producer.until_final(job_id)
    await asyncio.sleep(0.3)  # the echoes of the last announcement, if any
    finals = [m for _, m in producer.of(job_id) if m["status"] == "completed"]
    starts = [m for _, m in producer.of(job_id) if m.get("message") == "starting"]
    assert (len(finals), len(starts)) == (1, 1)


async def test_bad_jobs_fail_with_a_reason_and_junk_is_ignored(
    producer: Producer, conn: asyncpg.Connection
) -> None:
    start, end = await _window(conn)
    c = producer.channels
    await producer.send(c.backtest, b"\x00not json")
    await producer.send(c.backtest, {"type": "backtest_job", "symbols": ["AAPL"]})  # no job_id
    await producer.send(c.backtest, _job("bad-1", ["AAPL"], start, end, stop_loss_pct=float("-1")))
    await producer.send(c.backtest, _job("bad-2", ["AAPL"], end, start))
    await producer.send(c.backtest, _job("bad-3", ["not a symbol!"], start, end))
    assert (await producer.until_final("bad-1"))["error"].startswith("stop_loss_pct")
    assert "start_date" in (await producer.until_final("bad-2"))["error"]
    assert "symbol" in (await producer.until_final("bad-3"))["error"]
    # Still running jobs after all that.
    await producer.send(c.backtest, _job("good", ["AAPL"], start, end))
    assert (await producer.until_final("good"))["status"] == "completed"


async def test_cancel_stops_a_job_mid_way(
    redis_url: str, pool: asyncpg.Pool, conn: asyncpg.Connection
) -> None:
    start, end = await _window(conn)
    symbols = ["AAPL", "MSFT", "NVDA", "AMZN", "GOOGL", "META"]
    async for producer in start_producer(redis_url, pool, pace=0.5):
        job_id = str(uuid.uuid4())
        await producer.send(producer.channels.backtest, _job(job_id, symbols, start, end))
        await producer.until(job_id, 2)  # "starting" and the first symbol
        await producer.send(producer.channels.cancel, {"type": "cancel_job", "job_id": job_id})
        final = await producer.until_final(job_id)
        assert final["status"] == "cancelled"
        assert final == producer.of(job_id)[-1][1]
        assert max(m.get("progress", 0) for _, m in producer.of(job_id)) < 1
        # A cancel that comes before its job: the job is answered cancelled without running.
        early = str(uuid.uuid4())
        await producer.send(producer.channels.cancel, {"type": "cancel_job", "job_id": early})
        await producer.send(producer.channels.backtest, _job(early, symbols, start, end))
        assert (await producer.until_final(early))["status"] == "cancelled"


async def test_a_data_load_fills_in_missing_bars_with_progress(redis_url: str) -> None:
    async with scratch_database() as conn:
        await conn.execute("INSERT INTO symbols (symbol, name) VALUES ('AAA', 'A'), ('BBB', 'B')")
        kept = date.today() - timedelta(days=100)
        while kept.weekday() >= 5:
            kept -= timedelta(days=1)
        await conn.execute(
            "INSERT INTO ohlcv_daily (symbol, date, open, high, low, close, volume)"
            " VALUES ('AAA', $1, 10, 11, 9, 10.5, 1000)",
            kept,
        )
        name = await conn.fetchval("SELECT current_database()")
        pool = await asyncpg.create_pool(ADMIN_DSN, database=name, min_size=1, max_size=2)
        try:
            async for producer in start_producer(redis_url, pool, pace=0.0):
                channel = producer.channels.data_load
                load = {
                    "type": "data_load",
                    "job_id": "load-1",
                    "symbols": "universe",
                    "years": 1,
                    "timeframes": ["daily", "hourly"],
                    "requested_by": 1,
                }
                await producer.send(channel, load)
                final = await producer.until_final("load-1")
                assert final["status"] == "completed" and final["progress"] == 1.0
                assert "hourly not available" in final["message"]
                steps = [m for _, m in producer.of("load-1")]
                assert [m.get("current_symbol") for m in steps[:-1]] == ["AAA"]
                rows = await conn.fetch(
                    "SELECT symbol, date, open, high, low, close FROM ohlcv_daily"
                )
                assert final["results"]["bars_added"] == len(rows) - 1
                per = {
                    s: sorted(r["date"] for r in rows if r["symbol"] == s) for s in ("AAA", "BBB")
                }
                assert per["AAA"] == per["BBB"] and len(per["AAA"]) > 250
                assert all(d.weekday() < 5 for d in per["AAA"])
                original = next(r for r in rows if r["symbol"] == "AAA" and r["date"] == kept)
                assert tuple(original)[2:] == (10, 11, 9, 10.5)
                assert all(
                    r["low"]
                    <= min(r["open"], r["close"])
                    <= max(r["open"], r["close"])
                    <= r["high"]
                    for r in rows
                )
                # Loading again adds nothing.
                await producer.send(channel, {**load, "job_id": "load-2"})
                assert (await producer.until_final("load-2"))["results"]["bars_added"] == 0
        finally:
            await pool.close()
