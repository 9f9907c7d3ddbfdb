"""The realtime path's own tables: recorded Socket.IO subscriptions and rejected ingest messages."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import asyncpg


async def delete_subscriptions_of(conn: asyncpg.Connection, sids: Iterable[str]) -> None:
    """Forget every subscription of these (disconnected) sockets."""
    await conn.execute("DELETE FROM ws_subscriptions WHERE sid = ANY($1::text[])", list(sids))


async def delete_subscriptions(conn: asyncpg.Connection, pairs: Iterable[tuple[str, str]]) -> None:
    """Forget these (socket, room) subscriptions."""
    pairs = list(pairs)
    await conn.execute(
        "DELETE FROM ws_subscriptions WHERE (sid, room) IN"
        " (SELECT * FROM unnest($1::text[], $2::text[]))",
        [sid for sid, _ in pairs],
        [room for _, room in pairs],
    )


async def insert_subscriptions(
    conn: asyncpg.Connection, node_id: str, subscriptions: Mapping[tuple[str, str], int | None]
) -> None:
    """Record (socket, room) -> user subscriptions of this node (already recorded ones stay)."""
    await conn.execute(
        "INSERT INTO ws_subscriptions (node_id, sid, user_id, room)"
        " SELECT $1, * FROM unnest($2::text[], $3::bigint[], $4::text[])"
        " ON CONFLICT (sid, room) DO NOTHING",
        node_id,
        [sid for sid, _ in subscriptions],
        list(subscriptions.values()),
        [room for _, room in subscriptions],
    )


async def delete_node_subscriptions(conn: asyncpg.Connection, node_id: str) -> None:
    """Forget every subscription recorded by a node (it starts or stops)."""
    await conn.execute("DELETE FROM ws_subscriptions WHERE node_id = $1", node_id)


async def insert_error_logs(
    conn: asyncpg.Connection, rows: Iterable[tuple[str, str, str, str, dict[str, Any]]]
) -> None:
    """Rejected messages: (source, reason, channel, message, context) each."""
    await conn.executemany(
        "INSERT INTO error_logs (source, reason, channel, message, context)"
        " VALUES ($1, $2, $3, $4, $5)",
        list(rows),
    )
