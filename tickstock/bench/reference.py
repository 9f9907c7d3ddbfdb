"""A reference server: the least a Socket.IO relay of the producer's events can do.

``hypercorn --worker-class uvloop tickstock.bench.reference:app`` serves plain python-socketio on
hypercorn (the stack tickstock is built on) with none of tickstock's work: no authentication, no
normalisation, no dedupe, no history or offsets, no metrics, no slow-consumer protection. Each
pub/sub message on ``tickstock.events.patterns`` is emitted with ``sio.emit`` to the room of its
symbol, and ``GET /plain`` answers a fixed JSON body from a bare Quart route.

``tickstock bench fanout`` and ``tickstock bench rest --path /plain`` run against it unchanged
(the token is accepted and ignored), which measures what the libraries themselves cost per
delivery, per socket and per request on a machine: the floor under tickstock's own figures
(docs/PERFORMANCE.md). It is a measuring instrument, not a way to serve users.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

import orjson
import redis.asyncio as aioredis
import socketio
from quart import Quart, Response

from tickstock.jsonutil import SocketJSON
from tickstock.vocab import PATTERNS_CHANNEL

CHANNEL = PATTERNS_CHANNEL
log = logging.getLogger(__name__)

sio = socketio.AsyncServer(async_mode="asgi", json=SocketJSON, cors_allowed_origins=[])
quart_app = Quart(__name__)
_relay: dict[str, asyncio.Task[None]] = {}


@quart_app.get("/plain")
async def plain() -> Response:
    return Response(b'{"status":"success","data":[]}', mimetype="application/json")


async def subscribe_patterns(sid: str, payload: Any) -> dict[str, Any]:
    symbols = payload.get("symbols", []) if isinstance(payload, dict) else []
    for symbol in symbols:
        await sio.enter_room(sid, f"patterns:{symbol}")
    return {"status": "success", "symbols": symbols}


sio.on("subscribe_patterns", subscribe_patterns)


async def relay(redis_url: str) -> None:
    """Pub/sub message -> ``pattern_detected`` to the symbol's room, nothing more."""
    client = aioredis.Redis.from_url(redis_url)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(CHANNEL)
    try:
        async for message in pubsub.listen():
            try:
                event = orjson.loads(message["data"])
                symbol = event["symbol"]
            except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
                log.warning("reference relay: skipping a message it cannot relay (%r)", exc)
                continue
            # The same data shape as tickstock's (extra fields under "metadata").
            event["metadata"] = {k: v for k, v in event.items() if k.startswith("bench_")}
            body = {"type": "pattern_detected", "timestamp": event.get("timestamp"), "data": event}
            await sio.emit("pattern_detected", body, room=f"patterns:{symbol}")
    finally:
        await pubsub.aclose()
        await client.aclose()


async def _start() -> None:
    url = os.environ.get("TICKSTOCK_REDIS_URL", "redis://127.0.0.1:6379/0")
    _relay["task"] = asyncio.create_task(relay(url))


async def _stop() -> None:
    task = _relay.pop("task", None)
    if task is not None:
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("reference relay stopped with an error")


app = socketio.ASGIApp(sio, other_asgi_app=quart_app, on_startup=_start, on_shutdown=_stop)
