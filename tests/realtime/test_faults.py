"""Realtime behaviour under faults: Redis restarts and stalled clients."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket
from typing import Any

import aiohttp
import orjson
import pytest
import redis.asyncio as aioredis

from tests.support.realtime import Publisher, RedisServer, pattern, unique_symbol
from tickstock.realtime.hub import get_hub

pytestmark = pytest.mark.fault

PATTERNS = "tickstock.events.patterns"


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


async def test_a_redis_restart_mid_burst_loses_nothing_the_node_read_and_keeps_order(
    serve_app: Any, connect: Any, private_redis: RedisServer
) -> None:
    """Redis killed while a burst is being stored: every message the node had read is delivered
    once (those whose script call was cut off are stored again after the reconnect), then the
    messages published after the restart, each symbol in order, nothing twice.

    Messages still in Redis's memory when it died never reached the node: pub/sub loses those,
    as it loses messages published while no node is connected."""
    served = await serve_app(redis_url=private_redis.url)
    stats = served.app.extensions["tickstock.hub"].ingest.stats
    symbols = [unique_symbol() for _ in range(3)]
    client = await connect(served.url)
    await client.call("subscribe_patterns", {"symbols": symbols})
    run = unique_symbol()

    def message(seq: int) -> bytes:
        return orjson.dumps(
            pattern(symbols[seq % 3], "Burst", event_id=f"burst-{run}-{seq}", burst_seq=seq)
        )

    def read_so_far() -> int:
        return sum(channel.received for channel in stats.channels.values())

    first, second = 3000, 300
    before = read_so_far()
    publisher = Publisher(private_redis.url)
    try:

        async def burst() -> None:
            with contextlib.suppress(aioredis.ConnectionError, OSError):
                async with publisher.client.pipeline(transaction=False) as pipe:
                    for seq in range(first):
                        pipe.publish(PATTERNS, message(seq))
                    await pipe.execute()

        sending = asyncio.create_task(burst())
        async with asyncio.timeout(20):
            while read_so_far() - before < first // 3:  # noqa: ASYNC110 (a counter, no event)
                await asyncio.sleep(0.001)
        await private_redis.stop()  # SIGKILL, mid-burst
        await sending
        await asyncio.sleep(0.5)  # what was already in the node's socket buffer is read
        read = read_so_far() - before
        assert first // 3 <= read <= first
        await private_redis.start()
        await _wait_health(served.url, "healthy", within=30)
        await publisher.close()
        publisher = Publisher(private_redis.url)
        for seq in range(first, first + second):
            await publisher.publish(PATTERNS, message(seq))

        expected = [*range(read), *range(first, first + second)]
        await client.wait_for("pattern_detected", len(expected), within=30)
        await client.settle(1.0)
        seqs = [p["metadata"]["burst_seq"] for p in client.patterns()]
        assert len(seqs) == len(set(seqs)), "an event was delivered twice"
        assert sorted(seqs) == expected, "an event the node had read was lost"
        for symbol in symbols:
            mine = [p["metadata"]["burst_seq"] for p in client.patterns() if p["symbol"] == symbol]
            assert mine == sorted(mine), f"{symbol} out of order"
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


async def test_a_lease_redis_refuses_is_taken_again_once_it_answers(
    serve_app: Any, connect: Any, key_prefix: str, redis_url: str
) -> None:
    """Redis answering the ingest lease with an error (here a key of the wrong type; a replica's
    READONLY after a failover is the same for the node) stops this node storing, and it says so;
    once Redis answers again the node takes the lease back by itself and stores what it kept."""
    served = await serve_app(key_prefix=f"{key_prefix}:lease-{secrets.token_hex(3)}")
    ingest = get_hub(served.app).ingest
    assert ingest is not None
    symbol = unique_symbol()
    client = await connect(served.url)
    await client.call("subscribe_patterns", {"symbol": symbol})
    publisher = Publisher(redis_url)
    redis = aioredis.Redis.from_url(redis_url)
    try:
        async with asyncio.timeout(10):
            while not ingest.leading:  # noqa: ASYNC110 (the lease task sets it)
                await asyncio.sleep(0.05)
        await publisher.publish(PATTERNS, pattern(symbol, "BeforeTheFault"))
        await client.wait_for("pattern_detected", 1)

        await redis.delete(ingest.lease_key)
        await redis.rpush(ingest.lease_key, "not a lease")  # every EVAL on it: WRONGTYPE
        async with asyncio.timeout(5):
            while ingest.leading:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        await publisher.publish(PATTERNS, pattern(symbol, "DuringTheFault"))
        await asyncio.sleep(1.0)
        assert [p["pattern"] for p in client.patterns()] == ["BeforeTheFault"]

        await redis.delete(ingest.lease_key)
        await client.wait_for("pattern_detected", 2, within=5)
        await publisher.publish(PATTERNS, pattern(symbol, "AfterTheFault"))
        await client.wait_for("pattern_detected", 3, within=5)
        await client.settle()
        assert [p["pattern"] for p in client.patterns()] == [
            "BeforeTheFault",
            "DuringTheFault",
            "AfterTheFault",
        ]
    finally:
        await publisher.close()
        await redis.aclose()
