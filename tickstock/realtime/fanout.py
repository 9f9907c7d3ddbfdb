"""Per-node delivery: read the shared fan-out stream and write each event to local sockets.

Each event is encoded and framed once per node. A websocket recipient gets that frame written to
its transport directly (wsdirect.py): no task switch, queue hop or re-encoding per recipient, and
nothing awaited, so a stalled client can never slow the loop. Sockets the direct path does not
cover (long-polling, HTTP/2) get the same packet on their engine.io queue. Either way a client
whose outbound buffer passes its bound is a slow consumer and is disconnected.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import engineio.packet
import socketio

from tickstock import metrics
from tickstock.realtime.history import (
    StoredEvent,
    live_channel,
    parse_offset,
    stored_from_fanout,
    stored_from_live,
)
from tickstock.realtime.link import RedisLink, pairs
from tickstock.realtime.wire import (
    encode_batch_frame,
    encode_batch_item,
    encode_envelope,
    encode_frame,
    engineio_message,
)
from tickstock.realtime.wsdirect import DirectWrites, EventFrames, Link

log = logging.getLogger(__name__)

NAMESPACE = "/"
ALL_PATTERNS_ROOM = "patterns:*"
# Sockets that connected with ``batch_ms`` get coalesced ``events`` frames (encode_batch_frame).
BATCH_MAX_EVENTS = 500  # a frame is sent early when it holds this many events
SLOW_CONSUMER_ABORT_S = 2.0
LAG_SAMPLES = 100  # publish-to-delivery lags observed into the histogram per second, at most  # a dropped slow consumer's connection is cut if still open by then

Since = Callable[[str, str], Awaitable[tuple[list[StoredEvent], bool]]]


@dataclass
class FanoutStats:
    events: int = 0
    deliveries: int = 0
    slow_consumer_disconnects: int = 0
    reconnects: int = 0
    connected: bool = False
    last_event_at: float | None = None
    lag_ms: float = 0.0
    # Publish-to-delivery lags of recent events, observed into the histogram once a second.
    lags: list[float] = field(default_factory=list)
    published_deliveries: int = 0

    def publish_metrics(self) -> None:
        """Bring the delivery metrics up to date (called once a second, not once per event)."""
        lags, self.lags = self.lags, []
        observe = metrics.INGEST_TO_EMIT.observe
        # At most LAG_SAMPLES a second, evenly spread: the histogram is of the lag, and a
        # sample of it costs a fraction of observing every event.
        for lag in lags[:: max(1, len(lags) // LAG_SAMPLES)]:
            observe(lag)
        if self.deliveries != self.published_deliveries:
            metrics.DELIVERIES.inc(self.deliveries - self.published_deliveries)
            self.published_deliveries = self.deliveries


def offset_after(offset: str, other: str) -> bool:
    """Whether history offset ``offset`` comes strictly after ``other``."""
    a, b = parse_offset(offset), parse_offset(other)
    return a is not None and b is not None and a > b


class Delivery:
    """Writes encoded events to this node's sockets, live and replayed, in per-socket order."""

    def __init__(
        self,
        sio: socketio.AsyncServer,
        *,
        queue_limit: int,
        buffer_limit: int = 256 * 1024,
        direct: DirectWrites | None = None,
    ) -> None:
        self.sio = sio
        self.queue_limit = queue_limit  # packets on an engine.io queue (ordinary path)
        self.buffer_limit = buffer_limit  # bytes in a transport's write buffer (direct path)
        self.direct = direct
        self.stats = FanoutStats()
        # Sockets catching up from history: room -> sid -> live events held back until replay ends.
        self._joining: dict[str, dict[str, list[StoredEvent]]] = {}
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

    def _link(self, eio_sid: str) -> Link | None:
        direct = self.direct
        if direct is None:
            return None
        link = direct.links.get(eio_sid)
        if link is None or link.installed:
            return link
        return direct.link_for(eio_sid, self.sio.eio.sockets.get(eio_sid))

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
        joining = self._joining.get(room)
        if joining:
            for sid, held in joining.items():
                if sid not in recipients:
                    held.append(event)
        if not recipients:
            return 0
        envelope = encode_envelope(event)
        frames: EventFrames | None = None
        frame: bytes | None = None
        item: bytes | None = None
        windows = self.batch_windows
        links = self.direct.links if self.direct is not None else None
        limit = self.buffer_limit
        sent = 0
        for sid, eio_sid in recipients.items():
            if windows and sid in windows:
                if item is None:
                    item = encode_batch_item(event, envelope)
                self._add_to_batch(sid, windows[sid], item)
                sent += 1
                continue
            link = links.get(eio_sid) if links else None
            if link is not None and not link.installed:
                link = self._link(eio_sid)
            if frame is None:
                frame = encode_frame(event, envelope)
            if link is not None:
                if link.transport.get_write_buffer_size() > limit:
                    self._drop_slow_consumer(sid, eio_sid)
                    continue
                if frames is None:
                    frames = EventFrames(engineio_message(frame))
                if link.write_frame(frames):
                    sent += 1
                continue
            if self.send_packet(sid, eio_sid, frame):
                sent += 1
        self.stats.deliveries += sent
        return sent

    async def join(self, sid: str, room: str, offset: str, since: Since) -> tuple[bool, int]:
        """Send the room's history after ``offset`` to ``sid``, then add it to the room, with no
        gap and no duplicate at the seam. Returns (whether history reached back, events sent)."""
        held = self._joining.setdefault(room, {}).setdefault(sid, [])
        try:
            events, recovered = await since(room, offset)
        except BaseException:
            self._leave_joining(room, sid)
            raise
        # No await from here on: live events cannot slip between the replay and the join.
        sent = 0
        last = offset
        if recovered and events:
            sent = self.send_events(sid, events)
            last = events[-1].offset
        pending = [event for event in held if offset_after(event.offset, last)]
        sent += self.send_events(sid, pending)
        self._leave_joining(room, sid)
        if self.sio.manager.is_connected(sid, NAMESPACE):
            self.sio.manager.basic_enter_room(sid, NAMESPACE, room)
        return recovered, sent

    def _leave_joining(self, room: str, sid: str) -> None:
        waiting = self._joining.get(room)
        if waiting is not None:
            waiting.pop(sid, None)
            if not waiting:
                self._joining.pop(room, None)

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
                self.send_packet(
                    sid, eio_sid, encode_batch_frame(items[start : start + BATCH_MAX_EVENTS]), False
                )
            self.stats.deliveries += len(items)
            return len(items)
        sent = 0
        for event in events:
            if not self.send_packet(sid, eio_sid, encode_frame(event), limit=False):
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
            self.send_packet(sid, eio_sid, encode_batch_frame(items), limit)

    def send_packet(self, sid: str, eio_sid: str, frame: bytes, limit: bool = True) -> bool:
        """One Socket.IO packet to one socket, after everything sent to it before."""
        link = self._link(eio_sid)
        if link is not None:
            if limit and link.transport.get_write_buffer_size() > self.buffer_limit:
                self._drop_slow_consumer(sid, eio_sid)
                return False
            return link.write_frame(EventFrames(engineio_message(frame)))
        socket = self.sio.eio.sockets.get(eio_sid)
        if socket is None or socket.closed:
            return False
        queue: asyncio.Queue[Any] = socket.queue
        if limit and queue.qsize() >= self.queue_limit:
            self._drop_slow_consumer(sid, eio_sid)
            return False
        queue.put_nowait(engineio.packet.Packet(engineio.packet.MESSAGE, frame.decode()))
        return True

    def _drop_slow_consumer(self, sid: str, eio_sid: str) -> None:
        if sid in self._dropping:
            return
        self._dropping.add(sid)
        self.stats.slow_consumer_disconnects += 1
        metrics.SLOW_CONSUMERS.inc()
        log.warning("disconnecting slow consumer %s (outbound buffer over its bound)", sid)
        task = asyncio.create_task(self._disconnect_slow(sid, eio_sid))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _disconnect_slow(self, sid: str, eio_sid: str) -> None:
        link = self.direct.links.get(eio_sid) if self.direct is not None else None
        socket = self.sio.eio.sockets.get(eio_sid)
        if socket is not None and link is None:
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
        if link is not None:
            # Its transport still holds what the client did not read; a client that reads again
            # gets the reason and the close, one that does not is cut off.
            asyncio.get_running_loop().call_later(SLOW_CONSUMER_ABORT_S, link.abort)

    def forget(self, sid: str) -> None:
        for held in self._joining.values():
            held.pop(sid, None)
        self.batch_windows.pop(sid, None)
        self._pending.pop(sid, None)
        timer = self._timers.pop(sid, None)
        if timer is not None:
            timer.cancel()


