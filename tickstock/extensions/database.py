"""The asyncpg pools: a primary pool and an optional read pool (a replica)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any, cast

import asyncpg
import orjson
from quart import Quart, current_app

from tickstock.config import Settings, get_settings
from tickstock.errors import DATABASE_DOWN, ServiceUnavailable
from tickstock.health import register_health_check
from tickstock.metrics import DB_POOL_WAIT

log = logging.getLogger(__name__)

EXTENSION_KEY = "tickstock.db"

Connection = asyncpg.Connection


async def _init_connection(conn: asyncpg.Connection) -> None:
    # JSON columns decode to Python objects once, here, for every query.
    for type_name in ("json", "jsonb"):
        await conn.set_type_codec(
            type_name,
            encoder=lambda value: orjson.dumps(value).decode(),
            decoder=orjson.loads,
            schema="pg_catalog",
        )


async def _keep_session(conn: asyncpg.Connection) -> None:
    # asyncpg still rolls back an open transaction on release; tickstock keeps no session state
    # (no SET, LISTEN, advisory locks or cursors), so the default RESET ALL round trip is saved.
    return None


async def create_pool(
    dsn: str, settings: Settings, *, size: int | None = None, readonly: bool = False
) -> asyncpg.Pool:
    """Create a pool that starts even when the database is down (it connects lazily).

    A ``readonly`` pool's sessions default to read-only transactions, so a single query runs in
    its own read-only transaction without the BEGIN/COMMIT round trips.
    """
    pool = await asyncpg.create_pool(
        dsn,
        min_size=0,
        max_size=size or settings.db_pool_max,
        timeout=settings.db_connect_timeout,
        command_timeout=settings.db_command_timeout,
        max_inactive_connection_lifetime=300,
        init=_init_connection,
        reset=_keep_session,
        server_settings={"default_transaction_read_only": "on"} if readonly else None,
    )
    assert pool is not None
    return pool


class Database:
    """Owns the primary and read pools; created on serving start, closed on shutdown."""

    def __init__(self, app: Quart | None = None) -> None:
        self.pool: asyncpg.Pool | None = None
        self.read_pool: asyncpg.Pool | None = None
        self.settings: Settings | None = None
        # asyncpg hands a released connection to whichever acquirer runs first, so under load
        # a waiting request can be overtaken again and again. A FIFO gate in front of each pool
        # (asyncio.Semaphore is fair) serves waiters in arrival order: a bounded tail latency.
        self._gates: dict[int, asyncio.Semaphore] = {}
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Quart) -> None:
        app.extensions[EXTENSION_KEY] = self
        self.settings = get_settings(app)
        app.before_serving(self.open)
        app.after_serving(self.close)
        register_health_check(app, "database", self.check, critical=True)
        if self.settings.database_read_url:
            # A replica that is down degrades the service (reads fail); it is not unhealthy.
            register_health_check(app, "database_replica", self.check_replica)

    async def open(self) -> None:
        settings = self._settings
        if not settings.database_url:
            raise RuntimeError("TICKSTOCK_DATABASE_URL is not set")
        self.pool = await create_pool(settings.database_url, settings)
        # Reads of the producer's tables: the replica when configured, else the primary.
        self.read_pool = await create_pool(
            settings.database_read_url or settings.database_url, settings, readonly=True
        )
        await self._warm_up(settings.db_pool_min)

    async def _warm_up(self, count: int) -> None:
        # Best effort: a database that is down at start is reported by /health, not fatal.
        if count <= 0:
            return
        try:
            async with asyncio.timeout(self._settings.db_connect_timeout * 2):
                for pool in (self.pool, self.read_pool):
                    if pool is None:
                        continue
                    conns = [await pool.acquire() for _ in range(count)]
                    for conn in conns:
                        await pool.release(conn)
        except DATABASE_DOWN as exc:
            log.warning("database not reachable at start (%r); will retry on demand", exc)

    async def close(self) -> None:
        timeout = self._settings.shutdown_timeout / 2
        for pool in (self.read_pool, self.pool):
            if pool is None:
                continue
            try:
                await asyncio.wait_for(pool.close(), timeout)
            except TimeoutError:
                log.warning("database pool did not close within %.1fs; terminating", timeout)
                pool.terminate()
        self.pool = self.read_pool = None
        self._gates.clear()

    @property
    def _settings(self) -> Settings:
        assert self.settings is not None, "Database.init_app was not called"
        return self.settings

    def _require(self, pool: asyncpg.Pool | None) -> asyncpg.Pool:
        if pool is None:
            raise ServiceUnavailable("database", "not started")
        return pool

    @contextlib.asynccontextmanager
    async def _acquire(self, pool: asyncpg.Pool | None) -> AsyncIterator[asyncpg.Connection]:
        pool = self._require(pool)
        gate = self._gates.get(id(pool))
        if gate is None:
            gate = self._gates[id(pool)] = asyncio.Semaphore(pool.get_max_size())
        started = time.perf_counter()
        limit = self._settings.db_connect_timeout
        if gate.locked():
            try:
                async with asyncio.timeout(limit):
                    await gate.acquire()
            except TimeoutError as exc:
                raise ServiceUnavailable("database", "no connection available") from exc
        else:
            await gate.acquire()  # a free slot: returns at once
        try:
            try:
                # The gate leaves a connection free for us: this waits only when one has to be
                # opened (asyncio.timeout rather than acquire(timeout=), which spawns a task).
                async with asyncio.timeout(max(0.001, limit - (time.perf_counter() - started))):
                    conn = await pool.acquire()
                DB_POOL_WAIT.observe(time.perf_counter() - started)
            except DATABASE_DOWN as exc:
                raise ServiceUnavailable("database") from exc
            try:
                yield cast(asyncpg.Connection, conn)
            finally:
                await pool.release(conn)
        finally:
            gate.release()

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[asyncpg.Connection]:
        """A read-only connection, on the replica when one is configured.

        Its session defaults to read-only transactions: each statement runs in its own read-only
        transaction; wrap several in ``conn.transaction(readonly=True)`` for one snapshot.
        """
        async with self._acquire(self.read_pool) as conn:
            yield conn

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[asyncpg.Connection]:
        """A connection in a read-write transaction on the primary (tickstock tables only)."""
        async with self._acquire(self.pool) as conn, conn.transaction():
            yield conn

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        """A primary connection without an implicit transaction."""
        async with self._acquire(self.pool) as conn:
            yield conn

    async def check(self) -> dict[str, Any]:
        """Health probe of the primary: one round trip, bounded by the health timeout."""
        return await self._probe(self.pool)

    async def check_replica(self) -> dict[str, Any]:
        """Health probe of the read replica."""
        return await self._probe(self.read_pool)

    async def _probe(self, pool: asyncpg.Pool | None) -> dict[str, Any]:
        started = time.perf_counter()
        if pool is None:
            return {"status": "down", "error": "not started", "latency_ms": 0.0}
        try:
            async with asyncio.timeout(self._settings.health_check_timeout):
                await pool.fetchval("SELECT 1")
        except DATABASE_DOWN as exc:
            return {"status": "down", "error": _describe(exc), "latency_ms": _ms(started)}
        return {
            "status": "up",
            "latency_ms": _ms(started),
            "pool_size": pool.get_size(),
            "pool_idle": pool.get_idle_size(),
            "pool_max": pool.get_max_size(),
        }


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timeout"
    return type(exc).__name__


def get_db(app: Quart | None = None) -> Database:
    """The database extension of ``app`` (default: the current app)."""
    db: Database = (app or current_app).extensions[EXTENSION_KEY]
    return db
