"""User administration: list, create, and change role, active flag or password."""

from __future__ import annotations

import base64
import binascii
import logging
from typing import Any

import asyncpg
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from quart import Blueprint, Response, request
from quart_schema import validate_request

from tickstock.auth import (
    Role,
    admin_required,
    check_password,
    check_username,
    hash_password,
    update_account,
)
from tickstock.errors import APIError
from tickstock.extensions.database import get_db
from tickstock.pagination import success
from tickstock.queries.users import delete_lockouts, insert_user, select_lockouts, select_users
from tickstock.validation import BIGINT_MAX

blueprint = Blueprint("admin_users", __name__)
log = logging.getLogger(__name__)

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


class CreateUserBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(max_length=64)
    password: str = Field(max_length=1024)
    role: Role = "user"

    _username = field_validator("username")(check_username)
    _password = field_validator("password")(check_password)


class UpdateUserBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role | None = None
    active: bool | None = None
    password: str | None = Field(default=None, max_length=1024)

    @field_validator("password")
    @classmethod
    def _password(cls, value: str | None) -> str | None:
        return None if value is None else check_password(value)

    @model_validator(mode="after")
    def _something(self) -> UpdateUserBody:
        if self.role is None and self.active is None and self.password is None:
            raise ValueError("give at least one of role, active, password")
        return self


def _user_row(record: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": record["id"],
        "username": record["username"],
        "role": record["role"],
        "active": record["active"],
        "created_at": record["created_at"],
        "password_changed_at": record["password_changed_at"],
        "failed_logins": record["failed_logins"],
        "locked_until": record["locked_until"],
        "live_sessions": record["live_sessions"],
    }


def _cursor(before_id: int) -> str:
    return base64.urlsafe_b64encode(f"u:{before_id}".encode()).decode().rstrip("=")


def _before_id(cursor: str | None) -> int | None:
    if not cursor:
        return None
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, _, value = text.partition(":")
        if kind != "u":
            raise ValueError(kind)
        before_id = int(value)
        if not 0 < before_id <= BIGINT_MAX:
            raise ValueError(value)
        return before_id
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise APIError(400, "invalid_cursor", "cursor is not valid") from None


def _limit() -> int:
    raw = request.args.get("limit")
    if raw is None:
        return DEFAULT_LIMIT
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise APIError(400, "validation_error", f"limit must be an integer 1-{MAX_LIMIT}")
    return int(raw)


@blueprint.get("/api/admin/users")
@admin_required
async def list_users() -> Response:
    """Accounts, newest first; ``q`` searches usernames; paginated by ``limit`` and ``cursor``."""
    limit = _limit()
    before_id = _before_id(request.args.get("cursor"))
    search = request.args.get("q", "").strip()[:64] or None
    async with get_db().read() as conn:
        rows = await select_users(conn, before_id=before_id, limit=limit + 1, search=search)
    page = rows[:limit]
    next_cursor = _cursor(page[-1]["id"]) if len(rows) > limit else None
    meta = {"limit": limit, "count": len(page), "next_cursor": next_cursor}
    return success([_user_row(row) for row in page], meta)


@blueprint.post("/api/admin/users")
@admin_required
@validate_request(CreateUserBody)
async def create_user(data: CreateUserBody) -> Response:
    """Create an account (409 when the name is taken, in any letter case)."""
    password_hash = await hash_password(data.password)
    try:
        async with get_db().write() as conn:
            user = await insert_user(conn, data.username, password_hash, data.role)
    except asyncpg.UniqueViolationError:
        raise APIError(409, "username_taken", "that username is already taken") from None
    return success(user.to_json(), status=201)


@blueprint.patch("/api/admin/users/<int:user_id>")
@admin_required
@validate_request(UpdateUserBody)
async def update(user_id: int, data: UpdateUserBody) -> Response:
    """Change role, active flag or password; deactivation and a new password end all sessions.

    The last active administrator can be neither demoted nor deactivated (409).
    """
    change = await update_account(
        user_id, role=data.role, active=data.active, password=data.password
    )
    return success(change.user.to_json(), {"sessions_revoked": change.sessions_ended})


@blueprint.get("/api/admin/lockouts")
@admin_required
async def list_lockouts() -> Response:
    """Accounts locked for a client address, and addresses with recent failed passwords."""
    async with get_db().read() as conn:
        rows = await select_lockouts(conn)
    items = [dict(row) for row in rows]
    locked = sum(1 for item in items if item["locked_until"] is not None)
    return success(items, {"count": len(items), "locked": locked})


@blueprint.delete("/api/admin/users/<int:user_id>/lockouts")
@admin_required
async def clear_lockouts(user_id: int) -> Response:
    """Unlock an account: for every address, or for ``?address=`` alone."""
    address = request.args.get("address") or None
    async with get_db().write() as conn:
        cleared = await delete_lockouts(conn, user_id, address)
    log.info("lockouts of user %s cleared (%s address(es))", user_id, cleared)
    return success({"user_id": user_id, "address": address, "cleared": cleared})
