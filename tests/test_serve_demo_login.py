"""The demo login `tickstock serve` prepares: a password kept across restarts, a live watchlist
and an alert rule on it."""

from __future__ import annotations

from pathlib import Path

import asyncpg

from tickstock.auth.passwords import hash_password, verify_password
from tickstock.auth.sessions import create_session
from tickstock.cli.serve import _ensure_demo_user, _login_line, _public_url
from tickstock.config import Settings
from tickstock.queries.alerts import select_rules
from tickstock.queries.user_settings import select_user_settings, upsert_watchlist
from tickstock.queries.users import select_password_hash_by_name, update_user
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


async def test_a_password_changed_by_its_owner_survives_a_restart(
    database_url: str, conn: asyncpg.Connection, tmp_path: Path
) -> None:
    settings = Settings(demo_user=f"demo{tmp_path.name[-6:]}".replace("_", "") + "pw")
    first = await _ensure_demo_user(database_url, settings, tmp_path)
    assert first is not None
    saved = tmp_path / "demo-login.txt"
    assert saved.read_text() == f"{settings.demo_user} {first}\n"
    user_id = await conn.fetchval("SELECT id FROM users WHERE username = $1", settings.demo_user)
    assert await _ensure_demo_user(database_url, settings, tmp_path) == first  # a plain restart

    # The owner changes the password on the Account page and stays signed in.
    await update_user(conn, user_id, password_hash=await hash_password("chosen by the owner"))
    session = await create_session(conn, user_id, lifetime=None)
    assert await _ensure_demo_user(database_url, settings, tmp_path) is None  # a restart
    found = await select_password_hash_by_name(conn, settings.demo_user)
    assert found is not None
    assert await verify_password(found[1], "chosen by the owner")
    assert not await verify_password(found[1], first)
    revoked = await conn.fetchval(
        "SELECT revoked_at FROM user_sessions WHERE user_id = $1 ORDER BY id DESC LIMIT 1",
        user_id,
    )
    assert revoked is None, session  # nobody was signed out
    assert not saved.exists()  # no file shows a password that no longer works


def test_the_ready_line_never_shows_a_password_that_does_not_work(tmp_path: Path) -> None:
    settings = Settings(demo_user="demo")
    assert _login_line(settings, "s3cret", tmp_path) == (
        f"as demo / s3cret (saved in {tmp_path / 'demo-login.txt'})"
    )
    changed = _login_line(settings, None, tmp_path)
    assert "s3cret" not in changed and "saved in" not in changed
    assert changed.startswith("as demo with the password you set on the Account page")
    assert "tickstock users set-password demo" in changed
