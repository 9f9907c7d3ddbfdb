"""Auth fixtures for every test module (a pytest plugin loaded by ``tests/conftest.py``).

- ``make_user(role="user", *, username=None, password=None, active=True)`` -> ``UserLogin``
  (a ``(user, password)`` named tuple); ``user`` and ``admin`` are fresh accounts.
- ``make_token(user, name=..., expires_in_days=None)`` -> an API token string; ``auth_headers`` /
  ``admin_headers`` are ``{"Authorization": "Bearer ..."}`` for a fresh user / admin.
- ``login_client(client, user)`` logs a Quart test client in with a session cookie and returns
  the headers that state-changing requests need (``Origin`` and ``X-CSRF-Token``).
- ``served_session(served, user)`` -> an ``aiohttp.ClientSession`` logged in with a cookie on a
  served app (sending ``Origin`` on every request); closed after the test.
- ``socket_token(user)`` -> a token for ``socketio.AsyncClient().connect(url,
  auth={"token": t}, transports=["websocket"])``.

Helpers: ``post_login(client, username, password)`` posts to ``/api/auth/login`` with a Quart
test client (``login_status`` gives just its status code); ``new_api_token(dsn)`` makes a fresh
account and an API token in any database, also one a test started itself.

Sessions and tokens are created directly in the database (exactly what a login records), so
fixtures never spend the per-address login rate limit that the login tests exercise.
"""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, NamedTuple, Protocol

import aiohttp
import asyncpg
import pytest
from quart import Quart
from yarl import URL

from tickstock.auth import (
    Role,
    User,
    create_session,
    csrf_token,
    ensure_user,
    get_auth,
    hash_password,
)
from tickstock.queries.users import insert_user

SHARED_PASSWORD = "test-pw-" + secrets.token_urlsafe(12)


class UserLogin(NamedTuple):
    """A test account and its password."""

    user: User
    password: str

    @property
    def id(self) -> int:
        return self.user.id

    @property
    def username(self) -> str:
        return self.user.username


class MakeUser(Protocol):
    def __call__(
        self,
        role: Role = "user",
        *,
        username: str | None = None,
        password: str | None = None,
        active: bool = True,
    ) -> Awaitable[UserLogin]: ...


class MakeToken(Protocol):
    def __call__(
        self, user: UserLogin | User, *, name: str = "test", expires_in_days: int | None = None
    ) -> Awaitable[str]: ...


def fresh_rate_limit(settings_overrides: dict[str, Any]) -> dict[str, Any]:
    """Overrides for a test that logs in through the endpoint many times from one address.

    The login rate counter lives in Redis under the key prefix: a prefix of its own per test
    keeps one test's attempts from counting against the next (the limit itself stays on).
    """
    return {
        **settings_overrides,
        "key_prefix": f"{settings_overrides['key_prefix']}:t{uuid.uuid4().hex[:8]}",
    }


def unique_username(prefix: str = "u") -> str:
    return f"{prefix}{uuid.uuid4().hex[:12]}"


async def post_login(client: Any, username: str, password: str, **extra: Any) -> Any:
    """``POST /api/auth/login`` through a Quart test client; returns the response."""
    return await client.post(
        "/api/auth/login", json={"username": username, "password": password, **extra}
    )


async def login_status(client: Any, username: str, password: str) -> int:
    """The status code of a login through a Quart test client."""
    status: int = (await post_login(client, username, password)).status_code
    return status


async def new_api_token(dsn: str, prefix: str = "t") -> str:
    """An API token of a fresh account in the database at ``dsn``."""
    conn = await asyncpg.connect(dsn)
    try:
        user = await ensure_user(conn, f"{prefix}-{uuid.uuid4().hex[:10]}", uuid.uuid4().hex)
        _, token, _ = await create_session(conn, user.id, "token", lifetime=None)
    finally:
        await conn.close()
    assert token is not None
    return token


def _user_id(user: UserLogin | User) -> int:
    return user.user.id if isinstance(user, UserLogin) else user.id


@pytest.fixture(name="auth_pool", scope="session")
async def _auth_pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(database_url, min_size=0, max_size=2)
    assert pool is not None
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture(name="shared_password_hash", scope="session")
async def _shared_password_hash() -> str:
    # One argon2 hash for every fixture user keeps the suite fast; logins still verify it.
    return await hash_password(SHARED_PASSWORD)


