"""Realistic, deterministic demo data for the producer tables.

``seed()`` fills symbols, pattern definitions, a year of daily bars, indicators computed from those
bars, and pattern history in every tier, all derived from one RNG seed and a reference time
(``now``), so a demo or a test run sees the same market every time (up to the clock).

Idempotence: the whole seed is one transaction under an advisory lock, and a table that already
holds rows is left alone (its count in the result is 0). So a second ``seed()`` inserts nothing,
two nodes seeding at once do not double the data, a crash leaves nothing half-written, and a
table the producer has already filled is never mixed with demo rows. Rows that link to other
tables (pattern ids of ``pattern_definitions``, ``daily_patterns`` rows behind
``daily_intraday_patterns``) are read back from the database, so the links hold whichever tables
were filled now.
"""

from __future__ import annotations

import bisect
import itertools
import logging
import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from decimal import Decimal

import asyncpg
import orjson

from tickstock.dev.seed_data import (
    COMPANY_SUFFIXES,
    KNOWN_SYMBOLS,
    NAME_ROOTS,
    PATTERN_DEFINITIONS,
    SECTORS,
)

__all__ = [
    "GUARANTEED_DAILY_SYMBOLS",
    "SEED_TABLES",
    "DemoSymbol",
    "demo_symbols",
    "seed",
    "table_counts",
]

log = logging.getLogger(__name__)

# In insertion order: later tables link to earlier ones.
SEED_TABLES: tuple[str, ...] = (
    "symbols",
    "pattern_definitions",
    "ohlcv_daily",
    "daily_indicators",
    "intraday_indicators",
    "daily_patterns",
    "weekly_patterns",
    "monthly_patterns",
    "intraday_patterns",
    "hourly_patterns",
    "daily_intraday_patterns",
    "pattern_detections",
)

# REST pagination tests page through these symbols' daily history.
GUARANTEED_DAILY_SYMBOLS: tuple[str, ...] = ("AAPL", "MSFT", "NVDA")
_GUARANTEED_DAILY_MIN = 60

SEED_LOCK_KEY = 0x7473736565646462  # "tsseeddb" in ASCII
_MAX_SYMBOLS = 5000

# Bars are stamped at the New York close (16:00 EST); intraday detections use the session hours.
_CLOSE_UTC = clock(21, 0)
_OPEN_UTC = clock(14, 30)
_METADATA = {"source": "TickStockPL", "generator": "tickstock-demo-seed"}

_PATTERN_COLUMNS = (
    "symbol",
    "pattern_type",
    "confidence",
    "pattern_data",
    "detection_timestamp",
    "{expiration}",
    "levels",
    "metadata",
    "timeframe",
)
_INDICATOR_COLUMNS = (
    "symbol",
    "indicator_type",
    "value_data",
    "calculation_timestamp",
    "timeframe",
    "metadata",
)
_COLUMNS: dict[str, tuple[str, ...]] = {
    "symbols": (
        "symbol",
        "name",
        "exchange",
        "type",
        "sector",
        "industry",
        "market_cap",
        "active",
    ),
    "pattern_definitions": (
        "name",
        "short_description",
        "category",
        "enabled",
        "confidence_threshold",
        "risk_level",
        "applicable_timeframes",
        "display_order",
    ),
    "ohlcv_daily": ("symbol", "date", "open", "high", "low", "close", "volume"),
    "daily_indicators": _INDICATOR_COLUMNS,
    "intraday_indicators": _INDICATOR_COLUMNS,
    **{
        f"{tier}_patterns": tuple(
            column.format(expiration="expiration_date") for column in _PATTERN_COLUMNS
        )
        for tier in ("daily", "weekly", "monthly")
    },
    **{
        f"{tier}_patterns": tuple(
            column.format(expiration="expiration_timestamp") for column in _PATTERN_COLUMNS
        )
        for tier in ("intraday", "hourly")
    },
    "daily_intraday_patterns": (
        *(column.format(expiration="expiration_timestamp") for column in _PATTERN_COLUMNS),
        "daily_pattern_id",
        "daily_pattern_timestamp",
        "intraday_signal",
    ),
    "pattern_detections": (
        "pattern_id",
        "symbol",
        "detected_at",
        "confidence",
        "price_at_detection",
        "volume_at_detection",
        "pattern_data",
        "outcome_1d",
        "outcome_5d",
        "outcome_30d",
    ),
}

