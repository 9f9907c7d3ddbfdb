"""``tickstock bench alerts``: many users' rules matched against a steady event stream.

The benchmark creates its own accounts (``alertbench-<run>-<n>``) with watchlists and a realistic
mix of rules, API tokens for a sample of them and an admin token for the status, connects one
Socket.IO client per sampled user (in a worker process), announces the rules as the API does, and
publishes pattern and indicator messages on the producer's channels at the rate. Every message
carries its run, sequence number and send time; they land in the event's ``metadata``, so each
``alert`` a client receives says how long it took from publish to delivery.

Figures: the server matcher's time per event (its ``match_us`` samples, read from the admin view
of ``/api/streaming/status``), the server's CPU per event (``--server-pid``), alerts stored per
second in the measured window (counted in ``alerts``), publish → ``alert`` latency, and the
accounting: every alert stored for a connected user must reach that user's sockets exactly once.
The accounts (with their rules, alerts and tokens) are deleted at the end unless ``keep``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import multiprocessing as mp
import random
import secrets
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from tickstock.bench.common import (
    LeanSocket,
    process_stats,
    run_sockets,
    run_worker,
    socketio_ws_url,
)
from tickstock.bench.stats import latency_summary, percentile
from tickstock.queries.alerts import RuleFields
from tickstock.vocab import INDICATORS_CHANNEL, PATTERNS_CHANNEL

PATTERN_NAMES = (
    "Breakout",
    "Doji",
    "Hammer",
    "BullFlag",
    "BearFlag",
    "HeadShoulders",
    "DoubleBottom",
    "DoubleTop",
    "CupHandle",
    "Engulfing",
)
EVENT_TIERS = ("daily", "intraday", "hourly")
INDICATOR = "RSI"
HOME_SYMBOLS = 40  # the symbols one user cares about, drawn from the universe
WATCHLIST_SYMBOLS = 15
TARGET_MATCH_US = 50.0


@dataclass
class AlertsConfig:
    url: str
    database_url: str
    redis_url: str = "redis://127.0.0.1:6379/0"
    key_prefix: str = "tickstock"
    users: int = 1000
    rules_per_user: int = 10
    universe: int = 3000
    sockets: int = 200  # users with a connected socket
    sockets_per_user: int = 1
    rate: float = 200.0
    indicator_share: float = 0.1
    duration: float = 30.0
    warmup: float = 3.0
    grace: float = 3.0
    attack_rules: int = 0  # one more user, without a socket, with this many "*" rules
    server_pids: list[int] = field(default_factory=list)
    processes: int = 1
    keep: bool = False
    seed: int = 11
    connect_concurrency: int = 50
    # The producer's channels; a served app listening on channels of its own (its
    # TICKSTOCK_INGEST_CHANNELS) keeps other producers' events out of the measurement.
    pattern_channel: str = PATTERNS_CHANNEL
    indicator_channel: str = INDICATORS_CHANNEL


# --------------------------------------------------------------------------- the workload


@dataclass
class PlannedUser:
    username: str
    watchlist: list[str]
    rules: list[RuleFields]


def universe_symbols(size: int) -> list[str]:
    return [f"AL{i:05d}" for i in range(size)]


def _rule(rng: random.Random, name: str, symbols: list[str] | str, **extra: Any) -> RuleFields:
    base: dict[str, Any] = {
        "name": name,
        "symbols": symbols,
        "patterns": [],
        "tiers": [],
        "min_confidence": 0.0,
        "indicator": None,
        "cooldown_seconds": rng.randint(0, 5),
        "enabled": True,
    }
    return RuleFields(**{**base, **extra})


def plan_user(config: AlertsConfig, index: int, prefix: str, universe: list[str]) -> PlannedUser:
    """One user's watchlist and rules (deterministic per seed and index).

    Most rules name a few symbols of the user's own interests, with one to three patterns and a
    confidence floor; one follows the watchlist; one user in fifty has a ``"*"`` rule narrowed to
    one pattern, one tier and a high confidence; one in five an RSI rule on a few symbols.
    """
    rng = random.Random(config.seed * 1_000_003 + index)
    home = rng.sample(universe, min(HOME_SYMBOLS, len(universe)))
    watchlist = rng.sample(home, min(WATCHLIST_SYMBOLS, len(home)))
    rules: list[RuleFields] = []
    for n in range(config.rules_per_user):
        name = f"bench rule {n}"
        if n == 0:
            rules.append(
                _rule(
                    rng,
                    name,
                    "watchlist",
                    patterns=rng.sample(PATTERN_NAMES, rng.randint(1, 2)),
                    min_confidence=0.8,
                )
            )
        elif n == 1 and index % 50 == 0:
            rules.append(
                _rule(
                    rng,
                    name,
                    "*",
                    patterns=[rng.choice(PATTERN_NAMES)],
                    tiers=[rng.choice(EVENT_TIERS)],
                    min_confidence=0.97,
                )
            )
        elif n == 1 and index % 5 == 1:
            op, value = rng.choice(
                [("above", 75.0), ("below", 25.0), ("crosses_above", 70.0), ("crosses_below", 30.0)]
            )
            rules.append(
                _rule(
                    rng,
                    name,
                    rng.sample(home, rng.randint(2, 4)),
                    indicator={"type": INDICATOR, "op": op, "value": value},
                )
            )
        else:
            any_pattern = rng.random() < 0.1
            rules.append(
                _rule(
                    rng,
                    name,
                    rng.sample(home, rng.randint(2, 5)),
                    patterns=[]
                    if any_pattern
                    else rng.sample(PATTERN_NAMES, rng.choice((1, 1, 2, 3))),
                    tiers=[] if rng.random() < 0.75 else [rng.choice(EVENT_TIERS)],
                    min_confidence=rng.choice((0.7, 0.8, 0.85, 0.9)),
                )
            )
    return PlannedUser(f"{prefix}{index:05d}", watchlist, rules)


def plan_attacker(config: AlertsConfig, prefix: str) -> PlannedUser:
    """The flooding user: ``attack_rules`` rules on every symbol, any confidence, no cooldown."""
    rules = [
        RuleFields(
            name=f"everything {n}",
            symbols="*",
            patterns=[],
            tiers=[],
            min_confidence=0.0,
            indicator=None,
            cooldown_seconds=0,
            enabled=True,
        )
        for n in range(config.attack_rules)
    ]
    return PlannedUser(f"{prefix}attacker", [], rules)


def plan_events(
    config: AlertsConfig, run_id: str, universe: list[str]
) -> list[tuple[str, dict[str, Any]]]:
    """(channel, message) for every event of the run, warm-up included; send times added later."""
    rng = random.Random(config.seed)
    count = int((config.warmup + config.duration) * config.rate)
    events: list[tuple[str, dict[str, Any]]] = []
    for seq in range(count):
        symbol = universe[rng.randrange(len(universe))]
        common = {"event_id": f"alertbench-{run_id}-{seq}", "symbol": symbol}
        if rng.random() < config.indicator_share:
            message = {
                **common,
                "indicator": INDICATOR,
                "value": round(rng.uniform(15.0, 85.0), 2),
                "tier": "daily",
            }
            events.append((config.indicator_channel, message))
        else:
            message = {
                **common,
                "pattern": rng.choice(PATTERN_NAMES),
                "confidence": round(rng.uniform(0.5, 1.0), 3),
                "tier": rng.choice(EVENT_TIERS),
                "price": 100.0,
            }
            events.append((config.pattern_channel, message))
    return events


def replay(
    rows: list[Any], events: list[tuple[str, dict[str, Any]]], config: AlertsConfig
) -> tuple[list[list[int]], list[float]]:
    """Match the planned events here, with the server's matcher, at their planned times: the
    users each event should alert (so the alerts to expect) and the time ``match`` took."""
    from tickstock.realtime.alerts import Matcher, RuleIndex

    index = RuleIndex()
    index.add(rows)
    matcher = Matcher(index)
    alerted: list[list[int]] = []
    timings: list[float] = []
    for seq, (_channel, message) in enumerate(events):
        kind = "indicator_update" if "indicator" in message else "pattern_detected"
        matcher.begin()
        started = time.perf_counter()
        matches = matcher.match(kind, message, seq / config.rate)
        timings.append((time.perf_counter() - started) * 1e6)
        matcher.commit()
        alerted.append([m.rule.user_id for m in matches])
    return alerted, timings


# --------------------------------------------------------------------------- socket clients


class AlertClient(LeanSocket):
    """One user's Socket.IO connection over a raw websocket, recording every ``alert``."""

    def __init__(self, index: int, token: str, run_id: str) -> None:
        super().__init__(index, {"token": token})
        self.run_id = run_id
        self.received: Counter[int] = Counter()
        self.latencies: list[tuple[int, float]] = []  # (bench seq, ms)

    def received_text(self, text: str) -> None:
        if not text.startswith('42["alert"'):
            return
        now = time.time()
        data = orjson.loads(text[2:])[1]["data"]
        self.received[int(data["id"])] += 1
        meta = (data.get("event") or {}).get("data", {}).get("metadata") or {}
        if meta.get("bench_run") == self.run_id:
            self.latencies.append(
                (int(meta["bench_seq"]), (now - float(meta["bench_sent"])) * 1000)
            )


