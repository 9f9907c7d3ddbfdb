"""The wire protocol is unchanged: the official Socket.IO JavaScript client (socket.io-client 4 on
Node, which offers permessage-deflate like a browser) and python-socketio's client receive every
event once and in order, over websocket and over long-polling then upgrade."""

from __future__ import annotations

import asyncio
import os
import shutil
from typing import Any

import orjson
import pytest

from tests.support.env import ROOT
from tests.support.realtime import PATTERNS, Publisher, Recorder, pattern, unique_symbol

NODE_CLIENT = ROOT / "tests" / "support" / "node" / "sio_client.cjs"
WEB = ROOT / "tickstock" / "web"

needs_node = pytest.mark.skipif(
    shutil.which("node") is None or not (WEB / "node_modules" / "socket.io-client").exists(),
    reason="needs node and the dashboard's npm packages (npm ci --prefix tickstock/web)",
)

pytestmark = pytest.mark.heavy


async def _publish(publisher: Publisher, symbol: str, count: int) -> list[str]:
    names = [f"P{index}" for index in range(count)]
    for name in names:
        await publisher.publish(PATTERNS, pattern(symbol, name))
    return names


@needs_node
@pytest.mark.parametrize("transports", ["websocket", "polling,websocket", "polling"])
async def test_socketio_javascript_client_gets_every_event_once_in_order(
    serve_app: Any, publisher: Publisher, socket_auth: dict[str, Any], transports: str
) -> None:
    served = await serve_app()
    symbol = unique_symbol()
    count = 40
    process = await asyncio.create_subprocess_exec(
        "node",
        str(NODE_CLIENT),
        served.url,
        socket_auth["token"],
        symbol,
        str(count),
        transports,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "TICKSTOCK_WEB": str(WEB)},
    )
    try:
        assert process.stdout is not None
        async with asyncio.timeout(15):
            ready = (await process.stdout.readline()).decode()
        assert ready.startswith("ready"), ready + (await process.stderr.read()).decode()  # type: ignore[union-attr]
        expected = await _publish(publisher, symbol, count)
        async with asyncio.timeout(20):
            result = orjson.loads(await process.stdout.readline())
            await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert result["patterns"] == expected
    assert result["transport"] == transports.split(",")[-1]


@pytest.mark.parametrize("transports", [["websocket"], ["polling", "websocket"], ["polling"]])
async def test_python_socketio_client_gets_every_event_once_in_order(
    serve_app: Any, publisher: Publisher, socket_auth: dict[str, Any], transports: list[str]
) -> None:
    served = await serve_app()
    symbol = unique_symbol()
    recorder = Recorder()
    await recorder.client.connect(
        served.url, auth=socket_auth, transports=transports, wait_timeout=5
    )
    try:
        if transports[0] == "polling" and len(transports) > 1:
            async with asyncio.timeout(5):
                while recorder.client.transport() != "websocket":  # noqa: ASYNC110
                    await asyncio.sleep(0.02)
        await recorder.call("subscribe_patterns", {"symbol": symbol})
        expected = await _publish(publisher, symbol, 40)
        received = await recorder.wait_for("pattern_detected", 40, within=10)
        await recorder.settle(0.3)
        assert [m["data"]["pattern"] for m in received] == expected
        assert recorder.client.transport() == transports[-1]
    finally:
        await recorder.close()
