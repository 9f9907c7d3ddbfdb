"""Streaming status and per-symbol history over REST."""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal, get_args

from pydantic import AfterValidator, Field
from quart import Blueprint, Response, current_app
from quart_schema import validate_querystring

from tickstock.auth import current_user, login_required
from tickstock.extensions.redis import get_redis_ext
from tickstock.pagination import success
from tickstock.realtime.auth import user_room
from tickstock.realtime.history import parse_offset
from tickstock.realtime.hub import get_hub
from tickstock.realtime.wire import decode_event
from tickstock.validation import QueryModel, parse_symbol

blueprint = Blueprint("streaming", __name__, url_prefix="/api/streaming")

HistoryKind = Literal["patterns", "indicators"]
HISTORY_KINDS: tuple[HistoryKind, ...] = get_args(HistoryKind)


def _offset(value: str) -> str:
    if parse_offset(value) is None:
        raise ValueError("must be an offset such as 1764167400000-0")
    return value


class HistoryQuery(QueryModel):
    kind: HistoryKind = Field("patterns", description="patterns or indicators")
    limit: Annotated[int, Field(ge=1, le=1000)] = 100
    since: Annotated[str, Field(max_length=41), AfterValidator(_offset)] | None = Field(
        None, description="Only events after this offset (as returned in meta.last_offset)"
    )


@blueprint.get("/redis-status")
@login_required
async def redis_status() -> Response:
    """Redis connectivity: the command client, the ingest consumer and the fan-out reader
    (their errors and channels for admins only)."""
    hub = get_hub()
    check = await get_redis_ext().check()
    ingest = hub.ingest.stats if hub.ingest else None
    if not current_user().is_admin:
        # Internal errors and channel names are for operators; a user gets the health.
        up = check["status"] == "up" and bool(ingest and ingest.connected)
        return success(
            {
                "status": "up" if up and hub.delivery.stats.connected else "down",
                "command_client": {"status": check["status"]},
                "ingest": {"connected": bool(ingest and ingest.connected)},
                "fanout": {"connected": hub.delivery.stats.connected},
            }
        )
    return success(
        {
            "command_client": check,
            "ingest": {
                "connected": bool(ingest and ingest.connected),
                "mode": hub.settings.ingest_mode,
                "reconnects": ingest.reconnects if ingest else 0,
                "last_error": ingest.last_error if ingest else None,
                "channels": hub.settings.ingest_channels,
            },
            "fanout": {
                "connected": hub.delivery.stats.connected,
                "reconnects": hub.delivery.stats.reconnects,
            },
        }
    )


@blueprint.get("/status")
@login_required
async def status() -> Response:
    """Admins: ingest counters, rejects, fan-out, sockets and rooms of this node. Users: the
    aggregate health, and their own sockets and subscriptions."""
    hub = get_hub()
    sio = hub.sio
    if not current_user().is_admin:
        return success(await _own_status())
    rooms = {
        room: len(members)
        for room, members in sio.manager.rooms.get("/", {}).items()
        if _is_subscription(room)
    }
    history_rooms = [
        r for r in rooms if r.split(":", 1)[0] in HISTORY_KINDS and not r.endswith("*")
    ]
    sizes = {}
    if hub.store is not None and history_rooms:
        try:
            sizes = await hub.store.history_sizes(history_rooms[:500])
        except Exception as exc:  # Redis down: the rest of the status is still useful.
            current_app.logger.warning("history sizes unavailable: %r", exc)
    fanout = hub.delivery.stats
    return success(
        {
            "node_id": hub.node_id,
            "uptime_s": round(time.time() - hub.started_at, 1),
            "ingest": hub.ingest.stats.as_dict() if hub.ingest else None,
            "fanout": {
                "connected": fanout.connected,
                "events": fanout.events,
                "deliveries": fanout.deliveries,
                "slow_consumer_disconnects": fanout.slow_consumer_disconnects,
                "lag_ms": round(fanout.lag_ms, 2),
            },
            "alerts": hub.alerts.stats.as_dict() if hub.alerts else None,
            "jobs": hub.jobs.stats.as_dict() if hub.jobs else None,
            "sockets": len(sio.manager.rooms.get("/", {}).get(None, {})),
            "rooms": rooms,
            "history_sizes": sizes,
        }
    )


def _is_subscription(room: Any) -> bool:
    return isinstance(room, str) and ":" in room and not room.startswith(("user:", "session:"))


async def _own_status() -> dict[str, Any]:
    """What a user may see: the health, and the subscriptions of their sockets on this node."""
    hub = get_hub()
    manager = hub.sio.manager
    sids = [sid for sid, _ in manager.get_participants("/", user_room(current_user().id))]
    rooms = {room for sid in sids for room in manager.get_rooms(sid, "/") if _is_subscription(room)}
    health = await hub.health()
    return {
        "status": health["status"],
        "ingest": {"connected": health.get("ingest_connected", False)},
        "fanout": {"connected": health.get("fanout_connected", False)},
        "sockets": len(sids),
        "subscriptions": sorted(rooms),
    }


@blueprint.get("/history/<symbol>")
@login_required
@validate_querystring(HistoryQuery)
async def history(symbol: str, query_args: HistoryQuery) -> Response:
    """Events of a symbol after ``since`` (an offset), oldest first; ``kind`` patterns|indicators."""
    symbol = parse_symbol(symbol)
    q = query_args
    hub = get_hub()
    assert hub.store is not None
    room = f"{q.kind}:{symbol}"
    if q.since is not None:
        events, recovered = await hub.store.since(room, q.since, limit=q.limit)
    else:
        events, recovered = await hub.store.latest(room, q.limit), True
    items = [decode_event(event) for event in events]
    return success(
        items,
        {
            "symbol": symbol,
            "kind": q.kind,
            "recovered": recovered,
            "count": len(items),
            "last_offset": events[-1].offset if events else q.since,
        },
    )
