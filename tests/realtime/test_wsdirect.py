"""Direct websocket writes: events reach websocket clients written straight to their transports,
in order with the socket's other packets, and the compression policy is what the handshake says."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import orjson

from tests.support.realtime import PATTERNS, Publisher, pattern, unique_symbol
from tickstock.realtime.hub import get_hub


async def _raw_socket(
    url: str, token: str, symbol: str, *, offer_deflate: bool
) -> tuple[aiohttp.ClientSession, aiohttp.ClientWebSocketResponse, str]:
    session = aiohttp.ClientSession()
    ws_url = url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
    ws = await session.ws_connect(ws_url, compress=15 if offer_deflate else 0, heartbeat=None)
    opening = await ws.receive_str(timeout=5)
    assert opening.startswith("0")
    await ws.send_str("40" + orjson.dumps({"token": token}).decode())
    assert (await ws.receive_str(timeout=5)).startswith("40")
    await ws.send_str("421" + orjson.dumps(["subscribe_patterns", {"symbol": symbol}]).decode())
    while not (await ws.receive_str(timeout=5)).startswith("431"):
        pass
    extensions = ws._response.headers.get("Sec-WebSocket-Extensions", "")
    return session, ws, extensions


async def _events(ws: aiohttp.ClientWebSocketResponse, count: int) -> list[dict[str, Any]]:
    received: list[dict[str, Any]] = []
    async with asyncio.timeout(10):
        while len(received) < count:
            text = await ws.receive_str()
            if text == "2":
                await ws.send_str("3")
            elif text.startswith('42["pattern_detected"'):
                received.append(orjson.loads(text[2:])[1]["data"])
    return received


async def test_websocket_events_are_written_directly_in_order(
    serve_app: Any, connect: Any, publisher: Publisher, socket_auth: dict[str, Any]
) -> None:
    served = await serve_app()
    symbol = unique_symbol()
    client = await connect(served.url)
    await client.call("subscribe_patterns", {"symbol": symbol})
    for index in range(50):
        await publisher.publish(PATTERNS, pattern(symbol, f"Seq{index}"))
    received = await client.wait_for("pattern_detected", 50)
    assert [m["data"]["pattern"] for m in received] == [f"Seq{i}" for i in range(50)]
    direct = get_hub(served.app).direct
    assert len(direct.links) == 1
    assert all(link.installed for link in direct.links.values())


async def test_compression_is_declined_by_default_and_frames_arrive_plain(
    serve_app: Any, publisher: Publisher, socket_auth: dict[str, Any]
) -> None:
    served = await serve_app()
    symbol = unique_symbol()
    session, ws, extensions = await _raw_socket(
        served.url, socket_auth["token"], symbol, offer_deflate=True
    )
    try:
        assert extensions == ""
        await publisher.publish(PATTERNS, pattern(symbol, "Plain"))
        assert [e["pattern"] for e in await _events(ws, 1)] == ["Plain"]
    finally:
        await ws.close()
        await session.close()


async def test_compression_on_is_negotiated_without_context_takeover(
    serve_app: Any, publisher: Publisher, socket_auth: dict[str, Any]
) -> None:
    served = await serve_app(ws_compression="on")
    symbol = unique_symbol()
    clients = [
        await _raw_socket(served.url, socket_auth["token"], symbol, offer_deflate=True)
        for _ in range(2)
    ]
    plain = await _raw_socket(served.url, socket_auth["token"], symbol, offer_deflate=False)
    try:
        for _session, _ws, extensions in clients:
            assert "permessage-deflate" in extensions
            assert "server_no_context_takeover" in extensions
            assert "client_no_context_takeover" in extensions
        assert plain[2] == ""
        for index in range(20):
            await publisher.publish(PATTERNS, pattern(symbol, f"Z{index}", metadata={"n": index}))
        expected = [f"Z{i}" for i in range(20)]
        for _session, ws, _ in [*clients, plain]:
            assert [e["pattern"] for e in await _events(ws, 20)] == expected
    finally:
        for session, ws, _ in [*clients, plain]:
            await ws.close()
            await session.close()


async def test_an_entry_appended_without_a_live_message_is_read_from_the_stream(
    serve_app: Any, connect: Any, publisher: Publisher, key_prefix: str, redis_url: str
) -> None:
    """A node of an older version appends to the fan-out stream without publishing it live: the
    next live entry names it as its predecessor, and the node reads it from the stream."""
    import redis.asyncio as aioredis

    served = await serve_app()
    symbol = unique_symbol()
    client = await connect(served.url)
    await client.call("subscribe_patterns", {"symbol": symbol})
    await publisher.publish(PATTERNS, pattern(symbol, "First"))
    await client.wait_for("pattern_detected", 1)
    envelope = client.events["pattern_detected"][0]
    silent = orjson.dumps({**envelope["data"], "pattern": "Silent", "offset": None})
    redis = aioredis.Redis.from_url(redis_url)
    try:
        await redis.xadd(
            f"{key_prefix}:fanout",
            {"r": f"patterns:{symbol}", "t": "pattern_detected", "o": "", "d": silent, "ts": "1"},
        )
    finally:
        await redis.aclose()
    await publisher.publish(PATTERNS, pattern(symbol, "Third"))
    received = await client.wait_for("pattern_detected", 3)
    assert [m["data"]["pattern"] for m in received] == ["First", "Silent", "Third"]
