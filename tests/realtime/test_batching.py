"""Opt-in coalescing: a socket that connects with ``batch_ms`` gets ``events`` frames."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import socketio

from tests.support.realtime import Publisher, Recorder, pattern, unique_symbol
from tickstock.realtime.history import parse_offset

Connect = Callable[..., Awaitable[Recorder]]
CHANNEL = "tickstock.events.patterns"


def batched(recorder: Recorder, name: str = "pattern_detected") -> list[dict[str, Any]]:
    """The envelopes of one event type, in arrival order, out of the ``events`` frames."""
    return [
        envelope for frame in recorder.events["events"] for kind, envelope in frame if kind == name
    ]


async def wait_batched(recorder: Recorder, count: int, within: float = 5.0) -> None:
    async with asyncio.timeout(within):
        while len(batched(recorder)) < count:
            recorder._changed.clear()
            await recorder._changed.wait()


async def test_a_burst_arrives_coalesced_in_order_with_offsets(
    served: Any, connect: Connect, publisher: Publisher, socket_auth: dict[str, Any]
) -> None:
    symbol, other = unique_symbol(), unique_symbol()
    coalesced = await connect(served.url, auth={**socket_auth, "batch_ms": 100})
    plain = await connect(served.url)
    await coalesced.call("subscribe_patterns", {"symbols": [symbol, other]})
    await plain.call("subscribe_patterns", {"symbol": symbol})
    for index in range(40):
        await publisher.publish(CHANNEL, pattern(symbol if index % 4 else other, f"P{index}"))
    await wait_batched(coalesced, 40)
    await plain.wait_for("pattern_detected", 30)
    await coalesced.settle(0.3)

    # Every event exactly once, in publication order, each with its offset: per symbol, the
    # same events and offsets the one-frame-per-event socket got.
    events = batched(coalesced)
    assert [e["data"]["pattern"] for e in events] == [f"P{i}" for i in range(40)]
    mine = [e["data"]["offset"] for e in events if e["data"]["symbol"] == symbol]
    assert mine == [d["offset"] for d in plain.patterns()]
    for sym in (symbol, other):
        offsets = [parse_offset(e["data"]["offset"]) for e in events if e["data"]["symbol"] == sym]
        assert offsets == sorted(offsets) and len(set(offsets)) == len(offsets)
    # In far fewer frames than events, and never the one-event frames.
    assert len(coalesced.events["events"]) <= 10
    assert coalesced.events["pattern_detected"] == []
    assert all(e["type"] == "pattern_detected" for e in events)


async def test_replay_and_live_events_keep_their_order_when_coalesced(
    served: Any, connect: Connect, publisher: Publisher, socket_auth: dict[str, Any]
) -> None:
    symbol = unique_symbol()
    first = await connect(served.url)
    await first.call("subscribe_patterns", {"symbol": symbol})
    for index in range(5):
        await publisher.publish(CHANNEL, pattern(symbol, f"Old{index}"))
    old = await first.wait_for("pattern_detected", 5)
    since = old[1]["data"]["offset"]

    coalesced = await connect(served.url, auth={**socket_auth, "batch_ms": 50})
    ack = await coalesced.call(
        "subscribe_patterns", {"symbols": [symbol], "since": {symbol: since}}
    )
    assert ack["replayed"] == 3 and ack["recovered"] == {symbol: True}
    for index in range(5):
        await publisher.publish(CHANNEL, pattern(symbol, f"New{index}"))
    await wait_batched(coalesced, 8)
    await coalesced.settle(0.3)
    names = [e["data"]["pattern"] for e in batched(coalesced)]
    assert names == ["Old2", "Old3", "Old4", "New0", "New1", "New2", "New3", "New4"]


@pytest.mark.parametrize("value", [5000, -1, "20", 2.5, True])
async def test_an_invalid_batch_window_is_refused_with_the_reason(
    served: Any, socket_auth: dict[str, Any], value: Any
) -> None:
    client = socketio.AsyncClient(reconnection=False)
    refused: list[Any] = []
    client.on("connect_error", lambda data: refused.append(data))
    try:
        with pytest.raises(socketio.exceptions.ConnectionError):
            await client.connect(
                served.url,
                auth={**socket_auth, "batch_ms": value},
                transports=["websocket"],
                wait_timeout=5,
            )
    finally:
        await client.disconnect()
    assert refused and "batch_ms" in str(refused[0])


@pytest.mark.parametrize("offset", ["\uff11-0", "1-\u0661", "\u00b2-0", "1700000000000-\u0966"])
def test_offsets_are_ascii_digits_only(offset: str) -> None:
    """A ``since`` offset in other digits is invalid, as any other bad offset (not a crash)."""
    assert parse_offset(offset) is None
    assert parse_offset("1700000000000-0") == (1700000000000, 0)