_JSON_COLUMNS = frozenset({"pattern_data", "metadata", "value_data", "intraday_signal"})

Record = tuple[object, ...]


async def table_counts(conn: asyncpg.Connection) -> dict[str, int]:
    """Row count of every table the seed fills, in one query."""
    columns = ", ".join(f"(SELECT count(*) FROM {table}) AS {table}" for table in SEED_TABLES)
    row = await conn.fetchrow(f"SELECT {columns}")
    assert row is not None
    return {table: int(row[table]) for table in SEED_TABLES}


async def seed(
    conn: asyncpg.Connection,
    *,
    symbols: int = 500,
    days: int = 30,
    rng_seed: int = 42,
    now: datetime | None = None,
) -> dict[str, int]:
    """Fill the empty producer tables with demo data; returns the rows inserted per table.

    ``symbols`` companies (the well-known large caps first), pattern and indicator history over
    the last ``days`` days before ``now`` (default: the current time), a year of daily bars.
    """
    if not 1 <= symbols <= _MAX_SYMBOLS:
        raise ValueError(f"symbols must be between 1 and {_MAX_SYMBOLS}")
    if days < 1:
        raise ValueError("days must be at least 1")
    if now is None:
        now = datetime.now(UTC)
    elif now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    now = now.astimezone(UTC)

    started = time.perf_counter()
    inserted = dict.fromkeys(SEED_TABLES, 0)
    stage_json = await _needs_json_staging(conn)
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", SEED_LOCK_KEY)
        empty = await _empty_tables(conn)
        if not empty:
            log.info("demo data already present; nothing seeded")
            return inserted
        plan = _Plan(demo_symbols(symbols, rng_seed), days, rng_seed, now)
        for table in empty:
            records = await plan.records(conn, table)
            await _copy(conn, table, records, stage_json=stage_json)
            inserted[table] = len(records)
        # Fresh statistics, so the planner picks the pagination indexes straight away.
        for table in empty:
            await conn.execute(f"ANALYZE {table}")
    log.info(
        "seeded %d demo rows into %d tables in %.1f s",
        sum(inserted.values()),
        len(empty),
        time.perf_counter() - started,
    )
    return inserted


async def _empty_tables(conn: asyncpg.Connection) -> list[str]:
    checks = ", ".join(f"EXISTS (SELECT 1 FROM {table}) AS {table}" for table in SEED_TABLES)
    row = await conn.fetchrow(f"SELECT {checks}")
    assert row is not None
    return [table for table in SEED_TABLES if not row[table]]


async def _needs_json_staging(conn: asyncpg.Connection) -> bool:
    """Whether ``conn`` has a custom jsonb codec (an app pool's, say) instead of asyncpg's own."""
    return not isinstance(await conn.fetchval("SELECT '{}'::jsonb"), str)


async def _copy(
    conn: asyncpg.Connection, table: str, records: list[Record], *, stage_json: bool
) -> None:
    """COPY ``records`` (JSON columns as JSON text) into ``table``."""
    columns = _COLUMNS[table]
    json_columns = [column for column in columns if column in _JSON_COLUMNS]
    if not (stage_json and json_columns):
        await conn.copy_records_to_table(table, records=records, columns=columns)
        return
    # COPY is binary and a custom codec is usually text-only: copy the JSON text into a staging
    # table whose JSON columns are text, and cast on the way into the real table.
    staging = f"seed_staging_{table}"
    column_list = ", ".join(columns)
    await conn.execute(
        f"CREATE TEMP TABLE {staging} ON COMMIT DROP AS"
        f" SELECT {column_list} FROM {table} WITH NO DATA"
    )
    retype = ", ".join(f"ALTER COLUMN {column} TYPE text" for column in json_columns)
    await conn.execute(f"ALTER TABLE {staging} {retype}")
    await conn.copy_records_to_table(staging, records=records, columns=columns)
    select = ", ".join(f"{c}::jsonb" if c in json_columns else c for c in columns)
    await conn.execute(f"INSERT INTO {table} ({column_list}) SELECT {select} FROM {staging}")


def _json(value: object) -> str:
    return orjson.dumps(value).decode()


# --- the symbol universe --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DemoSymbol:
    """One company of the demo universe, with what its price history is generated from."""

    symbol: str
    name: str
    exchange: str
    type: str
    sector: str | None
    industry: str | None
    market_cap: int | None
    active: bool
    price: float
    volatility: float
    avg_volume: int
    activity: float


