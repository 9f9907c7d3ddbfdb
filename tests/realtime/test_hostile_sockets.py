"""Hostile Socket.IO clients on the wire: crafted connect tokens and malformed engine.io frames.

Raw websockets (aiohttp) against a served app, so nothing a real client library would tidy up
hides what the server does with what an attacker sends.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import orjson
import pytest

from tests.support.served import ServedApp


@asynccontextmanager
async def raw_socket(served: ServedApp) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
    """An engine.io websocket whose open packet has been read."""
    async with aiohttp.ClientSession() as http:
        url = f"{served.url}/socket.io/?EIO=4&transport=websocket"
        async with http.ws_connect(url, autoping=False) as ws:
            opened = await ws.receive_str(timeout=5)
            assert opened.startswith("0{")
            yield ws


async def next_packet(ws: aiohttp.ClientWebSocketResponse, within: float = 5) -> str:
    """The next Socket.IO packet, answering engine.io pings on the way."""
    async with asyncio.timeout(within):
        while True:
            message = await ws.receive()
            if message.type is not aiohttp.WSMsgType.TEXT:
                return f"<{message.type.name}>"
            if message.data == "2":
                await ws.send_str("3")
                continue
            return str(message.data)


def live_sockets(served: ServedApp) -> int:
    """Sockets the server counts as connected (what admins see as ``live_sockets``)."""
    sio = served.app.extensions["tickstock.sio"].sio
    return len(sio.manager.rooms.get("/", {}).get(None, {}))


async def until_no_sockets(served: ServedApp) -> int:
    for _ in range(100):
        if live_sockets(served) == 0:
            break
        await asyncio.sleep(0.02)
    return live_sockets(served)


CRAFTED_TOKENS = [
    "\u0000.x",
    "x.\u0000",
    "abc\u0000def.secret",
    "\u001b[31m.x",
    "a" * 5000 + ".x",
]


@pytest.mark.parametrize("token", CRAFTED_TOKENS, ids=repr)
async def test_crafted_token_is_refused_and_leaves_no_socket(served: ServedApp, token: str) -> None:
    async with raw_socket(served) as ws:
        await ws.send_str("40" + json.dumps({"token": token}))
        answer = await next_packet(ws)
        assert answer.startswith("44"), answer
        assert orjson.loads(answer[2:])["message"] == "unauthorized"
    assert await until_no_sockets(served) == 0


async def test_a_failing_connect_check_refuses_and_leaves_no_socket(
    served: ServedApp, monkeypatch: pytest.MonkeyPatch, socket_auth: dict[str, Any]
) -> None:
    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug in the session check")

    monkeypatch.setattr(served.app.extensions["tickstock.auth"], "check_token", broken)
    async with raw_socket(served) as ws:
        await ws.send_str("40" + orjson.dumps(socket_auth).decode())
        answer = await next_packet(ws)
        assert answer.startswith("44"), answer
        assert orjson.loads(answer[2:])["message"] == "unavailable"
    assert await until_no_sockets(served) == 0


async def test_many_crafted_connects_leave_the_socket_count_alone(served: ServedApp) -> None:
    async def one() -> str:
        async with raw_socket(served) as ws:
            await ws.send_str('40{"token":"\\u0000.x"}')
            return await next_packet(ws)

    answers = await asyncio.gather(*(one() for _ in range(50)))
    assert all(answer.startswith("44") for answer in answers)
    assert await until_no_sockets(served) == 0


@pytest.mark.parametrize(
    "payload",
    [
        {"symbol": "\u0000"},
        {"symbols": ["AAPL\u001b[2J"]},
        {"symbol": "A", "since": {"A": "\u0000"}},
    ],
    ids=repr,
)
async def test_control_characters_in_a_socket_event_get_an_error_ack(
    served: ServedApp, socket_auth: dict[str, Any], payload: dict[str, Any]
) -> None:
    async with raw_socket(served) as ws:
        await ws.send_str("40" + json.dumps(socket_auth))
        assert (await next_packet(ws)).startswith("40{")
        await ws.send_str("427" + json.dumps(["subscribe_patterns", payload]))
        answer = await next_packet(ws)
        if answer.startswith('42["error"'):  # the error event comes before the ack
            answer = await next_packet(ws)
        assert answer.startswith("437"), answer
        [ack] = json.loads(answer[3:])
        assert ack["status"] == "error"
        assert "\u0000" not in ack["message"] and "\u001b" not in ack["message"]


MALFORMED_FRAMES = [
    "x",
    "",
    "9",
    "4",
    "42[" * 5000,
    '42["subscribe_patterns"',
    "40{",
    '42["subscribe_patterns","\\ud800"]',
    "451-[",
]


def malformed_count() -> float:
    from prometheus_client import REGISTRY

    return sum(
        REGISTRY.get_sample_value("tickstock_socketio_malformed_packets_total", {"layer": layer})
        or 0.0
        for layer in ("engineio", "socketio")
    )


@pytest.mark.parametrize("frame", MALFORMED_FRAMES, ids=lambda f: repr(f[:12]))
async def test_malformed_frames_are_counted_and_logged_once_without_a_traceback(
    served: ServedApp,
    socket_auth: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    frame: str,
) -> None:
    before = malformed_count()
    caplog.set_level(logging.DEBUG)
    async with raw_socket(served) as ws:
        await ws.send_str("40" + json.dumps(socket_auth))
        assert (await next_packet(ws)).startswith("40{")
        for _ in range(3):
            await ws.send_str(frame)
        # The connection is still in order.
        await ws.send_str('421["subscribe_patterns",{"symbol":"AAPL"}]')
        assert (await next_packet(ws)).startswith('42["subscribed"')
    assert malformed_count() == before + 3
    records = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert not [r for r in records if r.exc_info or "Traceback" in r.getMessage()], [
        r.getMessage() for r in records
    ]
    malformed = [r for r in records if "malformed" in r.getMessage()]
    assert len(malformed) == 1, [r.getMessage() for r in records]
    assert malformed[0].levelno == logging.WARNING
    assert not [r for r in records if r.levelno >= logging.ERROR]


async def _ack(ws: aiohttp.ClientWebSocketResponse, ack_id: int) -> dict[str, Any]:
    while True:
        answer = await next_packet(ws)
        if answer.startswith(f"43{ack_id}["):
            [body] = json.loads(answer[2 + len(str(ack_id)) :])
            assert isinstance(body, dict)
            return body


@pytest.mark.parametrize("event", ["disconnect", "connect"])
async def test_reserved_events_from_a_client_are_dropped(
    served: ServedApp,
    socket_auth: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    event: str,
) -> None:
    """``disconnect`` must not forget a live socket's subscriptions (the cap held 50 times over)."""
    caplog.set_level(logging.INFO)
    cap = served.app.config["SETTINGS"].max_symbols_per_client
    async with raw_socket(served) as ws:
        await ws.send_str("40" + json.dumps(socket_auth))
        assert (await next_packet(ws)).startswith("40{")
        for round_ in range(3):
            symbols = [f"R{round_}X{i}" for i in range(cap)]
            payload = ["subscribe_patterns", {"symbols": symbols}]
            await ws.send_str(f"42{round_}" + json.dumps(payload))
            ack = await _ack(ws, round_)
            assert ack["status"] == ("success" if round_ == 0 else "error"), ack
            await ws.send_str("42" + json.dumps([event]))
            await ws.send_str("42" + json.dumps([event, {"x": 1}]))
        sio = served.app.extensions["tickstock.sio"].sio
        [sid] = sio.manager.rooms["/"][None]
        rooms = sio.manager.get_rooms(sid, "/")
        assert len([r for r in rooms if r.startswith("patterns:")]) == cap
        assert live_sockets(served) == 1
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
