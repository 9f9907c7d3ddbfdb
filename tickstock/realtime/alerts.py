"""Alerts: match every event against the users' rules once for the whole cluster, store each alert
once and deliver it live to every socket of its user (SPEC §11).

The API announces rule and watchlist changes (``announce_rules_changed``); the node holding the
matcher lease (``AlertMatcher``) applies them within a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import heapq
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from quart import current_app

from tickstock import metrics
from tickstock.errors import REDIS_DOWN, ServiceUnavailable
from tickstock.extensions.redis import get_redis
from tickstock.jsonutil import loads
from tickstock.queries.alerts import (
    MatchingRule,
    NewAlert,
    delete_alerts_before,
    delete_alerts_over_bound,
    insert_alerts,
    select_matching_rules,
    select_recent_alert_times,
    update_rules_paused,
)
from tickstock.realtime.auth import user_room
from tickstock.realtime.fanout import FanoutReader, offset_after
from tickstock.realtime.history import EventStore, StoredEvent, stored_from_fanout
from tickstock.realtime.lease import ACQUIRE_SCRIPT, RELEASE_SCRIPT
from tickstock.realtime.wire import encode_envelope

log = logging.getLogger(__name__)


def rules_channel(prefix: str) -> str:
    """The channel a node announces a user's rule (or watchlist) change on."""
    return f"{prefix}:alerts:rules"


async def announce_rules_changed(user_id: int) -> None:
    """Tell the matcher (whichever node runs it) to reload this user's rules and watchlist.

    Best effort: with Redis down the change is still stored, and the matcher's periodic reload
    picks it up.
    """
    prefix = current_app.config["SETTINGS"].key_prefix
    try:
        await get_redis().publish(rules_channel(prefix), str(user_id))
    except Exception as exc:
        log.warning("could not announce the rule change of user %s: %r", user_id, exc)


# --- the matcher ------------------------------------------------------------------------------
#
# One node at a time matches: the holder of a short Redis lease (``{prefix}:alerts:leader``),
# renewed every second. It reads the fan-out stream, where every event of the cluster is in one
# order, from the cursor it commits after each batch (``{prefix}:alerts:cursor``, written only
# while it still holds the lease), so each event is matched once for the whole cluster, in order,
# and a node that takes over resumes where the last one stopped. An alert is stored once per
# (rule, event) by a unique index, so a batch matched twice across a hand-over stores nothing new.
# Stored alerts go back into the fan-out stream addressed to ``user:<id>``, which every node
# delivers once to each local socket of that user.

LEASE_MS = 5000
RENEW_S = 1.0
RELOAD_ALL_S = 60.0
# Redis or PostgreSQL away: matching pauses and resumes from the cursor (a warning, no trace).
PAUSING: tuple[type[Exception], ...] = (*REDIS_DOWN, ServiceUnavailable)
STEADY_S = 30.0  # matching this long after taking the lease resets the retry backoff
READ_COUNT = 500
MATCH_SAMPLES = 10_000
MAX_COOLDOWN_S = 86_400
INDEX_SLICE = 250  # rules indexed between two turns of the event loop on a full reload
# The inbox keeps ``alert_retention_days``: the node that matches removes older alerts when it
# takes the lease and every hour after, a slice at a time.
PRUNE_EVERY_S = 3600.0
PRUNE_SLICE = 5000
MATCHED_TYPES = frozenset({"pattern_detected", "indicator_update"})

# Renew the lease and commit the cursor, only while this node still holds the lease.
RENEW_SCRIPT = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
if ARGV[3] ~= '' then
  redis.call('SET', KEYS[2], ARGV[3])
