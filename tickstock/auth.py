"""Accounts, sessions and access control.

Every login is a row in ``user_sessions``: a browser session (kind ``cookie``) whose id is the
quart-auth cookie's auth id, or an API token (kind ``token``) presented as
``Authorization: Bearer <session id>.<secret>`` of which only the secret's SHA-256 is stored.
Each request re-checks that its session is still live (not revoked, not expired, user active);
that check is cached in-process for at most :data:`SESSION_CACHE_SECONDS`, so a revocation on any
node takes effect everywhere within a second while a busy client costs one query per second.

Routes use :func:`login_required` / :func:`admin_required` (below the route decorator) and read
the caller with :func:`current_user`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import wraps
from typing import Any, Literal, ParamSpec, TypeVar, cast
from urllib.parse import urlencode, urlsplit

import asyncpg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from quart import Quart, current_app, g, redirect, request
from quart_auth import Action, AuthUser, QuartAuth
from werkzeug.exceptions import HTTPException

from tickstock.config import Settings
from tickstock.errors import REDIS_DOWN, APIError
from tickstock.extensions.database import Database

__all__ = [
    "EXTENSION_KEY",
    "Auth",
    "Credentials",
    "Identity",
    "Role",
    "SessionState",
    "TokenInfo",
    "User",
    "admin_required",
    "after_user_sessions_ended",
    "check_password",
    "check_username",
    "create_session",
    "csrf_token",
    "current_identity",
    "current_user",
    "ensure_user",
    "get_auth",
    "hash_password",
    "init_auth",
    "insert_user",
    "load_identity",
    "login_required",
    "required_access",
    "safe_next",
    "select_user",
    "select_user_by_name",
    "verify_password",
]

log = logging.getLogger(__name__)

EXTENSION_KEY = "tickstock.auth"
SESSION_CACHE_SECONDS = 1.0
TOUCH_INTERVAL = dt.timedelta(seconds=60)
MAX_TOKENS_PER_USER = 100
CSRF_HEADER = "X-CSRF-Token"
ACCESS_ATTRIBUTE = "tickstock_access"
INVALID_CREDENTIALS = (
    "invalid username or password (repeated failures lock the account for a while)"
)

Role = Literal["user", "admin"]
SessionKind = Literal["cookie", "token"]
ROLES: tuple[Role, ...] = ("user", "admin")

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
_G_IDENTITY = "_tickstock_identity"
_CACHE_LIMIT = 100_000
# Redis unreachable (or not started): the login rate limit falls back to this process.
_RATE_FALLBACK: tuple[type[Exception], ...] = (*REDIS_DOWN, APIError)

P = ParamSpec("P")
T = TypeVar("T")


# --------------------------------------------------------------------------- model


@dataclass(frozen=True, slots=True)
class User:
    """An account as the rest of tickstock sees it (never carries credentials)."""

    id: int
    username: str
    role: Role
    active: bool

    @property
    def is_admin(self) -> bool:
        return self.role == "admin" and self.active

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "username": self.username, "role": self.role, "active": self.active}


@dataclass(frozen=True, slots=True)
class Credentials:
    """A user with its login state, for password checks only."""

    user: User
    password_hash: str
    locked: bool


@dataclass(slots=True)
class SessionState:
    """A live session row joined with its user, as cached per process."""

    session_id: str
    kind: SessionKind
    user: User
    secret_hash: str | None
    expires_at: dt.datetime | None
    last_active_at: dt.datetime


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a request (or socket) is: the user and the session that authenticated it."""

    user: User
    session_id: str
    kind: SessionKind
    expires_at: dt.datetime | None


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """An API token as listed to its owner (the secret is never stored)."""

    id: str
    name: str | None
    created_at: dt.datetime
    last_active_at: dt.datetime
    expires_at: dt.datetime | None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "created_at": self.created_at,
            "last_active_at": self.last_active_at,
            "expires_at": self.expires_at,
        }


# --------------------------------------------------------------------------- passwords

