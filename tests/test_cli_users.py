"""`tickstock users ...`: the real command in a subprocess against the test database."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import pytest

from tests.support.auth import MakeToken, MakeUser, fresh_rate_limit, login_status, unique_username
from tests.support.env import session_env

pytestmark = pytest.mark.ops  # each test runs the real command in a child process


@pytest.fixture(name="settings_overrides")
def _settings_overrides(settings_overrides: dict[str, Any]) -> dict[str, Any]:
    return fresh_rate_limit(settings_overrides)


async def tickstock(
    settings_overrides: dict[str, Any], *args: str, stdin: str = ""
) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tickstock",
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=session_env(settings_overrides),
    )
    out, err = await asyncio.wait_for(process.communicate(stdin.encode()), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


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
    assert await login_status(client, name, "a cli password") == 200
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
    assert await login_status(client, account.username, account.password) == 401
    assert await login_status(client, account.username, "the new password") == 200

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
    assert await login_status(client, account.username, account.password) == 401