def demo_symbols(count: int, rng_seed: int = 42) -> list[DemoSymbol]:
    """The first ``count`` symbols of the demo universe: the known large caps, then generated."""
    rng = random.Random(f"{rng_seed}:symbols")
    universe: list[DemoSymbol] = []
    for rank, known in enumerate(KNOWN_SYMBOLS[:count]):
        if known.market_cap is None:  # ETFs trade heavily and move less
            volatility = rng.uniform(0.007, 0.012)
            avg_volume = int(rng.uniform(30e6, 80e6))
        else:
            volatility = rng.uniform(0.011, 0.026)
            avg_volume = int(known.market_cap / known.price * rng.uniform(0.003, 0.01))
        universe.append(
            DemoSymbol(
                *known[:7],
                active=True,
                price=known.price,
                volatility=volatility,
                avg_volume=avg_volume,
                activity=8.0 if rank < 10 else 4.0,
            )
        )
    taken = {known.symbol for known in KNOWN_SYMBOLS}
    base_names: set[str] = set()
    sector_weights = [profile.weight for profile in SECTORS]
    suffixes = [suffix for suffix, _ in COMPANY_SUFFIXES]
    suffix_weights = [weight for _, weight in COMPANY_SUFFIXES]
    while len(universe) < count:
        profile = rng.choices(SECTORS, sector_weights)[0]
        noun, industry = rng.choice(profile.nouns)
        root = rng.choice(NAME_ROOTS)
        base_name = f"{root} {noun}"
        if base_name in base_names:
            continue
        base_names.add(base_name)
        ticker = _ticker(root, noun, taken, rng)
        taken.add(ticker)
        market_cap = int(math.exp(rng.uniform(math.log(3e8), math.log(2.5e11))))
        price = round(math.exp(rng.uniform(math.log(4.0), math.log(400.0))), 2)
        tech = profile.sector in ("Information Technology", "Health Care", "Communication Services")
        if market_cap < 1e9 and rng.random() < 0.3:
            exchange = "NYSE American"
        else:
            exchange = "NASDAQ" if (rng.random() < 0.7) == tech else "NYSE"
        small = market_cap < 1e10
        universe.append(
            DemoSymbol(
                symbol=ticker,
                name=f"{base_name} {rng.choices(suffixes, suffix_weights)[0]}",
                exchange=exchange,
                type="CS",
                sector=profile.sector,
                industry=industry,
                market_cap=market_cap,
                active=rng.random() >= 0.02,
                price=price,
                volatility=rng.uniform(0.016, 0.032) if small else rng.uniform(0.012, 0.024),
                avg_volume=max(50_000, int(market_cap / price * rng.uniform(0.002, 0.01))),
                activity=1.0,
            )
        )
    return universe


def _ticker(root: str, noun: str, taken: set[str], rng: random.Random) -> str:
    """A plausible, unused ticker from the company's name ("Granite Bancorp" -> "GRAB", "GBC")."""
    r = "".join(ch for ch in root.upper() if ch.isalpha())
    n = "".join(ch for ch in noun.upper() if ch.isalpha())
    candidates = [
        r[:3] + n[0],
        r[:4],
        r[0] + n[:3],
        r[:2] + n[:2],
        r[:3],
        r[0] + n[:2],
        r[:2] + n[0],
    ]
    rng.shuffle(candidates)
    for candidate in candidates:
        if candidate not in taken:
            return candidate
    letters = r + n
    while True:
        candidate = r[0] + "".join(rng.choice(letters) for _ in range(3))
        if candidate not in taken:
            return candidate


# --- prices and indicators --------------------------------------------------------------------


@dataclass(slots=True)
class _Bars:
    open: list[float]
    high: list[float]
    low: list[float]
    close: list[float]
    volume: list[int]
    rsi: list[float]
    sma20: list[float]
    sma50: list[float]
    macd: list[float]
    signal: list[float]
    rel_volume: list[float]
    rs: list[float]


def _close_time(day: date) -> datetime:
    return datetime.combine(day, _CLOSE_UTC, tzinfo=UTC)


def _trading_days(now: datetime) -> list[date]:
    """Weekdays of the last year whose close is not after ``now`` (holidays are ignored)."""
    last = now.date()
    while last.weekday() >= 5 or _close_time(last) > now:
        last -= timedelta(days=1)
    first = last - timedelta(days=365)
    days = (first + timedelta(days=offset) for offset in range(1, 366))
    return [day for day in days if day.weekday() < 5]


