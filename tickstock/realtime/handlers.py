"""Socket.IO subscription handlers (SPEC §4): validation, rooms, replay since offsets."""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from typing import Any

import socketio

from tickstock.realtime.events import SYMBOL_RE
from tickstock.realtime.fanout import NAMESPACE
from tickstock.realtime.history import parse_offset
from tickstock.realtime.hub import RealtimeHub

log = logging.getLogger(__name__)

KINDS = ("patterns", "indicators")


class SubscriptionError(ValueError):
    """Invalid subscription input; the message is shown to the client."""


@dataclass
class ClientState:
    user_id: int | None
    rooms: set[str] = field(default_factory=set)


def parse_request(payload: Any, *, allow_since: bool) -> tuple[list[str], dict[str, str]]:
    """Validate ``{"symbol": ...}`` / ``{"symbols": [...], "since": {...}}`` (or a bare symbol)."""
    if isinstance(payload, str | list):
        payload = {"symbols": payload} if isinstance(payload, list) else {"symbol": payload}
    if not isinstance(payload, dict):
        raise SubscriptionError("payload must be an object with 'symbol' or 'symbols'")
    unknown = set(payload) - {"symbol", "symbols", "since"}
    if unknown:
        raise SubscriptionError(f"unknown field(s): {', '.join(sorted(map(str, unknown)))[:100]}")
    raw: list[Any] = []
    if "symbol" in payload:
        raw.append(payload["symbol"])
    if "symbols" in payload:
        if not isinstance(payload["symbols"], list):
            raise SubscriptionError("'symbols' must be a list of symbols")
        if len(payload["symbols"]) > 1000:
            raise SubscriptionError("too many symbols in one request")
        raw.extend(payload["symbols"])
    if not raw:
        raise SubscriptionError("give 'symbol' or 'symbols'")
    symbols: list[str] = []
    for item in raw:
        if not isinstance(item, str):
            raise SubscriptionError("symbols must be strings")
        symbol = item.strip().upper()
        if symbol != "*" and not SYMBOL_RE.match(symbol):
            raise SubscriptionError(f"invalid symbol {item[:20]!r}")
        if symbol not in symbols:
            symbols.append(symbol)
    since: dict[str, str] = {}
    raw_since = payload.get("since")
    if raw_since is not None and allow_since:
        if not isinstance(raw_since, dict):
            raise SubscriptionError("'since' must map symbols to offsets")
        for key, value in raw_since.items():
            symbol = str(key).strip().upper()
            if symbol not in symbols:
                continue
            if not isinstance(value, str) or parse_offset(value) is None:
                raise SubscriptionError(f"invalid offset for {symbol}")
            since[symbol] = value
    return symbols, since


