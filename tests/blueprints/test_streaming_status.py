"""Streaming status: node ids, rooms and internal errors for admins; a user sees only their own
subscriptions and the aggregate health."""

from __future__ import annotations

from typing import Any

import aiohttp

from tests.support.auth import MakeToken, MakeUser
from tests.support.realtime import connect_socket, unique_symbol
from tests.support.served import ServedApp


async def _get(served: ServedApp, path: str, token: str) -> tuple[int, dict[str, Any], str]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(served.url + path, headers={"Authorization": f"Bearer {token}"}) as response,
    ):
        text = await response.text()
        return response.status, await response.json(), text


async def test_a_user_sees_their_own_subscriptions_not_other_peoples(
    served: ServedApp, make_user: MakeUser, make_token: MakeToken
) -> None:
    alice_token = await make_token(await make_user())
    bob_token = await make_token(await make_user())
    admin_token = await make_token(await make_user("admin"))
    alice_symbol, bob_symbol = unique_symbol(), unique_symbol()
    alice, _ = await connect_socket(served.url, auth={"token": alice_token})
    bob, _ = await connect_socket(served.url, auth={"token": bob_token})
    try:
        await alice.call("subscribe_patterns", {"symbol": alice_symbol}, timeout=5)
        await bob.call("subscribe_indicators", {"symbol": bob_symbol}, timeout=5)

        status, body, text = await _get(served, "/api/streaming/status", bob_token)
        assert status == 200
        assert alice_symbol not in text
        data = body["data"]
        assert data["subscriptions"] == [f"indicators:{bob_symbol}"]
        assert data["status"] in ("up", "down")
        assert data["sockets"] == 1
        assert "node_id" not in text and "rooms" not in data and "history_sizes" not in data

        status, body, text = await _get(served, "/api/streaming/redis-status", bob_token)
        assert status == 200
        assert "last_error" not in text and "channels" not in body["data"]["ingest"]
        assert body["data"]["status"] in ("up", "down")

        status, body, text = await _get(served, "/api/streaming/status", admin_token)
        assert status == 200
        assert body["data"]["node_id"]
        assert f"patterns:{alice_symbol}" in body["data"]["rooms"]
        assert f"indicators:{bob_symbol}" in body["data"]["rooms"]
        status, body, _ = await _get(served, "/api/streaming/redis-status", admin_token)
        assert "last_error" in body["data"]["ingest"] and "channels" in body["data"]["ingest"]
    finally:
        await alice.disconnect()
        await bob.disconnect()