async def _worker_main(
    config: AlertsConfig,
    clients: list[tuple[int, str]],
    run_id: str,
    inbox: Any,
    outbox: Any,
) -> None:
    sockets = [AlertClient(index, token, run_id) for index, token in clients]
    await run_sockets(
        sockets,
        socketio_ws_url(config.url),
        {"Origin": config.url.rstrip("/")},
        config.connect_concurrency,
        connected=lambda: outbox.put(
            (
                "connected",
                [c.index for c in sockets if c.connected],
                [c.error for c in sockets if c.error][:5],
            )
        ),
        inbox=inbox,
    )
    outbox.put(
        (
            "result",
            {c.index: dict(c.received) for c in sockets if c.connected},
            [lat for c in sockets for lat in c.latencies],
        )
    )


def _worker_entry(
    config: AlertsConfig, clients: list[tuple[int, str]], run_id: str, inbox: Any, outbox: Any
) -> None:
    run_worker(_worker_main(config, clients, run_id, inbox, outbox))


# --------------------------------------------------------------------------- the run


async def _matcher_status(http: aiohttp.ClientSession, url: str, token: str) -> dict[str, Any]:
    async with http.get(
        f"{url.rstrip('/')}/api/streaming/status",
        headers={"Authorization": f"Bearer {token}"},
    ) as response:
        if response.status != 200:
            raise RuntimeError(f"status: HTTP {response.status} {await response.text()}")
        body: Any = await response.json()
    alerts = body["data"].get("alerts")
    if not isinstance(alerts, dict):
        raise RuntimeError("the server runs no alert matcher (data.alerts is null)")
    return alerts


