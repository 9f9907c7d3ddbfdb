"""Self-service account over the served app: password change, sessions and their revocation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import asyncpg
import pytest

from tests.support.auth import MakeUser, UserLogin, fresh_rate_limit
from tests.support.realtime import connect_socket


@pytest.fixture(name="settings_overrides")
def _settings_overrides(settings_overrides: dict[str, Any]) -> dict[str, Any]:
    return fresh_rate_limit(settings_overrides)


@dataclass
class Browser:
    """A browser-like client signed in through the login endpoint (cookie + CSRF token)."""

    http: aiohttp.ClientSession
    url: str
    csrf: dict[str, str]
    cookie: str

    async def call(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        async with self.http.request(
            method, f"{self.url}{path}", headers=self.csrf, **kwargs
        ) as response:
            return response.status, await response.json()


@pytest.fixture(name="sign_in")
async def _sign_in() -> AsyncIterator[Any]:
    opened: list[aiohttp.ClientSession] = []

    async def sign_in(served: Any, user: UserLogin, password: str | None = None) -> Browser:
        http = aiohttp.ClientSession(
            cookie_jar=aiohttp.CookieJar(unsafe=True),
            headers={"Origin": served.url, "User-Agent": f"test-agent/{len(opened)}"},
        )
        opened.append(http)
        async with http.post(
            f"{served.url}/api/auth/login",
            json={"username": user.username, "password": password or user.password},
        ) as response:
            assert response.status == 200, await response.text()
            meta = (await response.json())["meta"]
        name = served.app.config["SETTINGS"].cookie_name
        cookie = f"{name}={ {c.key: c.value for c in http.cookie_jar}[name] }"
        return Browser(http, served.url, {meta["csrf_header"]: meta["csrf_token"]}, cookie)

    yield sign_in
    for http in opened:
        await http.close()


async def _status(served: Any, user: UserLogin, password: str) -> int:
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{served.url}/api/auth/login",
            json={"username": user.username, "password": password},
        ) as response,
    ):
        return response.status


async def test_password_change_keeps_this_session_and_ends_the_others(
    served: Any, make_user: MakeUser, sign_in: Any
) -> None:
    user = await make_user()
    here = await sign_in(served, user)
    there = await sign_in(served, user)
    socket, gone = await connect_socket(served.url, headers={"Cookie": there.cookie})

    status, body = await here.call(
        "PUT",
        "/api/user/password",
        json={"current_password": "not it", "new_password": "a-new-password-1"},
    )
    assert (status, body["code"]) == (403, "wrong_password")
    status, body = await here.call(
        "PUT", "/api/user/password", json={"current_password": user.password, "new_password": "x"}
    )
    assert status == 400

    status, body = await here.call(
        "PUT",
        "/api/user/password",
        json={"current_password": user.password, "new_password": "a-new-password-1"},
    )
    assert status == 200, body
    assert body["data"] == {"changed": True, "other_sessions_revoked": 1}
    await asyncio.wait_for(gone.wait(), 5)  # the other browser's socket is dropped
    assert (await there.call("GET", "/api/auth/me"))[0] == 401
    assert (await here.call("GET", "/api/auth/me"))[0] == 200
    assert await _status(served, user, user.password) == 401
    assert await _status(served, user, "a-new-password-1") == 200
    await socket.disconnect()


async def test_sessions_are_listed_and_revoking_one_signs_it_out(
    served: Any, make_user: MakeUser, sign_in: Any, auth_pool: asyncpg.Pool
) -> None:
    user = await make_user()
    here = await sign_in(served, user)
    there = await sign_in(served, user)
    socket, gone = await connect_socket(served.url, headers={"Cookie": there.cookie})

    status, body = await here.call("GET", "/api/user/sessions")
    assert status == 200
    sessions = body["data"]
    assert len(sessions) == 2
    current = [s for s in sessions if s["current"]]
    other = [s for s in sessions if not s["current"]]
    assert len(current) == 1 and len(other) == 1
    assert {s["user_agent"] for s in sessions} == {"test-agent/0", "test-agent/1"}
    # An unknown client is named by its header (no made-up browser).
    assert {s["browser"] for s in sessions} == {"test-agent/0", "test-agent/1"}
    assert all(
        s["address"] == "127.0.0.1" and s["created_at"] and s["last_seen_at"] for s in sessions
    )
    # The listed id is not the cookie's secret session id.
    async with auth_pool.acquire() as conn:
        raw = await conn.fetch("SELECT id FROM user_sessions WHERE user_id = $1", user.id)
    assert not {r["id"] for r in raw} & {s["id"] for s in sessions}

    status, body = await here.call("DELETE", f"/api/user/sessions/{other[0]['id']}")
    assert (status, body["data"]["revoked"]) == (200, True)
    await asyncio.wait_for(gone.wait(), 5)
    assert (await there.call("GET", "/api/auth/me"))[0] == 401
    assert (await here.call("GET", "/api/auth/me"))[0] == 200
    status, body = await here.call("GET", "/api/user/sessions")
    assert [s["current"] for s in body["data"]] == [True]
    # Gone already, or somebody else's: 404 alike.
    assert (await here.call("DELETE", f"/api/user/sessions/{other[0]['id']}"))[0] == 404
    stranger = await sign_in(served, await make_user())
    status, _ = await stranger.call("DELETE", f"/api/user/sessions/{current[0]['id']}")
    assert status == 404
    assert (await here.call("GET", "/api/auth/me"))[0] == 200
    await socket.disconnect()


async def test_account_changes_need_the_csrf_token(
    served: Any, make_user: MakeUser, sign_in: Any
) -> None:
    user = await make_user()
    here = await sign_in(served, user)
    # From another site, without the session's CSRF token: refused, nothing changes.
    async with here.http.put(
        f"{served.url}/api/user/password",
        json={"current_password": user.password, "new_password": "a-new-password-1"},
        headers={"Origin": "https://evil.example"},
    ) as response:
        assert response.status == 403
    assert await _status(served, user, user.password) == 200
