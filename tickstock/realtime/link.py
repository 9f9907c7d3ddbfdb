"""The node's one Redis connection for the event path: producer messages in, script calls out,
live fan-out entries in.

Everything a node does once per event happens on this connection (RESP3, so a subscribed
connection can also send commands). A producer message and the live entries arrive as pushes; the
ingest script calls go out on the same connection and their replies come back on it, usually in
the same read as the entry the script published. So an event costs the node two wake-ups (the
producer's message; the reply with the live entry) where three connections cost three, and every
reply is parsed once, by hiredis, in the protocol's ``data_received``: no task switch, no pool
checkout and no per-command bookkeeping. redis-py opens the connection (address, Sentinel, TLS,
AUTH, HELLO 3, SELECT) and then hands its transport over (``RedisLink.open``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol, cast

import hiredis
import redis.asyncio as aioredis
import redis.exceptions

from tickstock.errors import REDIS_DOWN

log = logging.getLogger(__name__)

Reply = Any
OnReply = Callable[[Reply], None]

KEEPALIVE_S = 5.0  # a silent connection is pinged after this long, and dropped if PING fails


class LinkLost(redis.exceptions.ConnectionError):
    """The link's connection closed; what was waiting for a reply will not get one."""


class RedisLink(asyncio.Protocol):
    """One RESP3 connection driven by its protocol: pushes to ``on_push``, replies in order."""

    def __init__(
        self,
        on_push: Callable[[list[Any]], None],
        on_read: Callable[[], None] | None = None,
    ) -> None:
        self.on_push = on_push
        self.on_read = on_read  # after each read: send what the pushes of that read asked for
        self.transport: asyncio.Transport | None = None
        self._reader = hiredis.Reader()
        self._waiting: deque[OnReply] = deque()
        self._loop = asyncio.get_running_loop()
        self.lost: asyncio.Future[None] = self._loop.create_future()
        self.last_read = 0.0

    @classmethod
    async def open(
        cls,
        client: aioredis.Redis,
        on_push: Callable[[list[Any]], None],
        on_read: Callable[[], None] | None = None,
    ) -> RedisLink:
        """Connect with redis-py (``client`` made with ``protocol=3``), then take the transport."""
        conn: Any = await client.connection_pool.get_connection()  # type: ignore[no-untyped-call]
        writer: asyncio.StreamWriter | None = getattr(conn, "_writer", None)
        reader: asyncio.StreamReader | None = getattr(conn, "_reader", None)
        if writer is None or reader is None or getattr(conn, "protocol", 2) != 3:
            await conn.disconnect()
            raise RuntimeError(
                "the Redis connection is not a RESP3 stream connection (redis-py changed, or "
                "the server does not speak RESP3: Redis 6 or newer is needed)"
            )
        link = cls(on_push, on_read)
        transport = writer.transport
        leftover = bytes(getattr(reader, "_buffer", b""))
        transport.set_protocol(link)
        link.connection_made(transport)
        if leftover:
            link.data_received(leftover)
        return link

    # --- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A TCP or Unix socket transport (uvloop's are not asyncio.Transport subclasses).
        self.transport = cast(asyncio.Transport, transport)
        self.last_read = self._loop.time()

    def data_received(self, data: bytes) -> None:
        reader = self._reader
        reader.feed(data)
        waiting = self._waiting
        on_push = self.on_push
        try:
            while (reply := reader.gets()) is not False:
                if type(reply) is hiredis.PushNotification:
                    on_push(reply)
                elif waiting:
                    waiting.popleft()(reply)
                else:
                    log.warning("unexpected reply on the event link: %r", reply)
        except hiredis.ProtocolError as exc:
            log.error("protocol error on the event link (%s); reconnecting", exc)
            self.close()
            return
        finally:
            # Not asyncio.get_running_loop(): that costs a getpid() system call on every read.
            self.last_read = self._loop.time()
        if self.on_read is not None:
            self.on_read()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        lost = LinkLost(f"event link closed: {exc!r}" if exc else "event link closed")
        waiting, self._waiting = self._waiting, deque()
        for on_reply in waiting:
            with contextlib.suppress(Exception):
                on_reply(lost)
        if not self.lost.done():
            self.lost.set_result(None)

    # --- commands --------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self.transport is not None and not self.transport.is_closing()

    def send(self, calls: Sequence[tuple[Sequence[Any], OnReply]]) -> None:
        """Write commands in one write; each reply (or the error it is) goes to its callback."""
        transport = self.transport
        if transport is None or transport.is_closing():
            lost = LinkLost("event link is not connected")
            for _args, on_reply in calls:
                on_reply(lost)
            return
        pack = hiredis.pack_command
        if len(calls) == 1:
            args, on_reply = calls[0]
            transport.write(pack(tuple(args)))
            self._waiting.append(on_reply)
            return
        transport.write(b"".join([pack(tuple(args)) for args, _ in calls]))
        self._waiting.extend(on_reply for _, on_reply in calls)

    def command(self, *args: Any) -> Awaitable[Reply]:
        """One command whose reply is awaited (rare commands: catching up, PING, SUBSCRIBE)."""
        future: asyncio.Future[Reply] = self._loop.create_future()

        def settle(reply: Reply) -> None:
            if future.done():
                return
            if isinstance(reply, Exception):
                future.set_exception(_as_redis_error(reply))
            else:
                future.set_result(reply)

        self.send([(args, settle)])
        return future

    def subscribe(self, channels: Sequence[str]) -> None:
        """SUBSCRIBE: its confirmations come back as pushes, not replies."""
        if self.transport is not None:
            command: tuple[Any, ...] = ("SUBSCRIBE", *channels)
            self.transport.write(hiredis.pack_command(command))

    async def keep_alive(self, ping_timeout: float) -> None:
        """Return when the connection is lost; a silent one is pinged, and closed without PONG."""
        loop = self._loop
        while not self.lost.done():
            idle = loop.time() - self.last_read
            if idle < KEEPALIVE_S:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(self.lost), KEEPALIVE_S - idle)
                continue
            try:
                await asyncio.wait_for(self.command("PING"), ping_timeout)
            except (TimeoutError, redis.exceptions.RedisError) as exc:
                log.warning("event link did not answer PING (%r); reconnecting", exc)
                self.close()
                await self.lost
        raise LinkLost("event link closed")

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def _as_redis_error(reply: Exception) -> Exception:
    if isinstance(reply, redis.exceptions.RedisError):
        return reply
    return redis.exceptions.ResponseError(str(reply))


