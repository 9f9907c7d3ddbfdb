"""Health: a public summary for load balancers and a detailed view for operators."""

from __future__ import annotations

from quart import Blueprint, Response, jsonify

from tickstock.auth import admin_or_metrics_token
from tickstock.extensions.database import get_db
from tickstock.health import run_health_checks
from tickstock.pagination import success
from tickstock.realtime.hub import get_hub
from tickstock.version import __version__

blueprint = Blueprint("health", __name__)


# What anyone may see of a component; pool sizes, lag and event ages are in /api/health.
_PUBLIC_FIELDS = ("status", "latency_ms")


@blueprint.get("/health")
async def health() -> tuple[Response, int]:
    """Service health: healthy, degraded, unhealthy or draining (503), per-component latency."""
    status, components = await run_health_checks()
    public = {
        name: {key: result[key] for key in _PUBLIC_FIELDS if key in result}
        for name, result in components.items()
    }
    body = {"status": status, "version": __version__, "components": public}
    return jsonify(body), 503 if status in ("unhealthy", "draining") else 200


@blueprint.get("/api/health")
@admin_or_metrics_token
async def detailed_health() -> Response:
    """Detailed health of this node (admin or the metrics token): components, the database pool,
    consumer lag, sockets and rooms."""
    status, components = await run_health_checks()
    pool = get_db().pool
    hub = get_hub()
    rooms = [
        room
        for room in hub.sio.manager.rooms.get("/", {})
        if isinstance(room, str) and ":" in room and not room.startswith(("user:", "session:"))
    ]
    kinds: dict[str, int] = {}
    for room in rooms:
        kind = room.split(":", 1)[0]
        kinds[kind] = kinds.get(kind, 0) + 1
    ingest = hub.ingest.stats.as_dict() if hub.ingest else None
    fanout = hub.delivery.stats
    return success(
        {
            "status": status,
            "version": __version__,
            "components": components,
            "database": {
                "pool": {
                    "size": pool.get_size() if pool else 0,
                    "idle": pool.get_idle_size() if pool else 0,
                    "max": pool.get_max_size() if pool else 0,
                }
            },
            "realtime": {
                "node_id": hub.node_id,
                "sockets": len(hub.sio.manager.rooms.get("/", {}).get(None, {})),
                "rooms": len(rooms),
                "subscriptions": kinds,
                "consumer_lag_ms": round(fanout.lag_ms, 2),
                "ingest": {
                    "connected": bool(ingest and ingest["connected"]),
                    "reconnects": ingest["reconnects"] if ingest else 0,
                    "last_event_age_s": ingest["last_event_age_s"] if ingest else None,
                },
                "fanout": {
                    "connected": fanout.connected,
                    "reconnects": fanout.reconnects,
                    "slow_consumer_disconnects": fanout.slow_consumer_disconnects,
                },
            },
        }
    )