def _bars(symbol: DemoSymbol, sessions: int, rng_seed: int) -> _Bars:
    """A random walk ending at the symbol's reference price, and indicators computed from it."""
    rng = random.Random(f"{rng_seed}:bars:{symbol.symbol}")
    sigma = symbol.volatility
    drift = rng.uniform(-0.0004, 0.0012)
    returns = [max(-0.4, rng.gauss(drift, sigma)) for _ in range(sessions)]
    closes = [0.0] * sessions
    closes[-1] = symbol.price
    for i in range(sessions - 1, 0, -1):
        closes[i - 1] = closes[i] / (1.0 + returns[i])
    bars = _Bars([], [], [], [], [], [], [], [], [], [], [], [])
    previous = closes[0] * (1.0 - returns[0])
    for i, raw_close in enumerate(closes):
        close = round(raw_close, 2)
        open_ = round(previous * (1.0 + rng.gauss(0.0, sigma * 0.35)), 2)
        high = round(max(open_, close) * (1.0 + abs(rng.gauss(0.0, sigma * 0.5))), 2)
        low = round(min(open_, close) * (1.0 - abs(rng.gauss(0.0, sigma * 0.5))), 2)
        bars.open.append(open_)
        bars.high.append(max(high, open_, close))
        bars.low.append(max(0.01, min(low, open_, close)))
        bars.close.append(close)
        surge = 1.0 + 6.0 * abs(returns[i] - drift)
        bars.volume.append(int(symbol.avg_volume * rng.lognormvariate(0.0, 0.3) * surge))
        previous = raw_close
    bars.sma20 = _sma(bars.close, 20)
    bars.sma50 = _sma(bars.close, 50)
    bars.rsi = _rsi(bars.close, 14)
    fast, slow = _ema(bars.close, 12), _ema(bars.close, 26)
    bars.macd = [f - s for f, s in zip(fast, slow, strict=True)]
    bars.signal = _ema(bars.macd, 9)
    bars.rel_volume = _rel_volume(bars.volume, 20)
    return bars


def _rel_volume(volumes: Sequence[int], period: int) -> list[float]:
    """The day's volume over the mean of the ``period`` sessions before it (1.0 at the start)."""
    out = [1.0] * len(volumes)
    for i in range(1, len(volumes)):
        prior = volumes[max(0, i - period) : i]
        out[i] = volumes[i] / (sum(prior) / len(prior))
    return out


_RS_SESSIONS = 63  # about three months of sessions


def _relative_strength(bars: dict[str, _Bars], sessions: int) -> None:
    """RS of every symbol and session: the percentile rank (1-99) of its 63-session return among
    all symbols that day, as screeners rate relative strength; the rows are ``bars[*].rs``."""
    for b in bars.values():
        b.rs = [50.0] * sessions
    names = list(bars)
    for i in range(sessions):
        start = max(0, i - _RS_SESSIONS)
        if start == i:
            continue
        returns = sorted((bars[n].close[i] / bars[n].close[start], n) for n in names)
        last = max(1, len(returns) - 1)
        for rank, (_, name) in enumerate(returns):
            bars[name].rs[i] = 1.0 + 98.0 * rank / last


def _sma(values: Sequence[float], period: int) -> list[float]:
    # The first period-1 values average what there is (the window is never shown).
    out: list[float] = []
    total = 0.0
    for i, value in enumerate(values):
        total += value
        if i >= period:
            total -= values[i - period]
        out.append(total / min(i + 1, period))
    return out


def _ema(values: Sequence[float], period: int) -> list[float]:
    alpha = 2.0 / (period + 1)
    out = [values[0]]
    for value in values[1:]:
        out.append(out[-1] + alpha * (value - out[-1]))
    return out


def _rsi(closes: Sequence[float], period: int) -> list[float]:
    """Wilder's RSI; 50 until there are ``period`` changes."""
    out = [50.0] * len(closes)
    gain = loss = 0.0
    for i in range(1, len(closes)):
        change = closes[i] - closes[i - 1]
        up, down = max(change, 0.0), max(-change, 0.0)
        if i <= period:
            gain += up / period
            loss += down / period
            if i < period:
                continue
        else:
            gain = (gain * (period - 1) + up) / period
            loss = (loss * (period - 1) + down) / period
        out[i] = 100.0 if loss == 0 else 100.0 - 100.0 / (1.0 + gain / loss)
    return out


