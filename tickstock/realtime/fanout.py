"""Per-node delivery: read the shared fan-out stream and put each event on local sockets' queues.

Each event is encoded once per node; every recipient gets the same packet object put on its
engine.io queue without awaiting it, so a stalled client can never slow the loop. A queue over its
bound marks the client as a slow consumer, which is then disconnected.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import engineio.packet
import redis.asyncio as aioredis
import socketio

from tickstock import metrics
from tickstock.errors import REDIS_DOWN
from tickstock.realtime.history import (
    StoredEvent,
    encode_batch_frame,
    encode_batch_item,
    encode_envelope,
    encode_frame,
    parse_offset,
    stored_from_fanout,
)

log = logging.getLogger(__name__)

NAMESPACE = "/"
ALL_PATTERNS_ROOM = "patterns:*"
# Sockets that connected with ``batch_ms`` get coalesced ``events`` frames (encode_batch_frame).
BATCH_MAX_EVENTS = 500  # a frame is sent early when it holds this many events


@dataclass
class FanoutStats:
    events: int = 0
    deliveries: int = 0
    slow_consumer_disconnects: int = 0
    reconnects: int = 0
    connected: bool = False
    last_event_at: float | None = None
    lag_ms: float = 0.0


def offset_after(offset: str, other: str) -> bool:
    """Whether history offset ``offset`` comes strictly after ``other``."""
    a, b = parse_offset(offset), parse_offset(other)
    return a is not None and b is not None and a > b


class Delivery:
    """Puts encoded events on the queues of this node's sockets."""

    def __init__(self, sio: socketio.AsyncServer, *, queue_limit: int) -> None:
        self.sio = sio
        self.queue_limit = queue_limit
        self.stats = FanoutStats()
        # Sockets catching up from history: room -> sid -> live events held back until replay ends.
        self.joining: dict[str, dict[str, list[StoredEvent]]] = {}
        self._dropping: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        # Sockets that asked for coalescing: sid -> window (s), their pending items and timers.
        self.batch_windows: dict[str, float] = {}
        self._pending: dict[str, list[bytes]] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}

    def set_batch_window(self, sid: str, milliseconds: int) -> None:
        """Coalesce this socket's events into one ``events`` frame per ``milliseconds``."""
        if milliseconds > 0:
            self.batch_windows[sid] = milliseconds / 1000

    def deliver(self, room: str, event: StoredEvent) -> int:
        """Deliver one event to every local socket in its room(s); returns the recipient count."""
        rooms: Iterable[str] = (
            (room, ALL_PATTERNS_ROOM) if room.startswith("patterns:") else (room,)
        )
        namespace_rooms = self.sio.manager.rooms.get(NAMESPACE)
        recipients: dict[str, str] = {}
        if namespace_rooms:
            for name in rooms:
                members = namespace_rooms.get(name)
                if members:
                    recipients.update(members._fwdm)
        joining = self.joining.get(room)
        if joining:
            for sid, held in joining.items():
                if sid not in recipients:
                    held.append(event)
        if not recipients:
            return 0
        envelope = encode_envelope(event)
        packet: engineio.packet.Packet | None = None
        item: bytes | None = None
        windows = self.batch_windows
        sent = 0
        for sid, eio_sid in recipients.items():
            window = windows.get(sid) if windows else None
            if window is not None:
                if item is None:
                    item = encode_batch_item(event, envelope)
                self._add_to_batch(sid, window, item)
                sent += 1
                continue
            if packet is None:
                packet = engineio.packet.Packet(
                    engineio.packet.MESSAGE, encode_frame(event, envelope)
                )
            if self.send_packet(sid, eio_sid, packet):
                sent += 1
        self.stats.deliveries += sent
        metrics.DELIVERIES.inc(sent)
        return sent

    def send_events(self, sid: str, events: Iterable[StoredEvent]) -> int:
        """Send events to one socket (history replay), in order."""
        eio_sid = self.sio.manager.eio_sid_from_sid(sid, NAMESPACE)
        if eio_sid is None:
            return 0
        if sid in self.batch_windows:
            # After what is pending (order), as frames of their own, sent now.
            items = [encode_batch_item(event) for event in events]
            self.flush_batch(sid, limit=False)
            for start in range(0, len(items), BATCH_MAX_EVENTS):
                self._send_batch(sid, eio_sid, items[start : start + BATCH_MAX_EVENTS], False)
            self.stats.deliveries += len(items)
            return len(items)
        sent = 0
        for event in events:
            packet = engineio.packet.Packet(engineio.packet.MESSAGE, encode_frame(event))
            if not self.send_packet(sid, eio_sid, packet, limit=False):
                break
            sent += 1
        self.stats.deliveries += sent
        return sent

    def _add_to_batch(self, sid: str, window: float, item: bytes) -> None:
        items = self._pending.get(sid)
        if items is None:
            self._pending[sid] = [item]
            loop = asyncio.get_running_loop()
            self._timers[sid] = loop.call_later(window, self.flush_batch, sid)
            return
        items.append(item)
        if len(items) >= BATCH_MAX_EVENTS:
            self.flush_batch(sid)

    def flush_batch(self, sid: str, *, limit: bool = True) -> None:
        """Send a socket's pending events now, as one ``events`` frame."""
        timer = self._timers.pop(sid, None)
        if timer is not None:
            timer.cancel()
        items = self._pending.pop(sid, None)
        if not items:
            return
        eio_sid = self.sio.manager.eio_sid_from_sid(sid, NAMESPACE)
        if eio_sid is not None:
            self._send_batch(sid, eio_sid, items, limit)

    def _send_batch(self, sid: str, eio_sid: str, items: list[bytes], limit: bool) -> None:
        packet = engineio.packet.Packet(engineio.packet.MESSAGE, encode_batch_frame(items))
        self.send_packet(sid, eio_sid, packet, limit=limit)

    def send_packet(
        self, sid: str, eio_sid: str, packet: engineio.packet.Packet, *, limit: bool = True
    ) -> bool:
        socket = self.sio.eio.sockets.get(eio_sid)
        if socket is None or socket.closed:
            return False
        queue: asyncio.Queue[Any] = socket.queue
        if limit and queue.qsize() >= self.queue_limit:
            self._drop_slow_consumer(sid, eio_sid)
            return False
        queue.put_nowait(packet)
        return True

    def _drop_slow_consumer(self, sid: str, eio_sid: str) -> None:
        if sid in self._dropping:
            return
        self._dropping.add(sid)
        self.stats.slow_consumer_disconnects += 1
        metrics.SLOW_CONSUMERS.inc()
        log.warning(
            "disconnecting slow consumer %s (outbound queue over %d)", sid, self.queue_limit
        )
        task = asyncio.create_task(self._disconnect_slow(sid, eio_sid))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _disconnect_slow(self, sid: str, eio_sid: str) -> None:
        socket = self.sio.eio.sockets.get(eio_sid)
        if socket is not None:
            # What is queued will not be read in time: replace it with the reason.
            queue: asyncio.Queue[Any] = socket.queue
            while not queue.empty():
                queue.get_nowait()
                queue.task_done()
        try:
            await self.sio.emit(
                "error",
                {
                    "status": "error",
                    "code": "slow_consumer",
                    "message": "outbound queue overflowed; reconnect and resubscribe with offsets",
                },
                to=sid,
                ignore_queue=True,
            )
            await self.sio.disconnect(sid, ignore_queue=True)
        except Exception:
            log.exception("error disconnecting slow consumer %s", sid)
        finally:
            self._dropping.discard(sid)

    def forget(self, sid: str) -> None:
        for held in self.joining.values():
            held.pop(sid, None)
        self.batch_windows.pop(sid, None)
        self._pending.pop(sid, None)
        timer = self._timers.pop(sid, None)
        if timer is not None:
            timer.cancel()


