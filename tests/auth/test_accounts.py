"""The accounts service on a plain connection, as the ``tickstock users`` commands use it."""

from __future__ import annotations

import asyncpg
import pytest

from tests.support.auth import MakeToken, MakeUser
from tickstock.auth import LastAdminError, change_account, hash_password
from tickstock.errors import APIError


async def test_last_admin_rule_on_a_plain_connection(
    auth_pool: asyncpg.Pool, make_user: MakeUser
) -> None:
    admin = await make_user("admin")
    async with auth_pool.acquire() as conn:
        transaction = conn.transaction()
        await transaction.start()
        try:
            # In this transaction only: every other admin steps down.
            await conn.execute(
                "UPDATE users SET active = false WHERE role = 'admin' AND id <> $1", admin.id
            )
            with pytest.raises(LastAdminError) as raised:
                await change_account(conn, admin.id, role="user")
            assert raised.value.status == 409 and raised.value.code == "last_admin"
            with pytest.raises(LastAdminError):
                await change_account(conn, admin.id, active=False)
            second = await make_user_in(conn, "second-admin")
            change = await change_account(conn, admin.id, active=False)
            assert not change.user.active and change.sessions_ended
            with pytest.raises(LastAdminError):
                await change_account(conn, second, role="user")
        finally:
            await transaction.rollback()


async def make_user_in(conn: asyncpg.Connection, prefix: str) -> int:
    user_id: int = await conn.fetchval(
        "INSERT INTO users (username, password_hash, role) VALUES ($1, 'x', 'admin') RETURNING id",
        f"{prefix}-{await conn.fetchval('SELECT txid_current()')}",
    )
    return user_id


async def test_change_account_ends_sessions_only_when_it_must(
    auth_pool: asyncpg.Pool, make_user: MakeUser, make_token: MakeToken
) -> None:
    user = await make_user()
    await make_token(user)
    await make_token(user)
    async with auth_pool.acquire() as conn:
        promoted = await change_account(conn, user.id, role="admin")
        assert promoted.user.role == "admin" and not promoted.sessions_ended
        changed = await change_account(
            conn, user.id, password_hash=await hash_password("another password")
        )
        assert changed.sessions_ended and changed.revoked == 2
        with pytest.raises(APIError) as missing:
            await change_account(conn, 2**62, active=False)
        assert missing.value.code == "user_not_found"
