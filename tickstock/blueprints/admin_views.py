"""Operator views (admin role): live Socket.IO connections and the error log."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field
from quart import Blueprint, Response
from quart_schema import validate_querystring

from tickstock.auth import admin_required
from tickstock.extensions.database import get_db
from tickstock.pagination import DEFAULT_LIMIT, MAX_LIMIT, decode_cursor, paginate, success
from tickstock.queries.admin import (
    ConnectionItem,
    ErrorLogItem,
    UserConnectionsItem,
    select_connections,
    select_connections_by_user,
    select_error_logs,
)
from tickstock.realtime.hub import get_hub
from tickstock.validation import PageMeta, QueryModel, SafeText, Timestamp, documented

blueprint = Blueprint("admin_views", __name__, url_prefix="/api/admin")

Limit = Annotated[int, Field(ge=1, le=MAX_LIMIT)]
ShortText = Annotated[SafeText, Field(min_length=1, max_length=100)]


class ConnectionsQuery(QueryModel):
    group_by: Literal["sid", "user"] = Field(
        "sid", description="One row per socket (sid) or per user"
    )
    user_id: Annotated[int, Field(ge=1, le=2**63 - 1)] | None = Field(
        None, description="Only this user's sockets (group_by=sid)"
    )
    node_id: ShortText | None = Field(None, description="Only sockets on this node")
    limit: Limit = DEFAULT_LIMIT
    cursor: str | None = None


class ErrorsQuery(QueryModel):
    source: ShortText | None = None
    reason: ShortText | None = None
    since: Timestamp | None = Field(None, description="Logged at or after (ISO-8601)")
    limit: Limit = DEFAULT_LIMIT
    cursor: str | None = None


class ConnectionsBody(BaseModel):
    """Recorded subscriptions grouped by socket or by user; meta has this node's live sockets."""

    status: Literal["success"]
    data: list[ConnectionItem] | list[UserConnectionsItem]
    meta: PageMeta


class ErrorsBody(BaseModel):
    """Logged errors, newest first."""

    status: Literal["success"]
    data: list[ErrorLogItem]
    meta: PageMeta


def _node() -> dict[str, Any]:
    hub = get_hub()
    sockets = hub.sio.manager.rooms.get("/", {}).get(None, {})
    return {"node_id": hub.node_id, "live_sockets": len(sockets)}


def _sid_key(item: ConnectionItem) -> tuple[str]:
    return (item["sid"],)


def _user_key(item: UserConnectionsItem) -> tuple[int]:
    return (item["user_id"] or 0,)


def _error_key(item: ErrorLogItem) -> tuple[dt.datetime, int]:
    return item["created_at"], item["id"]


@blueprint.get("/connections")
@admin_required
@validate_querystring(ConnectionsQuery)
@documented(ConnectionsBody, 400, 403)
async def connections(query_args: ConnectionsQuery) -> Response:
    """Socket.IO connections recorded by every node (ws_subscriptions), by sid or by user.

    ``meta.node`` adds the live socket count of the node answering.
    """
    q = query_args
    async with get_db().read() as conn:
        if q.group_by == "user":
            after_user = None
            if q.cursor is not None:
                (value,) = decode_cursor(q.cursor, ("int",))
                assert isinstance(value, int)
                after_user = value
            by_user = await select_connections_by_user(
                conn, node_id=q.node_id, after=after_user, limit=q.limit + 1
            )
            user_page = paginate(by_user, q.limit, _user_key)
            return success(user_page.items, user_page.meta(group_by="user", node=_node()))
        after_sid = None
        if q.cursor is not None:
            (value,) = decode_cursor(q.cursor, ("text",))
            assert isinstance(value, str)
            after_sid = value
        rows = await select_connections(
            conn, user_id=q.user_id, node_id=q.node_id, after=after_sid, limit=q.limit + 1
        )
    page = paginate(rows, q.limit, _sid_key)
    return success(page.items, page.meta(group_by="sid", node=_node()))


@blueprint.get("/errors")
@admin_required
@validate_querystring(ErrorsQuery)
@documented(ErrorsBody, 400, 403)
async def errors(query_args: ErrorsQuery) -> Response:
    """The error log (rejected ingest messages and other recorded failures), newest first."""
    q = query_args
    after = None
    if q.cursor is not None:
        created_at, ident = decode_cursor(q.cursor, ("time", "int"))
        assert isinstance(created_at, dt.datetime) and isinstance(ident, int)
        after = (created_at, ident)
    async with get_db().read() as conn:
        rows = await select_error_logs(
            conn, source=q.source, reason=q.reason, since=q.since, after=after, limit=q.limit + 1
        )
    page = paginate(rows, q.limit, _error_key)
    return success(page.items, page.meta())
