"""The demo producer's job runner: backtests and data loads asked for on the SPEC §13 channels.

It stands in for the producer engine's job side, so ``tickstock serve`` with nothing configured
runs every job the dashboard starts. A backtest reads each chosen symbol's daily bars and stored
detections (publishing progress per symbol), trades them with :mod:`tickstock.dev.backtest` and
publishes the results; a data load fills in the chosen symbols' daily bars (``years`` of history up
to the last completed session, existing bars kept) with progress per symbol. ``cancel_job`` stops a
job between two symbols and answers ``cancelled``. ``pace`` seconds pass after each symbol, so a
person (or a browser test) can watch the progress and cancel mid-way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, fields, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

import asyncpg
import orjson
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from tickstock import vocab
from tickstock.dev.backtest import Bar, Detection, Parameters, run_backtest
from tickstock.realtime.events import SYMBOL_RE

__all__ = ["DEFAULT_PACE", "JobChannels", "JobRunner", "run_job_runner"]

logger = logging.getLogger(__name__)

DEFAULT_PACE: Final = 0.5
_MAX_SYMBOLS: Final = 500
_REMEMBERED: Final = 10_000  # job ids kept to answer re-announcements and early cancels
_MAX_BACKOFF: Final = 30.0
_CLOSE_UTC_HOUR: Final = 21  # the seeded sessions close at 21:00 UTC

# The tiers a daily backtest trades: what is detected on daily or longer bars, and the combo tier.
_DETECTIONS_SQL: Final = """
SELECT symbol, pattern_type AS pattern, detection_timestamp AS detected_at, confidence
  FROM daily_patterns WHERE symbol = $1 AND detection_timestamp >= $2 AND detection_timestamp < $3
UNION ALL
SELECT symbol, pattern_type, detection_timestamp, confidence
  FROM weekly_patterns WHERE symbol = $1 AND detection_timestamp >= $2 AND detection_timestamp < $3
UNION ALL
SELECT symbol, pattern_type, detection_timestamp, confidence
  FROM monthly_patterns WHERE symbol = $1 AND detection_timestamp >= $2 AND detection_timestamp < $3
UNION ALL
SELECT d.symbol, p.name, d.detected_at, d.confidence
  FROM pattern_detections AS d JOIN pattern_definitions AS p ON p.id = d.pattern_id
 WHERE d.symbol = $1 AND d.detected_at >= $2 AND d.detected_at < $3
"""
_BARS_SQL: Final = (
    "SELECT symbol, date, open, high, low, close FROM ohlcv_daily"
    " WHERE symbol = $1 AND date >= $2 AND date <= $3 ORDER BY date"
)


@dataclass(frozen=True, slots=True)
class JobChannels:
    """The job protocol's channels (SPEC §13); ``prefixed`` isolates tests on a shared Redis."""

    backtest: str = vocab.JOB_BACKTEST_CHANNEL
    data_load: str = vocab.JOB_DATA_LOAD_CHANNEL
    cancel: str = vocab.JOB_CANCEL_CHANNEL
    backtest_progress: str = vocab.BACKTEST_PROGRESS_CHANNEL
    backtest_results: str = vocab.BACKTEST_RESULTS_CHANNEL
    data_load_progress: str = vocab.JOB_PROGRESS_CHANNEL

    def prefixed(self, prefix: str) -> JobChannels:
        """The same channels under ``prefix``."""
        return replace(self, **{f.name: prefix + getattr(self, f.name) for f in fields(self)})


class JobFailed(Exception):
    """A job that cannot run: the message is what the user reads."""


class _Cancelled(Exception):
    pass


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _now() -> str:
    return _iso(datetime.now(UTC))


def _symbols(value: object) -> list[str]:
    if not isinstance(value, list) or not value:
        raise JobFailed("symbols must be a non-empty list")
    chosen = list(dict.fromkeys(str(s).strip().upper() for s in value[:_MAX_SYMBOLS]))
    bad = [s for s in chosen if SYMBOL_RE.fullmatch(s) is None]
    if bad:
        raise JobFailed(f"invalid symbol {bad[0][:20]!r}")
    return chosen


def _date(value: object, name: str) -> date:
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        raise JobFailed(f"{name} must be a date (YYYY-MM-DD)") from None