end
return 1
"""


class LostLease(Exception):
    """Another node holds the matcher lease now (or Redis forgot ours)."""


@dataclass(slots=True)
class CompiledRule:
    """A rule reduced to what matching reads, per event."""

    id: int
    user_id: int
    name: str
    symbols: tuple[str, ...] | None  # None: every symbol
    patterns: frozenset[str]  # lower-cased; empty: any
    tiers: frozenset[str]
    min_confidence: float
    indicator: str | None  # lower-cased indicator name: an indicator rule
    op: str
    value: float
    cooldown: float
    paused_until: float = 0.0  # epoch s; the rule makes no alerts before

    @classmethod
    def of(cls, matching: MatchingRule) -> CompiledRule:
        rule = matching.rule
        symbols: tuple[str, ...] | None
        if rule.scope == "all":
            symbols = None
        elif rule.scope == "watchlist":
            symbols = matching.watchlist
        else:
            symbols = rule.symbol_list
        condition = rule.indicator or {}
        indicator = condition.get("type")
        return cls(
            id=rule.id,
            user_id=rule.user_id,
            name=rule.name,
            symbols=symbols,
            patterns=frozenset(p.lower() for p in rule.patterns),
            tiers=frozenset(rule.tiers),
            min_confidence=rule.min_confidence,
            indicator=indicator.lower() if isinstance(indicator, str) else None,
            op=str(condition.get("op", "")),
            value=float(condition.get("value", 0.0)),
            cooldown=float(rule.cooldown_seconds),
            paused_until=rule.paused_until.timestamp() if rule.paused_until else 0.0,
        )


class RuleIndex:
    """Enabled rules of active users, indexed by event kind and symbol.

    An event looks up its symbol's rules and the every-symbol rules of its kind, so the cost of
    an event grows with the rules that could match it, not with all rules. ``"watchlist"`` rules
    are indexed under the user's watchlist symbols, re-read when the user changes it.
    """

    def __init__(self) -> None:
        self.rules: dict[int, CompiledRule] = {}
        self.by_user: dict[int, list[int]] = {}
        # kind ("pattern" | "indicator") -> symbol (or "" for every symbol) -> rule id -> rule
        self.index: dict[str, dict[str, dict[int, CompiledRule]]] = {
            "pattern": {},
            "indicator": {},
        }
        # Paused rules stay known but leave the index until their pause ends, so a paused rule
        # costs an event nothing (a user who floods has every rule paused): (until, rule id).
        self._asleep: list[tuple[float, int]] = []

    def __len__(self) -> int:
        return len(self.rules)

    def replace(self, rows: Iterable[MatchingRule], user_ids: Iterable[int]) -> None:
        """These users' rules, replacing the ones they had."""
        for user_id in user_ids:
            for rule_id in self.by_user.pop(user_id, ()):
                self._remove(rule_id)
        self.add(rows)

    def add(self, rows: Iterable[MatchingRule], now: float | None = None) -> None:
        now = time.time() if now is None else now
        for row in rows:
            rule = CompiledRule.of(row)
            self.rules[rule.id] = rule
            self.by_user.setdefault(rule.user_id, []).append(rule.id)
            if rule.paused_until > now:
                heapq.heappush(self._asleep, (rule.paused_until, rule.id))
            else:
                self._index(rule)

    def pause(self, rule_id: int, until: float) -> None:
        """Take a rule out of the index until ``until`` (``wake`` puts it back)."""
        rule = self.rules.get(rule_id)
        if rule is None:
            return
        rule.paused_until = until
        self._unindex(rule)
        heapq.heappush(self._asleep, (until, rule_id))

    def wake(self, now: float) -> None:
        """Put back the rules whose pause has ended by ``now``."""
        asleep = self._asleep
        while asleep and asleep[0][0] <= now:
            until, rule_id = heapq.heappop(asleep)
            rule = self.rules.get(rule_id)
            if rule is not None and rule.paused_until == until:
                self._index(rule)

    def _index(self, rule: CompiledRule) -> None:
        by_symbol = self.index["indicator" if rule.indicator else "pattern"]
        for symbol in rule.symbols if rule.symbols is not None else ("",):
            by_symbol.setdefault(symbol, {})[rule.id] = rule

    def _unindex(self, rule: CompiledRule) -> None:
        by_symbol = self.index["indicator" if rule.indicator else "pattern"]
        for symbol in rule.symbols if rule.symbols is not None else ("",):
            rules = by_symbol.get(symbol)
            if rules is not None:
                rules.pop(rule.id, None)
                if not rules:
                    del by_symbol[symbol]

    def _remove(self, rule_id: int) -> None:
        rule = self.rules.pop(rule_id, None)
        if rule is not None:
            self._unindex(rule)

    def candidates(self, kind: str, symbol: str) -> list[CompiledRule]:
        by_symbol = self.index[kind]
        found: list[CompiledRule] = []
        rules = by_symbol.get(symbol)
        if rules:
            found.extend(rules.values())
        rules = by_symbol.get("")
        if rules:
            found.extend(rules.values())
        return found


