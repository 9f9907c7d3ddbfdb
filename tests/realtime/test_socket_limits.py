"""Socket caps per address and per user, and the deadline to connect a namespace (no login needed
to open an engine.io session, so these bound what one client can hold on a worker)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import aiohttp
import pytest
import socketio

from tests.support.served import ServedApp


def metric(name: str, labels: dict[str, str] | None = None) -> float:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


async def open_engineio(http: aiohttp.ClientSession, served: ServedApp) -> Any:
    """A raw engine.io websocket whose open packet has been read (no namespace joined)."""
    ws = await http.ws_connect(f"{served.url}/socket.io/?EIO=4&transport=websocket", autoping=False)
    assert (await ws.receive_str(timeout=5)).startswith("0{")
    return ws


@pytest.fixture(name="limited")
async def _limited(serve_app: Any) -> ServedApp:
    served: ServedApp = await serve_app(
        max_sockets_per_address=3, max_sockets_per_user=2, socket_connect_timeout_seconds=1
    )
    return served


async def test_a_session_that_never_connects_a_namespace_is_closed(limited: ServedApp) -> None:
    before = metric("tickstock_socket_connect_timeouts_total")
    async with aiohttp.ClientSession() as http:
        ws = await open_engineio(http, limited)
        async with asyncio.timeout(15):
            while True:  # answer pings, until the server ends the session
                message = await ws.receive()
                if message.type is not aiohttp.WSMsgType.TEXT:
                    break
                assert message.data in ("2", "1"), message.data
                if message.data == "2":
                    await ws.send_str("3")
        # The polling transport too.
        async with http.get(f"{limited.url}/socket.io/?EIO=4&transport=polling") as response:
            sid = json.loads((await response.text())[1:])["sid"]
        eio = limited.app.extensions["tickstock.sio"].sio.eio
        for _ in range(150):
            if sid not in eio.sockets:
                break
            await asyncio.sleep(0.1)
        assert sid not in eio.sockets
    assert metric("tickstock_socket_connect_timeouts_total") == before + 2


async def test_a_connected_socket_outlives_the_deadline(
    limited: ServedApp, socket_auth: dict[str, Any]
) -> None:
    client = socketio.AsyncClient(reconnection=False)
    await client.connect(limited.url, auth=socket_auth, transports=["websocket"])
    try:
        await asyncio.sleep(2.5)
        assert client.connected
        ack = await client.call("subscribe_patterns", {"symbol": "AAPL"}, timeout=5)
        assert ack["status"] == "success"
    finally:
        await client.disconnect()


async def test_sockets_per_address_are_capped(limited: ServedApp) -> None:
    before = metric("tickstock_sockets_refused_total", {"limit": "address"})
    async with aiohttp.ClientSession() as http, AsyncExitStack() as stack:
        sockets = [await open_engineio(http, limited) for _ in range(3)]
        for ws in sockets:
            stack.push_async_callback(ws.close)
        async with http.get(f"{limited.url}/socket.io/?EIO=4&transport=polling") as response:
            assert response.status == 429
            body = await response.json()
            assert body["code"] == "too_many_connections", body
        with pytest.raises(aiohttp.WSServerHandshakeError):
            await open_engineio(http, limited)
        # One closed: there is room again.
        await sockets[0].close()
        for _ in range(100):
            async with http.get(f"{limited.url}/socket.io/?EIO=4&transport=polling") as response:
                if response.status == 200:
                    break
            await asyncio.sleep(0.05)
        assert response.status == 200
    assert metric("tickstock_sockets_refused_total", {"limit": "address"}) == before + 2


@pytest.fixture(name="clients")
async def _clients() -> AsyncIterator[list[socketio.AsyncClient]]:
    clients: list[socketio.AsyncClient] = []
    yield clients
    for client in clients:
        if client.connected:
            await client.disconnect()


async def test_sockets_per_user_are_capped(
    serve_app: Any, socket_auth: dict[str, Any], clients: list[socketio.AsyncClient]
) -> None:
    served = await serve_app(max_sockets_per_user=2)
    before = metric("tickstock_sockets_refused_total", {"limit": "user"})
    for _ in range(2):
        client = socketio.AsyncClient(reconnection=False)
        clients.append(client)
        await client.connect(served.url, auth=socket_auth, transports=["websocket"])
    refused = socketio.AsyncClient(reconnection=False)
    clients.append(refused)
    errors: list[Any] = []
    refused.on("connect_error", errors.append)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await refused.connect(served.url, auth=socket_auth, transports=["websocket"])
    assert errors == [{"message": "too many connections for this user"}], errors
    assert metric("tickstock_sockets_refused_total", {"limit": "user"}) == before + 1
    await clients[0].disconnect()
    for _ in range(100):
        if not served.app.extensions["tickstock.sio"].sio.manager.rooms["/"].get(None):
            break
        await asyncio.sleep(0.02)
    again = socketio.AsyncClient(reconnection=False)
    clients.append(again)
    await again.connect(served.url, auth=socket_auth, transports=["websocket"])
    assert again.connected