# argon2id with the library's RFC 9106 defaults; hashing runs in a thread, off the event loop.
_hasher = PasswordHasher()
_dummy_hash: str | None = None


async def hash_password(password: str) -> str:
    """The argon2id hash of ``password``."""
    return await asyncio.to_thread(_hasher.hash, password)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


async def verify_password(password_hash: str | None, password: str) -> bool:
    """Check ``password``; with no hash (unknown user) spend the same time and answer False."""
    global _dummy_hash
    if password_hash is None:
        if _dummy_hash is None:
            _dummy_hash = await hash_password(secrets.token_urlsafe(16))
        await asyncio.to_thread(_verify, _dummy_hash, password)
        return False
    return await asyncio.to_thread(_verify, password_hash, password)


USERNAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{1,63}$")
PASSWORD_MIN_LENGTH = 8
PASSWORD_MAX_LENGTH = 1024


def check_username(username: str) -> str:
    """``username`` when acceptable for a new account, else ValueError saying why."""
    if not USERNAME_PATTERN.match(username):
        raise ValueError(
            "username must be 2-64 characters: letters, digits and _ . @ -, "
            "starting with a letter or digit"
        )
    return username


def check_password(password: str) -> str:
    """``password`` when acceptable as a new password, else ValueError saying why."""
    if not PASSWORD_MIN_LENGTH <= len(password) <= PASSWORD_MAX_LENGTH:
        raise ValueError(
            f"password must be {PASSWORD_MIN_LENGTH} to {PASSWORD_MAX_LENGTH} characters long"
        )
    return password


def _secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


# --------------------------------------------------------------------------- queries

_USER_COLUMNS = "id, username, role, active"


def _user(record: asyncpg.Record) -> User:
    return User(
        id=record["id"],
        username=record["username"],
        role=cast(Role, record["role"]),
        active=record["active"],
    )


async def select_user(conn: asyncpg.Connection, user_id: int) -> User | None:
    record = await conn.fetchrow(f"SELECT {_USER_COLUMNS} FROM users WHERE id = $1", user_id)
    return None if record is None else _user(record)


async def select_user_by_name(conn: asyncpg.Connection, username: str) -> User | None:
    """The account named ``username`` (case-insensitive)."""
    record = await conn.fetchrow(
        f"SELECT {_USER_COLUMNS} FROM users WHERE lower(username) = lower($1)", username
    )
    return None if record is None else _user(record)


async def select_credentials_by_name(conn: asyncpg.Connection, username: str) -> Credentials | None:
    record = await conn.fetchrow(
        f"""SELECT {_USER_COLUMNS}, password_hash,
                   coalesce(locked_until > now(), false) AS locked
            FROM users WHERE lower(username) = lower($1)""",
        username,
    )
    if record is None:
        return None
    return Credentials(_user(record), record["password_hash"], record["locked"])


async def insert_user(
    conn: asyncpg.Connection, username: str, password_hash: str, role: Role = "user"
) -> User:
    """Create an account; raises ``asyncpg.UniqueViolationError`` when the name is taken."""
    record = await conn.fetchrow(
        f"""INSERT INTO users (username, password_hash, role) VALUES ($1, $2, $3)
            RETURNING {_USER_COLUMNS}""",
        username,
        password_hash,
        role,
    )
    assert record is not None
    return _user(record)


async def update_user(
    conn: asyncpg.Connection,
    user_id: int,
    *,
    role: Role | None = None,
    active: bool | None = None,
    password_hash: str | None = None,
) -> User | None:
    """Change role, active flag and/or password; a new password or re-activation unlocks."""
    record = await conn.fetchrow(
        f"""UPDATE users SET
                role = coalesce($2, role),
                active = coalesce($3, active),
                password_hash = coalesce($4, password_hash),
                password_changed_at = CASE WHEN $4::text IS NULL
                                           THEN password_changed_at ELSE now() END,
                failed_logins = CASE WHEN $4::text IS NOT NULL OR $3::boolean
                                     THEN 0 ELSE failed_logins END,
                locked_until = CASE WHEN $4::text IS NOT NULL OR $3::boolean
                                    THEN NULL ELSE locked_until END
            WHERE id = $1
            RETURNING {_USER_COLUMNS}""",
        user_id,
        role,
        active,
        password_hash,
    )
    return None if record is None else _user(record)


