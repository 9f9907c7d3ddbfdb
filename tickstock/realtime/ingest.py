"""The node's ingest consumer: producer channels (or a stream) -> normalise -> event store.

It reconnects with capped exponential backoff after any Redis failure and never dies on a bad
message: rejects are counted by reason, logged with context (rate-limited) and written to
``error_logs`` at a bounded rate.
"""

from __future__ import annotations

import asyncio
import contextlib
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
from tickstock.vocab import PATTERNS_CHANNEL

log = logging.getLogger(__name__)

STREAM_GROUP = "tickstock-ingest"
_NO_JOBS = NormaliseResult([], [], ignored=True)  # job reports on a node that runs no jobs
# Messages taken from the socket buffer and stored in one Redis round trip.
BATCH_MAX = 200


@dataclass
class ChannelStats:
    received: int = 0
    accepted: int = 0
    duplicates: int = 0
    ignored: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    last_event_at: float | None = None


@dataclass
class IngestStats:
    """Counters for /api/streaming/status, /health and metrics."""

    connected: bool = False
    mode: str = "pubsub"
    reconnects: int = 0
    last_error: str | None = None
    connected_since: float | None = None
    channels: defaultdict[str, ChannelStats] = field(
        default_factory=lambda: defaultdict(ChannelStats)
    )

    @property
    def last_event_at(self) -> float | None:
        times = [c.last_event_at for c in self.channels.values() if c.last_event_at]
        return max(times) if times else None

    def as_dict(self) -> dict[str, Any]:
        now = time.time()
        last = self.last_event_at
        return {
            "connected": self.connected,
            "mode": self.mode,
            "reconnects": self.reconnects,
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

    async def run(self) -> None:
        backoff = self.backoff_start
        while True:
            client = self.make_client()
            try:
                store = self.store_factory(client)
                if self.settings.ingest_mode == "stream":
                    await self._run_stream(client, store)
                else:
                    await self._run_pubsub(client, store)
            except asyncio.CancelledError:
                raise
            except REDIS_DOWN as exc:
                self._disconnected(exc)
            except Exception as exc:
                log.exception("ingest consumer failed; restarting")
                self._disconnected(exc)
            else:
                backoff = self.backoff_start
            finally:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(client.aclose(), 2)
            if self.stats.connected_since and time.time() - self.stats.connected_since > 30:
                backoff = self.backoff_start
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.backoff_cap)

    def _disconnected(self, exc: BaseException) -> None:
        if self.stats.connected:
            log.warning("ingest lost Redis (%r); reconnecting with backoff", exc)
        self.stats.connected = False
        self.stats.connected_since = None
        self.stats.reconnects += 1
        metrics.REDIS_RECONNECTS.labels("ingest").inc()
        self.stats.last_error = f"{type(exc).__name__}: {exc}"[:200]

    def _connected(self) -> None:
        self.stats.connected = True
        self.stats.connected_since = time.time()
        self.stats.last_error = None
        self.ready.set()
        log.info("ingest connected (%s)", self.settings.ingest_mode)

    async def _run_pubsub(self, client: aioredis.Redis, store: EventStore) -> None:
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(*self.settings.ingest_channels)
            self._connected()
            while True:
                message = await pubsub.get_message(timeout=5.0)
                if message is None:
                    await pubsub.ping()
                    continue
                # Take whatever else is already buffered: one Redis round trip for the lot.
                batch = [message]
                while len(batch) < BATCH_MAX:
                    more = await pubsub.get_message(timeout=0.0)
                    if more is None:
                        break
                    batch.append(more)
                await self.process_batch(
                    store,
                    [(_text(m["channel"]), m["data"]) for m in batch if m.get("type") == "message"],
                )
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(pubsub.aclose(), 2)  # type: ignore[no-untyped-call]

    async def _run_stream(self, client: aioredis.Redis, store: EventStore) -> None:
        stream = self.settings.ingest_stream
        try:
            await client.xgroup_create(stream, STREAM_GROUP, id="0", mkstream=True)
        except redis.exceptions.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._connected()
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

    async def process_batch(
        self, store: EventStore, messages: list[tuple[str, bytes | str]]
    ) -> list[NormaliseResult]:
        """Normalise messages and append all their events in one round trip, in order."""
        results = []
        pending: list[tuple[str, Event]] = []
        for channel, raw in messages:
            stats = self.stats.channels[channel]
            stats.received += 1
            metrics.EVENTS_RECEIVED.labels(channel).inc()
            if is_job_channel(channel):
                # Job reports leave the event path here: the job updater stores them (jobs.py).
                result = self.jobs.accept(channel, raw) if self.jobs else _NO_JOBS
            else:
                result = normalise(raw, channel, max_bytes=self.settings.ingest_max_message_bytes)
            results.append(result)
            if result.ignored:
                stats.ignored += 1
            for reject in result.rejects:
                stats.rejected[reject.reason] += 1
                metrics.EVENTS_REJECTED.labels(channel, reject.reason).inc()
                self._record_reject(channel, reject)
            pending.extend((channel, event) for event in result.events)
        if not pending:
            return results
        offsets = await store.append_many(
            [(e.event_type, e.symbol, e.event_id, e.data) for _, e in pending]
        )
        now = time.time()
        for (channel, _event), offset in zip(pending, offsets, strict=True):
            stats = self.stats.channels[channel]
            if offset is None:
                stats.duplicates += 1
                metrics.EVENTS_DUPLICATE.labels(channel).inc()
            else:
                stats.accepted += 1
                metrics.EVENTS_ACCEPTED.labels(channel).inc()
            stats.last_event_at = now
        return results

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