# --- pattern definitions as stored --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Definition:
    id: int
    name: str
    threshold: float
    timeframes: tuple[str, ...]
    direction: str


_DIRECTIONS = {definition.name: definition.direction for definition in PATTERN_DEFINITIONS}


async def _load_definitions(conn: asyncpg.Connection) -> list[_Definition]:
    rows = await conn.fetch(
        "SELECT id, name, confidence_threshold, applicable_timeframes FROM pattern_definitions"
        " WHERE enabled ORDER BY display_order, id"
    )
    if not rows:
        raise RuntimeError("pattern_definitions has no enabled definition to seed patterns with")
    return [
        _Definition(
            id=row["id"],
            name=row["name"],
            threshold=min(0.95, float(row["confidence_threshold"] or 0.5)),
            timeframes=tuple(row["applicable_timeframes"] or ()),
            direction=_DIRECTIONS.get(row["name"], "neutral"),
        )
        for row in rows
    ]


# --- the plan: every table's records -------------------------------------------------------------


class _Plan:
    """Builds each table's records on demand; bars and definitions are computed once."""

    def __init__(
        self,
        universe: list[DemoSymbol],
        days: int,
        rng_seed: int,
        now: datetime,
    ) -> None:
        self.universe = universe
        self.active = [symbol for symbol in universe if symbol.active]
        self.days = days
        self.rng_seed = rng_seed
        self.now = now
        # Counts scale with the universe (calibrated for the default 500 symbols).
        self.scale = max(len(universe) / 500, 0.05)
        self._market: tuple[list[date], dict[str, _Bars]] | None = None
        self._definitions: list[_Definition] | None = None
        self._cum_weights = list(itertools.accumulate(s.activity for s in self.active))

    def rng(self, table: str) -> random.Random:
        return random.Random(f"{self.rng_seed}:{table}")

    @property
    def sessions(self) -> list[date]:
        return self.market[0]

    @property
    def bars(self) -> dict[str, _Bars]:
        return self.market[1]

    @property
    def market(self) -> tuple[list[date], dict[str, _Bars]]:
        if self._market is None:
            sessions = _trading_days(self.now)
            bars = {s.symbol: _bars(s, len(sessions), self.rng_seed) for s in self.universe}
            _relative_strength(bars, len(sessions))
            self._market = (sessions, bars)
        return self._market

    def window(self, days: int) -> list[int]:
        """Indexes of the sessions that closed in the last ``days`` days (at least one)."""
        since = self.now - timedelta(days=days)
        indexes = [i for i, day in enumerate(self.sessions) if _close_time(day) >= since]
        return indexes or [len(self.sessions) - 1]

    def session_at(self, moment: datetime) -> int:
        """Index of the last session on or before ``moment``'s date."""
        return max(0, bisect.bisect_right(self.sessions, moment.date()) - 1)

    def pick_symbols(self, rng: random.Random, k: int) -> list[DemoSymbol]:
        return rng.choices(self.active, cum_weights=self._cum_weights, k=k)

    def count(self, base: int) -> int:
        return max(1, round(base * self.scale))

    async def records(self, conn: asyncpg.Connection, table: str) -> list[Record]:
        if table == "symbols":
            return self.symbols()
        if table == "pattern_definitions":
            return self.pattern_definitions()
        if table == "ohlcv_daily":
            return self.ohlcv()
        if table == "daily_indicators":
            return self.daily_indicators()
        if table == "intraday_indicators":
            return self.intraday_indicators()
        if self._definitions is None:
            self._definitions = await _load_definitions(conn)
        definitions = self._definitions
        if table == "daily_intraday_patterns":
            return await self.daily_intraday(conn, definitions)
        if table == "pattern_detections":
            return self.detections(definitions)
        tier = table.removesuffix("_patterns")
        return self.tier_patterns(tier, definitions)

    # reference tables

    def symbols(self) -> list[Record]:
        return [
            (s.symbol, s.name, s.exchange, s.type, s.sector, s.industry, s.market_cap, s.active)
            for s in self.universe
        ]

    def pattern_definitions(self) -> list[Record]:
        return [
            (
                d.name,
                d.short_description,
                d.category,
                d.enabled,
                d.confidence_threshold,
                d.risk_level,
                list(d.applicable_timeframes),
                (order + 1) * 10,
            )
            for order, d in enumerate(PATTERN_DEFINITIONS)
        ]

    def ohlcv(self) -> list[Record]:
        records: list[Record] = []
        for symbol in self.universe:
            b = self.bars[symbol.symbol]
            records.extend(
                zip(
                    [symbol.symbol] * len(self.sessions),
                    self.sessions,
                    b.open,
                    b.high,
                    b.low,
                    b.close,
                    b.volume,
                    strict=True,
                )
            )
        return records

    # indicators

    def _indicator_values(self, b: _Bars, i: int) -> list[tuple[str, dict[str, float], object]]:
        return [
            ("RSI", {"value": round(b.rsi[i], 2)}, {"period": 14}),
            ("SMA20", {"value": round(b.sma20[i], 2)}, {"period": 20}),
            ("SMA50", {"value": round(b.sma50[i], 2)}, {"period": 50}),
            ("RS", {"value": round(b.rs[i], 1)}, {"sessions": _RS_SESSIONS, "scale": "1-99"}),
            ("RelVolume", {"value": round(b.rel_volume[i], 2)}, {"period": 20}),
            (
                "MACD",
                {
                    "macd": round(b.macd[i], 4),
                    "signal": round(b.signal[i], 4),
                    "histogram": round(b.macd[i] - b.signal[i], 4),
                },
                {"fast": 12, "slow": 26, "signal": 9},
            ),
        ]

    def daily_indicators(self) -> list[Record]:
        records: list[Record] = []
        for i in self.window(self.days):
            at = _close_time(self.sessions[i])
            for symbol in self.active:
                values = self._indicator_values(self.bars[symbol.symbol], i)
                records.extend(
                    (symbol.symbol, kind, _json(value), at, "daily", _json(meta))
                    for kind, value, meta in values
                )
        return records

    def intraday_indicators(self) -> list[Record]:
        """Every 15 minutes over the last two hours, drifting from the last daily values."""
        rng = self.rng("intraday_indicators")
        latest = self.now.replace(second=0, microsecond=0)
        latest -= timedelta(minutes=latest.minute % 15)
        last = len(self.sessions) - 1
        records: list[Record] = []
        for step in range(7, -1, -1):
            at = latest - timedelta(minutes=15 * step)
            for symbol in self.active:
                b = self.bars[symbol.symbol]
                wiggle = symbol.volatility * 0.2
                rsi = min(99.0, max(1.0, b.rsi[last] + rng.gauss(0.0, 3.0)))
                macd = b.macd[last] + rng.gauss(0.0, abs(b.macd[last]) * 0.1 + 0.01)
                signal = b.signal[last]
                sma20 = b.sma20[last] * (1.0 + rng.gauss(0.0, wiggle))
                sma50 = b.sma50[last] * (1.0 + rng.gauss(0.0, wiggle))
                values: list[tuple[str, dict[str, float], object]] = [
                    ("RSI", {"value": round(rsi, 2)}, {"period": 14}),
                    ("SMA20", {"value": round(sma20, 2)}, {"period": 20}),
                    ("SMA50", {"value": round(sma50, 2)}, {"period": 50}),
                    (
                        "MACD",
                        {
                            "macd": round(macd, 4),
                            "signal": round(signal, 4),
                            "histogram": round(macd - signal, 4),
                        },
                        {"fast": 12, "slow": 26, "signal": 9},
                    ),
                ]
                records.extend(
                    (symbol.symbol, kind, _json(value), at, "15min", _json(meta))
                    for kind, value, meta in values
                )
        return records

    # patterns

    def _pattern(
        self,
        rng: random.Random,
        symbol: DemoSymbol,
        definition: _Definition,
        at: datetime,
        expires: datetime,
        timeframe: str,
        *,
        intraday: bool,
    ) -> Record:
        i = self.session_at(at)
        b = self.bars[symbol.symbol]
        price = b.close[i]
        volume = b.volume[i]
        if intraday:
            price = round(price * (1.0 + rng.gauss(0.0, symbol.volatility * 0.3)), 2)
            volume = int(volume / 78 * rng.lognormvariate(0.0, 0.5))  # one 5-minute bar
        support = price * (1.0 - rng.uniform(0.01, 0.06))
        resistance = price * (1.0 + rng.uniform(0.01, 0.06))
        data = {
            "price": price,
            "volume": volume,
            "direction": definition.direction,
            "indicators": _detection_indicators(b, i),
        }
        return (
            symbol.symbol,
            definition.name,
            _confidence(rng, definition.threshold),
            _json(data),
            at,
            expires,
            [Decimal(f"{support:.2f}"), Decimal(f"{resistance:.2f}")],
            _json(_METADATA),
            timeframe,
        )

    def tier_patterns(self, tier: str, definitions: list[_Definition]) -> list[Record]:
        rng = self.rng(f"{tier}_patterns")
        choices = [d for d in definitions if tier in d.timeframes] or definitions
        moments = self._tier_moments(tier, rng)
        seen: set[tuple[str, str, datetime]] = set()
        records: list[Record] = []

        def add(symbol: DemoSymbol, at: datetime, *, unique: bool = True) -> bool:
            definition = rng.choice(choices)
            key = (symbol.symbol, definition.name, at)
            if unique and key in seen:
                return False
            seen.add(key)
            timeframe, expires = _tier_shape(tier, at, rng)
            record = self._pattern(
                rng, symbol, definition, at, expires, timeframe, intraday=tier == "intraday"
            )
            records.append(record)
            return True

        for at, k in moments:
            for symbol in self.pick_symbols(rng, k):
                add(symbol, at)
        by_name = {symbol.symbol: symbol for symbol in self.active}
        if tier == "daily":
            # Enough history for REST pagination tests to walk several pages.
            instants = [at for at, _ in moments]
            for name in GUARANTEED_DAILY_SYMBOLS:
                if name not in by_name:
                    continue
                target = _GUARANTEED_DAILY_MIN + rng.randint(5, 15)
                unique = len(instants) * len(choices) >= 2 * target
                have = sum(1 for record in records if record[0] == name)
                while have < target:
                    have += add(by_name[name], rng.choice(instants), unique=unique)
        if tier == "intraday":
            # The busiest names always show up in the "last 24 hours" view.
            minute = self.now.replace(second=0, microsecond=0)
            for name in GUARANTEED_DAILY_SYMBOLS:
                if name in by_name:
                    for _ in range(5):
                        add(by_name[name], minute - timedelta(minutes=rng.randrange(1440)))
        records.sort(key=lambda record: (record[4], record[0]))
        return records

    def _tier_moments(self, tier: str, rng: random.Random) -> list[tuple[datetime, int]]:
        """(detection time, how many detections) for a tier."""
        if tier == "daily":
            return [
                (_close_time(self.sessions[i]), self.count(rng.randint(80, 140)))
                for i in self.window(self.days)
            ]
        if tier == "weekly":
            fridays = [
                i for i in self.window(max(self.days, 56)) if self.sessions[i].weekday() == 4
            ]
            return [
                (_close_time(self.sessions[i]), self.count(rng.randint(40, 70))) for i in fridays
            ]
        if tier == "monthly":
            month_ends = [
                i
                for i in range(len(self.sessions) - 1)
                if self.sessions[i].month != self.sessions[i + 1].month
            ][-6:]
            return [
                (_close_time(self.sessions[i]), self.count(rng.randint(25, 45))) for i in month_ends
            ]
        if tier == "intraday":
            # Two days of minute detections, most of them in the last 24 hours.
            minute = self.now.replace(second=0, microsecond=0)
            moments: dict[datetime, int] = {}
            for _ in range(self.count(1500)):
                recent = rng.random() < 0.65
                offset = rng.randrange(1440) if recent else rng.randrange(1440, 2880)
                at = minute - timedelta(minutes=offset)
                moments[at] = moments.get(at, 0) + 1
            return sorted(moments.items())
        if tier == "hourly":
            hour = self.now.replace(minute=0, second=0, microsecond=0)
            counts: dict[datetime, int] = {}
            for _ in range(self.count(800)):
                at = hour - timedelta(hours=rng.randrange(120))
                counts[at] = counts.get(at, 0) + 1
            return sorted(counts.items())
        raise ValueError(f"unknown tier {tier!r}")

    async def daily_intraday(
        self, conn: asyncpg.Connection, definitions: list[_Definition]
    ) -> list[Record]:
        """Recent daily patterns confirmed by an intraday signal within the last two days."""
        rng = self.rng("daily_intraday_patterns")
        query = (
            "SELECT id, symbol, pattern_type, confidence, detection_timestamp FROM daily_patterns"
            " WHERE detection_timestamp <= $1 ORDER BY detection_timestamp DESC, id DESC LIMIT $2"
        )
        # About the last four sessions' worth of daily detections.
        daily = await conn.fetch(query, self.now, self.count(450))
        signals = [d for d in definitions if "intraday" in d.timeframes] or definitions
        by_name = {d.name: d for d in definitions}
        bars_of = {symbol.symbol: symbol for symbol in self.universe}
        earliest = self.now - timedelta(hours=48)
        records: list[Record] = []
        for row in rng.sample(list(daily), min(len(daily), self.count(300))):
            symbol = bars_of.get(row["symbol"])
            definition = by_name.get(row["pattern_type"])
            if symbol is None or definition is None:
                continue
            start = max(row["detection_timestamp"] + timedelta(minutes=15), earliest)
            if start >= self.now:
                continue
            at = (start + (self.now - start) * rng.random()).replace(second=0, microsecond=0)
            at = max(at, start.replace(second=0, microsecond=0))
            signal = rng.choice(signals)
            signal_confidence = _confidence(rng, signal.threshold)
            base = self._pattern(
                rng, symbol, definition, at, at + timedelta(hours=4), "5min", intraday=True
            )
            # Confirmation raises the daily pattern's confidence.
            daily_confidence = float(row["confidence"])
            confidence = round(
                min(0.99, daily_confidence + (1.0 - daily_confidence) * 0.3 * signal_confidence), 3
            )
            intraday_signal = {
                "pattern": signal.name,
                "timeframe": "5min",
                "confidence": signal_confidence,
                "detected_at": at.isoformat().replace("+00:00", "Z"),
            }
            records.append(
                (
                    *base[:2],
                    confidence,
                    *base[3:],
                    row["id"],
                    row["detection_timestamp"],
                    _json(intraday_signal),
                )
            )
        records.sort(key=lambda record: (record[4], record[0]))
        return records

    def detections(self, definitions: list[_Definition]) -> list[Record]:
        """The combo tier: detections over three months, with outcomes where they are known."""
        rng = self.rng("pattern_detections")
        window = self.window(max(self.days, 90))
        records: list[Record] = []
        for symbol in self.pick_symbols(rng, self.count(2000)):
            i = rng.choice(window)
            day = self.sessions[i]
            b = self.bars[symbol.symbol]
            definition = rng.choice(definitions)
            if rng.random() < 0.5:
                at = _close_time(day)
                price = b.close[i]
            else:
                opened = datetime.combine(day, _OPEN_UTC, tzinfo=UTC)
                at = opened + timedelta(minutes=rng.randrange(390))
                price = round(b.close[i] * (1.0 + rng.gauss(0.0, symbol.volatility * 0.3)), 2)
            outcomes = [self._outcome(b, i, price, sessions) for sessions in (1, 5, 30)]
            data = {
                "direction": definition.direction,
                "timeframe": "daily",
                "indicators": _detection_indicators(b, i),
            }
            records.append(
                (
                    definition.id,
                    symbol.symbol,
                    at,
                    _confidence(rng, definition.threshold),
                    price,
                    b.volume[i],
                    _json(data),
                    *outcomes,
                )
            )
        records.sort(key=lambda record: (record[2], record[1]))
        return records

    def _outcome(self, b: _Bars, i: int, price: float, sessions: int) -> float | None:
        """Percent change from ``price`` to the close ``sessions`` trading days after the
        detection's session ``i``, once that bar exists (as GET /api/analytics/patterns reads it).
        """
        later = i + sessions
        if later >= len(self.sessions):
            return None
        return round((b.close[later] / price - 1.0) * 100.0, 2)


def _detection_indicators(b: _Bars, i: int) -> dict[str, float]:
    """The indicator values a detection carries (the screener reads these first)."""
    return {
        "rsi": round(b.rsi[i], 1),
        "rs": round(b.rs[i], 1),
        "rel_volume": round(b.rel_volume[i], 2),
    }


def _tier_shape(tier: str, at: datetime, rng: random.Random) -> tuple[str, datetime]:
    """(timeframe, expiry) of a detection in ``tier``."""
    if tier == "daily":
        return "daily", at + timedelta(days=5)
    if tier == "weekly":
        return "weekly", at + timedelta(weeks=4)
    if tier == "monthly":
        return "monthly", at + timedelta(days=90)
    if tier == "hourly":
        return "hourly", at + timedelta(days=1)
    return rng.choice(("1min", "1min", "5min")), at + timedelta(minutes=rng.randint(30, 240))


def _confidence(rng: random.Random, threshold: float) -> float:
    """Above the definition's threshold, thinning out towards 0.99."""
    return round(threshold + (0.99 - threshold) * rng.betavariate(1.6, 2.2), 3)
