"""Every query behind a REST endpoint is served by indexes: no Seq Scan on a large table.

Plans are taken with default planner settings after ANALYZE, for the representative parameters
below, twice: as the custom plan PostgreSQL makes for those values, and as the generic plan a
prepared statement (asyncpg caches them) may switch to after a few executions.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import orjson
import pytest

from tickstock.queries.admin import build_error_logs_query
from tickstock.queries.indicators import build_latest_query
from tickstock.queries.patterns import (
    TABLE_TIERS,
    TIER_WINDOWS,
    PatternFilter,
    PatternKey,
    build_combo_query,
    build_patterns_query,
)
from tickstock.queries.symbols import (
    SYMBOL_DETAIL_SQL,
    build_ohlcv_query,
    build_symbols_query,
)

# Producer history tables: these grow without bound, so they must never be scanned whole.
LARGE_TABLES = frozenset(
    {
        *(f"{tier}_patterns" for tier in TABLE_TIERS),
        "pattern_detections",
        "daily_indicators",
        "intraday_indicators",
        "ohlcv_daily",
    }
)

NOW = dt.datetime.now(dt.UTC)
CURSOR = PatternKey(NOW - dt.timedelta(days=3), "daily", 1000)
THREE = ["AAPL", "MSFT", "NVDA"]


def _cases() -> Iterator[tuple[str, str, list[object]]]:
    def patterns(
        name: str, tiers: tuple[Any, ...], flt: PatternFilter, after: PatternKey | None = None
    ) -> tuple[str, str, list[object]]:
        sql, args = build_patterns_query(tiers, flt, after=after, limit=51)
        return name, sql, args

    one = PatternFilter(symbols=["AAPL"])
    yield patterns("symbol, all tiers", TABLE_TIERS, one)
    yield patterns("symbol, all tiers, page 2", TABLE_TIERS, one, CURSOR)
    yield patterns("symbol, daily, page 2", ("daily",), one, CURSOR)
    yield patterns("all tiers", TABLE_TIERS, PatternFilter())
    yield patterns("all tiers, page 2", TABLE_TIERS, PatternFilter(), CURSOR)
    yield patterns("three symbols, daily", ("daily",), PatternFilter(symbols=THREE))
    yield patterns(
        "pattern + confidence, all tiers",
        TABLE_TIERS,
        PatternFilter(pattern="Breakout", confidence_min=0.8),
    )
    yield patterns(
        "since/until, all tiers",
        TABLE_TIERS,
        PatternFilter(since=NOW - dt.timedelta(days=5), until=NOW - dt.timedelta(days=2)),
    )
    for tier in TABLE_TIERS:
        window = PatternFilter(since=NOW - TIER_WINDOWS[tier])
        yield patterns(f"tier view {tier}", (tier,), window)
        yield patterns(f"tier view {tier}, page 2", (tier,), window, CURSOR)
    for name, flt, after in (
        ("combo window", PatternFilter(since=NOW - TIER_WINDOWS["combo"]), None),
        ("combo window, page 2", PatternFilter(since=NOW - TIER_WINDOWS["combo"]), CURSOR),
        ("combo symbol", PatternFilter(symbols=["AAPL"]), None),
    ):
        sql, args = build_combo_query(flt, after=after, limit=51)
        yield name, sql, args
    yield "indicators one symbol", build_latest_query(("daily", "intraday")), [["AAPL"]]
    yield "indicators three symbols", build_latest_query(("daily", "intraday")), [THREE]
    yield "indicators intraday", build_latest_query(("intraday",)), [["AAPL"]]
    yield "symbol detail", SYMBOL_DETAIL_SQL, ["AAPL"]
    sql, args = build_ohlcv_query("AAPL", start=None, end=None, limit=260)
    yield "ohlcv default", sql, args
    sql, args = build_ohlcv_query("AAPL", start=dt.date(2025, 1, 1), end=NOW.date(), limit=2000)
    yield "ohlcv range", sql, args
    sql, args = build_symbols_query(q="app", sector=None, active=None, after=None, limit=51)
    yield "symbol search", sql, args
    sql, args = build_error_logs_query(
        source=None, reason=None, since=None, after=(NOW, 10), limit=51
    )
    yield "error log page 2", sql, args


CASES = list(_cases())


@pytest.fixture(name="explain_conn", scope="module")
async def _explain_conn(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("ANALYZE")
        yield conn
    finally:
        await conn.close()


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


def _seq_scans(plan_json: Any) -> list[str]:
    document = orjson.loads(plan_json) if isinstance(plan_json, str) else plan_json
    root = document[0]["Plan"]
    return [
        node["Relation Name"]
        for node in _nodes(root)
        if node["Node Type"] == "Seq Scan" and node["Relation Name"] in LARGE_TABLES
    ]


def _literal(value: object) -> str:
    """A SQL literal for an EXECUTE argument (the test's own fixed values only)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, dt.date):  # datetime too
        return f"'{value.isoformat()}'"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, list):
        return "ARRAY[" + ", ".join(_literal(item) for item in value) + "]::text[]"
    raise TypeError(type(value))


async def _plan(conn: asyncpg.Connection, sql: str, args: list[object], mode: str) -> Any:
    # EXPLAIN takes no bind parameters, so the query is PREPAREd (types inferred) and EXPLAINed
    # through EXECUTE: force_custom_plan plans for these values, force_generic_plan shows the
    # plan a cached prepared statement may use for any values.
    execute = "EXECUTE explain_case"
    if args:
        execute += "(" + ", ".join(_literal(arg) for arg in args) + ")"
    async with conn.transaction():
        await conn.execute(f"SET LOCAL plan_cache_mode = {mode}")
        await conn.execute(f"PREPARE explain_case AS {sql}")
        try:
            return await conn.fetchval(f"EXPLAIN (FORMAT JSON) {execute}")
        finally:
            await conn.execute("DEALLOCATE explain_case")


@pytest.mark.parametrize(("name", "sql", "args"), CASES, ids=[case[0] for case in CASES])
async def test_no_seq_scan_on_large_tables(
    explain_conn: asyncpg.Connection, name: str, sql: str, args: list[object]
) -> None:
    custom = _seq_scans(await _plan(explain_conn, sql, args, "force_custom_plan"))
    assert custom == [], f"{name}: Seq Scan on {custom} (custom plan)"
    generic = _seq_scans(await _plan(explain_conn, sql, args, "force_generic_plan"))
    assert generic == [], f"{name}: Seq Scan on {generic} (generic plan)"


async def test_cases_cover_every_large_table() -> None:
    covered = {table for table in LARGE_TABLES if any(table in sql for _, sql, _ in CASES)}
    assert covered == LARGE_TABLES


async def test_detector_sees_a_seq_scan(explain_conn: asyncpg.Connection) -> None:
    # The harness itself: an unindexed filter over a large table is caught.
    plan = await _plan(
        explain_conn,
        "SELECT id FROM daily_patterns WHERE metadata ? $1",
        ["source"],
        "force_custom_plan",
    )
    assert _seq_scans(plan) == ["daily_patterns"]
