"""Operator views: recorded Socket.IO subscriptions and the error log."""

from __future__ import annotations

import datetime as dt
from typing import Any, Final

import asyncpg
from typing_extensions import TypedDict

from tickstock.queries._sql import Params

__all__ = [
    "ConnectionItem",
    "ErrorLogItem",
    "UserConnectionsItem",
    "select_connections",
    "select_connections_by_user",
    "select_error_logs",
]


class ConnectionItem(TypedDict):
    """One socket (sid) with the rooms it is subscribed to."""

    sid: str
    node_id: str
    user_id: int | None
    username: str | None
    rooms: list[str]
    since: dt.datetime


class UserConnectionsItem(TypedDict):
    """One user's sockets across nodes."""

    user_id: int | None
    username: str | None
    sockets: int
    nodes: list[str]
    rooms: list[str]
    since: dt.datetime


class ErrorLogItem(TypedDict):
    id: int
    created_at: dt.datetime
    source: str
    reason: str
    channel: str | None
    message: str
    context: Any


def _where(conditions: list[str], keyword: str = "WHERE") -> str:
    return f" {keyword} {' AND '.join(conditions)}" if conditions else ""


async def select_connections(
    conn: asyncpg.Connection,
    *,
    user_id: int | None = None,
    node_id: str | None = None,
    after: str | None = None,
    limit: int,
) -> list[ConnectionItem]:
    """Sockets with their rooms, by sid, after the sid ``after``."""
    params = Params()
    conditions: list[str] = []
    if user_id is not None:
        conditions.append(f"w.user_id = {params.add(user_id, '::bigint')}")
    if node_id is not None:
        conditions.append(f"w.node_id = {params.add(node_id)}")
    if after is not None:
        conditions.append(f"w.sid > {params.add(after)}")
    sql = (
        "SELECT w.sid, min(w.node_id) AS node_id, min(w.user_id) AS user_id,"
        " min(u.username) AS username, array_agg(w.room ORDER BY w.room) AS rooms,"
        " min(w.created_at) AS since"
        " FROM ws_subscriptions AS w LEFT JOIN users AS u ON u.id = w.user_id"
        f"{_where(conditions)}"
        f" GROUP BY w.sid ORDER BY w.sid LIMIT {params.add(limit, '::int')}"
    )
    return [
        {
            "sid": row["sid"],
            "node_id": row["node_id"],
            "user_id": row["user_id"],
            "username": row["username"],
            "rooms": list(row["rooms"]),
            "since": row["since"],
        }
        for row in await conn.fetch(sql, *params.values)
    ]


# Anonymous sockets (no user) group under user key 0, which no account has.
_USER_KEY: Final = "coalesce(w.user_id, 0)"


async def select_connections_by_user(
    conn: asyncpg.Connection,
    *,
    node_id: str | None = None,
    after: int | None = None,
    limit: int,
) -> list[UserConnectionsItem]:
    """Per user: socket count, nodes and distinct rooms, by user id, after the id ``after``."""
    params = Params()
    conditions: list[str] = []
    if node_id is not None:
        conditions.append(f"w.node_id = {params.add(node_id)}")
    having = f" HAVING {_USER_KEY} > {params.add(after, '::bigint')}" if after is not None else ""
    sql = (
        f"SELECT {_USER_KEY} AS user_key, min(u.username) AS username,"
        " count(DISTINCT w.sid) AS sockets,"
        " array_agg(DISTINCT w.node_id ORDER BY w.node_id) AS nodes,"
        " array_agg(DISTINCT w.room ORDER BY w.room) AS rooms, min(w.created_at) AS since"
        " FROM ws_subscriptions AS w LEFT JOIN users AS u ON u.id = w.user_id"
        f"{_where(conditions)} GROUP BY {_USER_KEY}{having}"
        f" ORDER BY {_USER_KEY} LIMIT {params.add(limit, '::int')}"
    )
    return [
        {
            "user_id": row["user_key"] or None,
            "username": row["username"],
            "sockets": row["sockets"],
            "nodes": list(row["nodes"]),
            "rooms": list(row["rooms"]),
            "since": row["since"],
        }
        for row in await conn.fetch(sql, *params.values)
    ]


def build_error_logs_query(
    *,
    source: str | None,
    reason: str | None,
    since: dt.datetime | None,
    after: tuple[dt.datetime, int] | None,
    limit: int,
) -> tuple[str, list[object]]:
    """SQL and arguments of :func:`select_error_logs` (exposed for EXPLAIN tests)."""
    params = Params()
    conditions: list[str] = []
    if source is not None:
        conditions.append(f"source = {params.add(source)}")
    if reason is not None:
        conditions.append(f"reason = {params.add(reason)}")
    if since is not None:
        conditions.append(f"created_at >= {params.add(since)}")
    if after is not None:
        conditions.append(
            f"(created_at, id) < ({params.add(after[0])}, {params.add(after[1], '::bigint')})"
        )
    sql = (
        "SELECT id, created_at, source, reason, channel, message, context FROM error_logs"
        f"{_where(conditions)} ORDER BY created_at DESC, id DESC"
        f" LIMIT {params.add(limit, '::int')}"
    )
    return sql, params.values


async def select_error_logs(
    conn: asyncpg.Connection,
    *,
    source: str | None = None,
    reason: str | None = None,
    since: dt.datetime | None = None,
    after: tuple[dt.datetime, int] | None = None,
    limit: int,
) -> list[ErrorLogItem]:
    """Logged errors, newest first, after the (created_at, id) key ``after``."""
    sql, args = build_error_logs_query(
        source=source, reason=reason, since=since, after=after, limit=limit
    )
    return [
        {
            "id": row["id"],
            "created_at": row["created_at"],
            "source": row["source"],
            "reason": row["reason"],
            "channel": row["channel"],
            "message": row["message"],
            "context": row["context"],
        }
        for row in await conn.fetch(sql, *args)
    ]