async def select_users(
    conn: asyncpg.Connection,
    *,
    before_id: int | None = None,
    limit: int = 50,
    search: str | None = None,
) -> list[asyncpg.Record]:
    """Accounts for administration, newest first, with their lock state and live sessions.

    ``search`` keeps usernames containing it (case-insensitive); ``before_id`` pages on.
    """
    return list(
        await conn.fetch(
            f"""SELECT {_USER_COLUMNS}, created_at, password_changed_at, failed_logins,
                       CASE WHEN locked_until > now() THEN locked_until END AS locked_until,
                       (SELECT count(*) FROM user_sessions s
                        WHERE s.user_id = users.id AND s.revoked_at IS NULL
                          AND (s.expires_at IS NULL OR s.expires_at > now())) AS live_sessions
                FROM users
                WHERE ($1::bigint IS NULL OR id < $1)
                  AND ($3::text IS NULL OR strpos(lower(username), lower($3)) > 0)
                ORDER BY id DESC LIMIT $2""",
            before_id,
            limit,
            search,
        )
    )


async def select_active_admin_ids(conn: asyncpg.Connection, *, lock: bool = False) -> list[int]:
    """Ids of the active admins; ``lock`` holds their rows until the transaction ends."""
    suffix = " FOR UPDATE" if lock else ""
    rows = await conn.fetch(
        f"SELECT id FROM users WHERE role = 'admin' AND active ORDER BY id{suffix}"
    )
    return [row["id"] for row in rows]


async def record_login_failure(
    conn: asyncpg.Connection, user_id: int, max_failures: int, lockout_seconds: int
) -> bool:
    """Count a failed password; the ``max_failures``-th locks the account. True when locked."""
    locked = await conn.fetchval(
        """UPDATE users SET
               failed_logins = CASE WHEN failed_logins + 1 >= $2 THEN 0
                                    ELSE failed_logins + 1 END,
               locked_until = CASE WHEN failed_logins + 1 >= $2
                                   THEN now() + make_interval(secs => $3)
                                   ELSE locked_until END
           WHERE id = $1
           RETURNING coalesce(locked_until > now(), false)""",
        user_id,
        max_failures,
        float(lockout_seconds),
    )
    return bool(locked)


async def record_login_success(conn: asyncpg.Connection, user_id: int) -> None:
    await conn.execute(
        """UPDATE users SET failed_logins = 0, locked_until = NULL
           WHERE id = $1 AND (failed_logins <> 0 OR locked_until IS NOT NULL)""",
        user_id,
    )


async def insert_session(
    conn: asyncpg.Connection,
    user_id: int,
    kind: SessionKind,
    *,
    lifetime: dt.timedelta | None,
    name: str | None = None,
    secret_hash: str | None = None,
    address: str | None = None,
    user_agent: str | None = None,
) -> tuple[str, dt.datetime | None]:
    """Record a new session with a random id; returns (id, expires_at)."""
    session_id = secrets.token_urlsafe(18)
    expires_at = await conn.fetchval(
        """INSERT INTO user_sessions
               (id, user_id, kind, name, secret_hash, expires_at, address, user_agent)
           VALUES ($1, $2, $3, $4, $5, now() + $6::interval, $7, $8)
           RETURNING expires_at""",
        session_id,
        user_id,
        kind,
        name,
        secret_hash,
        lifetime,
        address,
        (user_agent or "")[:256] or None,
    )
    return session_id, expires_at


