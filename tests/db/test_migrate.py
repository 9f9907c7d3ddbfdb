"""Migrations against a real PostgreSQL: fresh, repeated, concurrent and failing runs."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from tests.support.env import tickstock_env
from tickstock.db.migrate import (
    MIGRATION_SETS,
    Migration,
    MigrationError,
    available_migrations,
    migrate,
    run_migrations,
)

ADMIN_DSN = os.environ.get(
    "TICKSTOCK_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)

PRODUCER_TABLES = {
    "symbols",
    "pattern_definitions",
    "daily_patterns",
    "weekly_patterns",
    "monthly_patterns",
    "intraday_patterns",
    "hourly_patterns",
    "daily_intraday_patterns",
    "pattern_detections",
    "daily_indicators",
    "intraday_indicators",
    "ohlcv_daily",
}
TICKSTOCK_TABLES = {
    "users",
    "user_sessions",
    "user_settings",
    "login_failures",
    "ws_subscriptions",
    "error_logs",
}
PATTERN_TABLES = sorted(t for t in PRODUCER_TABLES if t.endswith("_patterns"))


@pytest.fixture(name="database_url")
async def _database_url() -> AsyncIterator[str]:
    """A fresh, empty scratch database, dropped afterwards."""
    name = f"ts_migrate_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(ADMIN_DSN)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield urlunsplit(urlsplit(ADMIN_DSN)._replace(path=f"/{name}"))
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def all_keys() -> list[str]:
    return [m.key for set_name in MIGRATION_SETS for m in available_migrations(set_name)]


async def table_names(conn: asyncpg.Connection) -> set[str]:
    rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    return {row["tablename"] for row in rows}


async def index_names(conn: asyncpg.Connection) -> set[str]:
    rows = await conn.fetch("SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")
    return {row["indexname"] for row in rows}


def test_packaged_migrations_are_ordered_and_named() -> None:
    for set_name in MIGRATION_SETS:
        migrations = available_migrations(set_name)
        assert migrations, set_name
        versions = [m.version for m in migrations]
        assert versions == sorted(set(versions))
        assert all(m.key == f"{set_name}/{m.version}_{m.name}" for m in migrations)
        assert all(m.sql.strip() for m in migrations)
    with pytest.raises(ValueError, match="unknown migration set"):
        available_migrations("nonsense")


async def test_fresh_database_gets_every_table_and_index(conn: asyncpg.Connection) -> None:
    applied = await migrate(conn)

    assert applied == all_keys()
    recorded = await conn.fetch(
        "SELECT set_name, version, name FROM schema_migrations ORDER BY set_name, version"
    )
    assert [f"{r['set_name']}/{r['version']}_{r['name']}" for r in recorded] == applied
    assert PRODUCER_TABLES | TICKSTOCK_TABLES | {"schema_migrations"} <= await table_names(conn)

    indexes = await index_names(conn)
    for table in PATTERN_TABLES:
        for suffix in ("symbol_time_idx", "time_idx", "type_time_idx"):
            assert f"{table}_{suffix}" in indexes
    assert {
        "pattern_detections_symbol_time_idx",
        "pattern_detections_time_idx",
        "daily_indicators_symbol_type_time_idx",
        "intraday_indicators_symbol_type_time_idx",
        "ohlcv_daily_pkey",
        "symbols_sector_idx",
        "symbols_symbol_prefix_idx",
        "users_username_lower_idx",
        "user_sessions_live_user_idx",
        "ws_subscriptions_node_idx",
        "ws_subscriptions_user_idx",
        "error_logs_created_idx",
    } <= indexes
    trigram = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm')"
    )
    assert ("symbols_name_trgm_idx" in indexes) == trigram


async def test_pagination_index_orders_newest_first(conn: asyncpg.Connection) -> None:
    await migrate(conn)
    definition = await conn.fetchval(
        "SELECT indexdef FROM pg_indexes WHERE indexname = 'daily_patterns_symbol_time_idx'"
    )
    assert "(symbol, detection_timestamp DESC, id DESC)" in definition


async def test_second_run_applies_nothing(conn: asyncpg.Connection) -> None:
    await migrate(conn)
    before = await conn.fetch("SELECT set_name, version, applied_at FROM schema_migrations")

    assert await migrate(conn) == []
    assert await conn.fetch("SELECT set_name, version, applied_at FROM schema_migrations") == before


async def test_tickstock_set_alone_leaves_producer_tables_out(conn: asyncpg.Connection) -> None:
    # Production: the producer owns its tables; tickstock migrates only its own.
    applied = await migrate(conn, ("tickstock",))

    assert all(key.startswith("tickstock/") for key in applied)
    tables = await table_names(conn)
    assert tables >= TICKSTOCK_TABLES
    assert not PRODUCER_TABLES & tables
    assert await migrate(conn, ("producer",)) == [m.key for m in available_migrations("producer")]


async def test_two_nodes_starting_together_apply_each_migration_once(database_url: str) -> None:
    first, second = await asyncpg.connect(database_url), await asyncpg.connect(database_url)
    try:
        applied_first, applied_second = await asyncio.gather(migrate(first), migrate(second))
    finally:
        await first.close()
        await second.close()

    assert sorted(applied_first + applied_second) == sorted(all_keys())
    assert not set(applied_first) & set(applied_second)


async def test_failing_migration_is_rolled_back_and_stops_the_run(
    conn: asyncpg.Connection,
) -> None:
    good = Migration("scratch", "0001", "good", "CREATE TABLE scratch_good (id int);")
    bad = Migration(
        "scratch",
        "0002",
        "bad",
        "CREATE TABLE scratch_half (id int); INSERT INTO scratch_missing VALUES (1);",
    )
    later = Migration("scratch", "0003", "later", "CREATE TABLE scratch_later (id int);")

    with pytest.raises(MigrationError, match="scratch/0002_bad") as failure:
        await run_migrations(conn, [good, bad, later])

    assert isinstance(failure.value.__cause__, asyncpg.UndefinedTableError)
    tables = await table_names(conn)
    assert "scratch_good" in tables
    assert not {"scratch_half", "scratch_later"} & tables
    versions = await conn.fetch("SELECT version FROM schema_migrations WHERE set_name = 'scratch'")
    assert [row["version"] for row in versions] == ["0001"]
    # The lock was released and the connection is usable: a fixed file resumes the run.
    fixed = Migration("scratch", "0002", "bad", "CREATE TABLE scratch_half (id int);")
    assert await run_migrations(conn, [good, fixed, later]) == [
        "scratch/0002_bad",
        "scratch/0003_later",
    ]
    held = await conn.fetchval(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
        " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    )
    assert held == 0


async def test_migrate_refuses_to_run_inside_a_transaction(conn: asyncpg.Connection) -> None:
    async with conn.transaction():
        with pytest.raises(RuntimeError, match="outside a transaction"):
            await migrate(conn)


async def test_usernames_are_unique_whatever_their_case(conn: asyncpg.Connection) -> None:
    await migrate(conn, ("tickstock",))
    insert = "INSERT INTO users (username, password_hash) VALUES ($1, 'x') RETURNING id, role"
    user = await conn.fetchrow(insert, "Alice")
    assert user is not None and user["role"] == "user"

    with pytest.raises(asyncpg.UniqueViolationError):
        await conn.execute(insert, "alice")
    with pytest.raises(asyncpg.CheckViolationError):
        await conn.execute(
            "INSERT INTO users (username, password_hash, role) VALUES ('bob', 'x', 'root')"
        )


async def test_deleting_a_user_removes_sessions_and_settings(conn: asyncpg.Connection) -> None:
    await migrate(conn, ("tickstock",))
    user_id = await conn.fetchval(
        "INSERT INTO users (username, password_hash) VALUES ('carol', 'x') RETURNING id"
    )
    await conn.execute(
        "INSERT INTO user_sessions (id, user_id, kind) VALUES ('s1', $1, 'cookie')", user_id
    )
    await conn.execute(
        "INSERT INTO user_settings (user_id, watchlist) VALUES ($1, '{AAPL,BRK.B}')", user_id
    )
    watchlist = await conn.fetchval(
        "SELECT watchlist FROM user_settings WHERE user_id = $1", user_id
    )
    assert watchlist == ["AAPL", "BRK.B"]

    await conn.execute("DELETE FROM users WHERE id = $1", user_id)

    assert await conn.fetchval("SELECT count(*) FROM user_sessions") == 0
    assert await conn.fetchval("SELECT count(*) FROM user_settings") == 0


async def test_seeding_without_producer_tables_says_how_to_create_them(database_url: str) -> None:
    """Production migrates tickstock's tables only; `db seed` then explains, with no traceback."""
    env = tickstock_env(env="production", database_url=database_url, secret_key="s" * 40)

    async def tickstock(*args: str) -> tuple[int, str]:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tickstock", *args, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        output, _ = await process.communicate()
        assert process.returncode is not None
        return process.returncode, output.decode()

    code, output = await tickstock("db", "migrate")
    assert code == 0, output
    assert "--set producer" in output
    code, output = await tickstock("db", "seed")
    assert code == 1
    assert "Traceback" not in output
    assert "no producer tables" in output and "tickstock db migrate --set producer" in output
    code, output = await tickstock("db", "migrate", "--set", "producer")
    assert code == 0, output
    code, output = await tickstock("db", "seed")
    assert code == 0, output