async def _wait_for_rules(
    http: aiohttp.ClientSession, url: str, token: str, want: int, within: float = 30.0
) -> dict[str, Any]:
    """The matcher's status once it leads and holds at least ``want`` rules."""
    deadline = time.monotonic() + within
    while True:
        status = await _matcher_status(http, url, token)
        if status["leader"] and status["rules"] >= want:
            return status
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"the matcher did not load the rules in {within:.0f}s"
                f" (leader {status['leader']}, {status['rules']} of {want} rules)"
            )
        await asyncio.sleep(0.2)


async def _setup(
    conn: Any, config: AlertsConfig, prefix: str, planned: list[PlannedUser]
) -> tuple[list[int], dict[int, str], str]:
    """Accounts, watchlists and rules; tokens of the sampled users and of an admin."""
    from tickstock.auth import create_session, hash_password
    from tickstock.queries.alerts import copy_rules
    from tickstock.queries.bench import insert_bench_users
    from tickstock.queries.users import insert_user

    password_hash = await hash_password(secrets.token_urlsafe(24))
    user_ids = await insert_bench_users(
        conn, [p.username for p in planned], password_hash, [p.watchlist for p in planned]
    )
    await copy_rules(
        conn, [(uid, rule) for uid, p in zip(user_ids, planned, strict=True) for rule in p.rules]
    )
    lifetime = dt.timedelta(hours=6)
    tokens: dict[int, str] = {}
    for index in sampled_users(config):
        _, token, _ = await create_session(
            conn, user_ids[index], "token", lifetime=lifetime, name="bench-alerts"
        )
        assert token is not None
        tokens[index] = token
    admin = await insert_user(conn, f"{prefix}admin", password_hash, "admin")
    _, admin_token, _ = await create_session(
        conn, admin.id, "token", lifetime=lifetime, name="bench-alerts"
    )
    assert admin_token is not None
    return user_ids, tokens, admin_token