@pytest.fixture(name="make_user")
def _make_user(auth_pool: asyncpg.Pool, shared_password_hash: str) -> MakeUser:
    async def make(
        role: Role = "user",
        *,
        username: str | None = None,
        password: str | None = None,
        active: bool = True,
    ) -> UserLogin:
        password_hash = shared_password_hash if password is None else await hash_password(password)
        async with auth_pool.acquire() as conn:
            user = await insert_user(conn, username or unique_username(), password_hash, role)
            if not active:
                await conn.execute("UPDATE users SET active = false WHERE id = $1", user.id)
                user = User(user.id, user.username, user.role, False)
        return UserLogin(user, SHARED_PASSWORD if password is None else password)

    return make


@pytest.fixture(name="user")
async def _user(make_user: MakeUser) -> UserLogin:
    return await make_user()


@pytest.fixture(name="admin")
async def _admin(make_user: MakeUser) -> UserLogin:
    return await make_user("admin")


@pytest.fixture(name="make_token")
def _make_token(auth_pool: asyncpg.Pool) -> MakeToken:
    async def make(
        user: UserLogin | User, *, name: str = "test", expires_in_days: int | None = None
    ) -> str:
        lifetime = dt.timedelta(days=expires_in_days) if expires_in_days else None
        async with auth_pool.acquire() as conn:
            _, token, _ = await create_session(
                conn, _user_id(user), "token", lifetime=lifetime, name=name
            )
        assert token is not None
        return token

    return make


@pytest.fixture(name="socket_token")
def _socket_token(make_token: MakeToken) -> Callable[[UserLogin | User], Awaitable[str]]:
    async def token_for(user: UserLogin | User) -> str:
        return await make_token(user, name="socket")

    return token_for


@pytest.fixture(name="auth_headers")
async def _auth_headers(make_user: MakeUser, make_token: MakeToken) -> dict[str, str]:
    return {"Authorization": f"Bearer {await make_token(await make_user())}"}


@pytest.fixture(name="admin_headers")
async def _admin_headers(make_user: MakeUser, make_token: MakeToken) -> dict[str, str]:
    return {"Authorization": f"Bearer {await make_token(await make_user('admin'))}"}


async def new_cookie_session(
    pool: asyncpg.Pool, app: Quart, user: UserLogin | User
) -> tuple[str, str, str]:
    """A cookie session for ``user``: (session id, cookie value, CSRF token)."""
    settings = app.config["SETTINGS"]
    async with pool.acquire() as conn:
        session_id, _, _ = await create_session(
            conn,
            _user_id(user),
            "cookie",
            lifetime=dt.timedelta(seconds=settings.session_lifetime_seconds),
        )
    quart_auth = get_auth(app).quart_auth
    assert quart_auth is not None
    cookie = quart_auth.dump_token(session_id, app=app)
    async with app.app_context():
        token = csrf_token(session_id)
    return session_id, cookie, token


@pytest.fixture(name="login_client")
def _login_client(
    auth_pool: asyncpg.Pool,
) -> Callable[[Any, UserLogin | User], Awaitable[dict[str, str]]]:
    async def login(client: Any, user: UserLogin | User) -> dict[str, str]:
        app: Quart = client.app
        _, cookie, token = await new_cookie_session(auth_pool, app, user)
        client.set_cookie("localhost", app.config["SETTINGS"].cookie_name, cookie, httponly=True)
        return {"Origin": "http://localhost", "X-CSRF-Token": token}

    return login


@pytest.fixture(name="served_session")
async def _served_session(
    auth_pool: asyncpg.Pool,
) -> AsyncIterator[Callable[[Any, UserLogin | User], Awaitable[aiohttp.ClientSession]]]:
    sessions: list[aiohttp.ClientSession] = []

    async def open_session(served: Any, user: UserLogin | User) -> aiohttp.ClientSession:
        app: Quart = served.app
        _, cookie, _ = await new_cookie_session(auth_pool, app, user)
        # unsafe=True: aiohttp otherwise refuses cookies for IP-address hosts like 127.0.0.1.
        jar = aiohttp.CookieJar(unsafe=True)
        jar.update_cookies({app.config["SETTINGS"].cookie_name: cookie}, URL(served.url))
        session = aiohttp.ClientSession(cookie_jar=jar, headers={"Origin": served.url})
        sessions.append(session)
        return session

    yield open_session
    for session in sessions:
        await session.close()