EntryConsumer = Callable[[str, str, StoredEvent], None]


class FanoutReader:
    """The node's reader of the fan-out stream: live entries pushed on the node's event link
    (link.py), gaps and reconnects read from the stream itself, each entry delivered once and in
    stream order. Consumers (the alert matcher) see every entry delivered, in the same order."""

    def __init__(self, key: str, delivery: Delivery) -> None:
        self.key = key
        self.channel = live_channel(key)
        self.delivery = delivery
        self.last_id: str | None = None
        self.ready = asyncio.Event()
        self.consumers: list[EntryConsumer] = []
        # Told the payload of every live entry (the ingest consumer's calls in flight).
        self.appended: Callable[[bytes], None] | None = None
        self._link: RedisLink | None = None
        # Live entries that arrived while the stream is being read (after a reconnect or a gap),
        # delivered in order once it has been; None when live entries are delivered as they come.
        self._held: list[bytes] | None = []
        self._catching_up: asyncio.Task[None] | None = None

    # --- the event link's side -------------------------------------------------------------

    def connecting(self) -> None:
        """The link is (re)connecting: hold live entries until the stream is read."""
        if self._held is None:
            self._held = []

    async def connected(self, link: RedisLink) -> None:
        """Subscribed again: read what was missed from the stream, then go live."""
        self._link = link
        await self._resume_point(link)
        await self._catch_up(link)
        self._release_held(link)
        stats = self.delivery.stats
        stats.connected = True
        self.ready.set()

    def disconnected(self, exc: BaseException) -> None:
        stats = self.delivery.stats
        if stats.connected:
            log.warning("fan-out reader lost Redis (%r); reconnecting", exc)
            stats.reconnects += 1
            metrics.REDIS_RECONNECTS.labels("fanout").inc()
        stats.connected = False
        self._link = None
        self.connecting()
        if self._catching_up is not None:
            self._catching_up.cancel()
            self._catching_up = None

    def on_live(self, message: bytes) -> None:
        """A live entry pushed on the link (history.APPEND_SCRIPT publishes each as appended)."""
        held = self._held
        if held is not None:
            held.append(message)
        elif not self._deliver_live(message):
            # A gap: entries before this one were appended without a live message. Read them
            # from the stream; this one and those after it wait their turn.
            self._held = [message]
            self._start_catch_up()

    # --- reading the stream ----------------------------------------------------------------

    async def _resume_point(self, link: RedisLink) -> None:
        newest: Any = await link.command("XREVRANGE", self.key, "+", "-", "COUNT", 1)
        newest_id = _text(newest[0][0]) if newest else "0-0"
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

    async def _catch_up(self, link: RedisLink) -> None:
        while True:
            assert self.last_id is not None
            entries: Any = await link.command(
                "XRANGE", self.key, f"({self.last_id}", "+", "COUNT", 500
            )
            if not entries:
                return
            self._deliver(entries)

    def _start_catch_up(self) -> None:
        link = self._link
        if link is None or self._catching_up is not None:
            return  # reconnecting: connected() reads the stream and releases what is held
        self._catching_up = asyncio.create_task(self._fill_gap(link), name="tickstock-fanout-gap")

    async def _fill_gap(self, link: RedisLink) -> None:
        try:
            await self._catch_up(link)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # The link is going down; its reconnect reads the stream again.
            log.debug("fan-out gap not read (%r); the reconnect will", exc)
            return
        finally:
            self._catching_up = None
        self._release_held(link)

    def _release_held(self, link: RedisLink) -> None:
        held = self._held or []
        self._held = None
        for index, message in enumerate(held):
            if not self._deliver_live(message):
                self._held = held[index:]
                self._start_catch_up()
                return

    def _deliver_live(self, message: bytes) -> bool:
        """Deliver a live entry; False when entries before it are missing here (a gap)."""
        try:
            entry_id, prev, room, event = stored_from_live(message)
        except ValueError:
            log.warning("skipping malformed live fan-out message %r", message[:80])
            return True
        if self.appended is not None:
            self.appended(event.payload)
        last = self.last_id
        if prev != last and last is not None:  # (the next entry names the last one: in order)
            if not offset_after(entry_id, last):
                return True  # already delivered from the stream while catching up
            if offset_after(prev, last):
                metrics.FANOUT_GAPS.inc()
                return False
        self.last_id = entry_id
        self._delivered(entry_id, room, event, time.time())
        return True

    def _delivered(self, entry_id: str, room: str, event: StoredEvent, now: float) -> None:
        stats = self.delivery.stats
        self.delivery.deliver(room, event)
        for consumer in self.consumers:
            consumer(entry_id, room, event)
        stats.events += 1
        stats.last_event_at = now
        with contextlib.suppress(ValueError):
            lag = max(0.0, now - float(event.timestamp))
            stats.lag_ms = lag * 1000
            stats.lags.append(lag)

    def _deliver(self, entries: list[Any]) -> None:
        now = time.time()
        for entry_id, fields in entries:
            self.last_id = _text(entry_id)
            try:
                room, event = stored_from_fanout(entry_id, pairs(fields))
            except (KeyError, ValueError, TypeError):
                log.warning("skipping malformed fan-out entry %s", self.last_id)
                continue
            self._delivered(self.last_id, room, event, now)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