def indicator_value(data: dict[str, Any], name: str) -> float | None:
    """The value of indicator ``name`` in an ``indicator_update``: ``value``, or the entry of
    ``values`` named like the indicator."""
    value = data.get("value")
    if value is None:
        values = data.get("values") or {}
        for key, item in values.items():
            if key.lower() == name:
                value = item
                break
    return float(value) if isinstance(value, int | float) else None


@dataclass(frozen=True, slots=True)
class AlertLimits:
    """What one user's rules may make (SPEC-like rules in docs/ARCHITECTURE.md, "Alerts")."""

    min_cooldown: float = 60.0  # a rule fires at most once per symbol within this
    rate_per_minute: float = 60.0  # alerts one user may get per minute, from all rules
    pause_seconds: float = 600.0  # how long a rule that fired over the rate stays paused

    @classmethod
    def of(cls, settings: Any) -> AlertLimits:
        return cls(
            min_cooldown=float(settings.alert_min_cooldown_seconds),
            rate_per_minute=float(settings.alert_rate_per_user_per_minute),
            pause_seconds=float(settings.alert_pause_seconds),
        )


@dataclass(slots=True)
class Match:
    """One alert to make: one user, one event; ``rule`` is the first (lowest id) of ``rules``,
    every rule of the user that matched it."""

    rule: CompiledRule
    symbol: str
    rules: list[CompiledRule] = field(default_factory=list)


