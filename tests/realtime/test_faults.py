"""Realtime behaviour under faults: Redis restarts and stalled clients."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import aiohttp
import orjson
import pytest

from tests.support.realtime import Publisher, RedisServer, pattern, unique_symbol

pytestmark = pytest.mark.fault


async def _health(url: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http, http.get(f"{url}/health") as response:
        body: dict[str, Any] = await response.json()
        return body


async def _wait_health(url: str, status: str, within: float = 15) -> dict[str, Any]:
    async with asyncio.timeout(within):
        while True:
            body = await _health(url)
            if body["status"] == status:
                return body
            await asyncio.sleep(0.1)


async def test_redis_restart_degrades_then_recovers_by_itself(
    serve_app: Any, connect: Any, private_redis: RedisServer
) -> None:
    served = await serve_app(redis_url=private_redis.url)
    symbol = unique_symbol()
    client = await connect(served.url)
    await client.call("subscribe_patterns", {"symbol": symbol})
    publisher = Publisher(private_redis.url)
    try:
        await publisher.publish("tickstock.events.patterns", pattern(symbol, "BeforeRestart"))
        await client.wait_for("pattern_detected", 1)

        await private_redis.stop()
        body = await _wait_health(served.url, "degraded")
        assert body["components"]["redis"]["status"] == "down"
        # REST keeps answering and the socket stays connected.
        assert client.client.connected

        await private_redis.start()
        await _wait_health(served.url, "healthy")
        await publisher.close()
        publisher = Publisher(private_redis.url)
        await publisher.publish("tickstock.events.patterns", pattern(symbol, "AfterRestart"))
        await client.wait_for("pattern_detected", 2, within=10)
        assert [p["pattern"] for p in client.patterns()] == ["BeforeRestart", "AfterRestart"]
        assert client.client.connected
    finally:
        await publisher.close()


async def _stalled_socket(port: int, token: str, symbol: str) -> socket.socket:
    """A Socket.IO client over a raw websocket that subscribes and then never reads again.

    A tiny receive buffer makes the kernel stop accepting data quickly, as a stalled browser would.
    """
    import base64
    import os

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, ("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n"
    )
    await loop.sock_sendall(sock, request.encode())

    buffer = b""

    async def read_until(marker: bytes) -> None:
        nonlocal buffer
        async with asyncio.timeout(5):
            while marker not in buffer:
                buffer += await loop.sock_recv(sock, 65536)

    def frame(text: str) -> bytes:
        payload = text.encode()
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        assert len(payload) < 126
        return bytes([0x81, 0x80 | len(payload)]) + mask + masked

    await read_until(b'"sid"')  # engine.io open packet
    await loop.sock_sendall(sock, frame("40" + orjson.dumps({"token": token}).decode()))
    await read_until(b"40{")
    subscribe = orjson.dumps(["subscribe_patterns", {"symbol": symbol}]).decode()
    await loop.sock_sendall(sock, frame("421" + subscribe))
    await read_until(b"431")  # the ack
    return sock


async def test_stalled_client_is_dropped_as_slow_consumer_and_others_get_everything(
    serve_app: Any, connect: Any, publisher: Publisher, socket_auth: dict[str, Any]
) -> None:
    served = await serve_app(client_queue_size=50)
    symbol = unique_symbol()
    reader = await connect(served.url)
    await reader.call("subscribe_patterns", {"symbol": symbol})
    stalled = await _stalled_socket(served.port, socket_auth["token"], symbol)
    hub = served.app.extensions["tickstock.hub"]
    try:
        padding = "x" * 16_000  # large events fill the stalled client's buffers sooner
        total = 600
        for index in range(total):
            await publisher.publish(
                "tickstock.events.patterns",
                pattern(symbol, f"Flood{index}", metadata={"pad": padding}),
            )
        received = await reader.wait_for("pattern_detected", total, within=30)
        assert [m["data"]["pattern"] for m in received] == [f"Flood{i}" for i in range(total)]
        async with asyncio.timeout(10):
            while hub.delivery.stats.slow_consumer_disconnects < 1:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        assert hub.delivery.stats.slow_consumer_disconnects == 1
        # The stalled socket no longer counts as a member of the symbol's room.
        room = (
            served.app.extensions["tickstock.sio"].sio.manager.rooms["/"].get(f"patterns:{symbol}")
        )
        assert room is not None and len(room) == 1
        assert reader.client.connected
    finally:
        stalled.close()
