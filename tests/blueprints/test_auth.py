"""Login, logout, sessions, API tokens, lockout, rate limit, CSRF and the login page."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import aiohttp
import pytest
from quart import Quart

from tests.support.auth import MakeToken, MakeUser, UserLogin, fresh_rate_limit, post_login
from tests.support.env import free_port
from tests.support.realtime import connect_socket
from tickstock.app import create_app
from tickstock.auth import login_required


@pytest.fixture(name="settings_overrides")
def _settings_overrides(settings_overrides: dict[str, Any]) -> dict[str, Any]:
    return fresh_rate_limit(settings_overrides)


def _cookie_name(app: Quart) -> str:
    name: str = app.config["SETTINGS"].cookie_name
    return name


async def _login_served(http: aiohttp.ClientSession, served: Any, user: UserLogin) -> str:
    """Log ``http`` in through the login endpoint of a served app; returns its Cookie header."""
    async with http.post(
        f"{served.url}/api/auth/login",
        json={"username": user.username, "password": user.password},
    ) as response:
        assert response.status == 200
    name = _cookie_name(served.app)
    return f"{name}={ {c.key: c.value for c in http.cookie_jar}[name] }"


# --------------------------------------------------------------------------- login, me, logout


async def test_login_me_logout_with_cookie(app: Quart, client: Any, user: UserLogin) -> None:
    response = await post_login(client, user.username.upper(), user.password)
    assert response.status_code == 200
    body = await response.get_json()
    assert body["status"] == "success"
    assert body["data"] == {
        "id": user.id,
        "username": user.username,
        "role": "user",
        "active": True,
    }
    assert body["meta"]["auth"] == "cookie" and body["meta"]["csrf_token"]
    set_cookie = response.headers["Set-Cookie"]
    assert set_cookie.startswith(f"{_cookie_name(app)}=")
    assert "HttpOnly" in set_cookie and "SameSite=Lax" in set_cookie
    assert "Secure" not in set_cookie  # test env over plain http

    me = await client.get("/api/auth/me")
    assert me.status_code == 200
    assert (await me.get_json())["data"]["username"] == user.username

    out = await client.post("/api/auth/logout", headers={"Origin": "http://localhost"})
    assert out.status_code == 200
    assert (await out.get_json())["data"] == {"logged_out": True}
    again = await client.get("/api/auth/me")
    assert again.status_code == 401
    assert await again.get_json() == {
        "status": "error",
        "message": "login required",
        "code": "unauthorized",
    }


async def test_secure_cookie_outside_development(
    settings_overrides: dict[str, Any], user: UserLogin
) -> None:
    app = create_app({**settings_overrides, "cookie_secure": True})
    async with app.test_app():
        client = app.test_client()
        response = await client.post(
            "/api/auth/login",
            json={"username": user.username, "password": user.password},
            scheme="https",
        )
    assert response.status_code == 200
    assert "Secure" in response.headers["Set-Cookie"]


async def test_copied_cookie_stops_working_after_logout(served: Any, user: UserLogin) -> None:
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as http:
        headers = {"Cookie": await _login_served(http, served, user)}
        async with aiohttp.ClientSession() as copy:
            async with copy.get(f"{served.url}/api/auth/me", headers=headers) as response:
                assert response.status == 200
            async with http.post(
                f"{served.url}/api/auth/logout", headers={"Origin": served.url}
            ) as response:
                assert response.status == 200
            async with copy.get(f"{served.url}/api/auth/me", headers=headers) as response:
                assert response.status == 401
                assert (await response.json())["code"] == "unauthorized"
                # The dead cookie is cleared in the browser, too.
                cleared = response.headers["Set-Cookie"]
                assert cleared.startswith(f"{_cookie_name(served.app)}=") and "Max-Age=0" in cleared


async def test_wrong_methods_and_bodies(client: Any) -> None:
    response = await client.post("/api/auth/login", json=["not", "an", "object"])
    assert response.status_code == 400
    assert (await response.get_json())["code"] == "validation_error"
    response = await client.post("/api/auth/login", json={"username": "x"})
    assert response.status_code == 400
    body = await response.get_json()
    assert body["code"] == "validation_error" and "password" in body["message"]


# --------------------------------------------------------------------------- access


async def test_protected_route_401_then_200_with_login(
    client: Any, user: UserLogin, login_client: Any, auth_headers: dict[str, str]
) -> None:
    assert (await client.get("/api/auth/me")).status_code == 401
    assert (await client.get("/api/auth/me", headers=auth_headers)).status_code == 200
    await login_client(client, user)
    assert (await client.get("/api/auth/me")).status_code == 200


async def test_non_admin_gets_403_on_admin_route(
    client: Any, auth_headers: dict[str, str], admin_headers: dict[str, str]
) -> None:
    response = await client.get("/api/admin/users", headers=auth_headers)
    assert response.status_code == 403
    assert (await response.get_json())["code"] == "forbidden"
    assert (await client.get("/api/admin/users", headers=admin_headers)).status_code == 200


async def test_bad_bearer_tokens_are_401(
    client: Any, make_token: MakeToken, user: UserLogin
) -> None:
    token = await make_token(user)
    session_id, _, secret = token.partition(".")
    for bad in (
        f"{session_id}.{secret[:-2]}xx",  # wrong secret
        session_id,  # no secret
        "nonsense.value",
        "",
    ):
        response = await client.get("/api/auth/me", headers={"Authorization": f"Bearer {bad}"})
        assert response.status_code == 401, bad
    # A cookie session's id is not a token.
    response = await client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200


async def test_page_route_redirects_to_login_with_next(settings_overrides: dict[str, Any]) -> None:
    app = create_app(settings_overrides)

    @app.get("/private/report")
    @login_required
    async def private_report() -> str:
        return "secret"

    async with app.test_app():
        client = app.test_client()
        response = await client.get("/private/report?day=1")
        api = await client.get("/private/report", headers={"Accept": "application/json"})
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=%2Fprivate%2Freport%3Fday%3D1"
    assert api.status_code == 401 and (await api.get_json())["code"] == "unauthorized"


# --------------------------------------------------------------------------- tokens


async def test_token_lifecycle(client: Any, user: UserLogin, login_client: Any) -> None:
    csrf = await login_client(client, user)
    created = await client.post(
        "/api/auth/tokens", json={"name": "notebook", "expires_in_days": 30}, headers=csrf
    )
    assert created.status_code == 201
    data = (await created.get_json())["data"]
    token_id, token = data["id"], data["token"]
    assert token.startswith(f"{token_id}.") and data["expires_at"]

    bearer = {"Authorization": f"Bearer {token}"}
    me = await client.get("/api/auth/me", headers=bearer)
    assert me.status_code == 200
    assert (await me.get_json())["meta"]["auth"] == "token"

    listed = await (await client.get("/api/auth/tokens")).get_json()
    assert [t["id"] for t in listed["data"]] == [token_id]
    assert "token" not in listed["data"][0] and token.split(".")[1] not in str(listed)

    deleted = await client.delete(f"/api/auth/tokens/{token_id}", headers=csrf)
    assert deleted.status_code == 200
    assert (await client.get("/api/auth/me", headers=bearer)).status_code == 401
    assert (await (await client.get("/api/auth/tokens")).get_json())["data"] == []


async def test_cannot_delete_someone_elses_token(
    client: Any, make_user: MakeUser, make_token: MakeToken
) -> None:
    owner, other = await make_user(), await make_user()
    token = await make_token(owner)
    token_id = token.split(".")[0]
    other_headers = {"Authorization": f"Bearer {await make_token(other)}"}
    response = await client.delete(f"/api/auth/tokens/{token_id}", headers=other_headers)
    assert response.status_code == 404
    assert (await response.get_json())["code"] == "token_not_found"
    missing = await client.delete("/api/auth/tokens/does-not-exist", headers=other_headers)
    assert missing.status_code == 404
    still = await client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert still.status_code == 200


async def test_token_body_is_validated(client: Any, auth_headers: dict[str, str]) -> None:
    for body in ({}, {"name": ""}, {"name": "x", "expires_in_days": 0}, {"name": "x", "y": 1}):
        response = await client.post("/api/auth/tokens", json=body, headers=auth_headers)
        assert response.status_code == 400, body
        assert (await response.get_json())["code"] == "validation_error"


# --------------------------------------------------------------------------- revocation + sockets


async def test_logout_disconnects_the_sessions_socket(served: Any, user: UserLogin) -> None:
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as http:
        cookie = await _login_served(http, served, user)
        sio, gone = await connect_socket(served.url, headers={"Cookie": cookie})
        revoked: list[Any] = []
        sio.on("session_revoked", revoked.append)
        try:
            assert sio.connected
            started = time.monotonic()
            async with http.post(
                f"{served.url}/api/auth/logout", headers={"Origin": served.url}
            ) as response:
                assert response.status == 200
            await asyncio.wait_for(gone.wait(), 3)
            assert time.monotonic() - started < 1.0
            assert revoked == [{"reason": "revoked"}]
            async with http.get(
                f"{served.url}/api/auth/me", headers={"Cookie": cookie}
            ) as response:
                assert response.status == 401
        finally:
            await sio.disconnect()


async def test_token_deletion_disconnects_its_socket_only(
    served: Any, user: UserLogin, make_token: MakeToken
) -> None:
    doomed, kept = await make_token(user, name="doomed"), await make_token(user, name="kept")
    sio_doomed, gone_doomed = await connect_socket(served.url, auth={"token": doomed})
    sio_kept, gone_kept = await connect_socket(served.url, auth={"token": kept})
    try:
        async with aiohttp.ClientSession() as http:
            headers = {"Authorization": f"Bearer {kept}"}
            async with http.delete(
                f"{served.url}/api/auth/tokens/{doomed.split('.')[0]}", headers=headers
            ) as response:
                assert response.status == 200
            await asyncio.wait_for(gone_doomed.wait(), 3)
            async with http.get(
                f"{served.url}/api/auth/me", headers={"Authorization": f"Bearer {doomed}"}
            ) as response:
                assert response.status == 401
        await asyncio.sleep(0.2)
        assert not gone_kept.is_set() and sio_kept.connected
    finally:
        await sio_doomed.disconnect()
        await sio_kept.disconnect()


# --------------------------------------------------------------------------- lockout


async def test_repeated_failures_lock_the_account_without_revealing_it(
    settings_overrides: dict[str, Any], make_user: MakeUser
) -> None:
    account = await make_user(password="correct horse battery")
    app = create_app({**settings_overrides, "login_lockout_seconds": 3})
    async with app.test_app():
        client = app.test_client()
        answers = []
        for _ in range(6):
            response = await post_login(client, account.username, "wrong password")
            answers.append((response.status_code, await response.get_json()))
        locked = await post_login(client, account.username, account.password)
        answers.append((locked.status_code, await locked.get_json()))

        unknown = []
        for _ in range(7):
            response = await post_login(client, f"nobody-{uuid.uuid4().hex[:8]}", "wrong password")
            unknown.append((response.status_code, await response.get_json()))

        # Identical answers: wrong password, locked with the right password, unknown user.
        assert {(s, b["code"], b["message"]) for s, b in answers + unknown} == {
            (401, "invalid_credentials", answers[0][1]["message"])
        }
        assert "Set-Cookie" not in locked.headers

        await asyncio.sleep(3.2)
        unlocked = await post_login(client, account.username, account.password)
        assert unlocked.status_code == 200


async def test_unknown_user_costs_as_much_as_a_wrong_password(
    client: Any, make_user: MakeUser
) -> None:
    account = await make_user(password="another long password")

    async def timed(username: str) -> float:
        # CPU time of this process (argon2 runs in its threads), not wall time: a busy machine
        # cannot make one path look cheaper than the other.
        started = time.process_time()
        response = await post_login(client, username, "not the password")
        assert response.status_code == 401
        return time.process_time() - started

    await timed("warm-up-unknown")
    known = sorted([await timed(account.username) for _ in range(3)])[1]
    unknown = sorted([await timed(f"ghost{uuid.uuid4().hex[:6]}") for _ in range(3)])[1]
    # Both paths run one argon2 verification; without it the unknown path would be ~100x faster.
    assert unknown > known * 0.5


async def test_inactive_user_cannot_log_in(client: Any, make_user: MakeUser) -> None:
    account = await make_user(active=False)
    response = await post_login(client, account.username, account.password)
    assert response.status_code == 401
    assert (await response.get_json())["code"] == "invalid_credentials"


# --------------------------------------------------------------------------- rate limit


async def test_login_rate_limited_per_address(
    settings_overrides: dict[str, Any], key_prefix: str
) -> None:
    overrides = {
        **settings_overrides,
        "login_rate_per_minute": 3,
        "key_prefix": f"{key_prefix}:rate-{uuid.uuid4().hex[:6]}",
    }
    app = create_app(overrides)
    async with app.test_app():
        client = app.test_client()
        codes = [(await post_login(client, "someone", "pw")).status_code for _ in range(4)]
        limited = await post_login(client, "someone", "pw")
    assert codes[:3] == [401, 401, 401]
    assert codes[3] == 429 and limited.status_code == 429
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert (await limited.get_json())["code"] == "too_many_requests"


@pytest.mark.parametrize("redis_up", [True, pytest.param(False, marks=pytest.mark.fault)])
async def test_rate_limit_has_no_burst_at_the_minute_boundary(
    settings_overrides: dict[str, Any], monkeypatch: pytest.MonkeyPatch, redis_up: bool
) -> None:
    overrides = {**settings_overrides, "login_rate_per_minute": 3}
    if not redis_up:
        overrides["redis_url"] = f"redis://127.0.0.1:{free_port()}/0"
    app = create_app(overrides)
    minute = (int(time.time() // 60) + 10) * 60  # a window no other attempt has touched
    clock = [minute + 59.5]
    monkeypatch.setattr("tickstock.auth.ratelimit._now", lambda: clock[0])
    async with app.test_app():
        client = app.test_client()
        before = [(await post_login(client, "someone", "pw")).status_code for _ in range(3)]
        clock[0] = minute + 60.5  # a new minute: a fixed window would allow 3 more at once
        after = (await post_login(client, "someone", "pw")).status_code
        clock[0] = minute + 60 + 45  # most of the old minute has slid out of the window
        later = (await post_login(client, "someone", "pw")).status_code
    assert before == [401, 401, 401]
    assert after == 429
    assert later == 401


@pytest.mark.fault
async def test_rate_limit_falls_back_to_process_when_redis_is_down(
    settings_overrides: dict[str, Any], user: UserLogin
) -> None:
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    app = create_app({**settings_overrides, "redis_url": dead_redis, "login_rate_per_minute": 2})
    async with app.test_app():
        client = app.test_client()
        first = await post_login(client, user.username, user.password)
        second = await post_login(client, user.username, "wrong")
        third = await post_login(client, user.username, user.password)
    assert first.status_code == 200  # logins keep working without Redis
    assert second.status_code == 401
    assert third.status_code == 429


# --------------------------------------------------------------------------- CSRF


async def test_cookie_writes_need_same_origin_or_csrf_token(
    client: Any, user: UserLogin, login_client: Any, make_token: MakeToken
) -> None:
    csrf = await login_client(client, user)
    body = {"name": "t"}
    for headers in (
        {},
        {"Origin": "https://evil.example"},
        {"Referer": "https://evil.example/page"},
        {"Origin": "null"},
        {"X-CSRF-Token": "forged"},
    ):
        response = await client.post("/api/auth/tokens", json=body, headers=headers)
        assert response.status_code == 403, headers
        assert (await response.get_json())["code"] == "csrf_failed"
    for headers in (
        {"Origin": csrf["Origin"]},
        {"Referer": "http://localhost/dashboard"},
        {"X-CSRF-Token": csrf["X-CSRF-Token"]},
    ):
        response = await client.post("/api/auth/tokens", json=body, headers=headers)
        assert response.status_code == 201, headers
    # Reads need no check; Bearer requests are exempt (no ambient credential to abuse).
    assert (await client.get("/api/auth/me")).status_code == 200
    bearer = {"Authorization": f"Bearer {await make_token(user)}"}
    assert (await client.post("/api/auth/tokens", json=body, headers=bearer)).status_code == 201


async def test_cross_site_login_is_refused(client: Any, user: UserLogin) -> None:
    response = await client.post(
        "/api/auth/login",
        json={"username": user.username, "password": user.password},
        headers={"Origin": "https://evil.example"},
    )
    assert response.status_code == 403


# --------------------------------------------------------------------------- login page


async def test_login_page_is_an_accessible_form(client: Any) -> None:
    response = await client.get("/login?next=/patterns")
    assert response.status_code == 200
    html = await response.get_data(as_text=True)
    assert '<label for="username">' in html and 'id="username"' in html
    assert '<label for="password">' in html and 'type="password"' in html
    assert 'name="next" value="/patterns"' in html
    assert "/static/css/login.css" in html
    css = await client.get("/static/css/login.css")
    assert css.status_code == 200


SAME_SITE = {"Origin": "http://localhost"}  # what a browser sends with the form


@pytest.mark.parametrize(
    ("next_value", "expected"),
    [
        ("https://evil.example/", "/"),
        ("//evil.example", "/"),
        ("/\\evil.example", "/"),
        ("javascript:alert(1)", "/"),
        ("/patterns?tier=daily", "/patterns?tier=daily"),
    ],
)
async def test_form_login_redirects_only_on_site(
    client: Any, user: UserLogin, next_value: str, expected: str
) -> None:
    page = await client.get("/login", query_string={"next": next_value})
    assert f'name="next" value="{expected}"' in (await page.get_data(as_text=True)).replace(
        "&amp;", "&"
    )
    response = await client.post(
        "/login",
        form={"username": user.username, "password": user.password, "next": next_value},
        headers=SAME_SITE,
    )
    assert response.status_code == 303
    assert response.headers["Location"] == expected


async def test_form_login_failure_shows_the_form_again(client: Any, user: UserLogin) -> None:
    response = await client.post(
        "/login",
        form={"username": user.username, "password": "nope", "next": "/x"},
        headers=SAME_SITE,
    )
    assert response.status_code == 401
    html = await response.get_data(as_text=True)
    assert 'role="alert"' in html and "invalid username or password" in html
    assert f'value="{user.username}"' in html


async def test_page_logout_redirects_to_login(client: Any, user: UserLogin) -> None:
    await client.post(
        "/login", form={"username": user.username, "password": user.password}, headers=SAME_SITE
    )
    assert (await client.get("/api/auth/me")).status_code == 200
    response = await client.post("/logout", headers={"Origin": "http://localhost"})
    assert response.status_code == 303 and response.headers["Location"] == "/login"
    assert (await client.get("/api/auth/me")).status_code == 401
    # A logged-in browser visiting /login goes on to ``next``.
    await client.post(
        "/login", form={"username": user.username, "password": user.password}, headers=SAME_SITE
    )
    page = await client.get("/login?next=/patterns")
    assert page.status_code == 303 and page.headers["Location"] == "/patterns"