class Matcher:
    """Matching proper: events in stream order against a RuleIndex, with cooldowns, each user's
    alert rate and the last value of each indicator (for crossings). No I/O: a batch's state
    changes are kept aside and committed only once its alerts are stored, so a batch that fails
    is matched again afresh.

    Per event, a user gets at most one alert, listing the user's rules that matched. A rule
    fires at most once per symbol per cooldown (at least ``min_cooldown``). A user over
    ``rate_per_minute`` (a token bucket: the rate per minute, refilled continuously) gets no
    alert; each rule that matched then is paused for ``pause_seconds`` (skipped at once after)."""

    def __init__(self, index: RuleIndex, limits: AlertLimits | None = None) -> None:
        self.index = index
        self.limits = limits or AlertLimits()
        self.last_alert: dict[tuple[int, str], float] = {}  # (rule, symbol) -> epoch s
        self.last_value: dict[tuple[str, str], float] = {}  # (symbol, indicator) -> value
        self.budget: dict[int, tuple[float, float]] = {}  # user -> (alerts left, at epoch s)
        self.paused: list[tuple[int, float]] = []  # (rule, until) paused by committed batches
        self._alert_overlay: dict[tuple[int, str], float] = {}
        self._value_overlay: dict[tuple[str, str], float] = {}
        self._budget_overlay: dict[int, tuple[float, float]] = {}
        self._pause_overlay: dict[int, tuple[CompiledRule, float]] = {}

    def begin(self) -> None:
        self._alert_overlay = {}
        self._value_overlay = {}
        self._budget_overlay = {}
        self._pause_overlay = {}

    def commit(self) -> None:
        self.last_alert.update(self._alert_overlay)
        self.last_value.update(self._value_overlay)
        self.budget.update(self._budget_overlay)
        for rule, until in self._pause_overlay.values():
            rule.paused_until = until
            self.index.pause(rule.id, until)
            self.paused.append((rule.id, until))
        self.begin()

    def take_paused(self) -> list[tuple[int, float]]:
        """The rules paused since the last call (to be stored for the rule API)."""
        paused, self.paused = self.paused, []
        return paused

    def match(self, event_type: str, data: dict[str, Any], now: float) -> list[Match]:
        self.index.wake(now)
        symbol = data.get("symbol")
        if not isinstance(symbol, str):
            return []
        if event_type == "pattern_detected":
            found = self._patterns(symbol, data, now)
        elif event_type == "indicator_update":
            found = self._indicators(symbol, data, now)
        else:
            return []
        return self._per_user(found, symbol, now) if found else []

    def _per_user(self, found: list[CompiledRule], symbol: str, now: float) -> list[Match]:
        by_user: dict[int, list[CompiledRule]] = {}
        for rule in found:
            by_user.setdefault(rule.user_id, []).append(rule)
        matches = []
        for user_id, rules in by_user.items():
            rules.sort(key=lambda rule: rule.id)
            if self._spend(user_id, now):
                matches.append(Match(rules[0], symbol, rules))
            else:
                until = now + self.limits.pause_seconds
                for rule in rules:
                    self._pause_overlay[rule.id] = (rule, until)
        return matches

    def _spend(self, user_id: int, now: float) -> bool:
        """Take one alert from the user's budget; False when it is spent."""
        capacity = self.limits.rate_per_minute
        left, at = self._budget_overlay.get(user_id) or self.budget.get(user_id) or (capacity, now)
        left = min(capacity, left + (now - at) * capacity / 60.0)
        if left < 1.0:
            self._budget_overlay[user_id] = (left, now)
            return False
        self._budget_overlay[user_id] = (left - 1.0, now)
        return True

    def _live(self, rule: CompiledRule, now: float) -> bool:
        if rule.paused_until > now:
            return False
        pause = self._pause_overlay.get(rule.id)
        return pause is None or pause[1] <= now

    def _cool(self, rule: CompiledRule, symbol: str, now: float) -> bool:
        key = (rule.id, symbol)
        last = self._alert_overlay.get(key)
        if last is None:
            last = self.last_alert.get(key)
        if last is not None and now - last < max(rule.cooldown, self.limits.min_cooldown):
            return False
        self._alert_overlay[key] = now
        return True

    def _patterns(self, symbol: str, data: dict[str, Any], now: float) -> list[CompiledRule]:
        rules = self.index.candidates("pattern", symbol)
        if not rules:
            return []
        pattern = str(data.get("pattern", "")).lower()
        tier = data.get("tier")
        confidence = data.get("confidence")
        confidence = float(confidence) if isinstance(confidence, int | float) else 0.0
        found = []
        for rule in rules:
            if not self._live(rule, now):
                continue
            if rule.patterns and pattern not in rule.patterns:
                continue
            if rule.tiers and tier not in rule.tiers:
                continue
            if confidence < rule.min_confidence:
                continue
            if self._cool(rule, symbol, now):
                found.append(rule)
        return found

    def _indicators(self, symbol: str, data: dict[str, Any], now: float) -> list[CompiledRule]:
        name = str(data.get("indicator", "")).lower()
        rules = [r for r in self.index.candidates("indicator", symbol) if r.indicator == name]
        value = indicator_value(data, name)
        if value is None:
            return []
        key = (symbol, name)
        previous = self._value_overlay.get(key)
        if previous is None:
            previous = self.last_value.get(key)
        self._value_overlay[key] = value
        tier = data.get("tier")
        found = []
        for rule in rules:
            if not self._live(rule, now):
                continue
            if rule.tiers and tier not in rule.tiers:
                continue
            if not _condition(rule.op, rule.value, previous, value):
                continue
            if self._cool(rule, symbol, now):
                found.append(rule)
        return found


def _drain(feed: deque[tuple[str, str, StoredEvent]]) -> list[tuple[str, str, StoredEvent]]:
    items = list(feed)
    feed.clear()
    return items