async def select_session_state(conn: asyncpg.Connection, session_id: str) -> SessionState | None:
    """The session if it is live: not revoked, not expired, and its user active."""
    record = await conn.fetchrow(
        """SELECT s.id, s.kind, s.secret_hash, s.expires_at, s.last_active_at,
                  u.id AS user_id, u.username, u.role, u.active
           FROM user_sessions s JOIN users u ON u.id = s.user_id
           WHERE s.id = $1 AND s.revoked_at IS NULL
             AND (s.expires_at IS NULL OR s.expires_at > now()) AND u.active""",
        session_id,
    )
    if record is None:
        return None
    user = User(record["user_id"], record["username"], record["role"], record["active"])
    return SessionState(
        session_id=record["id"],
        kind=record["kind"],
        user=user,
        secret_hash=record["secret_hash"],
        expires_at=record["expires_at"],
        last_active_at=record["last_active_at"],
    )


async def touch_session(conn: asyncpg.Connection, session_id: str) -> None:
    await conn.execute("UPDATE user_sessions SET last_active_at = now() WHERE id = $1", session_id)


async def revoke_session(
    conn: asyncpg.Connection,
    session_id: str,
    *,
    user_id: int | None = None,
    kind: SessionKind | None = None,
) -> bool:
    """Revoke one session (optionally only the given user's / kind). True when one was live."""
    status = await conn.execute(
        """UPDATE user_sessions SET revoked_at = now()
           WHERE id = $1 AND revoked_at IS NULL
             AND ($2::bigint IS NULL OR user_id = $2) AND ($3::text IS NULL OR kind = $3)""",
        session_id,
        user_id,
        kind,
    )
    return status != "UPDATE 0"


async def revoke_user_sessions(conn: asyncpg.Connection, user_id: int) -> int:
    """Revoke every live session and token of a user; returns how many."""
    status = await conn.execute(
        "UPDATE user_sessions SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL",
        user_id,
    )
    return int(status.split()[-1])


async def select_tokens(conn: asyncpg.Connection, user_id: int) -> list[TokenInfo]:
    """The user's live API tokens, newest first."""
    rows = await conn.fetch(
        """SELECT id, name, created_at, last_active_at, expires_at FROM user_sessions
           WHERE user_id = $1 AND kind = 'token' AND revoked_at IS NULL
             AND (expires_at IS NULL OR expires_at > now())
           ORDER BY created_at DESC, id
           LIMIT $2""",
        user_id,
        MAX_TOKENS_PER_USER,
    )
    return [
        TokenInfo(r["id"], r["name"], r["created_at"], r["last_active_at"], r["expires_at"])
        for r in rows
    ]


async def select_token_owner(conn: asyncpg.Connection, token_id: str) -> int | None:
    owner: int | None = await conn.fetchval(
        "SELECT user_id FROM user_sessions WHERE id = $1 AND kind = 'token'", token_id
    )
    return owner


async def create_session(
    conn: asyncpg.Connection,
    user_id: int,
    kind: SessionKind = "cookie",
    *,
    lifetime: dt.timedelta | None,
    name: str | None = None,
    address: str | None = None,
    user_agent: str | None = None,
) -> tuple[str, str | None, dt.datetime | None]:
    """A new cookie session or API token: (session id, token or None, expires_at).

    A token is ``<session id>.<secret>``; it is returned here once and never stored.
    """
    secret = secrets.token_urlsafe(32) if kind == "token" else None
    session_id, expires_at = await insert_session(
        conn,
        user_id,
        kind,
        lifetime=lifetime,
        name=name,
        secret_hash=_secret_hash(secret) if secret else None,
        address=address,
        user_agent=user_agent,
    )
    token = f"{session_id}.{secret}" if secret else None
    return session_id, token, expires_at


async def ensure_user(
    conn: asyncpg.Connection, username: str, password: str, role: Role = "user"
) -> User:
    """Create the account, or bring an existing one to this password and role (active).

    Used for the demo login of ``tickstock serve``: when nothing changes, nothing is written, so
    existing sessions survive a restart; a changed password revokes them.
    """
    record = await conn.fetchrow(
        f"SELECT {_USER_COLUMNS}, password_hash FROM users WHERE lower(username) = lower($1)",
        username,
    )
    if record is None:
        return await insert_user(conn, username, await hash_password(password), role)
    user = _user(record)
    same_password = await verify_password(record["password_hash"], password)
    if same_password and user.role == role and user.active:
        return user
    async with conn.transaction():
        updated = await update_user(
            conn,
            user.id,
            role=role,
            active=True,
            password_hash=None if same_password else await hash_password(password),
        )
        if not same_password:
            await revoke_user_sessions(conn, user.id)
    assert updated is not None
    return updated


