"""User administration: admins only, create/list/update, revocation and the last-admin rule."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from tests.support.auth import (
    MakeToken,
    MakeUser,
    UserLogin,
    fresh_rate_limit,
    login_status,
    unique_username,
)


@pytest.fixture(name="settings_overrides")
def _settings_overrides(settings_overrides: dict[str, Any]) -> dict[str, Any]:
    return fresh_rate_limit(settings_overrides)


async def test_admin_routes_need_admin(
    client: Any, auth_headers: dict[str, str], user: UserLogin
) -> None:
    calls = [
        ("GET", "/api/admin/users", None),
        ("POST", "/api/admin/users", {"username": unique_username(), "password": "x" * 12}),
        ("PATCH", f"/api/admin/users/{user.id}", {"role": "admin"}),
    ]
    for method, path, body in calls:
        anonymous = await client.open(path, method=method, json=body)
        assert anonymous.status_code == 401
        forbidden = await client.open(path, method=method, json=body, headers=auth_headers)
        assert forbidden.status_code == 403, path
        assert (await forbidden.get_json())["code"] == "forbidden"


async def test_create_user_then_login(client: Any, admin_headers: dict[str, str]) -> None:
    name = unique_username("New")
    response = await client.post(
        "/api/admin/users",
        json={"username": name, "password": "a fine password", "role": "user"},
        headers=admin_headers,
    )
    assert response.status_code == 201
    body = await response.get_json()
    assert body["status"] == "success"
    assert body["data"]["username"] == name and body["data"]["role"] == "user"
    assert "password" not in str(body) and "hash" not in str(body)
    assert await login_status(client, name.lower(), "a fine password") == 200

    duplicate = await client.post(
        "/api/admin/users",
        json={"username": name.upper(), "password": "another password"},
        headers=admin_headers,
    )
    assert duplicate.status_code == 409
    assert (await duplicate.get_json())["code"] == "username_taken"


@pytest.mark.parametrize(
    "body",
    [
        {"username": "a", "password": "long enough pw"},
        {"username": "has space", "password": "long enough pw"},
        {"username": "ok-name", "password": "short"},
        {"username": "ok-name", "password": "long enough pw", "role": "root"},
        {"username": "ok-name", "password": "long enough pw", "extra": 1},
    ],
)
async def test_create_user_validation(
    client: Any, admin_headers: dict[str, str], body: dict[str, Any]
) -> None:
    response = await client.post("/api/admin/users", json=body, headers=admin_headers)
    assert response.status_code == 400
    assert (await response.get_json())["code"] == "validation_error"


async def test_list_users_is_paginated(
    client: Any, admin_headers: dict[str, str], make_user: MakeUser
) -> None:
    for _ in range(3):
        await make_user()
    seen: list[int] = []
    cursor = None
    while True:
        query = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        response = await client.get("/api/admin/users", query_string=query, headers=admin_headers)
        assert response.status_code == 200
        body = await response.get_json()
        assert len(body["data"]) <= 2
        seen += [row["id"] for row in body["data"]]
        cursor = body["meta"]["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(set(seen), reverse=True) and len(seen) >= 4  # newest first
    row = body["data"][-1]
    assert {"id", "username", "role", "active", "created_at", "locked_until"} <= set(row)
    newest = await make_user(username=unique_username("FindMe"))
    found = await client.get(
        "/api/admin/users", query_string={"q": "findme"}, headers=admin_headers
    )
    rows = (await found.get_json())["data"]
    assert rows[0]["id"] == newest.id and all("findme" in r["username"].lower() for r in rows)
    bad = await client.get("/api/admin/users?cursor=!!", headers=admin_headers)
    assert bad.status_code == 400
    too_many = await client.get("/api/admin/users?limit=501", headers=admin_headers)
    assert too_many.status_code == 400


async def test_patch_role_and_unknown_user(
    client: Any, admin_headers: dict[str, str], user: UserLogin, make_token: MakeToken
) -> None:
    response = await client.patch(
        f"/api/admin/users/{user.id}", json={"role": "admin"}, headers=admin_headers
    )
    assert response.status_code == 200
    assert (await response.get_json())["data"]["role"] == "admin"
    # The new role applies to the user's next requests.
    promoted = {"Authorization": f"Bearer {await make_token(user)}"}
    assert (await client.get("/api/admin/users", headers=promoted)).status_code == 200

    missing = await client.patch(
        "/api/admin/users/999999999", json={"active": True}, headers=admin_headers
    )
    assert missing.status_code == 404
    empty = await client.patch(f"/api/admin/users/{user.id}", json={}, headers=admin_headers)
    assert empty.status_code == 400


async def test_deactivation_revokes_sessions(
    client: Any, admin_headers: dict[str, str], user: UserLogin, make_token: MakeToken
) -> None:
    headers = {"Authorization": f"Bearer {await make_token(user)}"}
    assert (await client.get("/api/auth/me", headers=headers)).status_code == 200
    response = await client.patch(
        f"/api/admin/users/{user.id}", json={"active": False}, headers=admin_headers
    )
    assert response.status_code == 200
    assert (await client.get("/api/auth/me", headers=headers)).status_code == 401
    assert await login_status(client, user.username, user.password) == 401
    # Re-activation does not bring the old token back, but the password works again.
    await client.patch(f"/api/admin/users/{user.id}", json={"active": True}, headers=admin_headers)
    assert (await client.get("/api/auth/me", headers=headers)).status_code == 401
    assert await login_status(client, user.username, user.password) == 200


async def test_password_change_revokes_sessions(
    client: Any, admin_headers: dict[str, str], user: UserLogin, make_token: MakeToken
) -> None:
    headers = {"Authorization": f"Bearer {await make_token(user)}"}
    response = await client.patch(
        f"/api/admin/users/{user.id}",
        json={"password": "a brand new password"},
        headers=admin_headers,
    )
    assert response.status_code == 200
    assert (await response.get_json())["meta"]["sessions_revoked"] is True
    assert (await client.get("/api/auth/me", headers=headers)).status_code == 401
    assert await login_status(client, user.username, user.password) == 401
    assert await login_status(client, user.username, "a brand new password") == 200


@pytest.fixture(name="sole_admin")
async def _sole_admin(make_user: MakeUser, auth_pool: asyncpg.Pool) -> AsyncIterator[UserLogin]:
    """An admin who is, for this test, the only active one (others restored afterwards)."""
    admin = await make_user("admin")
    async with auth_pool.acquire() as conn:
        others = await conn.fetch(
            "UPDATE users SET active = false WHERE role = 'admin' AND active AND id <> $1 "
            "RETURNING id",
            admin.id,
        )
    try:
        yield admin
    finally:
        async with auth_pool.acquire() as conn:
            await conn.execute(
                "UPDATE users SET active = true WHERE id = ANY($1)", [r["id"] for r in others]
            )


async def test_last_admin_cannot_be_demoted_or_deactivated(
    client: Any, sole_admin: UserLogin, make_token: MakeToken, make_user: MakeUser
) -> None:
    headers = {"Authorization": f"Bearer {await make_token(sole_admin)}"}
    for change in ({"role": "user"}, {"active": False}, {"role": "user", "active": False}):
        response = await client.patch(
            f"/api/admin/users/{sole_admin.id}", json=change, headers=headers
        )
        assert response.status_code == 409, change
        assert (await response.get_json())["code"] == "last_admin"
    assert (await client.get("/api/admin/users", headers=headers)).status_code == 200

    # With a second admin, the first may step down.
    second = await make_user("admin")
    response = await client.patch(
        f"/api/admin/users/{sole_admin.id}", json={"role": "user"}, headers=headers
    )
    assert response.status_code == 200
    assert (await client.get("/api/admin/users", headers=headers)).status_code == 403
    # ...and now the second is the last one.
    second_headers = {"Authorization": f"Bearer {await make_token(second)}"}
    response = await client.patch(
        f"/api/admin/users/{second.id}", json={"active": False}, headers=second_headers
    )
    assert response.status_code == 409


async def test_two_admins_demoting_each_other_at_once_leave_one(
    client: Any, sole_admin: UserLogin, make_user: MakeUser, make_token: MakeToken
) -> None:
    other = await make_user("admin")
    first = {"Authorization": f"Bearer {await make_token(sole_admin)}"}
    second = {"Authorization": f"Bearer {await make_token(other)}"}
    results = await asyncio.gather(
        client.patch(f"/api/admin/users/{other.id}", json={"role": "user"}, headers=first),
        client.patch(f"/api/admin/users/{sole_admin.id}", json={"role": "user"}, headers=second),
    )
    assert sorted(r.status_code for r in results) in ([200, 403], [200, 409])