def _condition(op: str, threshold: float, previous: float | None, value: float) -> bool:
    if op == "above":
        return value > threshold
    if op == "below":
        return value < threshold
    if previous is None:
        return False  # a crossing needs the value before
    if op == "crosses_above":
        return previous <= threshold < value
    if op == "crosses_below":
        return previous >= threshold > value
    return False


@dataclass
class AlertStats:
    """The matcher's counters, for /api/streaming/status and the alerts benchmark."""

    leader: bool = False
    leader_since: float | None = None
    rules: int = 0
    events: int = 0
    matched: int = 0
    alerts: int = 0
    reloads: int = 0
    pruned: int = 0
    last_error: str | None = None
    match_us: deque[float] = field(default_factory=lambda: deque(maxlen=MATCH_SAMPLES))

    def as_dict(self) -> dict[str, Any]:
        samples = sorted(self.match_us)

        def pct(q: float) -> float | None:
            if not samples:
                return None
            return round(samples[min(len(samples) - 1, int(q * len(samples)))], 2)

        return {
            "leader": self.leader,
            "rules": self.rules,
            "events": self.events,
            "matched": self.matched,
            "alerts": self.alerts,
            "reloads": self.reloads,
            "pruned": self.pruned,
            "last_error": self.last_error,
            "match_us": {"p50": pct(0.5), "p99": pct(0.99), "samples": len(samples)},
        }


