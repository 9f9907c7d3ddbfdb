"""Lockout per (account, address): a guesser locks out only their own address; admins see and
clear lockouts."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.auth import MakeUser, fresh_rate_limit

ATTACKER = ("203.0.113.66", 40000)
OWNER = ("198.51.100.7", 50000)


@pytest.fixture(name="settings_overrides")
def _settings_overrides(settings_overrides: dict[str, Any]) -> dict[str, Any]:
    return {**fresh_rate_limit(settings_overrides), "login_max_failures": 3}


async def _login(client: Any, username: str, password: str, address: tuple[str, int]) -> int:
    response = await client.post(
        "/api/auth/login",
        json={"username": username, "password": password},
        scope_base={"client": address},
    )
    status: int = response.status_code
    return status


async def test_a_guesser_cannot_lock_the_owner_out(client: Any, make_user: MakeUser) -> None:
    for role in ("user", "admin"):
        account = await make_user(role, password="the owner's password")
        for _ in range(5):
            assert await _login(client, account.username, "a guess", ATTACKER) == 401
        # The guesser's address is locked: even the right password does not get in from there.
        assert await _login(client, account.username, account.password, ATTACKER) == 401
        # The owner, from their own address, signs in as usual.
        assert await _login(client, account.username, account.password, OWNER) == 200


async def test_the_owner_locks_only_their_own_address(client: Any, make_user: MakeUser) -> None:
    account = await make_user(password="the owner's password")
    for _ in range(3):
        await _login(client, account.username, "typo", OWNER)
    assert await _login(client, account.username, account.password, OWNER) == 401
    assert await _login(client, account.username, account.password, ATTACKER) == 200


async def test_admins_see_and_clear_lockouts(
    client: Any, make_user: MakeUser, admin_headers: dict[str, str], auth_headers: dict[str, str]
) -> None:
    account = await make_user(password="the owner's password")
    for _ in range(3):
        await _login(client, account.username, "typo", OWNER)
    assert (await client.get("/api/admin/lockouts", headers=auth_headers)).status_code == 403
    listed = await (await client.get("/api/admin/lockouts", headers=admin_headers)).get_json()
    [row] = [r for r in listed["data"] if r["user_id"] == account.id]
    assert row["address"] == OWNER[0] and row["username"] == account.username
    assert row["locked_until"] is not None
    users = await (
        await client.get(f"/api/admin/users?q={account.username}", headers=admin_headers)
    ).get_json()
    assert users["data"][0]["locked_until"] is not None

    response = await client.delete(f"/api/admin/users/{account.id}/lockouts", headers=admin_headers)
    assert response.status_code == 200
    assert (await response.get_json())["data"]["cleared"] == 1
    assert await _login(client, account.username, account.password, OWNER) == 200
    listed = await (await client.get("/api/admin/lockouts", headers=admin_headers)).get_json()
    assert not [r for r in listed["data"] if r["user_id"] == account.id]
