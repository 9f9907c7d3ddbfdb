"""The signed-in user's own account: watchlist, settings, password and sessions.

Never anyone else's: no user id is taken. API tokens are under ``/api/auth/tokens``.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from quart import Blueprint, Response
from quart_schema import validate_request

from tickstock.auth import check_password, current_identity, current_user, login_required
from tickstock.auth.accounts import change_own_password, public_session_id, revoke_session
from tickstock.auth.useragent import describe_agents
from tickstock.errors import APIError
from tickstock.extensions.database import get_db
from tickstock.pagination import MAX_LIMIT, success
from tickstock.queries.symbols import select_unknown_symbols
from tickstock.queries.user_settings import (
    UserSettings,
    select_user_settings,
    upsert_settings,
    upsert_watchlist,
)
from tickstock.queries.users import select_sessions
from tickstock.realtime.alerts import announce_rules_changed
from tickstock.validation import MAX_SYMBOLS, check_symbols, documented
from tickstock.vocab import Tier

blueprint = Blueprint("user", __name__, url_prefix="/api/user")

# Duplicates are dropped before the 200-symbol cap applies; this only bounds the work.
_MAX_RAW_ITEMS = 1000


class WatchlistIn(BaseModel):
    """The whole watchlist: up to 200 symbols, upper-cased, duplicates dropped (order kept)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    symbols: list[Annotated[str, Field(max_length=32)]] = Field(max_length=_MAX_RAW_ITEMS)

    @field_validator("symbols")
    @classmethod
    def _valid(cls, value: list[str]) -> list[str]:
        return check_symbols(value)


class SettingsIn(BaseModel):
    """Dashboard settings; every key optional, unknown keys refused. PUT replaces the object."""

    model_config = ConfigDict(extra="forbid", strict=True)

    theme: Literal["dark", "light"] | None = None
    default_tier: Tier | None = None
    min_confidence: float | None = Field(None, ge=0.0, le=1.0, allow_inf_nan=False)
    feed_limit: int | None = Field(None, ge=1, le=MAX_LIMIT)


class WatchlistOut(BaseModel):
    symbols: list[str]
    updated_at: dt.datetime | None


class WatchlistBody(BaseModel):
    """The user's watchlist."""

    status: Literal["success"]
    data: WatchlistOut
    meta: dict[str, Any]


class SettingsBody(BaseModel):
    """The user's settings (only the keys that were set)."""

    status: Literal["success"]
    data: SettingsIn
    meta: dict[str, Any]


class PasswordIn(BaseModel):
    """The current password, and the new one (at least 8 characters)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    current_password: str = Field(max_length=1024)
    new_password: str = Field(max_length=1024)

    _new = field_validator("new_password")(check_password)


class PasswordOut(BaseModel):
    changed: bool
    other_sessions_revoked: int


class PasswordBody(BaseModel):
    """The password was changed; this session stays signed in, every other one was ended."""

    status: Literal["success"]
    data: PasswordOut
    meta: dict[str, Any]


class SessionOut(BaseModel):
    id: str = Field(description="The session's public id (revoke it with DELETE)")
    created_at: dt.datetime
    last_seen_at: dt.datetime
    expires_at: dt.datetime | None
    address: str | None
    user_agent: str | None
    browser: str = Field(
        description="The browser (or client) and its system, from the user agent,"
        " e.g. Mobile Safari 17 on iOS 17"
    )
    current: bool = Field(description="True for the session making this request")


class SessionsBody(BaseModel):
    """The signed-in user's browser sessions, most recently seen first."""

    status: Literal["success"]
    data: list[SessionOut]
    meta: dict[str, Any]


class RevokedOut(BaseModel):
    id: str
    revoked: bool


class RevokedBody(BaseModel):
    """The session was signed out and its live sockets disconnected."""

    status: Literal["success"]
    data: RevokedOut
    meta: dict[str, Any]


def _watchlist(row: UserSettings) -> Response:
    return success(
        {"symbols": row.watchlist, "updated_at": row.updated_at},
        {"count": len(row.watchlist), "max": MAX_SYMBOLS},
    )


def _settings(row: UserSettings) -> Response:
    return success(row.settings, {"updated_at": row.updated_at})


@blueprint.get("/watchlist")
@login_required
@documented(WatchlistBody)
async def get_watchlist() -> Response:
    """The signed-in user's watchlist, in the order it was saved."""
    # The primary, not a replica: a user reads back what they just saved.
    async with get_db().connection() as conn:
        row = await select_user_settings(conn, current_user().id)
    return _watchlist(row)


@blueprint.put("/watchlist")
@login_required
@validate_request(WatchlistIn)
@documented(WatchlistBody, 400)
async def put_watchlist(data: WatchlistIn) -> Response:
    """Replace the watchlist; symbols that do not exist are a 400 naming them.

    Alert rules on ``"watchlist"`` follow it from the next event on.
    """
    user_id = current_user().id
    async with get_db().write() as conn:
        unknown = await select_unknown_symbols(conn, data.symbols)
        if unknown:
            shown = ", ".join(unknown[:20]) + (" ..." if len(unknown) > 20 else "")
            raise APIError(
                400, "unknown_symbols", f"unknown symbols: {shown}", extra={"unknown": unknown}
            )
        row = await upsert_watchlist(conn, user_id, data.symbols)
    await announce_rules_changed(user_id)
    return _watchlist(row)


@blueprint.get("/settings")
@login_required
@documented(SettingsBody)
async def get_settings() -> Response:
    """The signed-in user's dashboard settings (keys never set are absent)."""
    async with get_db().connection() as conn:
        row = await select_user_settings(conn, current_user().id)
    return _settings(row)


@blueprint.put("/settings")
@login_required
@validate_request(SettingsIn)
@documented(SettingsBody, 400)
async def put_settings(data: SettingsIn) -> Response:
    """Replace the settings: theme dark|light, default_tier, min_confidence 0..1, feed_limit."""
    async with get_db().write() as conn:
        row = await upsert_settings(conn, current_user().id, data.model_dump(exclude_none=True))
    return _settings(row)


@blueprint.put("/password")
@login_required
@validate_request(PasswordIn)
@documented(PasswordBody, 400, 403, 429)
async def put_password(data: PasswordIn) -> Response:
    """Change your password (the current one is required); every other session is signed out."""
    revoked = await change_own_password(
        current_identity(), data.current_password, data.new_password
    )
    return success({"changed": True, "other_sessions_revoked": revoked})


@blueprint.get("/sessions")
@login_required
@documented(SessionsBody)
async def get_sessions() -> Response:
    """Your browser sessions: created, last seen, address, user agent, and which one is this."""
    identity = current_identity()
    async with get_db().connection() as conn:
        sessions = await select_sessions(conn, identity.user.id)
    browsers = await describe_agents([s.user_agent for s in sessions])
    items = [
        {
            "id": public_session_id(s.id),
            "created_at": s.created_at,
            "last_seen_at": s.last_active_at,
            "expires_at": s.expires_at,
            "address": s.address,
            "user_agent": s.user_agent,
            "browser": browser,
            "current": s.id == identity.session_id,
        }
        for s, browser in zip(sessions, browsers, strict=True)
    ]
    return success(items, {"count": len(items)})


@blueprint.delete("/sessions/<session_id>")
@login_required
@documented(RevokedBody, 404)
async def delete_session(session_id: str) -> Response:
    """Sign out one of your sessions and disconnect its sockets (404 when it is not yours)."""
    if len(session_id) > 64 or not await revoke_session(current_user(), session_id):
        raise APIError(404, "session_not_found", "no such session")
    return success({"id": session_id, "revoked": True})
