"""A demo producer: realistic pattern, indicator, alert, health and session messages on Redis.

It stands in for the pattern engine in development, in the local stack and in load tests. Pattern
messages rotate through every envelope, alias and timestamp shape the producer has used, so
whatever it publishes also exercises the whole ingest normaliser. Each shape carries the whole
detection as the demo store writes it (symbol, pattern, confidence, tier, timeframe, times,
price, levels, indicators), each in its own spelling, so live events and REST rows agree.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Final

import asyncpg
import orjson
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from tickstock import vocab
from tickstock.detection import level_type
from tickstock.dev.seed_data import KNOWN_SYMBOLS
from tickstock.realtime.events import SYMBOL_RE

__all__ = [
    "DEFAULT_SYMBOLS",
    "INDICATOR_SHAPES",
    "PATTERN_NAMES",
    "PATTERN_SHAPES",
    "DemoChannels",
    "DemoDetection",
    "DemoFeed",
    "DemoIndicator",
    "build_messages",
    "run_demo_producer",
    "stored_data",
]

if TYPE_CHECKING:
    from tickstock.dev.demo_store import DemoStore

logger = logging.getLogger(__name__)

Message = tuple[str, bytes]

DEFAULT_SYMBOLS: Final = vocab.DEMO_SYMBOLS
PATTERN_NAMES: Final = (
    "Breakout",
    "BullishEngulfing",
    "BearishEngulfing",
    "Doji",
    "Hammer",
    "ShootingStar",
    "RSIOversold",
    "RSIOverbought",
    "MACDCross",
    "GoldenCross",
    "DeathCross",
    "HeadAndShoulders",
    "DoubleBottom",
    "DoubleTop",
    "VolumeSpike",
    "GapUp",
)
# Weighted towards the streaming tiers, as a trading day is.
_TIERS: Final = (
    "intraday",
    "intraday",
    "intraday",
    "hourly",
    "daily",
    "daily",
    "weekly",
    "monthly",
    "daily_intraday",
    "combo",
)
_TIMEFRAMES: Final = {
    "intraday": ("1min", "5min", "15min"),
    "hourly": ("1h", "60min", "hourly"),
    "daily": ("daily", "1d"),
    "weekly": ("weekly", "1w"),
    "monthly": ("monthly", "1M"),
    "daily_intraday": ("5min", "15min"),
    "combo": ("daily",),  # pattern_detections has no timeframe column: end-of-day detections
}
_EXPIRY: Final = {
    "intraday": 3600.0,
    "hourly": 86_400.0,
    "daily": 3 * 86_400.0,
    "weekly": 14 * 86_400.0,
    "monthly": 60 * 86_400.0,
    "daily_intraday": 86_400.0,
}
_EASTERN: Final = timezone(timedelta(hours=-5))
_MAX_PIPELINE: Final = 1000
_HEALTH_INTERVAL: Final = 5.0
# The demo's system alerts speak of its own state: it says when it runs this far behind its
# schedule (a busy machine), at most once a minute.
_LAG_ALERT_SECONDS: Final = 2.0
_LAG_ALERT_INTERVAL: Final = 60.0
_MAX_BACKOFF: Final = 30.0


@dataclass(frozen=True, slots=True)
class DemoChannels:
    """Where each kind of demo message goes; the defaults are the producer channels of SPEC §2."""

    patterns: str = vocab.PATTERNS_CHANNEL
    patterns_streaming: str = vocab.PATTERNS_STREAMING_CHANNEL
    patterns_detected: str = vocab.PATTERNS_DETECTED_CHANNEL
    indicators: str = vocab.INDICATORS_CHANNEL
    indicators_streaming: str = vocab.INDICATORS_STREAMING_CHANNEL
    indicator_alerts: str = vocab.INDICATOR_ALERTS_CHANNEL
    critical_alerts: str = vocab.CRITICAL_ALERTS_CHANNEL
    health: str = vocab.STREAMING_HEALTH_CHANNEL
    health_status: str = vocab.HEALTH_STATUS_CHANNEL
    session_started: str = vocab.SESSION_STARTED_CHANNEL
    session_stopped: str = vocab.SESSION_STOPPED_CHANNEL

    def prefixed(self, prefix: str) -> DemoChannels:
        """The same channels under ``prefix`` (isolated demos and tests on a shared Redis)."""
        return replace(self, **{f.name: prefix + getattr(self, f.name) for f in fields(self)})

    def all(self) -> tuple[str, ...]:
        """Every channel, in declaration order."""
        return tuple(getattr(self, f.name) for f in fields(self))


def _iso(epoch: float, tz: timezone | None = UTC) -> str:
    moment = datetime.fromtimestamp(epoch, tz or UTC)
    text = moment.isoformat(timespec="milliseconds")
    if tz is None:  # a naive timestamp, as older producers wrote them (UTC by convention)
        return text[:-6]
    return text.replace("+00:00", "Z")


def _dumps(message: dict[str, Any]) -> bytes:
    return orjson.dumps(message)


def _maybe(value: float | None, spell: Callable[[float], Any]) -> Any:
    return None if value is None else spell(value)


def stored_data(d: DemoDetection) -> dict[str, Any]:
    """The ``pattern_data`` the demo store writes for ``d`` (and the row-shaped message sends)."""
    return {"price": d.price, "indicators": d.indicators}


@dataclass(slots=True)
class DemoDetection:
    """One generated detection, as the demo producer stores it and publishes it."""

    symbol: str
    pattern: str
    confidence: float
    tier: str
    timeframe: str
    detected_at: float
    expires_at: float | None
    price: float
    levels: list[float]
    indicators: dict[str, float]

    def typed_levels(self) -> list[dict[str, Any]]:
        """The levels as objects, typed as every view types them against the price."""
        return [{"type": level_type(v, self.price), "value": v} for v in self.levels]


@dataclass(slots=True)
class DemoIndicator:
    """One generated indicator value (``value`` is the value_data object of the tables)."""

    symbol: str
    indicator: str
    value: dict[str, float]
    timeframe: str
    calculated_at: float


class DemoFeed:
    """Generates demo messages from its own random state; no I/O, so tests can replay it."""

    def __init__(
        self,
        rng: random.Random,
        symbols: Sequence[str],
        channels: DemoChannels | None = None,
        prices: Mapping[str, float] | None = None,
    ) -> None:
        chosen = [symbol.strip().upper() for symbol in symbols]
        bad = [symbol for symbol in chosen if SYMBOL_RE.fullmatch(symbol) is None]
        if not chosen or bad:
            raise ValueError(f"need at least one valid symbol, got invalid {bad!r}")
        self.rng = rng
        self.symbols = chosen
        self.channels = channels or DemoChannels()
        self.session_id = f"demo-{rng.getrandbits(32):08x}"
        # Prices continue from the last daily close (the database's, else the seed's reference
        # price, which is where the seeded bars end), so the feed and the charts agree.
        known = {k.symbol: k.price for k in KNOWN_SYMBOLS}
        start = {**known, **(prices or {})}
        self._prices = {symbol: start.get(symbol) or rng.uniform(8.0, 600.0) for symbol in chosen}
        self.detections: list[DemoDetection] = []
        self.indicator_values: list[DemoIndicator] = []
        self.generated = 0
        self.problem: str | None = None
        """What stops the demo from storing what it detects, while it lasts (health says so)."""
        self._pattern_turn = 0
        self._indicator_turn = 0
        self._health_turn = 0
        self._sequence = 0

    # -- building blocks ------------------------------------------------------------------------

    def _price(self, symbol: str) -> float:
        # A geometric random walk: prices drift a few basis points per event, never below a cent.
        price = max(0.01, self._prices[symbol] * math.exp(self.rng.gauss(0.0, 0.002)))
        self._prices[symbol] = price
        return price

    def _detection(self, now: float, tier: str | None = None) -> DemoDetection:
        rng = self.rng
        symbol = rng.choice(self.symbols)
        pattern = rng.choice(PATTERN_NAMES)
        tier = tier or rng.choice(_TIERS)
        price = self._price(symbol)
        rsi = rng.uniform(35.0, 65.0)
        if pattern == "RSIOversold":
            rsi = rng.uniform(12.0, 29.9)
        elif pattern == "RSIOverbought":
            rsi = rng.uniform(70.1, 88.0)
        # Whole milliseconds: every message shape then carries exactly the stored time.
        detected_at = math.floor((now - rng.uniform(0.0, 2.0)) * 1000) / 1000
        support = round(price * (1 - rng.uniform(0.01, 0.05)), 2)
        resistance = round(price * (1 + rng.uniform(0.01, 0.05)), 2)
        combo = tier == "combo"  # pattern_detections keeps no expiry and no levels
        d = DemoDetection(
            symbol=symbol,
            pattern=pattern,
            confidence=round(rng.uniform(0.5, 0.99), 3),
            tier=tier,
            timeframe=rng.choice(_TIMEFRAMES[tier]),
            detected_at=detected_at,
            expires_at=None if combo else detected_at + _EXPIRY[tier],
            price=round(price, 2),
            levels=[] if combo else [support, resistance],
            indicators={
                "rsi": round(rsi, 1),
                "volume_ratio": round(rng.uniform(0.6, 3.5), 2),
            },
        )
        self.detections.append(d)
        self.generated += 1
        return d

    def _indicator(
        self, symbol: str, name: str, value: dict[str, float], timeframe: str, at: float
    ) -> None:
        self.indicator_values.append(DemoIndicator(symbol, name, value, timeframe, at))

    def take_records(self) -> tuple[list[DemoDetection], list[DemoIndicator]]:
        """The detections and indicator values generated since the last call (to store them)."""
        taken = self.detections, self.indicator_values
        self.detections, self.indicator_values = [], []
        return taken

    def _next_id(self) -> str:
        self._sequence += 1
        return f"{self.session_id}-{self._sequence}"

    # -- patterns -------------------------------------------------------------------------------

    def patterns(self, now: float) -> tuple[list[Message], int]:
        """The next pattern message(s) in the shape rotation, and how many detections they carry."""
        shape = PATTERN_SHAPES[self._pattern_turn % len(PATTERN_SHAPES)]
        self._pattern_turn += 1
        return shape(self, now)

    def _flat(self, now: float) -> tuple[list[Message], int]:
        d = self._detection(now)
        message = {
            "event_id": self._next_id(),
            "symbol": d.symbol,
            "pattern": d.pattern,
            "confidence": d.confidence,
            "tier": d.tier,
            "timeframe": d.timeframe,
            "detected_at": _iso(d.detected_at),
            "expires_at": _maybe(d.expires_at, _iso),
            "price": d.price,
            "levels": d.typed_levels(),
            "indicators": d.indicators,
            "source": "TickStockPL",
        }
        return [(self.channels.patterns, _dumps(message))], 1

    def _data(self, now: float) -> tuple[list[Message], int]:
        d = self._detection(now)
        inner = {
            "symbol": d.symbol,
            "pattern_type": d.pattern,
            "confidence": d.confidence,
            "source": d.tier,  # older producers put the tier in "source"
            "timeframe": d.timeframe,
            "detected_at": round(d.detected_at, 3),
            "expires_at": _maybe(d.expires_at, lambda at: round(at, 3)),
            "price": d.price,
            "levels": d.levels,
            "indicators": d.indicators,
        }
        message = {"type": "pattern_detected", "timestamp": now, "data": inner}
        return [(self.channels.patterns, _dumps(message))], 1

    def _data_data(self, now: float) -> tuple[list[Message], int]:
        d = self._detection(now)
        inner = {
            "symbol": d.symbol,
            "pattern_name": d.pattern,
            "confidence": round(d.confidence * 100, 1),
            "tier": d.tier,
            "timeframe": d.timeframe,
            "detection_timestamp": round(d.detected_at * 1000),
            "expiration_timestamp": _maybe(d.expires_at, lambda at: round(at * 1000)),
            "current_price": d.price,
            "levels": d.levels,
            "indicators": d.indicators,
        }
        message = {
            "event_type": "pattern_detected",
            "source": "TickStockPL",
            "data": {"type": "pattern", "data": inner},
        }
        return [(self.channels.patterns, _dumps(message))], 1

    def _streaming_pair(self, now: float) -> tuple[list[Message], int]:
        # The same streaming detection on both streaming channels, in two shapes: one event.
        d = self._detection(now, tier="intraday")
        detection = {
            "symbol": d.symbol,
            "pattern": d.pattern,
            "confidence": d.confidence,
            "timeframe": d.timeframe,
            "timestamp": _iso(d.detected_at, _EASTERN),
            "expiry": _maybe(d.expires_at, lambda at: _iso(at, _EASTERN)),
            "price": d.price,
            "levels": d.typed_levels(),
            "indicators": d.indicators,
            "parameters": {"lookback": self.rng.choice((5, 10, 20))},
        }
        streaming = {"type": "streaming_pattern", "detection": detection}
        return [
            (self.channels.patterns_streaming, _dumps(streaming)),
            (self.channels.patterns_detected, _dumps(detection)),
        ], 1

    def _payload(self, now: float) -> tuple[list[Message], int]:
        d = self._detection(now)
        inner = {
            "symbol": d.symbol,
            "pattern": d.pattern,
            "confidence": d.confidence,
            "tier": d.tier,
            "timeframe": d.timeframe,
            "detected_at": _iso(d.detected_at, None),
            "expires_at": _maybe(d.expires_at, lambda at: round(at, 3)),
            "price": d.price,
            "levels": d.typed_levels(),
            "indicators": d.indicators,
        }
        return [(self.channels.patterns, _dumps({"payload": inner}))], 1

    def _batch(self, now: float) -> tuple[list[Message], int]:
        tier = self.rng.choice(_TIERS)
        items: list[dict[str, Any]] = []
        for index in range(self.rng.randint(2, 4)):
            d = self._detection(now, tier=tier)
            stamp: Any = _iso(d.detected_at, _EASTERN) if index % 2 else f"{d.detected_at:.3f}"
            items.append(
                {
                    "symbol": d.symbol,
                    "pattern_name": d.pattern,
                    "confidence": d.confidence,
                    "timeframe": d.timeframe,
                    "detected_at": stamp,
                    "expires_at": _maybe(d.expires_at, _iso),
                    "price": d.price,
                    "levels": d.levels,
                    "indicators": d.indicators,
                }
            )
        message = {
            "type": "pattern_batch",
            "source": "TickStockPL",
            "tier": tier,
            "patterns": items,
        }
        return [(self.channels.patterns, _dumps(message))], len(items)

    def _pattern_data(self, now: float) -> tuple[list[Message], int]:
        # The producer's table row as it is stored: price and indicators inside pattern_data.
        d = self._detection(now)
        inner = {
            "symbol": d.symbol,
            "pattern_type": d.pattern,
            "confidence": d.confidence,
            "timeframe": d.timeframe,
            "detection_timestamp": _iso(d.detected_at),
            "expiration_date": _maybe(d.expires_at, _iso),
            "levels": d.levels,
            "pattern_data": stored_data(d),
            "metadata": {"scanner": "demo", "bars": self.rng.randint(3, 50)},
        }
        message = {
            "event_type": "pattern_detected",
            "pattern_data": inner,
            "tier": d.tier,
            "timestamp": _iso(now),
            "source": "TickStockPL",
        }
        return [(self.channels.patterns, _dumps(message))], 1

    def _detected_flat(self, now: float) -> tuple[list[Message], int]:
        d = self._detection(now, tier="intraday")
        message = {
            "symbol": d.symbol.lower(),
            "pattern": d.pattern,
            "confidence": str(d.confidence),
            "timeframe": d.timeframe,
            "time": f"{d.detected_at:.3f}",
            "expires_at": _maybe(d.expires_at, lambda at: f"{at:.3f}"),
            "price": d.price,
            "levels": d.levels,
            "indicators": d.indicators,
        }
        return [(self.channels.patterns_detected, _dumps(message))], 1

    # -- indicators, alerts, health, sessions ---------------------------------------------------

    def indicators(self, now: float) -> list[Message]:
        """The next indicator message in the shape rotation."""
        shape = INDICATOR_SHAPES[self._indicator_turn % len(INDICATOR_SHAPES)]
        self._indicator_turn += 1
        return shape(self, now)

    def _rsi(self, now: float) -> list[Message]:
        symbol = self.rng.choice(self.symbols)
        rsi = round(self.rng.uniform(15.0, 85.0), 2)
        message = {
            "symbol": symbol,
            "indicator": "RSI",
            "value": rsi,
            "timeframe": "daily",
            "timestamp": round(now, 3),
        }
        self._indicator(symbol, "RSI", {"value": rsi}, "daily", now)
        return [(self.channels.indicators, _dumps(message))]

    def _macd(self, now: float) -> list[Message]:
        symbol = self.rng.choice(self.symbols)
        macd = round(self.rng.gauss(0.0, 1.5), 4)
        signal = round(macd + self.rng.gauss(0.0, 0.3), 4)
        values = {"macd": macd, "signal": signal, "histogram": round(macd - signal, 4)}
        calculation = {
            "symbol": symbol,
            "indicator": "MACD",
            "values": values,
            "timeframe": "1min",
            "timestamp": _iso(now),
        }
        self._indicator(symbol, "MACD", values, "1min", now)
        message = {"type": "streaming_indicator", "calculation": calculation}
        return [(self.channels.indicators_streaming, _dumps(message))]

    def _sma(self, now: float) -> list[Message]:
        symbol = self.rng.choice(self.symbols)
        sma = round(self._price(symbol) * self.rng.uniform(0.97, 1.03), 2)
        inner = {
            "symbol": symbol,
            "indicator_type": "SMA20",
            "value": sma,
            "timeframe": "daily",
            "calculation_timestamp": int(now * 1000),
        }
        self._indicator(symbol, "SMA20", {"value": sma}, "daily", now)
        return [(self.channels.indicators, _dumps({"data": inner}))]

    def _indicator_batch(self, now: float) -> list[Message]:
        symbol = self.rng.choice(self.symbols)
        price = self._price(symbol)
        width = price * self.rng.uniform(0.01, 0.04)
        rsi = round(self.rng.uniform(15.0, 85.0), 2)
        bands = {
            "upper": round(price + width, 2),
            "middle": round(price, 2),
            "lower": round(price - width, 2),
        }
        for name, value in (("RSI", {"value": rsi}), ("SMA20", {"value": round(price, 2)})):
            self._indicator(symbol, name, value, "5min", now)
        self._indicator(symbol, "BBANDS", bands, "5min", now)
        message = {
            "symbol": symbol,
            "timestamp": round(now, 3),
            "timeframe": "5min",
            "indicators": [
                {"indicator": "RSI", "value": rsi},
                {"indicator_name": "SMA20", "value": round(price, 2)},
                {"indicator": "BBANDS", "values": bands},
            ],
        }
        return [(self.channels.indicators_streaming, _dumps(message))]

    def indicator_alert(self, now: float) -> Message:
        """An RSI / MACD extreme on a random symbol."""
        symbol = self.rng.choice(self.symbols)
        overbought = self.rng.random() < 0.5
        rsi = round(self.rng.uniform(70.5, 90.0) if overbought else self.rng.uniform(10.0, 29.5), 1)
        message = {
            "alert_type": "RSI_OVERBOUGHT" if overbought else "RSI_OVERSOLD",
            "symbol": symbol,
            "indicator": "RSI",
            "value": rsi,
            "severity": "warning",
            "message": f"{symbol} RSI {rsi} {'above 70' if overbought else 'below 30'}",
            "timestamp": round(now, 3),
            "data": {"threshold": 70 if overbought else 30, "timeframe": "1min"},
            "session_id": self.session_id,
        }
        return self.channels.indicator_alerts, _dumps(message)

    def critical_alert(self, now: float, lag: float) -> Message:
        """A system-wide alert (no symbol), in the producer's shape, about the demo's own state:
        it is ``lag`` seconds behind its schedule. Marked as the demo's in its text and data."""
        message = {
            "type": "data_feed_lag",
            "message": f"Demo producer {lag:.1f} s behind its schedule",
            "severity": "critical",
            "timestamp": _iso(now),
            "data": {"session_id": self.session_id, "demo": True, "lag_seconds": round(lag, 1)},
        }
        return self.channels.critical_alerts, _dumps(message)

    def health(self, now: float) -> Message:
        """A producer health report, alternating between the two health channels and shapes."""
        self._health_turn += 1
        # Figures of the demo itself, never made up: what it generated and what went wrong.
        figures: dict[str, Any] = {
            "status": "healthy" if self.problem is None else "degraded",
            "session_id": self.session_id,
            "demo": True,
            "active_symbols": len(self.symbols),
            "patterns_detected": self.generated,
        }
        if self.problem is not None:
            figures["message"] = self.problem
        if self._health_turn % 2:
            message: dict[str, Any] = {
                "type": "streaming_health",
                "timestamp": round(now, 3),
                "health": figures,
            }
            return self.channels.health, _dumps(message)
        return self.channels.health_status, _dumps({**figures, "timestamp": _iso(now)})

    def session(self, started: bool, now: float) -> Message:
        """The streaming session started / stopped notice."""
        if started:
            details: dict[str, Any] = {
                "session_id": self.session_id,
                "universe": "demo",
                "symbol_count": len(self.symbols),
                "started_at": _iso(now),
            }
            message = {"type": "streaming_session_started", "session": details}
            return self.channels.session_started, _dumps(message)
        details = {
            "session_id": self.session_id,
            "stopped_at": round(now, 3),
            "final_status": "completed",
        }
        message = {"type": "streaming_session_stopped", "session": details}
        return self.channels.session_stopped, _dumps(message)


