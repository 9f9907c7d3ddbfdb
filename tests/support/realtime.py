"""Helpers for realtime tests: a recording Socket.IO client, Redis publishers, a private Redis."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import redis.asyncio as aioredis
import socketio

PATTERNS = "tickstock.events.patterns"  # the producer's pattern channel


def unique_symbol() -> str:
    """A symbol no other test uses (history is shared by the test session)."""
    return "Z" + secrets.token_hex(3).upper()


class Recorder:
    """A real ``socketio.AsyncClient`` that records every event it receives."""

    def __init__(self) -> None:
        self.client = socketio.AsyncClient(reconnection=False)
        self.events: defaultdict[str, list[Any]] = defaultdict(list)
        self._changed = asyncio.Event()
        self.disconnected = asyncio.Event()
        self.client.on("*", self._record)
        self.client.on("disconnect", self._on_disconnect)

    async def _record(self, event: str, data: Any = None) -> None:
        self.events[event].append(data)
        self._changed.set()

    async def _on_disconnect(self, *args: Any) -> None:
        self.disconnected.set()

    async def connect(
        self, url: str, auth: Any = None, headers: dict[str, str] | None = None
    ) -> Recorder:
        await self.client.connect(
            url, auth=auth, headers=headers or {}, transports=["websocket"], wait_timeout=5
        )
        return self

    async def call(self, event: str, data: Any) -> Any:
        return await self.client.call(event, data, timeout=5)

    def patterns(self) -> list[dict[str, Any]]:
        return [message["data"] for message in self.events["pattern_detected"]]

    async def wait_for(self, event: str, count: int, within: float = 5.0) -> list[Any]:
        """Wait until ``count`` events of a kind have arrived (then return them all)."""
        async with asyncio.timeout(within):
            while len(self.events[event]) < count:
                self._changed.clear()
                await self._changed.wait()
        return self.events[event]

    async def settle(self, seconds: float = 0.3) -> None:
        """Give stray deliveries a moment to arrive (used before asserting absence)."""
        await asyncio.sleep(seconds)

    async def close(self) -> None:
        if self.client.connected:
            await self.client.disconnect()
        await self.client.shutdown()


async def connect_socket(url: str, **connect: Any) -> tuple[socketio.AsyncClient, asyncio.Event]:
    """A bare Socket.IO client over websocket and an event set when the server drops it."""
    sio = socketio.AsyncClient(reconnection=False)
    gone = asyncio.Event()
    sio.on("disconnect", lambda *args: gone.set())
    await sio.connect(url, transports=["websocket"], wait_timeout=5, **connect)
    return sio, gone


class Publisher:
    """Publishes producer messages on Redis, as the producer would."""

    def __init__(self, redis_url: str) -> None:
        self.client = aioredis.Redis.from_url(redis_url)

    async def publish(self, channel: str, message: Any) -> int:
        payload = message if isinstance(message, bytes | str) else orjson.dumps(message)
        return int(await self.client.publish(channel, payload))

    async def close(self) -> None:
        await self.client.aclose()


def pattern(symbol: str, name: str = "Breakout", **extra: Any) -> dict[str, Any]:
    """A flat producer pattern message."""
    return {
        "symbol": symbol,
        "pattern": name,
        "confidence": 0.88,
        "timestamp": 1_795_000_000.0 + secrets.randbelow(10_000_000) / 1000,
        "price": 185.2,
        "tier": "daily",
        **extra,
    }


class RedisServer:
    """A private redis-server on a free loopback port, for tests that stop and restart Redis."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self.process: asyncio.subprocess.Process | None = None

    @staticmethod
    def executable() -> str:
        import shutil

        found = shutil.which("redis-server")
        if found:
            return found
        from tickstock.dev.localstack import _find_redis_server

        return str(_find_redis_server())

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            self.executable(),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        client = aioredis.Redis.from_url(self.url)
        try:
            async with asyncio.timeout(10):
                while True:
                    try:
                        await client.ping()
                        return
                    except OSError:
                        await asyncio.sleep(0.05)
                    except aioredis.ConnectionError:
                        await asyncio.sleep(0.05)
        finally:
            await client.aclose()

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
        self.process = None


class Producer:
    """Publishes numbered detections of one symbol at a steady rate, in the background."""

    def __init__(
        self,
        publish: Callable[[str, bytes], Awaitable[int]],
        symbol: str,
        prefix: str,
        rate: float = 50.0,
    ) -> None:
        self.publish = publish
        self.symbol = symbol
        self.prefix = prefix
        self.interval = 1 / rate
        self.published: list[tuple[str, int, float]] = []  # (pattern, receivers, time)
        self.failures = 0
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._base = time.time() - 3600

    def start(self) -> None:
        self._stop.clear()
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while not self._stop.is_set():
            index = len(self.published)
            name = f"{self.prefix}{index:05d}"
            message = pattern(self.symbol, name, timestamp=self._base + index)
            try:
                receivers = await self.publish(PATTERNS, orjson.dumps(message))
            except (aioredis.ConnectionError, aioredis.TimeoutError, OSError):
                self.failures += 1  # the producer's Redis is failing over too: try again
                await asyncio.sleep(0.05)
                continue
            self.published.append((name, receivers, time.monotonic()))
            await asyncio.sleep(self.interval)

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task

    def names(self) -> list[str]:
        return [name for name, _, _ in self.published]