# --------------------------------------------------------------------------- the extension


class SessionAuthUser(AuthUser):
    """quart-auth's user, authenticated only while its session is live (see load_identity)."""

    @property
    async def is_authenticated(self) -> bool:
        return await load_identity() is not None


class LoginRedirect(HTTPException):
    """Sends a browser to the login page (answered by the 3xx branch of the error handler)."""

    code = 302

    def __init__(self, location: str) -> None:
        super().__init__(description="login required")
        self.location = location

    def get_response(self, *args: Any, **kwargs: Any) -> Any:
        return redirect(self.location, 302)


@dataclass(slots=True)
class _CacheEntry:
    checked_at: float
    state: SessionState | None


@dataclass(slots=True)
class _Window:
    window: int
    count: int
    previous: int


class Auth:
    """Session checks (cached briefly), the login rate limiter and the quart-auth cookie setup."""

    def __init__(self, app: Quart | None = None) -> None:
        self.app: Quart | None = None
        self.settings: Settings | None = None
        self.quart_auth: QuartAuth | None = None
        self._cache: dict[str, _CacheEntry] = {}
        self._local_rate: dict[str, _Window] = {}
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Quart) -> None:
        settings: Settings = app.config["SETTINGS"]
        self.app = app
        self.settings = settings
        self.quart_auth = QuartAuth(
            app,
            cookie_name=settings.cookie_name,
            cookie_http_only=True,
            cookie_samesite="Lax",
            cookie_secure=settings.secure_cookies,
            duration=settings.session_lifetime_seconds,
            mode="cookie",
            user_class=SessionAuthUser,
        )
        app.extensions[EXTENSION_KEY] = self

    @property
    def _settings(self) -> Settings:
        assert self.settings is not None, "Auth.init_app was not called"
        return self.settings

    @property
    def db(self) -> Database:
        assert self.app is not None
        db: Database = self.app.extensions["tickstock.db"]
        return db

    # ---- sessions

    async def session_state(self, session_id: str, *, fresh: bool = False) -> SessionState | None:
        """The live session ``session_id``, from a cache at most a second old unless ``fresh``."""
        now = time.monotonic()
        entry = self._cache.get(session_id)
        if entry is not None and not fresh and now - entry.checked_at < SESSION_CACHE_SECONDS:
            return entry.state
        async with self.db.connection() as conn:
            state = await select_session_state(conn, session_id)
            if state is not None:
                wall = dt.datetime.now(dt.UTC)
                if wall - state.last_active_at >= TOUCH_INTERVAL:
                    await touch_session(conn, session_id)
                    state.last_active_at = wall
        if len(self._cache) >= _CACHE_LIMIT:
            self._prune(now)
        self._cache[session_id] = _CacheEntry(now, state)
        return state

    def _prune(self, now: float) -> None:
        stale = [k for k, v in self._cache.items() if now - v.checked_at >= SESSION_CACHE_SECONDS]
        for key in stale:
            del self._cache[key]
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()

    async def check_cookie_session(
        self, session_id: str, *, fresh: bool = False
    ) -> Identity | None:
        state = await self.session_state(session_id, fresh=fresh)
        if state is None or state.kind != "cookie":
            return None
        return Identity(state.user, state.session_id, "cookie", state.expires_at)

    async def check_token(self, token: str, *, fresh: bool = False) -> Identity | None:
        """The identity of an API token ``<session id>.<secret>``, or None."""
        session_id, _, secret = token.strip().partition(".")
        if not session_id or not secret or len(token) > 256:
            return None
        state = await self.session_state(session_id, fresh=fresh)
        if state is None or state.kind != "token" or state.secret_hash is None:
            return None
        if not hmac.compare_digest(_secret_hash(secret), state.secret_hash):
            return None
        return Identity(state.user, state.session_id, "token", state.expires_at)

    def session_id_from_cookie(self, cookie_value: str) -> str | None:
        """The session id signed into a quart-auth cookie value, or None when invalid."""
        assert self.quart_auth is not None and self.app is not None
        return self.quart_auth.load_token(cookie_value, app=self.app)

    def forget(self, *, session_id: str | None = None, user_id: int | None = None) -> None:
        """Drop cached session checks on this node (after a revocation)."""
        if session_id is not None:
            self._cache.pop(session_id, None)
        if user_id is not None:
            for key in [
                k for k, v in self._cache.items() if v.state and v.state.user.id == user_id
            ]:
                del self._cache[key]

    # ---- login rate limit

    async def check_login_rate(self, address: str) -> None:
        """Count a login attempt from ``address``; 429 with Retry-After over the limit.

        A sliding window: the previous minute's count, weighted by how much of it still
        overlaps the last 60 s, plus this minute's; no burst is allowed at a minute boundary.
        """
        settings = self._settings
        now = _now()
        window = int(now // 60)
        into_window = (now % 60) / 60
        try:
            current, previous = await self._redis_rate(address, window)
        except _RATE_FALLBACK as exc:
            log.debug("login rate limit falls back to this process: %r", exc)
            current, previous = self._process_rate(address, window)
        if previous * (1 - into_window) + current > settings.login_rate_per_minute:
            raise APIError(
                429,
                "too_many_requests",
                "too many login attempts from this address, try again shortly",
                headers={"Retry-After": str(max(1, 60 - int(now % 60)))},
            )

    async def _redis_rate(self, address: str, window: int) -> tuple[int, int]:
        from tickstock.extensions.redis import get_redis

        key = f"{self._settings.key_prefix}:auth:login-rate:{address}"
        async with get_redis().pipeline(transaction=False) as pipe:
            pipe.incr(f"{key}:{window}")
            pipe.expire(f"{key}:{window}", 120)
            pipe.get(f"{key}:{window - 1}")
            current, _, previous = await pipe.execute()
        return int(current), int(previous or 0)

    def _process_rate(self, address: str, window: int) -> tuple[int, int]:
        entry = self._local_rate.get(address)
        if entry is None or entry.window != window:
            if len(self._local_rate) > 10_000:
                self._local_rate = {
                    k: v for k, v in self._local_rate.items() if v.window >= window - 1
                }
            previous = entry.count if entry is not None and entry.window == window - 1 else 0
            entry = self._local_rate[address] = _Window(window, 0, previous)
        entry.count += 1
        return entry.count, entry.previous


def _now() -> float:
    return time.time()


def init_auth(app: Quart) -> Auth:
    """Install authentication on ``app`` (called by ``create_app``)."""
    return Auth(app)


def get_auth(app: Quart | None = None) -> Auth:
    auth: Auth = (app or current_app).extensions[EXTENSION_KEY]
    return auth


# --------------------------------------------------------------------------- request helpers


def _same_origin(origin: str, host: str, trusted: Sequence[str]) -> bool:
    if origin in trusted:
        return True
    parts = urlsplit(origin)
    return parts.scheme in ("http", "https") and bool(parts.netloc) and parts.netloc == host


def check_origin() -> None:
    """A state-changing browser request must come from this site (Origin, Referer or token)."""
    trusted = current_app.config["SETTINGS"].cors_origins
    source = request.headers.get("Origin") or request.headers.get("Referer")
    if source and source != "null" and _same_origin(source, request.host, trusted):
        return
    raise APIError(403, "csrf_failed", "cross-site request refused (Origin/Referer check)")


def csrf_token(session_id: str) -> str:
    """The CSRF token of a cookie session (an alternative to the Origin check)."""
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, f"csrf:{session_id}".encode(), hashlib.sha256).hexdigest()[:40]


