"""The node's realtime runtime: ingest, fan-out, subscriptions; owned by the app lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import gc
import logging
import os
import signal
import socket
import time
import uuid
from collections.abc import AsyncGenerator, Callable, Coroutine
from typing import Any

import redis.asyncio as aioredis
import socketio
from quart import Quart, current_app

from tickstock import metrics
from tickstock.config import Settings
from tickstock.extensions.database import get_db
from tickstock.extensions.redis import get_redis, make_client
from tickstock.queries.realtime import (
    delete_node_subscriptions,
    delete_subscriptions,
    delete_subscriptions_of,
    insert_subscriptions,
)
from tickstock.realtime.alerts import AlertLimits, AlertMatcher
from tickstock.realtime.fanout import Delivery, FanoutReader
from tickstock.realtime.history import EventStore
from tickstock.realtime.ingest import ErrorLogWriter, IngestConsumer
from tickstock.realtime.jobs import JobUpdater
from tickstock.realtime.link import EventLink
from tickstock.realtime.wsdirect import DirectWrites

log = logging.getLogger(__name__)

EXTENSION_KEY = "tickstock.hub"
CHURN_GC_INTERVAL_S = 5.0
CHURN_GC_DISCONNECTS = 200  # and at least a tenth of the sockets still connected


class SubscriptionRecorder:
    """Mirrors subscriptions into ``ws_subscriptions`` in batches (one write per second at most)."""

    def __init__(self, database: Any, node_id: str) -> None:
        self.database = database
        self.node_id = node_id
        self._adds: dict[tuple[str, str], int | None] = {}
        self._removes: set[tuple[str, str]] = set()
        self._gone: set[str] = set()
        self._wake = asyncio.Event()

    def added(self, sid: str, user_id: int | None, rooms: list[str]) -> None:
        for room in rooms:
            self._removes.discard((sid, room))
            self._adds[(sid, room)] = user_id
        self._wake.set()

    def removed(self, sid: str, rooms: list[str]) -> None:
        for room in rooms:
            if self._adds.pop((sid, room), "absent") == "absent":
                self._removes.add((sid, room))
        self._wake.set()

    def disconnected(self, sid: str) -> None:
        for key in [k for k in self._adds if k[0] == sid]:
            del self._adds[key]
        self._removes = {k for k in self._removes if k[0] != sid}
        self._gone.add(sid)
        self._wake.set()

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self.flush()
            await asyncio.sleep(1.0)

    async def flush(self) -> None:
        adds, removes, gone = self._adds, self._removes, self._gone
        if not (adds or removes or gone):
            return
        self._adds, self._removes, self._gone = {}, set(), set()
        try:
            async with self.database.write() as conn:
                if gone:
                    await delete_subscriptions_of(conn, gone)
                if removes:
                    await delete_subscriptions(conn, removes)
                if adds:
                    await insert_subscriptions(conn, self.node_id, adds)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # Put the batch back (newer changes win) and retry on the next round.
            log.warning("could not record subscriptions: %r", exc)
            for key, user in adds.items():
                self._adds.setdefault(key, user)
            self._removes |= removes - set(self._adds)
            self._gone |= gone
            self._wake.set()

    async def clear_node(self) -> None:
        try:
            async with self.database.write() as conn:
                await delete_node_subscriptions(conn, self.node_id)
        except Exception as exc:
            log.warning("could not clear this node's subscriptions: %r", exc)


class RealtimeHub:
    """Starts and stops the node's background tasks; holds the pieces handlers need."""

    def __init__(self, app: Quart, sio: socketio.AsyncServer) -> None:
        self.app = app
        self.sio = sio
        self.settings: Settings = app.config["SETTINGS"]
        self.node_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.direct = DirectWrites(
            compression=self.settings.ws_compression == "on",
            enabled=self.settings.ws_direct_writes,
        )
        self.direct.install(sio.eio)
        self.delivery = Delivery(
            sio,
            queue_limit=self.settings.client_queue_size,
            buffer_limit=self.settings.client_buffer_bytes,
            direct=self.direct,
        )
        self.store: EventStore | None = None
        self.ingest: IngestConsumer | None = None
        self.errors: ErrorLogWriter | None = None
        self.recorder: SubscriptionRecorder | None = None
        self.alerts: AlertMatcher | None = None
        self.reader: FanoutReader | None = None
        self.link: EventLink | None = None
        self.jobs: JobUpdater | None = None
        self.started_at = time.time()
        self.draining = False
        self.disconnects = 0  # sockets gone since start (see _collect_after_churn)
        self._tasks: list[asyncio.Task[None]] = []
        app.extensions[EXTENSION_KEY] = self
        # while_serving: started after the pool and Redis open, stopped before they close.
        app.while_serving(self._lifespan)

    async def _lifespan(self) -> AsyncGenerator[None, None]:
        await self.start()
        yield
        await self.stop()

    def make_store(self, client: aioredis.Redis) -> EventStore:
        return EventStore(
            client,
            prefix=self.settings.key_prefix,
            history_max_events=self.settings.history_max_events,
            history_max_age_seconds=self.settings.history_max_age_seconds,
        )

    async def start(self) -> None:
        settings = self.settings
        database = get_db(self.app)
        command_client = get_redis(self.app)
        self.store = self.make_store(command_client)
        self.errors = ErrorLogWriter(database, settings.error_log_max_per_minute, self.node_id)
        self.recorder = SubscriptionRecorder(database, self.node_id)
        self.jobs = JobUpdater(settings, database, self.store, command_client.publish)
        self.ingest = IngestConsumer(
            settings,
            lambda: make_client(settings, blocking=True),
            self.make_store,
            self.errors,
            node_id=self.node_id,
            jobs=self.jobs,
        )
        self.reader = reader = FanoutReader(f"{settings.key_prefix}:fanout", self.delivery)
        pubsub = settings.ingest_mode != "stream"
        if pubsub:
            self.ingest.store = self.store
            reader.appended = self.ingest.appended
        self.link = EventLink(
            lambda: make_client(settings, blocking=True, protocol=3),
            reader=reader,
            ingest=self.ingest if pubsub else None,
            ingest_channels=settings.ingest_channels,
            script=self.store.script,
            timeout=settings.redis_timeout,
        )
        self.alerts = AlertMatcher(
            prefix=settings.key_prefix,
            node_id=self.node_id,
            make_client=lambda: make_client(settings, blocking=True),
            database=database,
            store=self.make_store,
            reader=reader,
            retention_days=settings.alert_retention_days,
            limits=AlertLimits.of(settings),
            inbox_max=settings.alert_inbox_max_per_user,
        )
        self._spawn(self.link.run(), "event-link")
        if not pubsub:
            self._spawn(self.ingest.run(), "ingest")
        self._spawn(self.alerts.run(), "alerts")
        self._spawn(self.jobs.run(), "jobs")
        self._spawn(self.errors.run(), "error-log")
        self._spawn(self.recorder.run(), "subscriptions")
        self._spawn(self._gauges(), "gauges")
        self._spawn(self._collect_after_churn(), "churn-gc")
        self._listen_for_drain()
        # Serve once both Redis readers are connected (bounded: a Redis outage must not block
        # start-up; the node then reports degraded and connects later by itself).
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(settings.redis_timeout):
                await asyncio.gather(self.ingest.ready.wait(), reader.ready.wait())

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        self._tasks.append(asyncio.create_task(coro, name=f"tickstock-{name}"))

    async def _collect_after_churn(self) -> None:
        """A full garbage collection after many sockets have gone, at most every 5 s.

        A closed connection leaves about a hundred objects in reference cycles (tasks and their
        coroutines, the connection's protocol objects) that only a full collection frees; with the
        server's tuned collector (gc_tuning.tune_gc) that comes rarely, so after churn the memory of
        sockets long gone would be held for minutes. The pause grows with the live objects (tens
        of milliseconds at a few thousand sockets), so it runs only when the sockets gone since
        the last one are many, absolutely and against the sockets still connected.
        """
        collected_at = 0
        while True:
            await asyncio.sleep(CHURN_GC_INTERVAL_S)
            gone = self.disconnects - collected_at
            live = len(self.sio.eio.sockets)
            if gone >= CHURN_GC_DISCONNECTS and gone * 10 >= live:
                collected_at = self.disconnects
                started = time.perf_counter()
                found = gc.collect()
                _trim_heap()
                log.debug(
                    "collected %d objects after churn in %.0f ms",
                    found,
                    (time.perf_counter() - started) * 1000,
                )

    async def _gauges(self) -> None:
        """Refresh state gauges once a second (nothing on the hot path)."""
        database = get_db(self.app)
        while True:
            rooms = self.sio.manager.rooms.get("/", {})
            metrics.SOCKETS.set(len(rooms.get(None, {})))
            counts = {"patterns": 0, "indicators": 0}
            for room, members in rooms.items():
                if isinstance(room, str):
                    kind = room.split(":", 1)[0]
                    if kind in counts:
                        counts[kind] += len(members)
            for kind, count in counts.items():
                metrics.SUBSCRIPTIONS.labels(kind).set(count)
            if self.ingest is not None:
                self.ingest.stats.publish_metrics()
            self.delivery.stats.publish_metrics()
            pool = database.pool
            if pool is not None:
                metrics.DB_POOL_SIZE.labels("total").set(pool.get_size())
                metrics.DB_POOL_SIZE.labels("idle").set(pool.get_idle_size())
            await asyncio.sleep(1.0)

    def _listen_for_drain(self) -> None:
        # SIGUSR1 asks this worker to hand its sockets to other nodes before a SIGTERM
        # (``tickstock serve`` sends it to every worker first). Only in a main-thread loop.
        try:
            asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, self.begin_drain)
        except (NotImplementedError, RuntimeError, ValueError):
            log.debug("drain signal not available in this process")

    def begin_drain(self) -> None:
        """Report ``draining`` (503), refuse new sockets, and close the open ones at the
        transport level so their clients reconnect elsewhere and resume from their offsets."""
        if self.draining:
            return
        self.draining = True
        sockets = list(self.sio.eio.sockets.values())
        if sockets:
            # Not a warning: draining is what an operator asked for (also on every Ctrl-C).
            log.info("draining: %d socket(s) asked to reconnect to another node", len(sockets))
        self._spawn(self._close_transports(sockets), "drain")

    async def _close_transports(self, sockets: list[Any]) -> None:
        for sock in sockets:
            try:
                # No engine.io CLOSE packet: clients see a lost transport and reconnect by
                # themselves (a CLOSE would tell them the server ended the session).
                await sock.close(wait=False, abort=True, reason="server draining")
                sock.queue.put_nowait(None)  # ends the writer, which closes the websocket
            except Exception:
                log.exception("could not close socket %s while draining", sock.sid)

    async def stop(self) -> None:
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            asyncio.get_running_loop().remove_signal_handler(signal.SIGUSR1)
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=self.settings.shutdown_timeout / 2)
        self._tasks.clear()
        if self.alerts is not None:
            await self.alerts.release()
        if self.recorder is not None:
            await self.recorder.flush()
            await self.recorder.clear_node()

    async def health(self) -> dict[str, Any]:
        if self.draining:
            return {"status": "draining"}
        ingest = self.ingest.stats if self.ingest else None
        fanout = self.delivery.stats
        up = bool(ingest and ingest.connected and fanout.connected)
        result: dict[str, Any] = {
            "status": "up" if up else "down",
            "ingest_connected": bool(ingest and ingest.connected),
            "fanout_connected": fanout.connected,
            "lag_ms": round(fanout.lag_ms, 2),
        }
        if ingest and ingest.last_event_at:
            result["last_event_age_s"] = round(time.time() - ingest.last_event_at, 3)
        return result


def _libc_malloc_trim() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim: Callable[[int], int] = libc.malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None
    return trim


_MALLOC_TRIM = _libc_malloc_trim()


def _trim_heap() -> None:
    """Hand the heap pages the collection freed back to the system (glibc keeps them), so RSS
    after churn stays at the connected high-water mark instead of creeping up."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


def get_hub(app: Quart | None = None) -> RealtimeHub:
    hub: RealtimeHub = (app or current_app).extensions[EXTENSION_KEY]
    return hub
