"""Streaming status and per-symbol history over REST."""

from __future__ import annotations

import time
from typing import Any

from quart import Blueprint, current_app, request

from tickstock.auth import login_required
from tickstock.errors import APIError
from tickstock.extensions.redis import get_redis_ext
from tickstock.realtime.events import SYMBOL_RE
from tickstock.realtime.history import decode_event, parse_offset
from tickstock.realtime.hub import get_hub

blueprint = Blueprint("streaming", __name__, url_prefix="/api/streaming")

HISTORY_KINDS = ("patterns", "indicators")


def _envelope(data: Any, **meta: Any) -> dict[str, Any]:
    return {"status": "success", "data": data, "meta": meta}


@blueprint.get("/redis-status")
@login_required
async def redis_status() -> dict[str, Any]:
    """Redis connectivity: the command client, the ingest consumer and the fan-out reader."""
    hub = get_hub()
    check = await get_redis_ext().check()
    ingest = hub.ingest.stats if hub.ingest else None
    return _envelope(
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
async def status() -> dict[str, Any]:
    """Ingest counters per channel, rejects by reason, last event age, sockets and rooms."""
    hub = get_hub()
    sio = hub.sio
    rooms = {
        room: len(members)
        for room, members in sio.manager.rooms.get("/", {}).items()
        if isinstance(room, str) and ":" in room and not room.startswith(("user:", "session:"))
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
    return _envelope(
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
            "sockets": len(sio.manager.rooms.get("/", {}).get(None, {})),
            "rooms": rooms,
            "history_sizes": sizes,
        }
    )


@blueprint.get("/history/<symbol>")
@login_required
async def history(symbol: str) -> dict[str, Any]:
    """Events of a symbol after ``since`` (an offset), oldest first; ``kind`` patterns|indicators."""
    symbol = symbol.strip().upper()
    if not SYMBOL_RE.match(symbol):
        raise APIError(400, "invalid_symbol", "symbol must match ^[A-Z0-9][A-Z0-9.-]{0,9}$")
    kind = request.args.get("kind", "patterns")
    if kind not in HISTORY_KINDS:
        raise APIError(400, "invalid_kind", "kind must be 'patterns' or 'indicators'")
    limit_arg = request.args.get("limit", "100")
    if not limit_arg.isdigit() or not 1 <= int(limit_arg) <= 1000:
        raise APIError(400, "invalid_limit", "limit must be an integer from 1 to 1000")
    limit = int(limit_arg)
    hub = get_hub()
    assert hub.store is not None
    room = f"{kind}:{symbol}"
    since = request.args.get("since")
    if since is not None:
        if parse_offset(since) is None:
            raise APIError(400, "invalid_offset", "since must be an offset such as 1764167400000-0")
        events, recovered = await hub.store.since(room, since, limit=limit)
    else:
        events, recovered = await hub.store.latest(room, limit), True
    items = [decode_event(event) for event in events]
    return _envelope(
        items,
        symbol=symbol,
        kind=kind,
        recovered=recovered,
        count=len(items),
        last_offset=events[-1].offset if events else since,
    )
