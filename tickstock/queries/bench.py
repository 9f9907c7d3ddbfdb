"""SQL for the alerts benchmark (``tickstock bench alerts``): its users, rules and accounting.

The benchmark writes many accounts at once, so these insert in bulk what ``insert_user`` and
``upsert_watchlist`` write one at a time; the rows are the same (its rules go through
``queries.alerts.copy_rules``). Every bench account is named with a run's prefix, so cleaning up is one ``DELETE``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import asyncpg

__all__ = [
    "count_alerts_between",
    "delete_users_by_prefix",
    "insert_bench_users",
    "select_alert_ids_since",
]


def _like_prefix(prefix: str) -> str:
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


async def insert_bench_users(
    conn: asyncpg.Connection,
    usernames: Sequence[str],
    password_hash: str,
    watchlists: Sequence[Sequence[str]],
) -> list[int]:
    """Create these accounts (role user) with their watchlists; their ids, in order."""
    async with conn.transaction():
        rows = await conn.fetch(
            "INSERT INTO users (username, password_hash)"
            " SELECT u.name, $2 FROM unnest($1::text[]) WITH ORDINALITY AS u(name, n)"
            " ORDER BY u.n RETURNING id, username",
            list(usernames),
            password_hash,
        )
        ids_by_name = {row["username"]: row["id"] for row in rows}
        ids = [ids_by_name[name] for name in usernames]
        await conn.executemany(
            "INSERT INTO user_settings (user_id, watchlist) VALUES ($1, $2::text[])",
            [(user_id, list(symbols)) for user_id, symbols in zip(ids, watchlists, strict=True)],
        )
    return ids


async def select_alert_ids_since(
    conn: asyncpg.Connection, user_ids: Sequence[int], since: dt.datetime
) -> list[tuple[int, int]]:
    """(user id, alert id) of every alert of these users created at or after ``since``."""
    rows = await conn.fetch(
        "SELECT user_id, id FROM alerts WHERE user_id = ANY($1::bigint[]) AND created_at >= $2",
        list(user_ids),
        since,
    )
    return [(row["user_id"], row["id"]) for row in rows]


async def count_alerts_between(
    conn: asyncpg.Connection, user_ids: Sequence[int], start: dt.datetime, end: dt.datetime
) -> int:
    """Alerts of these users created in [start, end)."""
    count: int = await conn.fetchval(
        "SELECT count(*) FROM alerts WHERE user_id = ANY($1::bigint[])"
        " AND created_at >= $2 AND created_at < $3",
        list(user_ids),
        start,
        end,
    )
    return count


async def delete_users_by_prefix(conn: asyncpg.Connection, prefix: str) -> int:
    """Delete every account whose name starts with ``prefix`` (rules, alerts and sessions go
    with them); how many."""
    rows = await conn.fetch(
        "DELETE FROM users WHERE username LIKE $1 RETURNING id", _like_prefix(prefix)
    )
    return len(rows)
