"""Dedupe, per-symbol history and the fan-out stream, in Redis.

One Lua script per event makes "seen before?", "append to the symbol's history" and "append to the
fan-out stream" a single atomic step, so two nodes ingesting the same detection produce one event,
and the history entry id is the event's ``offset`` everywhere.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from typing import Any, NamedTuple

import redis.asyncio as aioredis
import redis.exceptions

from tickstock.jsonutil import dumps

# KEYS: dedupe key, fan-out stream[, history stream]
# ARGV: type, payload, timestamp, dedupe ttl, fan-out maxlen, room, live channel
#       [, history maxlen, history ttl]
# The fan-out entry is also published on the live channel (its id and the id of the entry before it,
# then the entry's fields, newline-separated; JSON has no raw newlines), so nodes get it pushed on a
# subscription instead of asking for it with one XREAD per event. The previous id lets a node see a
# gap (an entry that was never published, e.g. appended by a node of an older version) and read it
# from the stream, which stays the record nodes catch up from.
APPEND_SCRIPT = """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[4]) == false then
  return false
end
local offset = ''
if #KEYS == 3 then
  -- One entry beyond the nominal size is kept as the marker of where history starts.
  offset = redis.call('XADD', KEYS[3], 'MAXLEN', tonumber(ARGV[8]) + 1, '*',
                      't', ARGV[1], 'd', ARGV[2], 'ts', ARGV[3])
  local now = redis.call('TIME')
  local cutoff = tonumber(now[1]) * 1000 - tonumber(ARGV[9]) * 1000
  redis.call('XTRIM', KEYS[3], 'MINID', cutoff)
  redis.call('EXPIRE', KEYS[3], ARGV[9])
end
local last = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
local prev = ''
if #last == 1 then
  prev = last[1][1]
end
local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], '*',
                      'r', ARGV[6], 't', ARGV[1], 'o', offset, 'd', ARGV[2], 'ts', ARGV[3])
redis.call('PUBLISH', ARGV[7],
           id .. '\\n' .. prev .. '\\n' .. ARGV[6] .. '\\n' .. ARGV[1] .. '\\n' .. offset .. '\\n' .. ARGV[3]
           .. '\\n' .. ARGV[2])
