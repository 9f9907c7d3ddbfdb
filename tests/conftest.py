"""Shared fixtures: a fresh database per test session, namespaced Redis keys, apps and served apps.

Tests run against real PostgreSQL and Redis: ``TICKSTOCK_TEST_DATABASE_URL`` (default the local
server) and ``TICKSTOCK_TEST_REDIS_URL``. When neither is reachable the local stack is started.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
import redis.asyncio as aioredis
from hypercorn.asyncio import serve
from hypercorn.config import Config as HypercornConfig
from quart import Quart

from tickstock.app import create_app
from tickstock.realtime.server import get_realtime

pytest_plugins = ["tests.auth_fixtures"]

ROOT = Path(__file__).resolve().parent.parent
SESSION_ID = uuid.uuid4().hex[:8]


def _reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection(
            (parts.hostname or "127.0.0.1", parts.port or default_port), 1
        ):
            return True
    except OSError:
        return False


@dataclass
class Stores:
    admin_dsn: str
    redis_url: str
    stack: Any = None


@pytest.fixture(name="stores", scope="session")
def _stores() -> Iterator[Stores]:
    dsn = os.environ.get(
        "TICKSTOCK_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
    )
    redis_url = os.environ.get("TICKSTOCK_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    if _reachable(dsn, 5432) and _reachable(redis_url, 6379):
        yield Stores(dsn, redis_url)
        return
    from tickstock.dev.localstack import LocalStack

    stack = LocalStack(ROOT / ".tickstock-test")
    urls = stack.start()
    try:
        yield Stores(urls.database_url, urls.redis_url, stack)
    finally:
        stack.stop()


def _with_database(dsn: str, name: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path=f"/{name}"))


@pytest.fixture(name="database_url", scope="session")
async def _database_url(stores: Stores) -> AsyncIterator[str]:
    """A fresh database for this test session, migrated and seeded, dropped afterwards."""
    from tickstock.db.migrate import migrate
    from tickstock.dev.seed import seed

    name = f"tickstock_test_{SESSION_ID}"
    admin = await asyncpg.connect(stores.admin_dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = _with_database(stores.admin_dsn, name)
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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class ServedApp:
    """A real hypercorn server in this process, on a free loopback port."""

    app: Quart
    url: str
    port: int
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(self._task, 15)
            self._task = None


async def start_served_app(overrides: dict[str, Any], port: int | None = None) -> ServedApp:
    app = create_app(overrides)
    port = port or free_port()
    config = HypercornConfig()
    config.bind = [f"127.0.0.1:{port}"]
    config.graceful_timeout = 2
    config.accesslog = None
    served = ServedApp(app=app, url=f"http://127.0.0.1:{port}", port=port)
    asgi = get_realtime(app).asgi_app()
    served._task = asyncio.create_task(
        serve(asgi, config, shutdown_trigger=served._stop.wait)  # type: ignore[arg-type]
    )
    for _ in range(200):
        try:
            _reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            if served._task.done():
                served._task.result()
            await asyncio.sleep(0.025)
            continue
        writer.close()
        await writer.wait_closed()
        break
    # Serving hooks run before the socket is bound, so the app is ready here.
    return served


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