class SubscriptionHandlers:
    """Registers the subscribe/unsubscribe events on the server."""

    def __init__(self, sio: socketio.AsyncServer, hub: RealtimeHub) -> None:
        self.sio = sio
        self.hub = hub
        self.clients: dict[str, ClientState] = {}
        for kind in KINDS:
            sio.on(f"subscribe_{kind}", self._subscriber(kind))
            sio.on(f"unsubscribe_{kind}", self._unsubscriber(kind))
        sio.on("disconnect", self.on_disconnect)

    async def state(self, sid: str) -> ClientState:
        state = self.clients.get(sid)
        if state is None:
            session = await self.sio.get_session(sid)
            state = ClientState(user_id=session.get("user_id") if session else None)
            self.clients[sid] = state
        return state

    def _subscriber(self, kind: str) -> Any:
        async def handler(sid: str, payload: Any = None) -> dict[str, Any]:
            try:
                return await self.subscribe(sid, kind, payload)
            except SubscriptionError as exc:
                return await self._error(sid, str(exc))

        return handler

    def _unsubscriber(self, kind: str) -> Any:
        async def handler(sid: str, payload: Any = None) -> dict[str, Any]:
            try:
                return await self.unsubscribe(sid, kind, payload)
            except SubscriptionError as exc:
                return await self._error(sid, str(exc))

        return handler

    async def _error(self, sid: str, message: str) -> dict[str, Any]:
        body = {"status": "error", "code": "invalid_subscription", "message": message}
        await self.sio.emit("error", body, to=sid, ignore_queue=True)
        return body

    async def subscribe(self, sid: str, kind: str, payload: Any) -> dict[str, Any]:
        symbols, since = parse_request(payload, allow_since=True)
        state = await self.state(sid)
        # Interned: a thousand sockets on a room share one name string, not a copy each.
        rooms = [sys.intern(f"{kind}:{symbol}") for symbol in symbols]
        # Counted from the rooms the socket is in, whatever this handler's own record says (one
        # pass over the namespace's rooms: python-socketio keeps no index from socket to rooms).
        joined = set(self.sio.manager.get_rooms(sid, NAMESPACE))
        new_rooms = [room for room in rooms if room not in joined]
        # The cap counts symbols per subscription type; the all-symbols room is not a symbol.
        cap = self.hub.settings.max_symbols_per_client
        held = sum(
            1
            for r in joined
            if isinstance(r, str) and r.startswith(f"{kind}:") and not r.endswith(":*")
        )
        adding = sum(1 for r in new_rooms if not r.endswith(":*"))
        if held + adding > cap:
            raise SubscriptionError(
                f"too many symbols: at most {cap} {kind} subscriptions per connection"
                f" (you have {held})"
            )
        recovered: dict[str, bool] = {}
        replayed = 0
        baselines = await self._baselines(symbols, rooms, since)
        for symbol, room in zip(symbols, rooms, strict=True):
            offset = since.get(symbol)
            if offset is not None and symbol != "*":
                ok, count = await self._join_with_replay(sid, room, offset)
                recovered[symbol] = ok
                replayed += count
            elif offset is not None:
                recovered[symbol] = False
                self.sio.manager.basic_enter_room(sid, NAMESPACE, room)
            elif room not in state.rooms:
                self.sio.manager.basic_enter_room(sid, NAMESPACE, room)
            if sid not in self.clients:
                return {"status": "error", "code": "disconnected", "message": "disconnected"}
            state.rooms.add(room)
        if self.hub.recorder is not None and new_rooms:
            self.hub.recorder.added(sid, state.user_id, new_rooms)
        body = {
            "status": "success",
            "symbols": symbols,
            "type": kind,
            "recovered": recovered,
            "replayed": replayed,
            "offsets": baselines,
        }
        await self.sio.emit("subscribed", body, to=sid, ignore_queue=True)
        return body

    async def _baselines(
        self, symbols: list[str], rooms: list[str], since: dict[str, str]
    ) -> dict[str, str]:
        """Per symbol, the offset to resume from when no event of it has arrived yet.

        Taken before joining: every event after it reaches this socket (live, or replayed from
        ``since``), so a client that resumes with the last offset it received, or else this one,
        misses nothing, also for a symbol that had no event before it lost its connection.
        """
        store = self.hub.store
        wanted = [(s, r) for s, r in zip(symbols, rooms, strict=True) if s != "*"]
        if store is None or not wanted:
            return {}
        positions = await store.positions([room for _, room in wanted])
        baselines = {}
        for symbol, room in wanted:
            position = positions[room]
            given = since.get(symbol)
            if given is not None and (parse_offset(given) or (0, 0)) > (
                parse_offset(position) or (0, 0)
            ):
                position = given
            baselines[symbol] = position
        return baselines

    async def _join_with_replay(self, sid: str, room: str, offset: str) -> tuple[bool, int]:
        """Send history after ``offset``, then join the room with no gap and no duplicate."""
        store = self.hub.store
        assert store is not None
        return await self.hub.delivery.join(sid, room, offset, store.since)

    async def unsubscribe(self, sid: str, kind: str, payload: Any) -> dict[str, Any]:
        symbols, _ = parse_request(payload, allow_since=False)
        state = await self.state(sid)
        removed = []
        for symbol in symbols:
            room = f"{kind}:{symbol}"
            if room in state.rooms:
                self.sio.manager.basic_leave_room(sid, NAMESPACE, room)
                state.rooms.discard(room)
                removed.append(room)
        if self.hub.recorder is not None and removed:
            self.hub.recorder.removed(sid, removed)
        return {"status": "success", "symbols": symbols, "type": kind}

    async def on_disconnect(self, sid: str, reason: Any = None) -> None:
        self.clients.pop(sid, None)
        self.hub.delivery.forget(sid)
        self.hub.disconnects += 1
        if self.hub.recorder is not None:
            self.hub.recorder.disconnected(sid)
