"""The auth extension: live-session checks (cached briefly), and who the current request is.

Every login is a row in ``user_sessions``: a browser session (kind ``cookie``) whose id is the
quart-auth cookie's auth id, or an API token (kind ``token``) presented as
``Authorization: Bearer <session id>.<secret>`` of which only the secret's SHA-256 is stored.
Each request re-checks that its session is still live (not revoked, not expired, user active);
that check is cached in-process for at most :data:`SESSION_CACHE_SECONDS`, so a revocation on any
node takes effect everywhere within a second while a busy client costs one query per second.
"""

from __future__ import annotations

import datetime as dt
import hmac
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

import asyncpg
from quart import Quart, Response, current_app, g, request
from quart_auth import AuthUser, QuartAuth

from tickstock.auth.csrf import csrf_ok
from tickstock.auth.models import Identity, SessionKind, SessionState
from tickstock.auth.passwords import secret_hash
from tickstock.auth.ratelimit import AccountBrake, LoginRateLimit
from tickstock.config import Settings
from tickstock.errors import APIError
from tickstock.extensions.database import Database, get_db
from tickstock.queries.users import insert_session, select_session_state, update_session_touched

__all__ = [
    "EXTENSION_KEY",
    "SESSION_CACHE_SECONDS",
    "Auth",
    "SessionsEnded",
    "bearer_token",
    "client_address",
    "create_session",
    "get_auth",
    "init_auth",
    "load_identity",
    "set_identity",
]

log = logging.getLogger(__name__)

EXTENSION_KEY = "tickstock.auth"
SESSION_CACHE_SECONDS = 1.0
TOUCH_INTERVAL = dt.timedelta(seconds=60)

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
_G_IDENTITY = "_tickstock_identity"
_CACHE_LIMIT = 100_000

# Called with (user id, session id or None for all of the user's sessions) once they are revoked.
SessionsEnded = Callable[[int, str | None], Awaitable[None]]


# ``<session id>.<secret>``, both from ``secrets.token_urlsafe``.
TOKEN_SHAPE: Final = re.compile(r"[A-Za-z0-9_-]{1,64}\.[A-Za-z0-9_-]{1,128}")


def bearer_token(header: str | None) -> str | None:
    """The credentials of an ``Authorization: Bearer <credentials>`` header, else None."""
    scheme, _, value = (header or "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip() or None


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
        secret_hash=secret_hash(secret) if secret else None,
        address=address,
        user_agent=user_agent,
    )
    token = f"{session_id}.{secret}" if secret else None
    return session_id, token, expires_at


class SessionAuthUser(AuthUser):
    """quart-auth's user, authenticated only while its session is live (see load_identity)."""

    @property
    async def is_authenticated(self) -> bool:
        return await load_identity() is not None


class _QuartAuth(QuartAuth):
    """quart-auth, with nothing to do after a request that never looked at its user.

    Its after-request hook resolves the user to see whether a login or logout must write the
    cookie; for a request that never loaded it (Bearer calls, /health, static files) nothing can
    have changed, and resolving costs a cookie parse and an exception per request.
    """

    async def after_request(self, response: Response) -> Response:
        if not hasattr(g, self.attribute_name):
            return response
        return await super().after_request(response)


@dataclass(slots=True)
class _CacheEntry:
    checked_at: float
    state: SessionState | None


class Auth:
    """Session checks (cached briefly), the login rate limiter and the quart-auth cookie setup.

    What else must happen when sessions end (the realtime server disconnecting their sockets)
    registers with :meth:`on_sessions_ended`, so authentication depends on nothing above it.
    """

    def __init__(self, app: Quart | None = None) -> None:
        self.app: Quart | None = None
        self._settings: Settings | None = None
        self.quart_auth: QuartAuth | None = None
        self.rate_limit: LoginRateLimit | None = None
        self.account_brake: AccountBrake | None = None
        self._db: Database | None = None
        self._cache: dict[str, _CacheEntry] = {}
        self._sessions_ended: list[SessionsEnded] = []
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Quart) -> None:
        settings: Settings = app.config["SETTINGS"]
        self.app = app
        self._settings = settings
        self.rate_limit = LoginRateLimit(settings)
        self.account_brake = AccountBrake(settings)
        self.quart_auth = _QuartAuth(
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
        # Socket connects run outside any app context: bind the database while serving starts.
        app.before_serving(self._bind_db)

    async def _bind_db(self) -> None:
        self._db = get_db()

    @property
    def db(self) -> Database:
        """The app's database (through its accessor, bound on first use)."""
        if self._db is None:
            self._db = get_db()
        return self._db

    @property
    def settings(self) -> Settings:
        assert self._settings is not None, "Auth.init_app was not called"
        return self._settings

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
                    await update_session_touched(conn, session_id)
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
        if not TOKEN_SHAPE.fullmatch(token.strip()):
            # Never a query for what cannot be a token (NUL would even fail in PostgreSQL).
            return None
        session_id, _, secret = token.strip().partition(".")
        state = await self.session_state(session_id, fresh=fresh)
        if state is None or state.kind != "token" or state.secret_hash is None:
            return None
        if not hmac.compare_digest(secret_hash(secret), state.secret_hash):
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

    # ---- after a revocation

    def on_sessions_ended(self, callback: SessionsEnded) -> None:
        """Call ``callback(user_id, session_id)`` after sessions are revoked (None: all of them)."""
        self._sessions_ended.append(callback)

    async def sessions_ended(self, user_id: int, session_id: str | None) -> None:
        """Forget cached checks, then run the registered callbacks (never failing the caller)."""
        if session_id is None:
            self.forget(user_id=user_id)
        else:
            self.forget(session_id=session_id)
        for callback in self._sessions_ended:
            try:
                await callback(user_id, session_id)
            except Exception:
                # The revocation is committed; sockets re-check on reconnect.
                log.exception("after the sessions of user %s ended, %r failed", user_id, callback)

    # ---- login rate limit

    async def check_login_rate(self, address: str) -> None:
        """Count a login attempt from ``address``; 429 with Retry-After over the limit."""
        assert self.rate_limit is not None, "Auth.init_app was not called"
        await self.rate_limit.check(address)


def init_auth(app: Quart) -> Auth:
    """Install authentication on ``app`` (called by ``create_app``)."""
    return Auth(app)


def get_auth(app: Quart | None = None) -> Auth:
    """The auth extension of ``app`` (default: the current app)."""
    auth: Auth = (app or current_app).extensions[EXTENSION_KEY]
    return auth


# --------------------------------------------------------------------------- the request


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
        token = bearer_token(header)
        if token:
            identity = await auth.check_token(token)
    else:
        assert auth.quart_auth is not None
        session_id = auth.quart_auth.load_user().auth_id
        if session_id:
            identity = await auth.check_cookie_session(session_id)
            if (
                identity is not None
                and request.method not in _SAFE_METHODS
                and not csrf_ok(identity.session_id)
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