PatternShape = Callable[[DemoFeed, float], tuple[list[Message], int]]
IndicatorShape = Callable[[DemoFeed, float], list[Message]]

PATTERN_SHAPES: Final[tuple[PatternShape, ...]] = (
    DemoFeed._flat,
    DemoFeed._data,
    DemoFeed._data_data,
    DemoFeed._streaming_pair,
    DemoFeed._payload,
    DemoFeed._batch,
    DemoFeed._pattern_data,
    DemoFeed._detected_flat,
)
INDICATOR_SHAPES: Final[tuple[IndicatorShape, ...]] = (
    DemoFeed._rsi,
    DemoFeed._macd,
    DemoFeed._sma,
    DemoFeed._indicator_batch,
)


def build_messages(
    rng: random.Random,
    symbols: Sequence[str],
    now: float,
    *,
    channels: DemoChannels | None = None,
) -> list[Message]:
    """One message of every kind and shape the demo producer sends, as (channel, body) pairs."""
    feed = DemoFeed(rng, symbols, channels)
    messages = [feed.session(True, now)]
    for _ in PATTERN_SHAPES:
        messages.extend(feed.patterns(now)[0])
    for _ in INDICATOR_SHAPES:
        messages.extend(feed.indicators(now))
    messages += [
        feed.indicator_alert(now),
        feed.critical_alert(now, 3.4),
        feed.health(now),
        feed.health(now),
        feed.session(False, now),
    ]
    return messages


