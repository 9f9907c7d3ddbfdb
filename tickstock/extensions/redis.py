"""The shared ``redis.asyncio`` client for commands (pub/sub readers open their own)."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import redis.asyncio as aioredis
from quart import Quart, current_app

from tickstock.config import Settings
from tickstock.errors import REDIS_DOWN

log = logging.getLogger(__name__)

EXTENSION_KEY = "tickstock.redis"


def make_client(settings: Settings, *, blocking: bool = False) -> aioredis.Redis:
    """A client with bounded timeouts; ``blocking`` clients may wait indefinitely on reads."""
    return aioredis.Redis.from_url(
        settings.redis_url,
        socket_connect_timeout=settings.redis_timeout,
        socket_timeout=None if blocking else settings.redis_timeout,
        health_check_interval=30,
        decode_responses=False,
    )


class RedisClient:
    """Owns the command client; created on serving start, closed on shutdown."""

    def __init__(self, app: Quart | None = None) -> None:
        self.client: aioredis.Redis | None = None
        self.settings: Settings | None = None
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Quart) -> None:
        app.extensions[EXTENSION_KEY] = self
        self.settings = app.config["SETTINGS"]
        app.before_serving(self.open)
        app.after_serving(self.close)

    async def open(self) -> None:
        assert self.settings is not None
        if not self.settings.redis_url:
            raise RuntimeError("TICKSTOCK_REDIS_URL is not set")
        self.client = make_client(self.settings)

    async def close(self) -> None:
        if self.client is None:
            return
        assert self.settings is not None
        try:
            await asyncio.wait_for(self.client.aclose(), self.settings.shutdown_timeout / 2)
        except REDIS_DOWN as exc:
            log.warning("redis client close: %r", exc)
        self.client = None

    async def check(self) -> dict[str, Any]:
        """Health probe: one PING, bounded by the health timeout."""
        assert self.settings is not None
        started = time.perf_counter()
        try:
            if self.client is None:
                raise ConnectionError("not started")
            async with asyncio.timeout(self.settings.health_check_timeout):
                await self.client.ping()
        except REDIS_DOWN as exc:
            error = "timeout" if isinstance(exc, TimeoutError) else type(exc).__name__
            return {"status": "down", "error": error, "latency_ms": _ms(started)}
        return {"status": "up", "latency_ms": _ms(started)}


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


def get_redis_ext() -> RedisClient:
    """The current app's Redis extension."""
    ext: RedisClient = current_app.extensions[EXTENSION_KEY]
    return ext


def get_redis() -> aioredis.Redis:
    """The current app's command client."""
    client = get_redis_ext().client
    if client is None:
        from tickstock.errors import ServiceUnavailable

        raise ServiceUnavailable("redis", "not started")
    return client
