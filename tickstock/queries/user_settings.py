"""A user's own watchlist and dashboard settings (tickstock's ``user_settings`` table)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg

__all__ = [
    "UserSettings",
    "insert_first_watchlist",
    "select_user_settings",
    "upsert_settings",
    "upsert_watchlist",
]


@dataclass(frozen=True, slots=True)
class UserSettings:
    """A user's row; users who never saved anything get the empty defaults."""

    watchlist: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    updated_at: dt.datetime | None = None


async def select_user_settings(conn: asyncpg.Connection, user_id: int) -> UserSettings:
    row = await conn.fetchrow(
        "SELECT watchlist, settings, updated_at FROM user_settings WHERE user_id = $1", user_id
    )
    if row is None:
        return UserSettings()
    settings = row["settings"]
    return UserSettings(
        list(row["watchlist"] or []),
        settings if isinstance(settings, dict) else {},
        row["updated_at"],
    )


async def upsert_watchlist(
    conn: asyncpg.Connection, user_id: int, symbols: Sequence[str]
) -> UserSettings:
    """Replace the watchlist (the settings are kept)."""
    row = await conn.fetchrow(
        "INSERT INTO user_settings (user_id, watchlist, updated_at) VALUES ($1, $2::text[], now())"
        " ON CONFLICT (user_id) DO UPDATE"
        " SET watchlist = EXCLUDED.watchlist, updated_at = EXCLUDED.updated_at"
        " RETURNING watchlist, settings, updated_at",
        user_id,
        list(symbols),
    )
    assert row is not None
    return UserSettings(list(row["watchlist"]), row["settings"], row["updated_at"])


async def insert_first_watchlist(
    conn: asyncpg.Connection, user_id: int, symbols: Sequence[str]
) -> bool:
    """Give a user who never saved anything this watchlist; False when they already have a row."""
    done = await conn.fetchval(
        "INSERT INTO user_settings (user_id, watchlist) VALUES ($1, $2::text[])"
        " ON CONFLICT (user_id) DO NOTHING RETURNING true",
        user_id,
        list(symbols),
    )
    return bool(done)


async def upsert_settings(
    conn: asyncpg.Connection, user_id: int, settings: dict[str, Any]
) -> UserSettings:
    """Replace the settings object (the watchlist is kept)."""
    row = await conn.fetchrow(
        "INSERT INTO user_settings (user_id, settings, updated_at) VALUES ($1, $2::jsonb, now())"
        " ON CONFLICT (user_id) DO UPDATE"
        " SET settings = EXCLUDED.settings, updated_at = EXCLUDED.updated_at"
        " RETURNING watchlist, settings, updated_at",
        user_id,
        settings,
    )
    assert row is not None
    return UserSettings(list(row["watchlist"]), row["settings"], row["updated_at"])