class AlertMatcher:
    """Takes the matcher lease when it is free, then matches, stores and announces alerts."""

    def __init__(
        self,
        *,
        prefix: str,
        node_id: str,
        make_client: Callable[[], aioredis.Redis],
        database: Any,
        store: Callable[[aioredis.Redis], EventStore],
        backoff_cap: float = 10.0,
        reader: FanoutReader,
        retention_days: int = 0,
        limits: AlertLimits | None = None,
        inbox_max: int = 10_000,
    ) -> None:
        self.prefix = prefix
        self.retention_days = retention_days
        self.limits = limits or AlertLimits()
        self.inbox_max = inbox_max
        self.node_id = node_id
        self.make_client = make_client
        self.database = database
        self.store_factory = store
        self.backoff_cap = backoff_cap
        self.fanout_key = f"{prefix}:fanout"
        self.lease_key = f"{prefix}:alerts:leader"
        self.cursor_key = f"{prefix}:alerts:cursor"
        self.channel = rules_channel(prefix)
        self.stats = AlertStats()
        self.index = RuleIndex()
        self.matcher = Matcher(self.index, self.limits)
        self.reader = reader
        self.cursor = ""  # the last entry matched (committed with the lease every second)
        self._busy = False  # a batch is being matched and stored
        self._pending_users: set[int] = set()
        self._reload_all = False
        self._changes = asyncio.Event()

    async def run(self) -> None:
        backoff = 0.5
        while True:
            client = self.make_client()
            led_since: float | None = None
            try:
                taken = await client.eval(ACQUIRE_SCRIPT, 1, self.lease_key, self.node_id, LEASE_MS)
                if not taken:
                    backoff = 0.5  # Redis answers; another node matches
                    await asyncio.sleep(RENEW_S)
                    continue
                led_since = time.monotonic()
                await self._lead(client)
            except asyncio.CancelledError:
                raise
            except LostLease:
                log.warning("alert matcher lease lost; another node matches now")
            except PAUSING as exc:
                # Redis or PostgreSQL away: the batch is matched again from the cursor later.
                self.stats.last_error = f"{type(exc).__name__}: {exc}"[:200]
                log.warning("alert matcher paused (%r); retrying", exc)
            except Exception as exc:
                self.stats.last_error = f"{type(exc).__name__}: {exc}"[:200]
                log.exception("alert matcher failed; restarting")
            finally:
                self._stepped_down()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(client.aclose(), 2)
            if led_since is not None and time.monotonic() - led_since > STEADY_S:
                backoff = 0.5  # it matched for a while: a new failure starts the backoff again
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.backoff_cap)

    def _stepped_down(self) -> None:
        self.stats.leader = False
        self.stats.leader_since = None

    async def release(self) -> None:
        """Commit the cursor and give the lease up (on shutdown), so another node takes over at
        once where this one stopped."""
        client = self.make_client()
        try:
            if self.cursor:
                await client.eval(
                    RENEW_SCRIPT,
                    2,
                    self.lease_key,
                    self.cursor_key,
                    self.node_id,
                    LEASE_MS,
                    self.cursor,
                )
            await client.eval(RELEASE_SCRIPT, 1, self.lease_key, self.node_id)
        except Exception as exc:
            log.debug("could not release the alert matcher lease: %r", exc)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.aclose(), 2)

    async def _lead(self, client: aioredis.Redis) -> None:
        log.info("alert matcher: this node matches for the cluster")
        self.stats.leader = True
        self.stats.leader_since = time.time()
        await self._load_all()
        await self._load_cooldowns()
        cursor = await self._start_cursor(client)
        self.stats.last_error = None
        store = self.store_factory(client)
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._follow_changes())
                group.create_task(self._reload_loop())
                group.create_task(self._prune_loop())
                group.create_task(self._match_loop(client, store, cursor))
        except ExceptionGroup as group:
            raise group.exceptions[0] from None  # the failure that ended matching

    async def _prune_loop(self) -> None:
        """Keep the inbox to its retention; a failure here waits for the next round and leaves
        matching alone."""
        if self.retention_days <= 0:
            return
        while True:
            try:
                await self.prune()
            except PAUSING as exc:
                log.warning("alert retention paused (%r); trying again in an hour", exc)
            except Exception:
                log.exception("alert retention failed; trying again in an hour")
            await asyncio.sleep(PRUNE_EVERY_S)

    async def prune(self) -> int:
        """Remove the alerts older than the retention, a slice per statement; how many."""
        before = dt.datetime.now(dt.UTC) - dt.timedelta(days=self.retention_days)
        removed = 0
        while True:
            async with self.database.write() as conn:
                gone = await delete_alerts_before(conn, before, PRUNE_SLICE)
            removed += gone
            self.stats.pruned += gone
            if gone < PRUNE_SLICE:
                break
            await asyncio.sleep(0)
        if removed:
            log.info(
                "alert retention: removed %d alerts older than %d days",
                removed,
                self.retention_days,
            )
        return removed

    async def _start_cursor(self, client: aioredis.Redis) -> str:
        saved = await client.get(self.cursor_key)
        if saved:
            return saved.decode() if isinstance(saved, bytes) else str(saved)
        newest: Any = await client.xrevrange(self.fanout_key, count=1)
        return newest[0][0].decode() if newest else "0-0"

    async def _renew(self, client: aioredis.Redis, cursor: str = "") -> None:
        held = await client.eval(
            RENEW_SCRIPT, 2, self.lease_key, self.cursor_key, self.node_id, LEASE_MS, cursor
        )
        if not held:
            raise LostLease()

    async def _match_loop(self, client: aioredis.Redis, store: EventStore, cursor: str) -> None:
        """Match every fan-out entry after ``cursor``: first those in the stream, then those the
        node's fan-out reader delivers (in stream order), as they come. The cursor is committed
        with the lease every second; a node that takes over after a failure matches again what
        came after it, and the unique (rule, event) index stores none of it twice."""
        feed: deque[tuple[str, str, StoredEvent]] = deque()
        loop = asyncio.get_running_loop()
        wake: asyncio.Future[None] = loop.create_future()
        live = False  # caught up with the stream: entries that cannot match move the cursor

        def take(entry_id: str, room: str, event: StoredEvent) -> None:
            nonlocal wake
            if live and not feed and not self._busy:
                # Nothing before it is waiting: an entry no rule can match only moves the cursor
                # (no wake-up). Indicator values are kept for crossings, so those are matched.
                kind = event.event_type
                if kind not in MATCHED_TYPES or (
                    kind == "pattern_detected"
                    and not self.index.candidates("pattern", room.partition(":")[2])
                ):
                    self.cursor = entry_id
                    return
            feed.append((entry_id, room, event))
            if not wake.done():
                wake.set_result(None)

        self.reader.consumers.append(take)
        try:
            self.cursor = await self._catch_up(client, store, cursor)
            live = True
            renewed = time.monotonic()
            while True:
                if not feed:
                    if wake.done():
                        wake = loop.create_future()
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(
                            max(0.0, RENEW_S - (time.monotonic() - renewed))
                        ):
                            await wake
                if feed:
                    cursor = self.cursor
                    batch = [item for item in _drain(feed) if offset_after(item[0], cursor)]
                    if batch:
                        self._busy = True
                        try:
                            await self._process(batch, store)
                        finally:
                            self._busy = False
                        if offset_after(batch[-1][0], self.cursor):
                            self.cursor = batch[-1][0]
                if time.monotonic() - renewed >= RENEW_S:
                    await self._renew(client, self.cursor)
                    renewed = time.monotonic()
        finally:
            self.reader.consumers.remove(take)

    async def _catch_up(self, client: aioredis.Redis, store: EventStore, cursor: str) -> str:
        """The entries after ``cursor`` already in the stream (the reader feeds the rest)."""
        while True:
            entries: Any = await client.xrange(self.fanout_key, min=f"({cursor}", count=READ_COUNT)
            if not entries:
                return cursor
            batch = []
            for entry_id, fields in entries:
                try:
                    room, stored = stored_from_fanout(entry_id, fields)
                except (KeyError, ValueError):
                    log.warning("alert matcher skipped malformed fan-out entry %r", entry_id)
                    continue
                batch.append((entry_id.decode(), room, stored))
            await self._process(batch, store)
            cursor = entries[-1][0].decode()
            await self._renew(client, cursor)
            if len(entries) < READ_COUNT:
                return cursor

    async def _process(self, batch: list[tuple[str, str, StoredEvent]], store: EventStore) -> None:
        """Match a batch, store its alerts and fan them out; state is committed only after."""
        matcher = self.matcher
        stats = self.stats
        index = self.index
        matcher.begin()
        now = time.time()
        found: list[tuple[Match, bytes, str]] = []
        for entry_id, room, stored in batch:
            event_type = stored.event_type
            if event_type not in MATCHED_TYPES:
                continue
            started = time.perf_counter()
            if event_type == "pattern_detected" and not index.candidates(
                "pattern", room.partition(":")[2]
            ):
                matches: list[Match] = []  # no rule could match: not even decoded
            else:
                try:
                    data = loads(stored.payload)
                    matches = matcher.match(event_type, data, now)
                except ValueError:
                    log.warning("alert matcher skipped malformed fan-out entry %r", entry_id)
                    continue
            stats.match_us.append((time.perf_counter() - started) * 1e6)
            stats.events += 1
            if matches:
                stats.matched += 1
                event_id = str(data.get("event_id") or entry_id)
                envelope = encode_envelope(stored)  # what the feed got, once per event
                found.extend((match, envelope, event_id) for match in matches)
        if found:
            await self._store(found, store, now)
        matcher.commit()
        await self._save_pauses()

    async def _save_pauses(self) -> None:
        """Store the rules paused by the batch, for the rule API (matching has them already)."""
        paused = self.matcher.take_paused()
        if not paused:
            return
        log.info("alerts: %d rule(s) paused, their users over the alert rate", len(paused))
        pauses = [(rule_id, dt.datetime.fromtimestamp(until, dt.UTC)) for rule_id, until in paused]
        async with self.database.write() as conn:
            await update_rules_paused(conn, pauses)

    async def _store(
        self,
        found: list[tuple[Match, bytes, str]],
        store: EventStore,
        now: float,
    ) -> None:
        created = dt.datetime.fromtimestamp(now, dt.UTC)
        alerts = [
            NewAlert(
                user_id=match.rule.user_id,
                rule_id=match.rule.id,
                rule_name=match.rule.name,
                event_id=event_id,
                symbol=match.symbol,
                event=envelope,
                created_at=created,
                rule_ids=tuple(rule.id for rule in match.rules or [match.rule]),
                rule_names=tuple(rule.name for rule in match.rules or [match.rule]),
            )
            for match, envelope, event_id in found
        ]
        async with self.database.write() as conn:
            stored_rows = await insert_alerts(conn, alerts)
            if stored_rows:
                await delete_alerts_over_bound(
                    conn, [user_id for user_id, _ in stored_rows], self.inbox_max
                )
        if not stored_rows:
            return
        self.stats.alerts += len(stored_rows)
        metrics.ALERTS.inc(len(stored_rows))
        await store.append_to_rooms(
            [
                (
                    user_room(user_id),
                    "alert",
                    # The alert's own key, not its row id: ids can be handed out again by a
                    # database that lost its last commits (a failover to a lagging replica).
                    f"alert:{row.rule_id}:{row.event_id}",
                    {
                        "id": row.id,
                        "rule_id": row.rule_id,
                        "rule_name": row.rule_name,
                        "rule_ids": list(row.rule_ids),
                        "rule_names": list(row.rule_names),
                        "event": row.event,
                        "created_at": row.created_at,
                    },
                )
                for user_id, row in stored_rows
            ]
        )

    # --- rules: loaded at takeover, reloaded per user on announcements and all every minute ---

    async def _load_all(self) -> None:
        """Every rule, into a new index built a slice at a time (the loop keeps delivering
        meanwhile: 10,000 rules take a few hundred milliseconds to index), then swapped in."""
        async with self.database.connection() as conn:
            rows = await select_matching_rules(conn)
        index = RuleIndex()
        for start in range(0, len(rows), INDEX_SLICE):
            index.add(rows[start : start + INDEX_SLICE])
            await asyncio.sleep(0)
        self.index = self.matcher.index = index
        self.stats.rules = len(self.index)
        self.stats.reloads += 1

    async def _load_users(self, user_ids: list[int]) -> None:
        async with self.database.connection() as conn:
            rows = await select_matching_rules(conn, user_ids)
        self.index.replace(rows, user_ids)
        self.stats.rules = len(self.index)

    async def _load_cooldowns(self) -> None:
        async with self.database.connection() as conn:
            self.matcher.last_alert = await select_recent_alert_times(conn, MAX_COOLDOWN_S)

    async def _follow_changes(self) -> None:
        """Announced rule and watchlist changes, applied within a second (and everything
        re-read whenever the subscription is (re)made, since announcements may have been
        missed meanwhile)."""
        while True:
            client = self.make_client()
            pubsub = client.pubsub()
            try:
                await pubsub.subscribe(self.channel)
                self._reload_all = True
                self._changes.set()
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=5)
                    if message is None:
                        await pubsub.ping()
                        continue
                    with contextlib.suppress(ValueError):
                        self._pending_users.add(int(message["data"]))
                        self._changes.set()
            except asyncio.CancelledError:
                raise
            except REDIS_DOWN as exc:
                log.warning("alert rule announcements lost Redis (%r); resubscribing", exc)
                await asyncio.sleep(1)
            finally:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(pubsub.aclose(), 2)
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(client.aclose(), 2)

    async def _reload_loop(self) -> None:
        last_all = time.monotonic()
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, RELOAD_ALL_S - (time.monotonic() - last_all))):
                    await self._changes.wait()
            self._changes.clear()
            try:
                if self._reload_all or time.monotonic() - last_all >= RELOAD_ALL_S:
                    self._reload_all = False
                    self._pending_users.clear()
                    await self._load_all()
                    last_all = time.monotonic()
                elif self._pending_users:
                    users = sorted(self._pending_users)
                    self._pending_users.clear()
                    await self._load_users(users)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # The database is away: keep matching with the rules we have, retry shortly.
                self.stats.last_error = f"rules: {type(exc).__name__}: {exc}"[:200]
                log.warning("could not reload alert rules: %r", exc)
                self._reload_all = True
                await asyncio.sleep(1)
                self._changes.set()