class FanoutReader:
    """The node's reader of the fan-out stream (a blocking XREAD loop with reconnects)."""

    def __init__(
        self,
        make_client: Any,
        key: str,
        delivery: Delivery,
        *,
        backoff_cap: float = 10.0,
    ) -> None:
        self.make_client = make_client
        self.key = key
        self.delivery = delivery
        self.backoff_cap = backoff_cap
        self.last_id: str | None = None
        self.ready = asyncio.Event()

    async def run(self) -> None:
        stats = self.delivery.stats
        backoff = 0.5
        while True:
            client: aioredis.Redis = self.make_client()
            try:
                await self._resume_point(client)
                stats.connected = True
                self.ready.set()
                backoff = 0.5
                await self._read(client)
            except asyncio.CancelledError:
                raise
            except REDIS_DOWN as exc:
                if stats.connected:
                    log.warning("fan-out reader lost Redis (%r); reconnecting", exc)
                stats.connected = False
                stats.reconnects += 1
                metrics.REDIS_RECONNECTS.labels("fanout").inc()
            except Exception:
                log.exception("fan-out reader failed; restarting")
                stats.connected = False
            finally:
                await _close_quietly(client)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.backoff_cap)

    async def _resume_point(self, client: aioredis.Redis) -> None:
        newest: Any = await client.xrevrange(self.key, count=1)
        newest_id = newest[0][0].decode() if newest else "0-0"
        if self.last_id is None:
            self.last_id = newest_id  # start with live events
        elif offset_after(self.last_id, newest_id):
            # Redis came back without our position (restarted, or a replica that lagged took
            # over). Entry ids are times, so new entries still sort after our position: keep it
            # rather than re-reading (and re-sending) the whole stream.
            log.warning(
                "fan-out stream is behind this node (%s < %s); waiting for new entries",
                newest_id,
                self.last_id,
            )

    async def _read(self, client: aioredis.Redis) -> None:
        # One connection held for the loop, commands sent on it directly: the client's per-call
        # pool checkout, retry wrapper and reply post-processing cost more CPU than the read itself
        # (this runs once per event on every node). Any error ends the loop; run() reconnects.
        pool = client.connection_pool
        conn = await pool.get_connection()  # type: ignore[no-untyped-call]
        try:
            while True:
                assert self.last_id is not None
                await conn.send_command(
                    "XREAD", "COUNT", 500, "BLOCK", 5000, "STREAMS", self.key, self.last_id
                )
                response: Any = await conn.read_response()
                if not response:
                    continue  # BLOCK timed out
                # RESP3 answers a map {stream: entries}, RESP2 a list of [stream, entries].
                pairs = response.items() if isinstance(response, dict) else response
                for _stream, entries in pairs:
                    self._deliver(entries)
        finally:
            await pool.release(conn)

    def _deliver(self, entries: list[Any]) -> None:
        stats = self.delivery.stats
        now = time.time()
        for entry_id, flat in entries:
            self.last_id = entry_id.decode()
            try:
                room, event = stored_from_fanout(
                    entry_id, dict(zip(flat[::2], flat[1::2], strict=True))
                )
            except (KeyError, ValueError):
                log.warning("skipping malformed fan-out entry %s", self.last_id)
                continue
            self.delivery.deliver(room, event)
            stats.events += 1
            stats.last_event_at = now
            with contextlib.suppress(ValueError):
                lag = max(0.0, now - float(event.timestamp))
                stats.lag_ms = lag * 1000
                metrics.INGEST_TO_EMIT.observe(lag)


async def _close_quietly(client: aioredis.Redis) -> None:
    try:
        await asyncio.wait_for(client.aclose(), 2)
    except Exception as exc:
        log.debug("closing redis client: %r", exc)
