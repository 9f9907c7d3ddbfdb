"""Admin views: recorded connections and the error log; admins only."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from tests.support.auth import UserLogin


async def test_admin_only(
    client: Any, auth_headers: dict[str, str], admin_headers: dict[str, str]
) -> None:
    for path in ("/api/admin/connections", "/api/admin/errors"):
        response = await client.get(path)
        assert response.status_code == 401, path
        response = await client.get(path, headers=auth_headers)
        assert response.status_code == 403, path
        assert (await response.get_json())["code"] == "forbidden"
        response = await client.get(path, headers=admin_headers)
        assert response.status_code == 200, path


async def test_errors_newest_first_paginated(
    client: Any, admin_headers: dict[str, str], conn: asyncpg.Connection
) -> None:
    source = f"test-{uuid.uuid4().hex[:8]}"
    await conn.executemany(
        "INSERT INTO error_logs (created_at, source, reason, channel, message, context)"
        " VALUES (now() - make_interval(secs => $1), $2, $3, 'tickstock.events.patterns', $4,"
        " '{\"n\": 1}')",
        # two rows share a timestamp, so the id must break the tie
        [(i // 2, source, "invalid_json" if i % 3 else "no_symbol", f"bad {i}") for i in range(25)],
    )
    expected = [
        row["id"]
        for row in await conn.fetch(
            "SELECT id FROM error_logs WHERE source = $1 ORDER BY created_at DESC, id DESC", source
        )
    ]
    got: list[int] = []
    cursor = None
    while True:
        query: dict[str, Any] = {"source": source, "limit": 7}
        if cursor:
            query["cursor"] = cursor
        response = await client.get("/api/admin/errors", headers=admin_headers, query_string=query)
        body = await response.get_json()
        got.extend(item["id"] for item in body["data"])
        cursor = body["meta"]["next_cursor"]
        if cursor is None:
            break
    assert got == expected and len(got) == 25
    response = await client.get(
        "/api/admin/errors",
        headers=admin_headers,
        query_string={"source": source, "reason": "no_symbol", "limit": 500},
    )
    items = (await response.get_json())["data"]
    assert len(items) == 9 and {item["reason"] for item in items} == {"no_symbol"}
    assert items[0]["context"] == {"n": 1}
    assert items[0]["created_at"].endswith("Z")


async def test_connections_grouped(
    client: Any,
    admin_headers: dict[str, str],
    conn: asyncpg.Connection,
    user: UserLogin,
    admin: UserLogin,
) -> None:
    node = f"test-node-{uuid.uuid4().hex[:6]}"
    rows = [
        (node, "sid-a", user.id, "patterns:AAPL"),
        (node, "sid-a", user.id, "patterns:MSFT"),
        (node, "sid-b", user.id, "indicators:AAPL"),
        (node, "sid-c", admin.id, "system"),
    ]
    await conn.executemany(
        "INSERT INTO ws_subscriptions (node_id, sid, user_id, room) VALUES ($1, $2, $3, $4)", rows
    )
    try:
        response = await client.get(
            "/api/admin/connections", headers=admin_headers, query_string={"node_id": node}
        )
        body = await response.get_json()
        assert [(item["sid"], item["rooms"]) for item in body["data"]] == [
            ("sid-a", ["patterns:AAPL", "patterns:MSFT"]),
            ("sid-b", ["indicators:AAPL"]),
            ("sid-c", ["system"]),
        ]
        assert body["data"][0]["username"] == user.username
        assert body["meta"]["group_by"] == "sid"
        assert body["meta"]["node"]["live_sockets"] >= 0

        response = await client.get(
            "/api/admin/connections",
            headers=admin_headers,
            query_string={"node_id": node, "group_by": "user", "limit": 1},
        )
        body = await response.get_json()
        first = body["data"]
        response = await client.get(
            "/api/admin/connections",
            headers=admin_headers,
            query_string={
                "node_id": node,
                "group_by": "user",
                "cursor": body["meta"]["next_cursor"],
            },
        )
        rest = (await response.get_json())["data"]
        by_user = {item["user_id"]: item for item in first + rest}
        assert by_user[user.id]["sockets"] == 2
        assert by_user[user.id]["rooms"] == ["indicators:AAPL", "patterns:AAPL", "patterns:MSFT"]
        assert by_user[admin.id]["sockets"] == 1
        assert len(first + rest) == 2

        response = await client.get(
            "/api/admin/connections",
            headers=admin_headers,
            query_string={"node_id": node, "user_id": admin.id},
        )
        assert [item["sid"] for item in (await response.get_json())["data"]] == ["sid-c"]
    finally:
        await conn.execute("DELETE FROM ws_subscriptions WHERE node_id = $1", node)


async def test_bad_parameters(client: Any, admin_headers: dict[str, str]) -> None:
    for path, query, code in (
        ("/api/admin/connections", {"group_by": "room"}, "validation_error"),
        ("/api/admin/connections", {"user_id": "-1"}, "validation_error"),
        ("/api/admin/connections", {"cursor": "!!"}, "invalid_cursor"),
        ("/api/admin/errors", {"since": "yesterday"}, "validation_error"),
        ("/api/admin/errors", {"cursor": "WyJhIl0"}, "invalid_cursor"),
    ):
        response = await client.get(path, headers=admin_headers, query_string=query)
        assert response.status_code == 400, (path, query)
        assert (await response.get_json())["code"] == code
