"""Shared fixtures: a fresh database per test session, namespaced Redis keys, apps and served apps.

Tests run against real PostgreSQL and Redis: ``TICKSTOCK_TEST_DATABASE_URL`` (default the local
server) and ``TICKSTOCK_TEST_REDIS_URL``. When neither is reachable the local stack is started.
Harnesses and helpers live in ``tests/support``; its ``auth`` and ``processes`` modules are
fixture plugins.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis
from quart import Quart

from tests.support.env import ROOT
from tests.support.served import ServedApp, start_served_app
from tests.support.stores import Stores, reachable, with_database
from tickstock.app import create_app

pytest_plugins = ["tests.support.auth", "tests.support.processes"]

SESSION_ID = uuid.uuid4().hex[:8]


@pytest.fixture(name="stores", scope="session")
def _stores() -> Iterator[Stores]:
    dsn = os.environ.get(
        "TICKSTOCK_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
    )
    redis_url = os.environ.get("TICKSTOCK_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    if reachable(dsn, 5432) and reachable(redis_url, 6379):
        yield Stores(dsn, redis_url)
        return
    from tickstock.dev.localstack import LocalStack

    stack = LocalStack(ROOT / ".tickstock-test")
    urls = stack.start()
    try:
        yield Stores(urls.database_url, urls.redis_url, stack)
    finally:
        stack.stop()


@pytest.fixture(name="database_url", scope="session")
async def _database_url(stores: Stores) -> AsyncIterator[str]:
    """A fresh database for this test session, migrated and seeded, dropped afterwards."""
    from tickstock.db.migrate import migrate
    from tickstock.dev.seed import seed

    name = f"tickstock_test_{SESSION_ID}"
    admin = await asyncpg.connect(stores.admin_dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = with_database(stores.admin_dsn, name)
    conn = await asyncpg.connect(url)
    try:
        await migrate(conn)
        await seed(conn)
    finally:
        await conn.close()
    try:
        yield url
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture(name="conn")
async def _conn(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection to the session's database, for reference queries and direct writes."""
    conn = await asyncpg.connect(database_url)
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture(name="redis_url", scope="session")
def _redis_url(stores: Stores) -> str:
    return stores.redis_url


@pytest.fixture(name="key_prefix", scope="session")
async def _key_prefix(redis_url: str) -> AsyncIterator[str]:
    """A Redis key namespace for this session; its keys are deleted afterwards."""
    prefix = f"tstest:{SESSION_ID}"
    yield prefix
    client = aioredis.Redis.from_url(redis_url)
    try:
        async for key in client.scan_iter(match=f"{prefix}*", count=1000):
            await client.delete(key)
    finally:
        await client.aclose()


@pytest.fixture(name="settings_overrides")
def _settings_overrides(database_url: str, redis_url: str, key_prefix: str) -> dict[str, Any]:
    return {
        "env": "test",
        "database_url": database_url,
        "redis_url": redis_url,
        "key_prefix": key_prefix,
        "secret_key": "test-secret-key-" + "x" * 32,
        "demo_producer": False,
    }


@pytest.fixture(name="app")
async def _app(settings_overrides: dict[str, Any]) -> AsyncIterator[Quart]:
    """A fresh app with its serving hooks run (pool and Redis open)."""
    app = create_app(settings_overrides)
    async with app.test_app():
        yield app


@pytest.fixture(name="client")
def _client(app: Quart) -> Any:
    return app.test_client()


@pytest.fixture(name="serve_app")
async def _serve_app(settings_overrides: dict[str, Any]) -> AsyncIterator[Any]:
    """Factory: ``served = await serve_app(**overrides)``; every server is stopped afterwards."""
    servers: list[ServedApp] = []

    async def factory(**extra: Any) -> ServedApp:
        port = extra.pop("port", None)
        served = await start_served_app({**settings_overrides, **extra}, port)
        servers.append(served)
        return served

    yield factory
    for served in servers:
        await served.stop()


@pytest.fixture(name="served")
async def _served(serve_app: Any) -> ServedApp:
    """One real served app."""
    served: ServedApp = await serve_app()
    return served