@dataclass(slots=True)
class _Job:
    job_id: Any
    key: str
    cancel: asyncio.Event


class JobRunner:
    """Consumes the job channels and runs each job as its own task."""

    def __init__(
        self,
        redis: aioredis.Redis,
        pool: asyncpg.Pool | None,
        *,
        channels: JobChannels | None = None,
        pace: float = DEFAULT_PACE,
        accept: Callable[[dict[str, Any]], bool] | None = None,
    ) -> None:
        if not (pace >= 0 and math.isfinite(pace)):
            raise ValueError(f"pace must be a non-negative number, got {pace!r}")
        self.redis = redis
        self.pool = pool
        self.channels = channels or JobChannels()
        self.pace = pace
        self.accept = accept
        self._seen: OrderedDict[str, _Job | None] = OrderedDict()
        self._cancelled: OrderedDict[str, None] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()

    async def close(self) -> None:
        """Stop the running jobs (the service fails them as stalled if nobody resumes them)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- dispatch -------------------------------------------------------------------------------

    async def handle(self, channel: str, body: bytes) -> None:
        """One message from a job channel; anything malformed is logged and dropped."""
        try:
            message = orjson.loads(body)
        except orjson.JSONDecodeError:
            logger.warning("job runner: %s sent a message that is not JSON", channel)
            return
        if not isinstance(message, dict) or message.get("job_id") in (None, ""):
            logger.warning("job runner: %s sent a message without a job_id", channel)
            return
        job_id = message["job_id"]
        key = str(job_id)[:200]
        if channel == self.channels.cancel:
            self._cancel(key)
            return
        if self.accept is not None and not self.accept(message):
            return
        if key in self._seen:
            return  # announced again while it runs (or after it ended): one run per job
        job = _Job(job_id, key, asyncio.Event())
        self._remember(self._seen, key, job)
        if key in self._cancelled:
            job.cancel.set()
        if channel == self.channels.backtest:
            run: Callable[[_Job, dict[str, Any]], Awaitable[None]] = self._backtest
            progress = self.channels.backtest_progress
            results = self.channels.backtest_results
        elif channel == self.channels.data_load:
            run, progress = self._data_load, self.channels.data_load_progress
            results = progress
        else:
            return
        task = asyncio.create_task(self._guarded(run, job, message, progress, results))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _remember(self, table: OrderedDict[str, Any], key: str, value: Any) -> None:
        table[key] = value
        while len(table) > _REMEMBERED:
            table.popitem(last=False)

    def _cancel(self, key: str) -> None:
        self._remember(self._cancelled, key, None)
        job = self._seen.get(key)
        if job is not None:
            job.cancel.set()

    async def _guarded(
        self,
        run: Callable[[_Job, dict[str, Any]], Awaitable[None]],
        job: _Job,
        message: dict[str, Any],
        progress: str,
        results: str,
    ) -> None:
        try:
            await run(job, message)
        except _Cancelled:
            await self._publish(results, {"job_id": job.job_id, "status": "cancelled"})
            logger.info("job %s cancelled", job.key)
        except JobFailed as exc:
            await self._publish(
                results, {"job_id": job.job_id, "status": "failed", "error": str(exc)}
            )
            logger.info("job %s failed: %s", job.key, exc)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.exception("job %s failed unexpectedly", job.key)
            error = f"the job failed in the producer: {type(exc).__name__}"
            with contextlib.suppress(Exception):
                await self._publish(
                    results, {"job_id": job.job_id, "status": "failed", "error": error}
                )
        finally:
            self._seen[job.key] = None  # ended: a re-announcement does not run it again

    async def _publish(self, channel: str, message: dict[str, Any]) -> None:
        await self.redis.publish(channel, orjson.dumps({**message, "timestamp": _now()}))

    async def _step(
        self,
        job: _Job,
        channel: str,
        done: int,
        total: int,
        started: float,
        symbol: str | None,
        text: str,
    ) -> None:
        """Progress after ``done`` of ``total`` steps, then the pace (cut short by a cancel)."""
        if job.cancel.is_set():
            raise _Cancelled
        fraction = done / total if total else 1.0
        message: dict[str, Any] = {
            "job_id": job.job_id,
            "progress": round(fraction, 4),
            "status": "running",
            "message": text,
        }
        if symbol is not None:
            message["current_symbol"] = symbol
        if 0 < fraction < 1:
            elapsed = time.monotonic() - started + self.pace
            left = elapsed / fraction * (1 - fraction)
            message["estimated_completion"] = _iso(datetime.now(UTC) + timedelta(seconds=left))
        await self._publish(channel, message)
        if self.pace:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(job.cancel.wait(), self.pace)
        if job.cancel.is_set():
            raise _Cancelled

    def _need_pool(self) -> asyncpg.Pool:
        if self.pool is None:
            raise JobFailed("the demo producer has no database to run jobs on")
        return self.pool

    # -- backtests ------------------------------------------------------------------------------

    async def _backtest(self, job: _Job, message: dict[str, Any]) -> None:
        symbols = _symbols(message.get("symbols"))
        start = _date(message.get("start_date"), "start_date")
        end = _date(message.get("end_date"), "end_date")
        if start > end:
            raise JobFailed("start_date must not be after end_date")
        raw_patterns = message.get("patterns") or []
        if not isinstance(raw_patterns, list):
            raise JobFailed("patterns must be a list")
        patterns = [str(name)[:100] for name in raw_patterns]
        raw = message.get("parameters") or {}
        try:
            parameters = Parameters.from_mapping(raw if isinstance(raw, dict) else {})
        except ValueError as exc:
            raise JobFailed(str(exc)) from None
        pool = self._need_pool()
        channel = self.channels.backtest_progress
        started = time.monotonic()
        total = len(symbols) + 1
        await self._step(job, channel, 0, total, started, None, "starting")
        bars: list[Bar] = []
        detections: list[Detection] = []
        since = datetime.combine(start, datetime.min.time(), UTC)
        until = datetime.combine(end + timedelta(days=1), datetime.min.time(), UTC)
        for index, symbol in enumerate(symbols):
            async with pool.acquire() as conn, conn.transaction(readonly=True):
                rows = await conn.fetch(_BARS_SQL, symbol, start, end)
                found = await conn.fetch(_DETECTIONS_SQL, symbol, since, until)
            bars.extend(Bar(r[0], r[1], r[2], r[3], r[4], r[5]) for r in rows)
            detections.extend(Detection(r[0], r[1], r[2], r[3]) for r in found)
            text = f"{symbol}: {len(rows)} bars, {len(found)} detections"
            await self._step(job, channel, index + 1, total, started, symbol, text)
        results = await asyncio.to_thread(
            run_backtest,
            bars,
            detections,
            start=start,
            end=end,
            patterns=patterns,
            parameters=parameters,
        )
        if job.cancel.is_set():
            raise _Cancelled
        await self._publish(
            self.channels.backtest_results,
            {"job_id": job.job_id, "status": "completed", "results": results},
        )
        logger.info(
            "backtest %s: %d symbols, %d trades", job.key, len(symbols), len(results["trades"])
        )

    # -- data loads -----------------------------------------------------------------------------

    async def _data_load(self, job: _Job, message: dict[str, Any]) -> None:
        pool = self._need_pool()
        years = message.get("years", 1)
        if isinstance(years, bool) or not isinstance(years, int | float) or not 1 <= years <= 20:
            raise JobFailed("years must be a number from 1 to 20")
        chosen = message.get("symbols")
        if chosen == "universe":
            async with pool.acquire() as conn:
                symbols = [r[0] for r in await conn.fetch("SELECT symbol FROM symbols ORDER BY 1")]
        else:
            symbols = _symbols(chosen)
        timeframes = message.get("timeframes") or ["daily"]
        skipped = (
            [str(t)[:20] for t in timeframes if t != "daily"]
            if isinstance(timeframes, list)
            else []
        )
        channel = self.channels.data_load_progress
        started = time.monotonic()
        total = len(symbols)
        last = _last_session(datetime.now(UTC))
        first = last - timedelta(days=round(365 * float(years)))
        added_total = 0
        for index, symbol in enumerate(symbols):
            added = await _fill_bars(pool, symbol, first, last)
            added_total += added
            text = f"{symbol}: {added} bars added"
            if index + 1 < total:
                await self._step(job, channel, index + 1, total, started, symbol, text)
        note = f"; {', '.join(skipped)} not available in the demo" if skipped else ""
        await self._publish(
            channel,
            {
                "job_id": job.job_id,
                "progress": 1.0,
                "status": "completed",
                "message": f"{added_total} bars added over {total} symbols{note}",
                "results": {"symbols": total, "bars_added": added_total},
            },
        )


def _last_session(now: datetime) -> date:
    day = now.date()
    while day.weekday() >= 5 or (day == now.date() and now.hour < _CLOSE_UTC_HOUR):
        day -= timedelta(days=1)
    return day


async def _fill_bars(pool: asyncpg.Pool, symbol: str, first: date, last: date) -> int:
    """Weekday bars missing between ``first`` and ``last``, walked on from the stored ones."""
    async with pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(
            "SELECT date, open, close, volume FROM ohlcv_daily WHERE symbol = $1 ORDER BY date",
            symbol,
        )
        rng = random.Random(f"data-load:{symbol}")
        have = {r[0] for r in rows}
        days = [
            first + timedelta(days=n)
            for n in range((last - first).days + 1)
            if (first + timedelta(days=n)).weekday() < 5
        ]
        missing = [d for d in days if d not in have]
        if not missing:
            return 0
        price = rows[0][1] if rows else rng.uniform(10.0, 300.0)
        volume = rows[0][3] if rows else 1_000_000
        records: list[tuple[Any, ...]] = []
        # Backwards from the first stored bar, then forwards from the last one.
        older = [d for d in missing if not rows or d < rows[0][0]]
        newer = [d for d in missing if rows and d > rows[-1][0]]
        for day in reversed(older):
            records.append(_bar(rng, symbol, day, price, volume))
            price = records[-1][2]  # walk back from this bar's open
        price = rows[-1][2] if rows else price
        for day in newer:
            records.append(_bar(rng, symbol, day, price, volume))
            price = records[-1][5]
        await conn.executemany(
            "INSERT INTO ohlcv_daily (symbol, date, open, high, low, close, volume)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (symbol, date) DO NOTHING",
            records,
        )
        return len(records)


def _bar(
    rng: random.Random, symbol: str, day: date, previous: float, volume: int
) -> tuple[Any, ...]:
    open_ = round(max(0.01, previous * (1 + rng.gauss(0.0, 0.006))), 2)
    close = round(max(0.01, open_ * (1 + rng.gauss(0.0, 0.015))), 2)
    high = round(max(open_, close) * (1 + abs(rng.gauss(0.0, 0.006))), 2)
    low = round(max(0.01, min(open_, close) * (1 - abs(rng.gauss(0.0, 0.006)))), 2)
    return (symbol, day, open_, high, low, close, int(volume * rng.lognormvariate(0.0, 0.3)))


async def run_job_runner(
    redis: aioredis.Redis,
    pool: asyncpg.Pool | None,
    *,
    stop: asyncio.Event,
    channels: JobChannels | None = None,
    pace: float = DEFAULT_PACE,
    ready: Callable[[], None] | None = None,
    accept: Callable[[dict[str, Any]], bool] | None = None,
) -> None:
    """Run jobs until ``stop`` is set; Redis outages back off (1 s doubling to 30 s) and resume.

    ``ready`` is called each time the subscription is in place (tests wait for it); ``accept``
    picks the jobs this runner takes (all by default: a producer shared by several services, or
    tests on a shared Redis, take only their own).
    """
    runner = JobRunner(redis, pool, channels=channels, pace=pace, accept=accept)
    wanted = (runner.channels.backtest, runner.channels.data_load, runner.channels.cancel)
    backoff = 1.0
    while not stop.is_set():
        pubsub = redis.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(*wanted)
            if ready is not None:
                ready()
            backoff = 1.0
            while not stop.is_set():
                message = await pubsub.get_message(timeout=0.5)
                if message is None:
                    continue
                channel = message["channel"]
                if isinstance(channel, bytes):
                    channel = channel.decode()
                data = message["data"]
                await runner.handle(
                    channel, data if isinstance(data, bytes) else str(data).encode()
                )
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            logger.warning("job runner: Redis unavailable (%s), retry in %.0f s", exc, backoff)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), backoff)
            backoff = min(backoff * 2, _MAX_BACKOFF)
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()
    await runner.close()