def sampled_users(config: AlertsConfig) -> list[int]:
    """The users that get sockets: spread evenly over all of them."""
    count = min(config.sockets, config.users)
    return sorted({int(i * config.users / count) for i in range(count)}) if count else []


async def run_alerts_bench(
    config: AlertsConfig, progress: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """Run the benchmark and return its figures (see the module docstring)."""
    import asyncpg
    import redis.asyncio as aioredis

    from tickstock.queries.alerts import select_matching_rules
    from tickstock.queries.bench import (
        count_alerts_between,
        delete_users_by_prefix,
        select_alert_ids_since,
    )
    from tickstock.realtime.alerts import rules_channel

    say = progress or (lambda _line: None)
    run_id = uuid.uuid4().hex[:8]
    prefix = f"alertbench-{run_id}-"
    universe = universe_symbols(config.universe)
    planned = [plan_user(config, i, prefix, universe) for i in range(config.users)]
    if config.attack_rules:
        planned.append(plan_attacker(config, prefix))
    events = plan_events(config, run_id, universe)
    rule_mix = Counter(
        "indicator"
        if rule.indicator
        else {"watchlist": "watchlist", "*": "all"}.get(str(rule.symbols), "list")
        for user in planned
        for rule in user.rules
    )
    conn = await asyncpg.connect(config.database_url)
    redis = aioredis.Redis.from_url(config.redis_url)
    http = aiohttp.ClientSession()
    procs: list[Any] = []
    inboxes: list[Any] = []
    try:
        started = time.monotonic()
        user_ids, tokens, admin_token = await _setup(conn, config, prefix, planned)
        total_rules = sum(len(p.rules) for p in planned)
        say(
            f"created {len(user_ids)} users, {total_rules} rules, {len(tokens)} tokens"
            f" ({time.monotonic() - started:.1f}s)"
        )
        rows = await select_matching_rules(conn, user_ids)
        alerted, replay_us = replay(rows, events, config)
        index_of = {uid: i for i, uid in enumerate(user_ids)}
        measured_from = int(config.warmup * config.rate)
        sampled = set(sampled_users(config))
        others = set(user_ids[: config.users])  # everyone but the attacker
        expected_window = sum(
            1 for users in alerted[measured_from:] for uid in users if uid in others
        )
        expected_connected = sum(
            1 for users in alerted for uid in users if index_of[uid] in sampled
        )
        say(
            f"expected ≈ {expected_window} alerts in the measured window"
            f" ({expected_window / config.duration:.1f}/s),"
            f" {expected_connected} of the whole run for the {len(sampled)} connected users"
        )
        baseline = await _matcher_status(http, config.url, admin_token)

        # Sockets first, then the rules: every alert of a connected user comes after its socket.
        ctx = mp.get_context("spawn")
        outbox = ctx.Queue()
        clients = [
            (index * config.sockets_per_user + k, tokens[index])
            for index in sorted(tokens)
            for k in range(config.sockets_per_user)
        ]
        workers = max(1, min(config.processes, len(clients)))
        for w in range(workers):
            inbox = ctx.Queue()
            inboxes.append(inbox)
            proc = ctx.Process(
                target=_worker_entry,
                args=(config, clients[w::workers], run_id, inbox, outbox),
                daemon=True,
            )
            proc.start()
            procs.append(proc)
        loop = asyncio.get_running_loop()
        connected: list[int] = []
        errors: list[str] = []
        for _ in range(workers):
            while True:
                kind, *rest = await loop.run_in_executor(None, outbox.get, True, 600)
                if kind == "connected":
                    connected += rest[0]
                    errors += rest[1]
                    break
        say(f"connected {len(connected)}/{len(clients)} sockets")
        connected_at = dt.datetime.now(dt.UTC)

        channel = rules_channel(config.key_prefix)
        async with redis.pipeline(transaction=False) as pipe:
            for uid in user_ids:
                pipe.publish(channel, str(uid))
            await pipe.execute()
        loaded = await _wait_for_rules(http, config.url, admin_token, baseline["rules"] + len(rows))
        say(f"matcher holds {loaded['rules']} rules")

        # Publish at the rate; the measured window starts after the warm-up.
        interval = 1.0 / config.rate
        seq = 0
        window_start = window_end = dt.datetime.now(dt.UTC)
        status_start = status_end = loaded
        cpu_start = cpu_end = 0.0
        measuring = False
        began = time.perf_counter()
        measure_began = began
        next_report = began + 1
        while seq < len(events):
            now = time.perf_counter()
            elapsed = now - began
            if not measuring and seq >= measured_from:
                measuring = True
                measure_began = time.perf_counter()
                window_start = dt.datetime.now(dt.UTC)
                cpu_start = process_stats(config.server_pids, children=True)[0]
                status_start = await _matcher_status(http, config.url, admin_token)
            due = min(int(elapsed / interval) + 1, len(events)) - seq
            if not measuring:
                due = min(due, measured_from - seq)
            if due > 0:
                async with redis.pipeline(transaction=False) as pipe:
                    for _ in range(due):
                        event_channel, message = events[seq]
                        message = {
                            **message,
                            "timestamp": time.time(),
                            "bench_run": run_id,
                            "bench_seq": seq,
                            "bench_sent": time.time(),
                        }
                        pipe.publish(event_channel, orjson.dumps(message))
                        seq += 1
                    await pipe.execute()
            if now >= next_report:
                next_report += 1
                say(
                    f"t={elapsed:5.1f}s published={seq} phase={'measure' if measuring else 'warmup'}"
                )
            await asyncio.sleep(max(0.0, min(interval, 0.01)))
        measured_s = time.perf_counter() - measure_began
        window_end = dt.datetime.now(dt.UTC)
        cpu_end = process_stats(config.server_pids, children=True)[0]
        await asyncio.sleep(0.5)  # the last events' matching
        status_end = await _matcher_status(http, config.url, admin_token)
        await asyncio.sleep(max(0.0, config.grace - 0.5))

        for inbox in inboxes:
            inbox.put("stop")
        received: dict[int, dict[int, int]] = {}
        latencies: list[float] = []
        for _ in range(workers):
            while True:
                kind, *rest = await loop.run_in_executor(None, outbox.get, True, 120)
                if kind == "result":
                    received.update(rest[0])
                    latencies += [ms for s, ms in rest[1] if s >= measured_from]
                    break
        for proc in procs:
            proc.join(10)

        stored_window = await count_alerts_between(
            conn, user_ids[: config.users], window_start, window_end
        )
        attacker_window = (
            await count_alerts_between(conn, user_ids[config.users :], window_start, window_end)
            if config.attack_rules
            else 0
        )
        connected_users = {
            user_ids[socket // config.sockets_per_user]: socket // config.sockets_per_user
            for socket in connected
        }
        stored_rows = await select_alert_ids_since(conn, list(connected_users), connected_at)
        want: dict[int, set[int]] = {}
        for uid, alert_id in stored_rows:
            want.setdefault(connected_users[uid], set()).add(alert_id)
        lost = duplicates = unexpected = delivered = expected = 0
        for socket in connected:
            user_index = socket // config.sockets_per_user
            ids = want.get(user_index, set())
            got = received.get(socket, {})
            expected += len(ids)
            delivered += len(ids & got.keys())
            lost += len(ids - got.keys())
            unexpected += len(got.keys() - ids)
            duplicates += sum(count - 1 for count in got.values() if count > 1)
    finally:
        for inbox in inboxes:
            inbox.put("stop")
        for proc in procs:
            proc.join(5)
            if proc.is_alive():
                proc.kill()
        await http.close()
        await redis.aclose()
        if not config.keep:
            removed = await delete_users_by_prefix(conn, prefix)
            say(f"removed {removed} bench accounts")
        await conn.close()

    published_window = len(events) - measured_from
    events_window = status_end["events"] - status_start["events"]
    replay_sorted = sorted(replay_us[measured_from:])
    match = status_end["match_us"]
    result: dict[str, Any] = {
        "run": run_id,
        "users": config.users,
        "rules": total_rules,
        "rule_mix": dict(sorted(rule_mix.items())),
        "universe": config.universe,
        "sockets": len(clients),
        "connected": len(connected),
        "failed": len(clients) - len(connected),
        "errors": errors[:5],
        "rate": config.rate,
        "duration_s": round(measured_s, 2),
        "published": len(events),
        "published_window": published_window,
        "matched_events_window": events_window,
        "match_us_p50": match["p50"],
        "match_us_p99": match["p99"],
        "match_us_samples": match["samples"],
        "replay_match_us_p50": round(percentile(replay_sorted, 0.5), 2),
        "replay_match_us_p99": round(percentile(replay_sorted, 0.99), 2),
        "expected_alerts_window": expected_window,
        "expected_alerts_per_s": round(expected_window / config.duration, 1),
        "alerts_window": stored_window,
        "alerts_per_s": round(stored_window / measured_s, 1) if measured_s else 0.0,
        "attack_rules": config.attack_rules,
        "attacker_alerts_window": attacker_window,
        "deliveries_expected": expected,
        "delivered": delivered,
        "lost": lost,
        "duplicates": duplicates,
        "unexpected": unexpected,
        "latency_samples": len(latencies),
        **latency_summary(latencies),
        "target_match_us_p50": TARGET_MATCH_US,
        "kept": config.keep,
        "prefix": prefix,
    }
    if config.server_pids:
        cpu = cpu_end - cpu_start
        result["server_cpu_s"] = round(cpu, 3)
        result["server_cpu_us_per_event"] = (
            round(cpu / published_window * 1e6, 1) if published_window else None
        )
        result["server_cpu_us_per_alert"] = (
            round(cpu / stored_window * 1e6, 1) if stored_window else None
        )
    return result


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def format_report(result: dict[str, Any]) -> str:
    mix = ", ".join(f"{kind} {count}" for kind, count in result["rule_mix"].items())
    p50 = result["match_us_p50"]
    lines = [
        f"setup       {result['users']} users, {result['rules']} rules ({mix}),"
        f" universe {result['universe']}; sockets connected {result['connected']}"
        f"/{result['sockets']} (failed {result['failed']})",
        f"events      published {result['published_window']} at {result['rate']}/s"
        f" over {result['duration_s']}s measured; matched by the server"
        f" {result['matched_events_window']}",
        f"matching    server p50 {p50} µs  p99 {result['match_us_p99']} µs per event"
        f" (last {result['match_us_samples']} samples); target ≤ {TARGET_MATCH_US:g} µs median:"
        f" {_met(p50 is not None and p50 <= TARGET_MATCH_US)};"
        f" replayed here p50 {result['replay_match_us_p50']} p99 {result['replay_match_us_p99']}",
        f"alerts      stored {result['alerts_window']} in the window"
        f" ({result['alerts_per_s']}/s); expected ≈ {result['expected_alerts_window']}"
        f" ({result['expected_alerts_per_s']}/s)",
        f"delivery    expected {result['deliveries_expected']}  received {result['delivered']}"
        f"  lost {result['lost']}  duplicates {result['duplicates']}"
        f"  unexpected {result['unexpected']}; target 0 lost, 0 duplicates:"
        f" {_met(result['lost'] == 0 and result['duplicates'] == 0)}",
        f"latency ms  publish → alert p50 {result['p50_ms']}  p90 {result['p90_ms']}"
        f"  p99 {result['p99_ms']}  max {result['max_ms']} ({result['latency_samples']} alerts)",
    ]
    if result["attack_rules"]:
        lines.append(
            f"attack      one user with {result['attack_rules']} every-symbol rules stored"
            f" {result['attacker_alerts_window']} alerts in the window (not counted above)"
        )
    if "server_cpu_us_per_event" in result:
        lines.append(
            f"server      {result['server_cpu_us_per_event']} µs CPU per event"
            f" ({result['server_cpu_us_per_alert']} µs per stored alert)"
        )
    if result["errors"]:
        lines.append("errors      " + "; ".join(result["errors"]))
    if result["kept"]:
        lines.append(f"kept        accounts {result['prefix']}*")
    return "\n".join(lines)


__all__ = [
    "AlertsConfig",
    "format_report",
    "plan_events",
    "plan_user",
    "run_alerts_bench",
]