def is_noscript(reply: Reply) -> bool:
    return isinstance(reply, hiredis.ReplyError) and str(reply).startswith("NOSCRIPT")


def pairs(fields: list[Any]) -> dict[bytes, Any]:
    """A stream entry's flat field list as a dict (RESP3 XRANGE replies)."""
    if isinstance(fields, dict):
        return fields
    return dict(zip(fields[::2], fields[1::2], strict=True))


class LinkIngest(Protocol):
    """What the event link needs of the ingest consumer (realtime/ingest.py)."""

    def received(self, channel: bytes, raw: bytes) -> None: ...
    def flush(self, link: RedisLink) -> None: ...
    def connected(self, link: RedisLink | None = None) -> None: ...
    def disconnected(self, exc: BaseException) -> None: ...
    async def lead(self, link: RedisLink, command_timeout: float) -> None: ...


class LinkReader(Protocol):
    """What the event link needs of the fan-out reader (realtime/fanout.py)."""

    channel: str

    def on_live(self, message: bytes) -> None: ...
    def connecting(self) -> None: ...
    async def connected(self, link: RedisLink) -> None: ...
    def disconnected(self, exc: BaseException) -> None: ...


class EventLink:
    """Keeps the node's event link connected: opens it, loads the ingest script, subscribes to
    the producer's channels (pub/sub ingest) and the fan-out stream's live channel, hands pushes
    to the ingest consumer and the fan-out reader, and reconnects with capped backoff."""

    def __init__(
        self,
        make_client: Callable[[], aioredis.Redis],
        *,
        reader: LinkReader,
        ingest: LinkIngest | None,
        ingest_channels: Sequence[str],
        script: str,
        timeout: float,
        backoff_cap: float = 10.0,
    ) -> None:
        self.make_client = make_client
        self.reader = reader
        self.ingest = ingest
        self.ingest_channels = list(ingest_channels) if ingest is not None else []
        self.script = script
        self.timeout = timeout
        self.backoff_cap = backoff_cap
        self.link: RedisLink | None = None
        self._live = reader.channel.encode()
        self._channels = [*self.ingest_channels, reader.channel]
        self._confirmed: set[bytes] = set()
        self._subscribed = asyncio.Event()

    async def run(self) -> None:
        backoff = 0.5
        leading: asyncio.Task[None] | None = None
        while True:
            client = self.make_client()
            self.reader.connecting()
            try:
                link = await asyncio.wait_for(
                    RedisLink.open(client, self._on_push, self._on_read), self.timeout
                )
                self.link = link
                await self._start(link)
                backoff = 0.5
                if self.ingest is not None:
                    leading = asyncio.create_task(
                        self.ingest.lead(link, self.timeout), name="tickstock-ingest-lease"
                    )
                await link.keep_alive(self.timeout)
            except asyncio.CancelledError:
                raise
            except REDIS_DOWN as exc:
                self._lost(exc)
            except Exception as exc:
                log.exception("event link failed; reconnecting")
                self._lost(exc)
            finally:
                if leading is not None:
                    leading.cancel()
                    with contextlib.suppress(BaseException):
                        await leading
                    leading = None
                if self.link is not None:
                    self.link.close()
                    self.link = None
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(client.aclose(), 2)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.backoff_cap)

    async def _start(self, link: RedisLink) -> None:
        # The script first, so a message that arrives with the subscription finds it loaded.
        await asyncio.wait_for(link.command("SCRIPT", "LOAD", self.script), self.timeout)
        self._confirmed.clear()
        self._subscribed.clear()
        link.subscribe(self._channels)
        await asyncio.wait_for(self._subscribed.wait(), self.timeout)
        await asyncio.wait_for(self.reader.connected(link), self.timeout * 3)
        if self.ingest is not None:
            self.ingest.connected(link)

    def _lost(self, exc: BaseException) -> None:
        self.reader.disconnected(exc)
        if self.ingest is not None:
            self.ingest.disconnected(exc)

    def _on_push(self, push: list[Any]) -> None:
        kind = push[0]
        if kind == b"message":
            channel = push[1]
            if channel == self._live:
                self.reader.on_live(push[2])
            elif self.ingest is not None:
                self.ingest.received(channel, push[2])
        elif kind == b"subscribe":
            self._confirmed.add(push[1])
            if len(self._confirmed) >= len(self._channels):
                self._subscribed.set()

    def _on_read(self) -> None:
        if self.ingest is not None and self.link is not None:
            self.ingest.flush(self.link)
