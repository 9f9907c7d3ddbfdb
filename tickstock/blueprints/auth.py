"""Auth API: log in and out, who am I, and personal API tokens."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any, ParamSpec, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from quart import Blueprint, Response, request
from quart_schema import validate_request

from tickstock.auth import (
    CSRF_HEADER,
    Identity,
    check_origin,
    csrf_token,
    current_identity,
    current_user,
    issue_token,
    login,
    login_required,
    logout,
    revoke_token,
)
from tickstock.errors import APIError
from tickstock.extensions.database import get_db
from tickstock.pagination import success
from tickstock.queries.alerts import count_unread
from tickstock.queries.users import select_tokens

blueprint = Blueprint("auth", __name__)

P = ParamSpec("P")
T = TypeVar("T")


def no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


def origin_checked(func: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """A request sent with an ``Origin`` must come from this site (403 before anything else)."""

    @wraps(func)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        if request.headers.get("Origin"):
            check_origin()
        return await func(*args, **kwargs)

    return wrapper


class LoginBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    username: str = Field(max_length=150)
    password: str = Field(max_length=1024)
    remember: bool = True


class TokenBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    expires_in_days: int | None = Field(default=None, ge=1, le=3650)


def session_meta(identity: Identity) -> dict[str, Any]:
    meta: dict[str, Any] = {"auth": identity.kind, "expires_at": identity.expires_at}
    if identity.kind == "cookie":
        meta["csrf_token"] = csrf_token(identity.session_id)
        meta["csrf_header"] = CSRF_HEADER
    return meta


@blueprint.post("/api/auth/login")
@origin_checked
@validate_request(LoginBody)
async def login_api(data: LoginBody) -> Response:
    """Log in with username and password; sets the session cookie and returns the user."""
    identity = await login(data.username, data.password, remember=data.remember)
    return no_store(success(identity.user.to_json(), session_meta(identity)))


@blueprint.post("/api/auth/logout")
@login_required
async def logout_api() -> Response:
    """End this session (or revoke this API token) and disconnect its sockets."""
    await logout()
    return no_store(success({"logged_out": True}))


@blueprint.get("/api/auth/me")
@login_required
async def me() -> Response:
    """The logged-in user, how they authenticated, the CSRF token of a cookie session, and
    ``unread_alerts``: how many of their alerts are unread."""
    identity = current_identity()
    async with get_db().connection() as conn:
        unread = await count_unread(conn, identity.user.id)
    meta = {**session_meta(identity), "unread_alerts": unread}
    return no_store(success(identity.user.to_json(), meta))


@blueprint.get("/api/auth/tokens")
@login_required
async def list_tokens() -> Response:
    """The caller's live API tokens (never their secrets)."""
    async with get_db().connection() as conn:
        tokens = await select_tokens(conn, current_user().id)
    return success([token.to_json() for token in tokens], {"count": len(tokens)})


@blueprint.post("/api/auth/tokens")
@login_required
@validate_request(TokenBody)
async def create_token(data: TokenBody) -> Response:
    """Create an API token; its secret is shown in this response only."""
    lifetime = dt.timedelta(days=data.expires_in_days) if data.expires_in_days else None
    token_id, token, expires_at = await issue_token(current_user(), data.name, lifetime)
    body = {"id": token_id, "name": data.name, "token": token, "expires_at": expires_at}
    return no_store(success(body, {"shown_once": True}, 201))


@blueprint.delete("/api/auth/tokens/<token_id>")
@login_required
async def delete_token(token_id: str) -> Response:
    """Revoke one of the caller's API tokens (404 for anyone else's)."""
    if len(token_id) > 128 or not await revoke_token(current_user(), token_id):
        raise APIError(404, "token_not_found", "no such API token")
    return success({"id": token_id, "revoked": True})