return offset
"""

_NOSCRIPT: Any = object()  # an EVALSHA reply meaning "Redis does not have the script"

# Which room (and so which history) each event type belongs to.
ROOM_KIND = {
    "pattern_detected": "patterns",
    "indicator_update": "indicators",
    "indicator_alert": "indicators",
}
SYSTEM_ROOM = "system"
ALL_SYMBOLS = "*"


def room_for(event_type: str, symbol: str | None) -> tuple[str, bool]:
    """The room an event goes to, and whether it has a per-symbol history."""
    kind = ROOM_KIND.get(event_type)
    if kind is None or not symbol:
        return SYSTEM_ROOM, False
    return f"{kind}:{symbol}", True


def parse_offset(offset: str) -> tuple[int, int] | None:
    """A history offset is a Redis stream id ``<ms>-<seq>``; anything else is invalid."""
    ms, sep, seq = offset.partition("-")
    if not sep or not offset.isascii() or not ms.isdigit() or not seq.isdigit() or len(offset) > 41:
        return None
    return int(ms), int(seq)


class StoredEvent(NamedTuple):
    """An event as kept in history and on the fan-out stream (payload is JSON without offset).

    A named tuple: one is made per event on every node, and a tuple is the cheapest to make."""

    offset: str
    event_type: str
    payload: bytes
    timestamp: bytes


class EventStore:
    """Appends events (deduplicated) and reads a symbol's history since an offset."""

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        prefix: str,
        history_max_events: int,
        history_max_age_seconds: int,
        fanout_max_events: int = 100_000,
        dedupe_seconds: int | None = None,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.history_max_events = history_max_events
        self.history_max_age_seconds = history_max_age_seconds
        self.fanout_max_events = fanout_max_events
        self.dedupe_seconds = dedupe_seconds or max(history_max_age_seconds, 60)
        self.fanout_key = f"{prefix}:fanout"
        self.live_channel = live_channel(self.fanout_key)
        self.script = APPEND_SCRIPT
        self._sha = hashlib.sha1(APPEND_SCRIPT.encode()).hexdigest()

    def history_key(self, room: str) -> str:
        return f"{self.prefix}:history:{room}"

    def _script_call(
        self,
        event_type: str,
        symbol: str | None,
        event_id: str,
        data: dict[str, Any],
        room: str | None = None,
    ) -> tuple[list[str], list[Any]]:
        has_history = False
        if room is None:
            room, has_history = room_for(event_type, symbol)
        keys = [f"{self.prefix}:seen:{event_id}", self.fanout_key]
        args: list[Any] = [
            event_type,
            dumps(data),
            f"{time.time():.3f}",
            self.dedupe_seconds,
            self.fanout_max_events,
            room,
            self.live_channel,
        ]
        if has_history:
            keys.append(self.history_key(room))
            args += [self.history_max_events, self.history_max_age_seconds]
        return keys, args

    def script_args(
        self, event_type: str, symbol: str | None, event_id: str, data: dict[str, Any]
    ) -> tuple[Any, ...]:
        """The EVALSHA command that stores one event (the event link sends it itself): the
        same call as ``_script_call`` builds, put together in one go (once per event)."""
        kind = ROOM_KIND.get(event_type)
        prefix = self.prefix
        if kind is None or not symbol:
            return (
                "EVALSHA",
                self._sha,
                2,
                f"{prefix}:seen:{event_id}",
                self.fanout_key,
                event_type,
                dumps(data),
                f"{time.time():.3f}",
                self.dedupe_seconds,
                self.fanout_max_events,
                SYSTEM_ROOM,
                self.live_channel,
            )
        room = f"{kind}:{symbol}"
        return (
            "EVALSHA",
            self._sha,
            3,
            f"{prefix}:seen:{event_id}",
            self.fanout_key,
            f"{prefix}:history:{room}",
            event_type,
            dumps(data),
            f"{time.time():.3f}",
            self.dedupe_seconds,
            self.fanout_max_events,
            room,
            self.live_channel,
            self.history_max_events,
            self.history_max_age_seconds,
        )

    async def append(
        self, event_type: str, symbol: str | None, event_id: str, data: dict[str, Any]
    ) -> str | None:
        """Store one event; returns its offset ("" for system events), or None for a duplicate."""
        return (await self.append_many([(event_type, symbol, event_id, data)]))[0]

    async def append_many(
        self, events: Sequence[tuple[str, str | None, str, dict[str, Any]]]
    ) -> list[str | None]:
        """Store several events in one round trip (in order); offsets as for ``append``.

        This runs for every event a node ingests, so the script calls are written on one pooled
        connection directly (EVALSHA, loading the script when Redis does not have it), without the
        client's per-command checkout, retry wrapper and pipeline bookkeeping.
        """
        return await self._append([self._script_call(*event) for event in events])

    async def append_to_rooms(
        self, events: Sequence[tuple[str, str, str, dict[str, Any]]]
    ) -> list[str | None]:
        """Store events addressed to a room of their own, (room, type, event id, data), such as
        a user's alerts: deduplicated and fanned out like any event, without a history."""
        return await self._append(
            [
                self._script_call(event_type, None, event_id, data, room)
                for room, event_type, event_id, data in events
            ]
        )

    async def _append(self, calls: list[tuple[list[str], list[Any]]]) -> list[str | None]:
        if not calls:
            return []
        pool = self.client.connection_pool
        conn = await pool.get_connection()  # type: ignore[no-untyped-call]
        try:
            replies = await self._evalsha(conn, calls)
            if any(reply is _NOSCRIPT for reply in replies):
                # Redis restarted or its script cache was flushed: load it, then store the rest.
                await conn.send_command("SCRIPT", "LOAD", APPEND_SCRIPT)
                await conn.read_response()
                missing = [
                    call for call, reply in zip(calls, replies, strict=True) if reply is _NOSCRIPT
                ]
                again = iter(await self._evalsha(conn, missing))
                replies = [next(again) if reply is _NOSCRIPT else reply for reply in replies]
        except BaseException:
            # Replies may be left unread on it: never hand this connection out again.
            await conn.disconnect()
            raise
        finally:
            await pool.release(conn)
        return [_offset(reply) for reply in replies]

    async def _evalsha(self, conn: Any, calls: list[tuple[list[str], list[Any]]]) -> list[Any]:
        commands = [("EVALSHA", self._sha, len(keys), *keys, *args) for keys, args in calls]
        await conn.send_packed_command(conn.pack_commands(commands))
        replies: list[Any] = []
        error: redis.exceptions.ResponseError | None = None
        for _ in commands:
            try:
                replies.append(await conn.read_response())
            except redis.exceptions.NoScriptError:
                replies.append(_NOSCRIPT)
            except redis.exceptions.ResponseError as exc:
                # Every reply is read before raising, so the connection stays in step.
                error = error or exc
                replies.append(None)
        if error is not None:
            raise error
        return replies

    async def since(
        self, room: str, offset: str, *, limit: int | None = None
    ) -> tuple[list[StoredEvent], bool]:
        """Events after ``offset`` in order, and whether history still reaches back that far."""
        key = self.history_key(room)
        parsed = parse_offset(offset)
        if parsed is None:
            return [], False
        count = limit or self.history_max_events
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.xrange(key, min=f"({offset}", max="+", count=count)
            pipe.xinfo_stream(key)
            pipe.time()
            try:
                entries, info, now = await pipe.execute()
            except aioredis.ResponseError:
                # No history at all for this room (key missing): recoverable only if recent.
                entries, info, now = [], None, await self.client.time()
        events = [_stored(entry_id, fields) for entry_id, fields in entries]
        now_ms = int(now[0]) * 1000 + int(now[1]) // 1000
        recovered = parsed[0] >= now_ms - self.history_max_age_seconds * 1000
        if info is not None:
            recovered = recovered and _reaches_back(info, parsed)
        return events, recovered

    async def latest(self, room: str, count: int) -> list[StoredEvent]:
        """The newest ``count`` events of a room, oldest first."""
        entries: Any = await self.client.xrevrange(self.history_key(room), count=count)
        return [_stored(entry_id, fields) for entry_id, fields in reversed(entries)]

    async def history_sizes(self, rooms: Sequence[str]) -> dict[str, int]:
        async with self.client.pipeline(transaction=False) as pipe:
            for room in rooms:
                pipe.xlen(self.history_key(room))
            sizes = await pipe.execute()
        return dict(zip(rooms, (int(s) for s in sizes), strict=True))

    async def positions(self, rooms: Sequence[str]) -> dict[str, str]:
        """Each room's history position now: an offset every later event of the room is after.

        The newest entry's id, or (with no entry, or an old one) the millisecond before Redis'
        clock, so the position is never older than the replay window.
        """
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.time()
            for room in rooms:
                pipe.xrevrange(self.history_key(room), count=1)
            now, *newest = await pipe.execute()
        floor = (int(now[0]) * 1000 + int(now[1]) // 1000 - 1, 0)
        result = {}
        for room, entries in zip(rooms, newest, strict=True):
            last = parse_offset(_text(entries[0][0])) if entries else None
            ms, seq = max(floor, last or floor)
            result[room] = f"{ms}-{seq}"
        return result


def _reaches_back(info: dict[Any, Any], offset: tuple[int, int]) -> bool:
    """Whether every entry after ``offset`` is still in the stream.

    The stream keeps one entry more than the nominal history (see APPEND_SCRIPT): the oldest
    entry is a marker, so a client whose offset is that entry has missed nothing.
    """
    first = info.get("first-entry")
    if not first:
        return True
    first_id = parse_offset(_text(first[0])) or (0, 0)
    added = info.get("entries-added")
    if added is not None and int(added) == int(info.get("length", -1)):
        return True  # nothing was ever trimmed
    return offset >= first_id


def _offset(result: Any) -> str | None:
    if result is None:
        return None
    return result.decode() if isinstance(result, bytes) else str(result)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _stored(entry_id: Any, fields: dict[Any, Any]) -> StoredEvent:
    return StoredEvent(
        offset=_text(entry_id),
        event_type=_text(fields[b"t"]),
        payload=fields[b"d"],
        timestamp=fields[b"ts"],
    )


def live_channel(fanout_key: str) -> str:
    """The channel each fan-out entry is also published on as it is appended."""
    return f"{fanout_key}:live"


def stored_from_live(message: bytes) -> tuple[str, str, str, StoredEvent]:
    """A live fan-out message as (entry id, previous entry id, room, event); ValueError if
    malformed."""
    entry_id, prev, room, event_type, offset, timestamp, payload = message.split(b"\n", 6)
    return (
        entry_id.decode(),
        prev.decode(),
        room.decode(),
        StoredEvent(
            offset=offset.decode(),
            event_type=event_type.decode(),
            payload=payload,
            timestamp=timestamp,
        ),
    )


def stored_from_fanout(entry_id: Any, fields: dict[Any, Any]) -> tuple[str, StoredEvent]:
    """A fan-out stream entry as (room, event)."""
    return _text(fields[b"r"]), StoredEvent(
        offset=_text(fields[b"o"]),
        event_type=_text(fields[b"t"]),
        payload=fields[b"d"],
        timestamp=fields[b"ts"],
    )