def _csrf_ok(session_id: str) -> bool:
    supplied = request.headers.get(CSRF_HEADER)
    if supplied and hmac.compare_digest(supplied, csrf_token(session_id)):
        return True
    try:
        check_origin()
    except APIError:
        return False
    return True


def client_address() -> str:
    return request.remote_addr or "unknown"


async def load_identity() -> Identity | None:
    """The request's identity (Bearer token or session cookie), checked once per request.

    Cookie-authenticated state-changing requests must pass the CSRF check (403 otherwise);
    Bearer requests are exempt since browsers never add that header on their own.
    """
    if hasattr(g, _G_IDENTITY):
        cached: Identity | None = getattr(g, _G_IDENTITY)
        return cached
    auth = get_auth()
    identity: Identity | None = None
    header = request.headers.get("Authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value:
            identity = await auth.check_token(value)
    else:
        assert auth.quart_auth is not None
        session_id = auth.quart_auth.load_user().auth_id
        if session_id:
            identity = await auth.check_cookie_session(session_id)
            if (
                identity is not None
                and request.method not in _SAFE_METHODS
                and not _csrf_ok(identity.session_id)
            ):
                raise APIError(403, "csrf_failed", "cross-site request refused (CSRF check)")
        if identity is None and auth.quart_auth.cookie_name in request.cookies:
            # Revoked, expired or badly signed: let the browser drop it with this response.
            auth.quart_auth.logout_user()
    setattr(g, _G_IDENTITY, identity)
    return identity


def set_identity(identity: Identity | None) -> None:
    """Make ``identity`` the request's identity (after login or logout)."""
    setattr(g, _G_IDENTITY, identity)


def current_identity() -> Identity:
    """The identity checked by ``login_required`` for this request (401 when there is none)."""
    identity: Identity | None = getattr(g, _G_IDENTITY, None)
    if identity is None:
        raise APIError(401, "unauthorized", "login required")
    return identity


def current_user() -> User:
    """The authenticated user of this request (use below ``login_required``)."""
    return current_identity().user


def wants_json() -> bool:
    """API callers get JSON errors; browsers asking for pages get redirected."""
    if request.path.startswith("/api/") or "Authorization" in request.headers:
        return True
    accept = request.accept_mimetypes
    return accept.best_match(["text/html", "application/json"]) == "application/json"


def login_url(next_path: str | None = None) -> str:
    if next_path is None:
        query = request.query_string.decode(errors="replace")
        next_path = request.path + (f"?{query}" if query else "")
    return "/login?" + urlencode({"next": safe_next(next_path)})


def safe_next(value: str | None, default: str = "/") -> str:
    """``value`` when it is a path on this site, else ``default`` (no open redirects)."""
    if not value or len(value) > 2048 or not value.startswith("/") or value.startswith("//"):
        return default
    if "\\" in value or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return default
    return value


async def _require_identity() -> Identity:
    identity = await load_identity()
    if identity is None:
        if wants_json():
            raise APIError(401, "unauthorized", "login required")
        raise LoginRedirect(login_url())
    return identity


def login_required(func: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """Only for logged-in callers: 401 JSON for API requests, a redirect to /login for pages.

    Place it below the route decorator::

        @blueprint.get("/api/things")
        @login_required
        async def things() -> ...
    """

    @wraps(func)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        await _require_identity()
        return await func(*args, **kwargs)

    setattr(wrapper, ACCESS_ATTRIBUTE, "login")
    return wrapper


def admin_required(func: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """Only for administrators: like ``login_required``, then 403 for other users."""

    @wraps(func)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        identity = await _require_identity()
        if not identity.user.is_admin:
            raise APIError(403, "forbidden", "administrator role required")
        return await func(*args, **kwargs)

    setattr(wrapper, ACCESS_ATTRIBUTE, "admin")
    return wrapper


def required_access(view: Callable[..., Any]) -> str | None:
    """``"login"`` or ``"admin"`` for views behind those decorators (docs and policy tests).

    The mark survives further ``functools.wraps`` decorators, which copy ``__dict__``.
    """
    access: str | None = getattr(view, ACCESS_ATTRIBUTE, None)
    return access


# --------------------------------------------------------------------------- login and logout


async def authenticate_password(username: str, password: str) -> User:
    """The user for these credentials, or 401 with one message for every failure.

    Unknown user, wrong password, locked or inactive account all answer alike, after the same
    argon2 work, so responses do not reveal whether an account exists.
    """
    auth = get_auth()
    settings = auth._settings
    await auth.check_login_rate(client_address())
    failed = APIError(401, "invalid_credentials", INVALID_CREDENTIALS)
    if not username or len(username) > 150 or not password or len(password) > 1024:
        await verify_password(None, password[:1024])
        raise failed
    async with auth.db.connection() as conn:
        found = await select_credentials_by_name(conn, username)
    ok = await verify_password(found.password_hash if found else None, password)
    if found is None or found.locked or not found.user.active:
        raise failed
    if not ok:
        async with auth.db.connection() as conn:
            locked = await record_login_failure(
                conn, found.user.id, settings.login_max_failures, settings.login_lockout_seconds
            )
        if locked:
            log.warning("account %r locked after repeated login failures", found.user.username)
        raise failed
    if _hasher.check_needs_rehash(found.password_hash):
        new_hash = await hash_password(password)
        async with auth.db.connection() as conn:
            await update_user(conn, found.user.id, password_hash=new_hash)
    return found.user


async def login(username: str, password: str, *, remember: bool = True) -> Identity:
    """Check credentials, record a cookie session and set the cookie on this response."""
    from quart_auth import login_user

    user = await authenticate_password(username, password)
    auth = get_auth()
    assert auth.quart_auth is not None
    previous = auth.quart_auth.load_user().auth_id
    lifetime = dt.timedelta(seconds=auth._settings.session_lifetime_seconds)
    async with auth.db.write() as conn:
        await record_login_success(conn, user.id)
        if previous:
            # The cookie being replaced names a session nobody can use any more.
            await revoke_session(conn, previous, kind="cookie")
        session_id, _, expires_at = await create_session(
            conn,
            user.id,
            "cookie",
            lifetime=lifetime,
            address=client_address(),
            user_agent=request.headers.get("User-Agent"),
        )
    if previous:
        auth.forget(session_id=previous)
    login_user(SessionAuthUser(session_id, Action.WRITE), remember=remember)
    identity = Identity(user, session_id, "cookie", expires_at)
    set_identity(identity)
    log.info("user %r logged in (session %s…)", user.username, session_id[:6])
    return identity


async def logout() -> None:
    """End the request's session: revoke it, drop the cookie, disconnect its sockets."""
    from quart_auth import logout_user

    identity = await load_identity()
    if identity is not None:
        auth = get_auth()
        async with auth.db.connection() as conn:
            await revoke_session(conn, identity.session_id)
        auth.forget(session_id=identity.session_id)
        await _disconnect(identity.user.id, identity.session_id)
    if identity is None or identity.kind == "cookie":
        logout_user()
    set_identity(None)


async def after_user_sessions_ended(user_id: int) -> None:
    """Forget cached checks and disconnect the user's sockets on every node."""
    get_auth().forget(user_id=user_id)
    await _disconnect(user_id, None)


async def revoke_token(user: User, token_id: str) -> bool:
    """Revoke one of ``user``'s API tokens; False when it is not theirs (or does not exist)."""
    auth = get_auth()
    async with auth.db.connection() as conn:
        if await select_token_owner(conn, token_id) != user.id:
            return False
        await revoke_session(conn, token_id, user_id=user.id, kind="token")
    auth.forget(session_id=token_id)
    await _disconnect(user.id, token_id)
    return True


async def _disconnect(user_id: int, session_id: str | None) -> None:
    from tickstock.realtime.auth import disconnect_user_sockets

    try:
        await disconnect_user_sockets(user_id, session_id)
    except Exception:
        # The revocation is committed; sockets re-check on reconnect. Never fail the request.
        log.exception("could not disconnect sockets of user %s", user_id)
