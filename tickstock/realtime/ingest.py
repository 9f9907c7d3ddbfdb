"""The node's ingest consumer: producer channels (or a stream) -> normalise -> event store.

It reconnects with capped exponential backoff after any Redis failure and never dies on a bad
message: rejects are counted by reason, logged with context (rate-limited) and written to
``error_logs`` at a bounded rate.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import logging
import socket
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
import redis.exceptions

from tickstock import metrics
from tickstock.config import Settings
from tickstock.errors import REDIS_DOWN
from tickstock.queries.realtime import insert_error_logs
from tickstock.realtime.events import Event, NormaliseResult, Reject, is_job_channel, normalise
from tickstock.realtime.history import EventStore
from tickstock.realtime.jobs import JobUpdater
from tickstock.realtime.lease import ACQUIRE_SCRIPT, RELEASE_SCRIPT
from tickstock.realtime.link import LinkLost, RedisLink, is_noscript
from tickstock.vocab import PATTERNS_CHANNEL

log = logging.getLogger(__name__)

STREAM_GROUP = "tickstock-ingest"
_NO_JOBS = NormaliseResult([], [], ignored=True)  # job reports on a node that runs no jobs
# Events kept to store again after the event link reconnects (those in flight when it dropped).
RETRY_MAX = 10_000
# The ingest lease (pub/sub mode): one node stores the producer's messages, the others keep the
# last STANDBY_S seconds of them (longer than the lease) to store if they take over.
LEASE_MS = 1500
LEASE_RENEW_S = 0.5
STANDBY_S = 6.0
STANDBY_MAX = 200_000


@dataclass
class ChannelStats:
    name: str = ""
    jobs: bool = False  # the channel carries job reports (jobs.py), not events
    received: int = 0
    accepted: int = 0
    duplicates: int = 0
    ignored: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    last_event_at: float | None = None
    # What the metrics have been told so far (they are brought up to date once a second, not
    # once per event: see IngestStats.publish_metrics).
    published: tuple[int, int, int] = (0, 0, 0)


class _Channels(defaultdict[str, ChannelStats]):
    def __missing__(self, key: str) -> ChannelStats:
        stats = self[key] = ChannelStats(key, jobs=is_job_channel(key))
        return stats


@dataclass
class IngestStats:
    """Counters for /api/streaming/status, /health and metrics."""

    connected: bool = False
    mode: str = "pubsub"
    reconnects: int = 0
    last_error: str | None = None
    connected_since: float | None = None
    channels: defaultdict[str, ChannelStats] = field(default_factory=_Channels)
    lost: int = 0  # events normalised but not stored (an error reply, or too long an outage)
    retried: int = 0  # events sent again after a reconnect (stored at most once: dedupe)
    leading: bool = False  # pub/sub mode: this node stores the producer's messages
    replayed: int = 0  # kept messages stored on taking over the ingest lease

    @property
    def last_event_at(self) -> float | None:
        times = [c.last_event_at for c in self.channels.values() if c.last_event_at]
        return max(times) if times else None

    def publish_metrics(self) -> None:
        """Bring the per-channel counters of /metrics up to date (called once a second)."""
        for name, c in list(self.channels.items()):
            received, accepted, duplicates = c.published
            if c.received != received:
                metrics.EVENTS_RECEIVED.labels(name).inc(c.received - received)
            if c.accepted != accepted:
                metrics.EVENTS_ACCEPTED.labels(name).inc(c.accepted - accepted)
            if c.duplicates != duplicates:
                metrics.EVENTS_DUPLICATE.labels(name).inc(c.duplicates - duplicates)
            c.published = (c.received, c.accepted, c.duplicates)

    def as_dict(self) -> dict[str, Any]:
        now = time.time()
        last = self.last_event_at
        return {
            "connected": self.connected,
            "mode": self.mode,
            "reconnects": self.reconnects,
            "leading": self.leading,
            "replayed": self.replayed,
            "retried": self.retried,
            "lost": self.lost,
            "last_error": self.last_error,
            "last_event_age_s": round(now - last, 3) if last else None,
            "channels": {
                name: {
                    "received": c.received,
                    "accepted": c.accepted,
                    "duplicates": c.duplicates,
                    "ignored": c.ignored,
                    "rejected": dict(c.rejected),
                    "last_event_age_s": round(now - c.last_event_at, 3)
                    if c.last_event_at
                    else None,
                }
                for name, c in sorted(self.channels.items())
            },
        }


class ErrorLogWriter:
    """Writes rejects to ``error_logs`` in the background, at most N a minute (floods are dropped)."""

    def __init__(self, database: Any, per_minute: int, node_id: str) -> None:
        self.database = database
        self.per_minute = per_minute
        self.node_id = node_id
        self.queue: asyncio.Queue[tuple[str, str, str, str, dict[str, Any]]] = asyncio.Queue(
            maxsize=max(per_minute, 1)
        )
        self._window_start = time.monotonic()
        self._window_count = 0

    def add(self, reason: str, channel: str, message: str, context: dict[str, Any]) -> None:
        now = time.monotonic()
        if now - self._window_start >= 60:
            self._window_start, self._window_count = now, 0
        if self._window_count >= self.per_minute:
            return
        self._window_count += 1
        # A full queue means the writer is behind: the row is dropped like any flood.
        with contextlib.suppress(asyncio.QueueFull):
            self.queue.put_nowait(("ingest", reason, channel, message, context))

    async def run(self) -> None:
        while True:
            rows = [await self.queue.get()]
            while not self.queue.empty() and len(rows) < 100:
                rows.append(self.queue.get_nowait())
            try:
                async with self.database.write() as conn:
                    await insert_error_logs(
                        conn,
                        [(s, r, c, m, {**ctx, "node": self.node_id}) for s, r, c, m, ctx in rows],
                    )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # The database being down must not stop ingest; these rows are lost (logged).
                log.warning("could not write %d error log row(s): %r", len(rows), exc)
                await asyncio.sleep(1)


class IngestConsumer:
    """Consumes the producer's channels (pub/sub) or stream and appends events to the store."""

    def __init__(
        self,
        settings: Settings,
        make_client: Callable[[], aioredis.Redis],
        store_factory: Callable[[aioredis.Redis], EventStore],
        errors: ErrorLogWriter | None,
        *,
        node_id: str | None = None,
        jobs: JobUpdater | None = None,
    ) -> None:
        self.settings = settings
        self.jobs = jobs
        self.make_client = make_client
        self.store_factory = store_factory
        self.errors = errors
        self.node_id = node_id or f"{socket.gethostname()}:{id(self):x}"
        self.stats = IngestStats(mode=settings.ingest_mode)
        self._last_log: dict[str, float] = {}
        self.backoff_start = 0.5
        self.backoff_cap = 10.0
        self.ready = asyncio.Event()
        self.store: EventStore | None = None  # pub/sub mode: builds the script calls
        self._pending: list[tuple[bytes, bytes]] = []
        # Pub/sub mode: whether this node holds the ingest lease (``lead``), and what it keeps
        # of the producer's messages while it does not.
        self.leading = settings.ingest_mode == "stream"
        # One lease per set of channels: nodes configured with other channels (a staging producer
        # beside the real one, say) must not stand by for a holder that never hears theirs.
        channels = hashlib.sha1("\n".join(sorted(settings.ingest_channels)).encode()).hexdigest()
        self.lease_key = f"{settings.key_prefix}:ingest:leader:{channels[:12]}"
        self._standby: collections.deque[tuple[float, bytes, bytes]] = collections.deque()
        self._link: RedisLink | None = None
        # Script calls sent and not yet answered, by payload (see ``appended``), and those to
        # send again after a reconnect.
        self._inflight: dict[bytes, tuple[ChannelStats, tuple[Any, ...]]] = {}
        self._retry: list[tuple[ChannelStats, tuple[Any, ...]]] = []
        self._by_channel: dict[bytes, ChannelStats] = {}

    async def run(self) -> None:
        """Stream mode: read the producer's stream with a consumer group (pub/sub mode is driven
        by the node's event link instead: ``received`` / ``flush``)."""
        backoff = self.backoff_start
        while True:
            client = self.make_client()
            try:
                await self._run_stream(client, self.store_factory(client))
            except asyncio.CancelledError:
                raise
            except REDIS_DOWN as exc:
                self.disconnected(exc)
            except Exception as exc:
                log.exception("ingest consumer failed; restarting")
                self.disconnected(exc)
            else:
                backoff = self.backoff_start
            finally:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(client.aclose(), 2)
            if self.stats.connected_since and time.time() - self.stats.connected_since > 30:
                backoff = self.backoff_start
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.backoff_cap)

    def disconnected(self, exc: BaseException) -> None:
        if self.stats.connected:
            log.warning("ingest lost Redis (%r); reconnecting with backoff", exc)
        self.stats.connected = False
        self.stats.connected_since = None
        self.stats.reconnects += 1
        metrics.REDIS_RECONNECTS.labels("ingest").inc()
        self.stats.last_error = f"{type(exc).__name__}: {exc}"[:200]
        self._link = None
        # Events whose script call got no reply, and whose live entry never came back either,
        # may not be stored: they are sent again, first, once connected (dedupe absorbs the ones
        # that were). Bounded: an outage long enough to fill it drops the oldest (counted).
        self._retry.extend(self._inflight.values())
        self._inflight.clear()
        if len(self._retry) > RETRY_MAX:
            self.stats.lost += len(self._retry) - RETRY_MAX
            del self._retry[:-RETRY_MAX]

    def connected(self, link: RedisLink | None = None) -> None:
        """Connected (again); in pub/sub mode, ``link`` carries the script calls from now on."""
        self.stats.connected = True
        self.stats.connected_since = time.time()
        self.stats.last_error = None
        self.ready.set()
        log.info("ingest connected (%s)", self.settings.ingest_mode)
        if link is None:
            return
        self._link = link
        if self._retry:
            retry, self._retry = self._retry, []
            self.stats.retried += len(retry)
            log.info("ingest: storing %d event(s) again after the reconnect", len(retry))
            link.send([(args, self._call(stats, args)) for stats, args in retry])
        self.flush(link)

    async def _run_stream(self, client: aioredis.Redis, store: EventStore) -> None:
        stream = self.settings.ingest_stream
        try:
            await client.xgroup_create(stream, STREAM_GROUP, id="0", mkstream=True)
        except redis.exceptions.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self.connected()
        # Entries a node took and never acknowledged (it crashed) are taken over once idle.
        claim_from = "0-0"
        while True:
            claimed: Any = await client.xautoclaim(
                stream,
                STREAM_GROUP,
                self.node_id,
                int(self.settings.ingest_claim_idle_seconds * 1000),
                claim_from,
                count=100,
            )
            claim_from = _text(claimed[0])
            await self._process_entries(client, store, stream, claimed[1])
            if claim_from == "0-0":
                break
        # Then this consumer's own pending entries, then new ones.
        cursor = "0"
        while True:
            response: Any = await client.xreadgroup(
                STREAM_GROUP, self.node_id, {stream: cursor}, count=100, block=5000
            )
            entries = response[0][1] if response else []
            if cursor == "0" and not entries:
                cursor = ">"
                continue
            await self._process_entries(client, store, stream, entries)

    async def _process_entries(
        self, client: aioredis.Redis, store: EventStore, stream: str, entries: list[Any]
    ) -> None:
        entries = [(entry_id, fields) for entry_id, fields in entries if fields]
        if not entries:
            return
        await self.process_batch(
            store,
            [
                (
                    _field(fields, b"channel") or PATTERNS_CHANNEL,
                    fields.get(b"data") or fields.get(b"payload") or fields.get(b"message") or b"",
                )
                for _entry_id, fields in entries
            ],
        )
        # Acknowledged once stored: a crash before this replays them, and dedupe absorbs that.
        await client.xack(stream, STREAM_GROUP, *[entry_id for entry_id, _ in entries])

    # --- pub/sub mode: the producer's messages arrive on the node's event link (link.py) ----

    def received(self, channel: bytes, raw: bytes) -> None:
        """A producer message read by the event link: stored on ``flush`` (after the read) by
        the node that holds the ingest lease; the others only keep it a few seconds, to store
        it if they take over (see ``lead``)."""
        if self.leading:
            self._pending.append((channel, raw))
            return
        self._channel_stats(channel).received += 1
        now = time.monotonic()
        standby = self._standby
        standby.append((now, channel, raw))
        cutoff = now - STANDBY_S
        while standby[0][0] < cutoff or len(standby) > STANDBY_MAX:
            standby.popleft()

    async def lead(self, link: RedisLink, command_timeout: float) -> None:
        """While connected: take or keep the ingest lease every second, and ingest while held.

        One node stores the producer's messages; every node still reads them (pub/sub gives
        each subscriber every message). The others keep the last ``STANDBY_S`` seconds of them,
        and the one that takes over a lapsed lease (its holder died or lost Redis) stores those
        first: what the last holder had stored is absorbed by dedupe, what it had not is stored
        now. A node that does not ingest spends on an event the read of the message and of its
        live entry, no normalisation and no script call."""
        failing = False
        try:
            while True:
                try:
                    held = await asyncio.wait_for(
                        link.command(
                            "EVAL", ACQUIRE_SCRIPT, 1, self.lease_key, self.node_id, LEASE_MS
                        ),
                        command_timeout,
                    )
                    failing = False
                except (TimeoutError, redis.exceptions.RedisError) as exc:
                    # Not known to hold it: stop storing (the others may), keep what arrives,
                    # and ask again; an error reply (a replica's READONLY after a failover, a
                    # key of the wrong type) must not end this loop for the connection's life.
                    held = 0
                    if not failing:
                        log.warning("ingest lease: Redis did not grant it (%r); asking again", exc)
                    failing = True
                self._lead(bool(held), link)
                await asyncio.sleep(LEASE_RENEW_S)
        finally:
            held, self.leading = self.leading, False
            self._lead(False, None)
            if held and link.connected:
                # Stopping: hand the lease over now rather than when it lapses.
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(
                        link.command("EVAL", RELEASE_SCRIPT, 1, self.lease_key, self.node_id),
                        command_timeout,
                    )

    def _lead(self, held: bool, link: RedisLink | None) -> None:
        if held == self.stats.leading:
            return
        self.leading = self.stats.leading = held
        if not held:
            log.info("ingest: another node stores the producer's messages now")
            return
        replay = [(channel, raw) for _at, channel, raw in self._standby]
        self._standby.clear()
        self.stats.replayed += len(replay)
        log.info(
            "ingest: this node stores the producer's messages (%d kept message(s) stored first)",
            len(replay),
        )
        self._pending[:0] = replay
        if link is not None:
            self.flush(link)

    def flush(self, link: RedisLink) -> None:
        """Normalise what the last read brought and send its script calls in one write."""
        if not self._pending or self._link is not link:
            return  # (not connected yet: stored after the events to send again, in order)
        messages, self._pending = self._pending, []
        store = self.store
        assert store is not None
        calls: list[tuple[tuple[Any, ...], Callable[[Any], None]]] = []
        for channel_bytes, raw in messages:
            stats = self._channel_stats(channel_bytes)
            stats.received += 1
            channel = stats.name
            for event in self._accept(stats, channel, raw).events:
                args = store.script_args(event.event_type, event.symbol, event.event_id, event.data)
                calls.append((args, self._call(stats, args)))
        if calls:
            link.send(calls)

    def _channel_stats(self, channel: bytes) -> ChannelStats:
        stats = self._by_channel.get(channel)
        if stats is None:
            stats = self._by_channel[channel] = self.stats.channels[_text(channel)]
        return stats

    def appended(self, payload: bytes) -> None:
        """A live entry came back (the fan-out reader calls this for each): if it is one of this
        node's calls, it is stored even if the reply is lost with the connection."""
        if self._inflight:
            self._inflight.pop(payload, None)

    def _call(self, stats: ChannelStats, args: tuple[Any, ...]) -> Callable[[Any], None]:
        """Track one script call until its reply (or its live entry) and return its callback."""
        payload: bytes = args[4 + args[2]]  # ARGV[2] (EVALSHA sha numkeys keys... type payload)
        self._inflight[payload] = (stats, args)

        def stored(reply: Any) -> None:
            if isinstance(reply, LinkLost):
                return  # still in flight: sent again after the reconnect unless it came back
            self._inflight.pop(payload, None)
            if isinstance(reply, Exception):
                link = self._link
                if is_noscript(reply) and link is not None:
                    # Redis restarted or its scripts were flushed: EVAL sends the script itself
                    # (and caches it again), keeping this event's place in the order.
                    assert self.store is not None
                    self._inflight[payload] = (stats, args)
                    link.send([(("EVAL", self.store.script, *args[2:]), stored)])
                    return
                self.stats.lost += 1
                self._log_once("store", "could not store an event on %s: %r", stats.name, reply)
                return
            self._stored(stats, reply)

        return stored

    # --- both modes ----------------------------------------------------------------------

    def _accept(self, stats: ChannelStats, channel: str, raw: bytes | str) -> NormaliseResult:
        if stats.jobs:
            # Job reports leave the event path here: the job updater stores them (jobs.py).
            result = self.jobs.accept(channel, raw) if self.jobs else _NO_JOBS
        else:
            result = normalise(raw, channel, max_bytes=self.settings.ingest_max_message_bytes)
        if result.ignored:
            stats.ignored += 1
        for reject in result.rejects:
            stats.rejected[reject.reason] += 1
            metrics.EVENTS_REJECTED.labels(channel, reject.reason).inc()
            self._record_reject(channel, reject)
        return result

    def _stored(self, stats: ChannelStats, offset: Any) -> None:
        if offset is None:
            stats.duplicates += 1
        else:
            stats.accepted += 1
        stats.last_event_at = time.time()

    async def process_batch(
        self, store: EventStore, messages: list[tuple[str, bytes | str]]
    ) -> list[NormaliseResult]:
        """Normalise messages and append all their events in one round trip, in order."""
        results = []
        pending: list[tuple[ChannelStats, Event]] = []
        for channel, raw in messages:
            stats = self.stats.channels[channel]
            stats.received += 1
            result = self._accept(stats, channel, raw)
            results.append(result)
            pending.extend((stats, event) for event in result.events)
        if not pending:
            return results
        offsets = await store.append_many(
            [(e.event_type, e.symbol, e.event_id, e.data) for _, e in pending]
        )
        for (stats, _event), offset in zip(pending, offsets, strict=True):
            self._stored(stats, offset)
        return results

    def _log_once(self, key: str, message: str, *args: Any) -> None:
        now = time.monotonic()
        if now - self._last_log.get(key, 0.0) >= 10:
            self._last_log[key] = now
            log.warning(message, *args)

    def _record_reject(self, channel: str, reject: Reject) -> None:
        key = f"{channel}:{reject.reason}"
        now = time.monotonic()
        if now - self._last_log.get(key, 0.0) >= 10:
            self._last_log[key] = now
            log.warning(
                "rejected message on %s: %s (%s); sample: %s",
                channel,
                reject.reason,
                reject.detail,
                reject.sample,
            )
        if self.errors is not None:
            self.errors.add(
                reject.reason,
                channel,
                reject.detail,
                {"sample": reject.sample},
            )


def _text(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else value


def _field(fields: dict[bytes, bytes], name: bytes) -> str | None:
    value = fields.get(name)
    return value.decode(errors="replace") if value is not None else None
