"""`tickstock users ...`: the real command in a subprocess against the test database."""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

import pytest

from tests.auth_fixtures import MakeToken, MakeUser, fresh_rate_limit, unique_username


@pytest.fixture(name="settings_overrides")
def _settings_overrides(settings_overrides: dict[str, Any]) -> dict[str, Any]:
    return fresh_rate_limit(settings_overrides)


async def tickstock(
    settings_overrides: dict[str, Any], *args: str, stdin: str = ""
) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKSTOCK_")}
    env.update(
        TICKSTOCK_ENV="test",
        TICKSTOCK_DATABASE_URL=settings_overrides["database_url"],
        TICKSTOCK_REDIS_URL=settings_overrides["redis_url"],
        TICKSTOCK_KEY_PREFIX=settings_overrides["key_prefix"],
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tickstock",
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    out, err = await asyncio.wait_for(process.communicate(stdin.encode()), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def _login(client: Any, username: str, password: str) -> int:
    response = await client.post(
        "/api/auth/login", json={"username": username, "password": password}
    )
    status: int = response.status_code
    return status


async def test_create_with_password_stdin_then_login(
    settings_overrides: dict[str, Any], client: Any
) -> None:
    name = unique_username("cli")
    code, out, err = await tickstock(
        settings_overrides,
        "users",
        "create",
        name,
        "--admin",
        "--password-stdin",
        stdin="a cli password\n",
    )
    assert code == 0, err
    assert f"created admin {name!r}" in out
    assert "a cli password" not in out + err
    assert await _login(client, name, "a cli password") == 200
    me = await (await client.get("/api/auth/me")).get_json()
    assert me["data"]["role"] == "admin"

    again, _, err = await tickstock(
        settings_overrides,
        "users",
        "create",
        name.upper(),
        "--password-stdin",
        stdin="whatever pw\n",
    )
    assert again != 0 and "already exists" in err


async def test_create_refuses_short_password_and_bad_name(
    settings_overrides: dict[str, Any],
) -> None:
    code, _, err = await tickstock(
        settings_overrides,
        "users",
        "create",
        unique_username(),
        "--password-stdin",
        stdin="short\n",
    )
    assert code != 0 and "password must be" in err
    code, _, err = await tickstock(
        settings_overrides, "users", "create", "bad name", "--password-stdin", stdin="long enough\n"
    )
    assert code != 0 and "username" in err
    # The password is never an argument.
    code, _, err = await tickstock(
        settings_overrides, "users", "create", unique_username(), "--password", "long enough"
    )
    assert code != 0 and "No such option" in err


async def test_set_password_revokes_sessions(
    settings_overrides: dict[str, Any], client: Any, make_user: MakeUser, make_token: MakeToken
) -> None:
    account = await make_user()
    bearer = {"Authorization": f"Bearer {await make_token(account)}"}
    assert (await client.get("/api/auth/me", headers=bearer)).status_code == 200
    code, out, err = await tickstock(
        settings_overrides,
        "users",
        "set-password",
        account.username,
        "--password-stdin",
        stdin="the new password\n",
    )
    assert code == 0, err
    assert "1 session(s) ended" in out
    await asyncio.sleep(1.1)  # past the per-process session cache
    assert (await client.get("/api/auth/me", headers=bearer)).status_code == 401
    assert await _login(client, account.username, account.password) == 401
    assert await _login(client, account.username, "the new password") == 200

    code, _, err = await tickstock(
        settings_overrides,
        "users",
        "set-password",
        "no-such-user",
        "--password-stdin",
        stdin="the new password\n",
    )
    assert code != 0 and "no user named" in err


async def test_deactivate(
    settings_overrides: dict[str, Any], client: Any, make_user: MakeUser
) -> None:
    account = await make_user()
    code, out, err = await tickstock(settings_overrides, "users", "deactivate", account.username)
    assert code == 0, err
    assert "deactivated" in out
    assert await _login(client, account.username, account.password) == 401
