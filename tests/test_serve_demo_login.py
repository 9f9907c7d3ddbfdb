"""The demo login `tickstock serve` prepares: a password kept across restarts, a live watchlist
and an alert rule on it."""

from __future__ import annotations

from pathlib import Path

import asyncpg

from tickstock.cli.serve import _ensure_demo_user, _public_url
from tickstock.config import Settings
from tickstock.queries.alerts import select_rules
from tickstock.queries.user_settings import select_user_settings, upsert_watchlist
from tickstock.vocab import DEMO_SYMBOLS


async def test_demo_login_starts_with_the_demo_symbols_and_keeps_later_changes(
    database_url: str, conn: asyncpg.Connection, tmp_path: Path
) -> None:
    settings = Settings(demo_user=f"demo{tmp_path.name[-6:]}".replace("_", ""))
    password = await _ensure_demo_user(database_url, settings, tmp_path)
    user_id = await conn.fetchval("SELECT id FROM users WHERE username = $1", settings.demo_user)
    assert (await select_user_settings(conn, user_id)).watchlist == list(DEMO_SYMBOLS)
    # Known symbols only, as PUT /api/user/watchlist would accept them.
    known = await conn.fetchval(
        "SELECT count(*) FROM symbols WHERE symbol = ANY($1::text[])", list(DEMO_SYMBOLS)
    )
    assert known == len(DEMO_SYMBOLS)
    # One alert rule on that watchlist, so the first minutes show what alerts are.
    [rule] = await select_rules(conn, user_id)
    assert rule.symbols == "watchlist" and rule.enabled and rule.min_confidence > 0

    await upsert_watchlist(conn, user_id, ["AAPL"])
    assert await _ensure_demo_user(database_url, settings, tmp_path) == password  # a restart
    assert (await select_user_settings(conn, user_id)).watchlist == ["AAPL"]
    assert len(await select_rules(conn, user_id)) == 1  # not made again on a restart


def test_ready_line_url(tmp_path: Path) -> None:
    missing = str(tmp_path / "none.toml")
    assert _public_url("0.0.0.0:8080", missing) == "http://127.0.0.1:8080"
    assert _public_url(None, missing) == "http://127.0.0.1:8000"
    config = tmp_path / "hypercorn.toml"
    config.write_text('bind = ["[::1]:9000", "127.0.0.1:9001"]\n')
    assert _public_url(None, str(config)) == "http://[::1]:9000"
