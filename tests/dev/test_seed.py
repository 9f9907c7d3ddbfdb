"""Demo seed against a real PostgreSQL: coverage of every table, realism, idempotence."""

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
import orjson
import pytest

from tickstock.db.migrate import migrate
from tickstock.dev.seed import SEED_TABLES, demo_symbols, seed, table_counts

ADMIN_DSN = os.environ.get(
    "TICKSTOCK_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
SYMBOL_RE = re.compile(r"^[A-Z0-9][A-Z0-9.\-]{0,9}$")
PATTERN_TABLES = [t for t in SEED_TABLES if t.endswith("_patterns")]


@asynccontextmanager
async def scratch_database() -> AsyncIterator[asyncpg.Connection]:
    """A fresh migrated database and a connection to it; dropped afterwards."""
    name = f"ts_seed_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(ADMIN_DSN)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        conn = await asyncpg.connect(ADMIN_DSN, database=name)
        try:
            await migrate(conn)
            yield conn
        finally:
            await conn.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@dataclass
class Seeded:
    conn: asyncpg.Connection
    inserted: dict[str, int]
    seconds: float


@pytest.fixture(name="seeded", scope="module")
async def _seeded() -> AsyncIterator[Seeded]:
    """One database seeded with the defaults, shared by this module's read-only tests."""
    async with scratch_database() as conn:
        started = time.perf_counter()
        inserted = await seed(conn)
        yield Seeded(conn, inserted, time.perf_counter() - started)


async def test_seed_fills_every_table(seeded: Seeded) -> None:
    counts = await table_counts(seeded.conn)

    assert counts == seeded.inserted
    assert all(counts[table] > 0 for table in SEED_TABLES), counts
    assert counts["symbols"] == 500
    assert sum(counts[table] for table in PATTERN_TABLES) >= 3000


async def test_seeding_twice_changes_nothing(seeded: Seeded) -> None:
    before = await table_counts(seeded.conn)

    again = await seed(seeded.conn)

    assert again == dict.fromkeys(SEED_TABLES, 0)
    assert await table_counts(seeded.conn) == before


async def test_well_known_symbols_have_real_names_and_sectors(seeded: Seeded) -> None:
    rows = await seeded.conn.fetch(
        "SELECT symbol, name, exchange, sector, active FROM symbols WHERE symbol = ANY($1)",
        ["AAPL", "MSFT", "NVDA", "AMZN", "GOOGL", "BRK.B", "BF-B", "JPM"],
    )
    by_symbol = {row["symbol"]: row for row in rows}

    assert by_symbol["AAPL"]["name"] == "Apple Inc."
    assert by_symbol["AAPL"]["sector"] == "Information Technology"
    assert by_symbol["MSFT"]["name"] == "Microsoft Corporation"
    assert by_symbol["NVDA"]["name"] == "NVIDIA Corporation"
    assert by_symbol["AMZN"]["sector"] == "Consumer Discretionary"
    assert by_symbol["GOOGL"]["sector"] == "Communication Services"
    assert by_symbol["BRK.B"]["name"] == "Berkshire Hathaway Inc. Class B"
    assert by_symbol["BRK.B"]["sector"] == "Financials"
    assert by_symbol["BF-B"]["sector"] == "Consumer Staples"
    assert by_symbol["JPM"]["exchange"] == "NYSE"
    assert all(row["active"] for row in rows)


async def test_every_symbol_is_valid_and_described(seeded: Seeded) -> None:
    rows = await seeded.conn.fetch("SELECT symbol, name, exchange, type, sector FROM symbols")

    assert all(SYMBOL_RE.match(row["symbol"]) for row in rows)
    assert len({row["name"] for row in rows}) == len(rows)
    assert all(row["name"] and row["exchange"] for row in rows)
    stocks = [row for row in rows if row["type"] == "CS"]
    assert all(row["sector"] for row in stocks)
    assert len({row["sector"] for row in stocks}) == 11


async def test_busiest_symbols_have_several_pages_of_daily_patterns(seeded: Seeded) -> None:
    rows = await seeded.conn.fetch(
        "SELECT symbol, count(*) AS n FROM daily_patterns WHERE symbol = ANY($1) GROUP BY symbol",
        ["AAPL", "MSFT", "NVDA"],
    )

    assert {row["symbol"]: row["n"] >= 60 for row in rows} == dict.fromkeys(
        ["AAPL", "MSFT", "NVDA"], True
    )


async def test_intraday_tier_has_detections_in_the_last_24_hours(seeded: Seeded) -> None:
    since = datetime.now(UTC) - timedelta(hours=24)
    recent = await seeded.conn.fetchval(
        "SELECT count(*) FROM intraday_patterns WHERE detection_timestamp >= $1", since
    )
    recent_aapl = await seeded.conn.fetchval(
        "SELECT count(*) FROM intraday_patterns WHERE symbol = 'AAPL' AND detection_timestamp >= $1",
        since,
    )
    future = await seeded.conn.fetchval(
        "SELECT count(*) FROM intraday_patterns WHERE detection_timestamp > now()"
    )

    assert recent >= 500
    assert recent_aapl >= 1
    assert future == 0


async def test_patterns_use_enabled_definitions_with_confidence_above_threshold(
    seeded: Seeded,
) -> None:
    for table in PATTERN_TABLES:
        wrong = await seeded.conn.fetchval(
            f"SELECT count(*) FROM {table} p LEFT JOIN pattern_definitions d"
            " ON d.name = p.pattern_type"
            " WHERE d.id IS NULL OR NOT d.enabled OR p.confidence < d.confidence_threshold"
            " OR p.confidence > 1"
        )
        assert wrong == 0, table
    disabled = await seeded.conn.fetchval(
        "SELECT count(*) FROM pattern_definitions WHERE NOT enabled"
    )
    assert disabled >= 2


async def test_pattern_rows_carry_json_objects_and_levels(seeded: Seeded) -> None:
    row = await seeded.conn.fetchrow(
        "SELECT pattern_data, metadata, levels, confidence FROM daily_patterns"
        " WHERE symbol = 'AAPL' ORDER BY detection_timestamp DESC, id DESC LIMIT 1"
    )
    assert row is not None
    data = orjson.loads(row["pattern_data"])

    assert data["price"] > 0 and "direction" in data
    assert orjson.loads(row["metadata"])["source"] == "TickStockPL"
    support, resistance = row["levels"]
    assert support < data["price"] < resistance
    assert isinstance(row["confidence"], float)


async def test_linked_tiers_point_at_real_rows(seeded: Seeded) -> None:
    unlinked = await seeded.conn.fetchval(
        "SELECT count(*) FROM daily_intraday_patterns c LEFT JOIN daily_patterns d"
        " ON d.id = c.daily_pattern_id"
        " WHERE d.id IS NULL OR d.symbol <> c.symbol"
        " OR d.detection_timestamp <> c.daily_pattern_timestamp"
        " OR c.detection_timestamp < c.daily_pattern_timestamp"
    )
    outcomes = await seeded.conn.fetchrow(
        "SELECT count(outcome_1d) AS one_day, count(outcome_30d) AS thirty_days, count(*) AS n"
        " FROM pattern_detections"
    )

    assert unlinked == 0
    assert outcomes is not None
    assert outcomes["one_day"] > outcomes["n"] * 0.9
    assert 0 < outcomes["thirty_days"] < outcomes["n"]


async def test_every_active_symbol_has_each_indicator(seeded: Seeded) -> None:
    for table in ("daily_indicators", "intraday_indicators"):
        missing = await seeded.conn.fetchval(
            f"SELECT count(*) FROM symbols s CROSS JOIN unnest($1::text[]) AS k(kind)"
            f" WHERE s.active AND NOT EXISTS (SELECT 1 FROM {table} i"
            "   WHERE i.symbol = s.symbol AND i.indicator_type = k.kind)",
            ["RSI", "SMA20", "SMA50", "MACD"],
        )
        assert missing == 0, table
    macd = await seeded.conn.fetchval(
        "SELECT value_data FROM daily_indicators WHERE symbol = 'MSFT' AND indicator_type = 'MACD'"
        " ORDER BY calculation_timestamp DESC LIMIT 1"
    )
    rsi = await seeded.conn.fetchval(
        "SELECT (value_data->>'value')::float FROM intraday_indicators"
        " WHERE symbol = 'MSFT' AND indicator_type = 'RSI'"
        " ORDER BY calculation_timestamp DESC LIMIT 1"
    )
    assert set(orjson.loads(macd)) == {"macd", "signal", "histogram"}
    assert 0 < rsi < 100


async def test_a_year_of_sane_daily_bars_per_symbol(seeded: Seeded) -> None:
    spread = await seeded.conn.fetchrow(
        "SELECT count(*) AS symbols, min(n) AS fewest, max(n) AS most FROM"
        " (SELECT symbol, count(*) AS n FROM ohlcv_daily GROUP BY symbol) AS per_symbol"
    )
    insane = await seeded.conn.fetchval(
        "SELECT count(*) FROM ohlcv_daily WHERE low <= 0 OR volume <= 0"
        " OR high < greatest(open, close) OR low > least(open, close)"
        " OR extract(isodow FROM date) > 5"
    )
    last_close = await seeded.conn.fetchval(
        "SELECT close FROM ohlcv_daily WHERE symbol = 'AAPL' ORDER BY date DESC LIMIT 1"
    )

    assert spread is not None
    assert spread["symbols"] == 500
    assert 250 <= spread["fewest"] <= spread["most"] <= 262
    assert insane == 0
    assert last_close == 228.0


async def test_history_queries_walk_the_pagination_indexes(seeded: Seeded) -> None:
    # The REST layer's keyset pages: newest first, (time, id) below the cursor.
    per_symbol = await seeded.conn.fetchval(
        "EXPLAIN (FORMAT JSON) SELECT id, detection_timestamp FROM daily_patterns"
        " WHERE symbol = 'AAPL' AND (detection_timestamp, id) < ($1, $2)"
        " ORDER BY detection_timestamp DESC, id DESC LIMIT 50",
        datetime.now(UTC),
        10**9,
    )
    everything = await seeded.conn.fetchval(
        "EXPLAIN (FORMAT JSON) SELECT id, detection_timestamp FROM intraday_patterns"
        " WHERE (detection_timestamp, id) < ($1, $2)"
        " ORDER BY detection_timestamp DESC, id DESC LIMIT 50",
        datetime.now(UTC),
        10**9,
    )

    assert "daily_patterns_symbol_time_idx" in per_symbol
    assert "intraday_patterns_time_idx" in everything
    assert '"Sort"' not in everything


def test_demo_universe_is_deterministic() -> None:
    first, again, other = demo_symbols(500, 42), demo_symbols(500, 42), demo_symbols(500, 7)

    assert first == again
    assert [s.symbol for s in first] != [s.symbol for s in other]
    assert len({s.symbol for s in first}) == 500
    assert [s.symbol for s in demo_symbols(3)] == ["AAPL", "MSFT", "NVDA"]


async def test_same_seed_and_time_give_the_same_data() -> None:
    now = datetime(2026, 3, 9, 15, 45, tzinfo=UTC)  # a Monday morning in New York
    digests = []
    for _ in range(2):
        async with scratch_database() as conn:
            await seed(conn, symbols=40, days=5, now=now)
            digests.append(
                await conn.fetchval(
                    "SELECT md5(string_agg(concat_ws('|', symbol, pattern_type, confidence,"
                    " detection_timestamp, levels::text, pattern_data::text), ',' ORDER BY id))"
                    " FROM daily_patterns"
                )
            )
    assert digests[0] == digests[1]


async def test_small_seed_keeps_its_guarantees_and_spares_filled_tables() -> None:
    # A weekend "now" and a short window: the daily tier still reaches back far enough.
    now = datetime(2026, 3, 8, 12, 0, tzinfo=UTC)  # a Sunday
    async with scratch_database() as conn:
        await conn.execute(
            "INSERT INTO symbols (symbol, name, sector) VALUES ('ACME', 'Acme Corp.', 'Industrials')"
        )
        inserted = await seed(conn, symbols=20, days=2, now=now)

        assert inserted["symbols"] == 0
        assert await conn.fetchval("SELECT array_agg(symbol) FROM symbols") == ["ACME"]
        counts = await table_counts(conn)
        assert all(counts[table] > 0 for table in SEED_TABLES), counts
        aapl = await conn.fetchval("SELECT count(*) FROM daily_patterns WHERE symbol = 'AAPL'")
        assert aapl >= 60
        latest = await conn.fetchval("SELECT max(detection_timestamp) FROM intraday_patterns")
        assert now - timedelta(hours=24) <= latest <= now


async def test_seed_through_a_connection_that_decodes_json() -> None:
    # The app's pool installs a jsonb codec taking Python objects; seeding through such a
    # connection must store objects, not JSON strings.
    async with scratch_database() as conn:
        await conn.set_type_codec(
            "jsonb",
            encoder=lambda value: orjson.dumps(value).decode(),
            decoder=orjson.loads,
            schema="pg_catalog",
        )
        await seed(conn, symbols=10, days=2)
        kinds = await conn.fetchval(
            "SELECT array_agg(DISTINCT jsonb_typeof(pattern_data)) FROM daily_patterns"
        )
        data = await conn.fetchval("SELECT pattern_data FROM daily_patterns LIMIT 1")

    assert kinds == ["object"]
    assert isinstance(data, dict)


async def test_seed_rejects_a_naive_time() -> None:
    conn = await asyncpg.connect(ADMIN_DSN)
    try:
        with pytest.raises(ValueError, match="timezone-aware"):
            await seed(conn, now=datetime(2026, 3, 9, 12, 0))
    finally:
        await conn.close()