@dataclass(slots=True)
class _Schedule:
    interval: float
    due: float
    make: Callable[[float], tuple[list[Message], int]]


async def _publish(redis: aioredis.Redis, messages: list[Message]) -> int:
    if len(messages) == 1:
        channel, body = messages[0]
        await redis.publish(channel, body)
        return 1
    # Behind schedule (high rates, or a slow Redis): one round trip for the whole backlog.
    async with redis.pipeline(transaction=False) as pipe:
        for channel, body in messages:
            pipe.publish(channel, body)
        await pipe.execute()
    return len(messages)


async def _pause(delay: float, stop: asyncio.Event | None) -> None:
    if stop is None:
        await asyncio.sleep(delay)
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), delay)


async def run_demo_producer(
    redis: aioredis.Redis,
    *,
    symbols: Sequence[str] = DEFAULT_SYMBOLS,
    rate: float,
    duration: float | None = None,
    stop: asyncio.Event | None = None,
    channels: DemoChannels | None = None,
    seed: int | None = None,
    store: DemoStore | None = None,
) -> int:
    """Publish demo traffic at about ``rate`` pattern detections per second; return messages sent.

    Runs until ``duration`` seconds have passed, ``stop`` is set or the task is cancelled. Alongside
    the patterns go indicator values (rate / 2), indicator alerts (one per 20 detections, at most
    10/s), health every 5 s and session started / stopped notices. System alerts are true: a
    critical alert when the demo falls more than 2 s behind its schedule, and a degraded health
    report while it cannot store what it detects. When Redis is unreachable it backs off (1 s
    doubling to 30 s) and resumes on schedule.

    With a ``store``, prices start from each symbol's last stored close, and every detection and
    indicator value is written to the producer tables before it is published, as the real
    producer does (what cannot be stored is not published).
    """
    if not rate > 0 or math.isinf(rate):
        raise ValueError(f"rate must be a positive number, got {rate!r}")
    prices = await store.last_closes(symbols) if store is not None else None
    feed = DemoFeed(random.Random(seed), symbols, channels, prices)
    loop = asyncio.get_running_loop()
    start = loop.time()
    deadline = None if duration is None else start + duration

    def one(build: Callable[[float], Message]) -> Callable[[float], tuple[list[Message], int]]:
        return lambda now: ([build(now)], 1)

    schedules = [
        _Schedule(1.0 / rate, start, feed.patterns),
        _Schedule(2.0 / rate, start + 0.5 / rate, lambda now: (feed.indicators(now), 1)),
        _Schedule(max(20.0 / rate, 0.1), start + 10.0 / rate, one(feed.indicator_alert)),
        _Schedule(_HEALTH_INTERVAL, start, one(feed.health)),
    ]
    logger.info(
        "demo producer started: %.3g detections/s over %d symbols (session %s)",
        rate,
        len(feed.symbols),
        feed.session_id,
    )
    published = 0
    backoff = 1.0
    lag_alerted = -math.inf
    backlog = [feed.session(True, time.time())]
    try:
        while not (stop is not None and stop.is_set()):
            now = loop.time()
            if deadline is not None and now >= deadline:
                break
            wall = time.time()
            lag = now - schedules[0].due
            if lag > _LAG_ALERT_SECONDS and now - lag_alerted >= _LAG_ALERT_INTERVAL:
                backlog.append(feed.critical_alert(wall, lag))
                lag_alerted = now
            for schedule in schedules:
                while schedule.due <= now and len(backlog) < _MAX_PIPELINE:
                    messages, weight = schedule.make(wall)
                    backlog.extend(messages)
                    schedule.due += schedule.interval * weight
            if backlog:
                records = feed.take_records()
                try:
                    if store is not None:
                        await store.write(*records)
                    if feed.problem is not None:
                        feed.problem = None
                        backlog.append(feed.health(time.time()))  # resolved: the banner goes
                    published += await _publish(redis, backlog)
                    backoff = 1.0
                except (
                    RedisConnectionError,
                    RedisTimeoutError,
                    OSError,
                    asyncpg.PostgresError,
                    asyncpg.InterfaceError,
                ) as exc:
                    # Pub/sub keeps nothing for later, so what could not be sent is dropped, and
                    # the schedule restarts from now rather than flooding Redis on its return.
                    logger.warning(
                        "demo producer: store or publish failed (%s), retry in %.0f s",
                        exc,
                        backoff,
                    )
                    if isinstance(exc, asyncpg.PostgresError | asyncpg.InterfaceError | OSError):
                        # Redis may still be there: say what is wrong while it lasts.
                        feed.problem = f"demo producer cannot store its detections ({exc})"
                        with contextlib.suppress(Exception):
                            await _publish(redis, [feed.health(time.time())])
                    await _pause(backoff, stop)
                    backoff = min(backoff * 2, _MAX_BACKOFF)
                    for schedule in schedules:
                        schedule.due = max(schedule.due, loop.time())
                backlog = []
                continue
            wake = min(schedule.due for schedule in schedules)
            if deadline is not None:
                wake = min(wake, deadline)
            await _pause(max(0.0, wake - now), stop)
    finally:
        # Best effort, also on cancellation: dashboards show the session as stopped.
        try:
            stopped = [feed.session(False, time.time())]
            published += await asyncio.wait_for(_publish(redis, stopped), 2.0)
        except Exception as exc:
            logger.warning("demo producer could not publish session_stopped: %s", exc)
        logger.info("demo producer stopped after %d message(s)", published)
    return published
