"""Auth API: log in and out, who am I, and personal API tokens."""

from __future__ import annotations

import datetime as dt
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from quart import Blueprint, Response, jsonify, request

from tickstock.auth import (
    CSRF_HEADER,
    MAX_TOKENS_PER_USER,
    Identity,
    check_origin,
    client_address,
    create_session,
    csrf_token,
    current_identity,
    current_user,
    get_auth,
    login,
    login_required,
    logout,
    revoke_token,
    select_tokens,
)
from tickstock.errors import APIError

blueprint = Blueprint("auth", __name__)

M = TypeVar("M", bound=BaseModel)


def ok(data: Any, meta: dict[str, Any] | None = None, status: int = 200) -> tuple[Response, int]:
    """The success envelope of SPEC §5."""
    response = jsonify({"status": "success", "data": data, "meta": meta or {}})
    return response, status


async def parse_body(model: type[M]) -> M:
    """The JSON body validated by ``model``; 400 ``validation_error`` naming the field."""
    body = await request.get_json(silent=True)
    if not isinstance(body, dict):
        raise APIError(400, "validation_error", "expected a JSON object body")
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        errors = [
            {"field": ".".join(str(part) for part in err["loc"]), "message": err["msg"]}
            for err in exc.errors(include_url=False, include_input=False)
        ]
        first = errors[0]
        raise APIError(
            400,
            "validation_error",
            f"{first['field']}: {first['message']}" if first["field"] else first["message"],
            extra={"errors": errors},
        ) from None


def no_store(result: tuple[Response, int]) -> tuple[Response, int]:
    result[0].headers["Cache-Control"] = "no-store"
    return result


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
async def login_api() -> tuple[Response, int]:
    """Log in with username and password; sets the session cookie and returns the user."""
    if request.headers.get("Origin"):
        check_origin()
    body = await parse_body(LoginBody)
    identity = await login(body.username, body.password, remember=body.remember)
    return no_store(ok(identity.user.to_json(), session_meta(identity)))


@blueprint.post("/api/auth/logout")
@login_required
async def logout_api() -> tuple[Response, int]:
    """End this session (or revoke this API token) and disconnect its sockets."""
    await logout()
    return no_store(ok({"logged_out": True}))


@blueprint.get("/api/auth/me")
@login_required
async def me() -> tuple[Response, int]:
    """The logged-in user, how they authenticated, and the CSRF token of a cookie session."""
    identity = current_identity()
    return no_store(ok(identity.user.to_json(), session_meta(identity)))


@blueprint.get("/api/auth/tokens")
@login_required
async def list_tokens() -> tuple[Response, int]:
    """The caller's live API tokens (never their secrets)."""
    async with get_auth().db.connection() as conn:
        tokens = await select_tokens(conn, current_user().id)
    return ok([token.to_json() for token in tokens], {"count": len(tokens)})


@blueprint.post("/api/auth/tokens")
@login_required
async def create_token() -> tuple[Response, int]:
    """Create an API token; its secret is shown in this response only."""
    body = await parse_body(TokenBody)
    user = current_user()
    lifetime = dt.timedelta(days=body.expires_in_days) if body.expires_in_days else None
    async with get_auth().db.write() as conn:
        # Serialise this user's token creation so the cap below cannot be raced past.
        await conn.execute("SELECT 1 FROM users WHERE id = $1 FOR UPDATE", user.id)
        if len(await select_tokens(conn, user.id)) >= MAX_TOKENS_PER_USER:
            raise APIError(
                409,
                "too_many_tokens",
                f"at most {MAX_TOKENS_PER_USER} live tokens per user; delete one first",
            )
        token_id, token, expires_at = await create_session(
            conn,
            user.id,
            "token",
            lifetime=lifetime,
            name=body.name,
            address=client_address(),
            user_agent=request.headers.get("User-Agent"),
        )
    data = {"id": token_id, "name": body.name, "token": token, "expires_at": expires_at}
    return no_store(ok(data, {"shown_once": True}, 201))


@blueprint.delete("/api/auth/tokens/<token_id>")
@login_required
async def delete_token(token_id: str) -> tuple[Response, int]:
    """Revoke one of the caller's API tokens (404 for anyone else's)."""
    if len(token_id) > 128 or not await revoke_token(current_user(), token_id):
        raise APIError(404, "token_not_found", "no such API token")
    return ok({"id": token_id, "revoked": True})
