"""The shared ``redis.asyncio`` client for commands (pub/sub readers open their own)."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import redis.asyncio as aioredis
from quart import Quart, current_app
from redis.asyncio.connection import parse_url
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff

from tickstock.config import Settings, get_settings
from tickstock.errors import REDIS_DOWN
from tickstock.health import register_health_check

log = logging.getLogger(__name__)

EXTENSION_KEY = "tickstock.redis"


def make_client(settings: Settings, *, blocking: bool = False, protocol: int = 2) -> aioredis.Redis:
    """A client with bounded timeouts; ``blocking`` clients may wait indefinitely on reads.

    ``protocol=3`` (RESP3) is for the node's event link (realtime/link.py), which subscribes and
    sends commands on one connection.

    With ``TICKSTOCK_REDIS_SENTINELS`` set, the client asks the sentinels for the current master
    of ``TICKSTOCK_REDIS_SENTINEL_MASTER`` whenever it opens a connection, so after a failover
    (its connections to the old master fail with ``ConnectionError``) the next connection goes
    to the promoted replica. The service's reconnect loops provide the backoff.
    """
    options: dict[str, Any] = {
        "socket_connect_timeout": settings.redis_timeout,
        "socket_timeout": None if blocking else settings.redis_timeout,
        "health_check_interval": 30,
        "decode_responses": False,
        "protocol": protocol,
    }
    if not settings.redis_sentinels:
        return aioredis.Redis.from_url(settings.redis_url, **options)
    sentinel = Sentinel(
        sentinel_addresses(settings),
        # Sentinel queries are short even for blocking clients; one retry covers a stale
        # connection, and a sentinel that does not answer is skipped for the next one.
        sentinel_kwargs={
            "socket_connect_timeout": settings.redis_timeout,
            "socket_timeout": settings.redis_timeout,
            "retry": Retry(NoBackoff(), 1),
        },
    )
    client: aioredis.Redis = sentinel.master_for(
        settings.redis_sentinel_master,
        redis_class=SentinelMasterClient,
        **options,
        **url_credentials(settings.redis_url),
    )
    return client


class SentinelMasterClient(aioredis.Redis):
    """A master client that also closes its own sentinel connections when closed."""

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        try:
            await super().aclose(close_connection_pool)
        finally:
            manager = getattr(self.connection_pool, "sentinel_manager", None)
            if isinstance(manager, Sentinel):
                await manager.aclose()


def sentinel_addresses(settings: Settings) -> list[tuple[str, int]]:
    """``TICKSTOCK_REDIS_SENTINELS`` as ``(host, port)`` pairs (``[::1]:26379`` allowed)."""
    addresses = []
    for address in settings.redis_sentinels:
        host, _, port = address.rpartition(":")
        addresses.append((host.removeprefix("[").removesuffix("]"), int(port)))
    return addresses


def url_credentials(redis_url: str) -> dict[str, Any]:
    """What a Sentinel-managed connection takes from ``TICKSTOCK_REDIS_URL``: db, auth, TLS."""
    if not redis_url:
        return {}
    parsed: dict[str, Any] = dict(parse_url(redis_url))
    kept = {
        key: value
        for key, value in parsed.items()
        if key in {"db", "username", "password"} or key.startswith("ssl_")
    }
    if redis_url.startswith("rediss:"):
        kept["ssl"] = True
    return kept


def socketio_manager_url(settings: Settings) -> tuple[str, dict[str, Any]]:
    """The URL and options for python-socketio's ``AsyncRedisManager`` ("" without Redis).

    With sentinels this is ``redis+sentinel://h1:p1,h2:p2/<db>/<master>``; credentials and TLS
    travel in the options rather than in the URL, which python-socketio would not unquote.
    """
    options: dict[str, Any] = {"socket_connect_timeout": settings.redis_timeout}
    if not settings.redis_sentinels:
        return settings.redis_url, options
    credentials = url_credentials(settings.redis_url)
    db = credentials.pop("db", 0)
    # python-socketio splits each address at its last colon: IPv6 hosts go without brackets.
    hosts = ",".join(f"{host}:{port}" for host, port in sentinel_addresses(settings))
    url = f"redis+sentinel://{hosts}/{db}/{settings.redis_sentinel_master}"
    return url, {**options, **credentials}


class RedisClient:
    """Owns the command client; created on serving start, closed on shutdown."""

    def __init__(self, app: Quart | None = None) -> None:
        self.client: aioredis.Redis | None = None
        self.settings: Settings | None = None
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Quart) -> None:
        app.extensions[EXTENSION_KEY] = self
        self.settings = get_settings(app)
        app.before_serving(self.open)
        app.after_serving(self.close)
        # Redis down degrades the service: REST reads still work, live delivery does not.
        register_health_check(app, "redis", self.check)

    async def open(self) -> None:
        assert self.settings is not None
        if not (self.settings.redis_url or self.settings.redis_sentinels):
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


def get_redis_ext(app: Quart | None = None) -> RedisClient:
    """The Redis extension of ``app`` (default: the current app)."""
    ext: RedisClient = (app or current_app).extensions[EXTENSION_KEY]
    return ext


def get_redis(app: Quart | None = None) -> aioredis.Redis:
    """The command client of ``app`` (default: the current app); 503 before it is started."""
    client = get_redis_ext(app).client
    if client is None:
        from tickstock.errors import ServiceUnavailable

        raise ServiceUnavailable("redis", "not started")
    return client
