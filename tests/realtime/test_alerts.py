"""Alerts end to end: producer message -> matcher (once for the cluster) -> inbox -> `alert` on
every socket of the user, on every node (SPEC §11). Real PostgreSQL, Redis, served apps and
Socket.IO clients; rules are written as the API writes them and announced the same way."""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import asyncpg
import orjson
import pytest
import redis.asyncio as aioredis

from tests.support.auth import MakeUser, UserLogin
from tests.support.realtime import (
    PATTERNS,
    Publisher,
    Recorder,
    RedisServer,
    pattern,
    unique_symbol,
)
from tickstock.queries.alerts import (
    MatchingRule,
    NewAlert,
    Rule,
    RuleFields,
    insert_alerts,
    insert_rule,
    select_alerts,
)
from tickstock.realtime.alerts import (
    CompiledRule,
    Matcher,
    RuleIndex,
    rules_channel,
)

INDICATORS = "tickstock.events.indicators"
# Announced rule changes are applied within a second (SPEC §11).
RULE_PROPAGATION_S = 1.2
Connect = Callable[..., Awaitable[Recorder]]
Armed = Callable[[RuleFields], Awaitable[tuple[Rule, Recorder]]]


@pytest.fixture(name="settings_overrides")
def _settings_overrides(settings_overrides: dict[str, Any]) -> dict[str, Any]:
    """These tests use rules without cooldown; the minimum cooldown has tests of its own
    (test_alert_limits.py)."""
    return {**settings_overrides, "alert_min_cooldown_seconds": 0}


@pytest.fixture(name="announce")
async def _announce(redis_url: str, key_prefix: str) -> Any:
    client = aioredis.Redis.from_url(redis_url)

    async def announce(user_id: int) -> None:
        await client.publish(rules_channel(key_prefix), str(user_id))

    yield announce
    await client.aclose()


def fields(symbols: list[str] | str, **extra: Any) -> RuleFields:
    base: dict[str, Any] = {
        "name": "rule " + secrets.token_hex(3),
        "symbols": symbols,
        "patterns": [],
        "tiers": [],
        "min_confidence": 0.0,
        "indicator": None,
        "cooldown_seconds": 300,
        "enabled": True,
    }
    return RuleFields(**{**base, **extra})


async def add_rule(
    conn: asyncpg.Connection, user: UserLogin, announce: Any, rule: RuleFields
) -> Rule:
    created = await insert_rule(conn, user.user.id, rule, 100)
    assert created is not None
    await announce(user.user.id)
    return created


async def eventually(read: Callable[[], Awaitable[list[Any]]], within: float = 5.0) -> list[Any]:
    """What ``read`` returns once it is not empty (polling the database, which has no push)."""
    deadline = asyncio.get_running_loop().time() + within
    while not (found := await read()):
        assert asyncio.get_running_loop().time() < deadline, "nothing stored in time"
        await asyncio.sleep(0.1)
    return found


async def user_socket(connect: Connect, url: str, token: str) -> Recorder:
    return await connect(url, auth={"token": token})


@pytest.fixture(name="armed")
def _armed(
    served: Any,
    connect: Connect,
    conn: asyncpg.Connection,
    user: UserLogin,
    socket_token: Any,
    announce: Any,
) -> Armed:
    """Factory: ``rule, client = await armed(fields)`` stores the user's rule, announces it,
    connects a socket of the user and waits until the matcher has the rule."""

    async def armed(fields: RuleFields) -> tuple[Rule, Recorder]:
        rule = await add_rule(conn, user, announce, fields)
        client = await user_socket(connect, served.url, await socket_token(user))
        await asyncio.sleep(RULE_PROPAGATION_S)
        return rule, client

    return armed


async def test_over_the_api_a_rule_fires_once_and_the_inbox_and_unread_count_follow(
    served: Any,
    connect: Connect,
    publisher: Publisher,
    user: UserLogin,
    make_token: Any,
) -> None:
    """The whole user path: a rule made over the API, one alert for the one matching event, the
    inbox and the unread count in /api/auth/me, and marking it read."""
    name = "Pattern" + secrets.token_hex(4)  # only this test publishes it
    token = await make_token(user)
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(served.url, headers=headers) as http:

        async def call(method: str, path: str, body: Any = None) -> Any:
            async with http.request(method, path, json=body) as response:
                assert response.status < 300, await response.text()
                return await response.json()

        created = await call(
            "POST",
            "/api/user/alerts/rules",
            {
                "name": "AAPL breakouts",
                "symbols": ["AAPL"],
                "patterns": [name],
                "tiers": ["daily"],
                "min_confidence": 0.8,
                "cooldown_seconds": 0,
            },
        )
        client = await connect(served.url, auth={"token": token})
        await asyncio.sleep(RULE_PROPAGATION_S)
        for message in (
            pattern("MSFT", name),  # another symbol
            pattern("AAPL", name + "x"),  # another pattern
            pattern("AAPL", name, tier="weekly"),  # another tier
            pattern("AAPL", name, confidence=0.79),  # below the threshold
            pattern("AAPL", name, confidence=0.9, price=201.5),  # the one
        ):
            await publisher.publish(PATTERNS, message)
        [alert] = await client.wait_for("alert", 1)
        await client.settle(1.0)
        assert len(client.events["alert"]) == 1
        assert alert["data"]["rule_id"] == created["data"]["id"]
        assert alert["data"]["event"]["data"]["price"] == 201.5
        inbox = await call("GET", "/api/user/alerts?unread=true")
        assert [a["id"] for a in inbox["data"]] == [alert["data"]["id"]]
        assert inbox["data"][0]["event"] == alert["data"]["event"]
        me = await call("GET", "/api/auth/me")
        assert me["meta"]["unread_alerts"] == 1
        await call("POST", "/api/user/alerts/read", {"ids": [alert["data"]["id"]]})
        me = await call("GET", "/api/auth/me")
        assert me["meta"]["unread_alerts"] == 0


async def test_a_rule_fires_once_for_a_matching_event_and_never_for_others(
    publisher: Publisher, conn: asyncpg.Connection, user: UserLogin, armed: Armed
) -> None:
    symbol, other = unique_symbol(), unique_symbol()
    rule, client = await armed(
        fields([symbol], patterns=["Breakout"], tiers=["daily"], min_confidence=0.8)
    )
    for message in (
        pattern(other),  # another symbol
        pattern(symbol, "Doji"),  # another pattern
        pattern(symbol, tier="weekly"),  # another tier
        pattern(symbol, confidence=0.5),  # below the threshold
    ):
        await publisher.publish(PATTERNS, message)
    await publisher.publish(PATTERNS, pattern(symbol, price=190.5))
    alerts = await client.wait_for("alert", 1)
    await client.settle(1.0)
    assert len(client.events["alert"]) == 1
    alert = alerts[0]
    assert alert["type"] == "alert"
    data = alert["data"]
    assert data["rule_id"] == rule.id and data["rule_name"] == rule.name
    assert data["event"]["type"] == "pattern_detected"
    assert data["event"]["data"]["symbol"] == symbol
    assert data["event"]["data"]["price"] == 190.5
    stored = await select_alerts(conn, user.user.id, limit=10)
    assert [a.id for a in stored] == [data["id"]]
    assert stored[0].event == data["event"]


async def test_the_cooldown_holds_per_rule_and_symbol(publisher: Publisher, armed: Armed) -> None:
    first, second = unique_symbol(), unique_symbol()
    _, client = await armed(fields([first, second], cooldown_seconds=300))
    for _ in range(3):
        await publisher.publish(PATTERNS, pattern(first))
    await publisher.publish(PATTERNS, pattern(second))  # its own cooldown
    await client.wait_for("alert", 2)
    await client.settle(1.0)
    symbols = sorted(a["data"]["event"]["data"]["symbol"] for a in client.events["alert"])
    assert symbols == sorted([first, second])


async def test_a_rule_without_cooldown_fires_for_every_matching_event(
    publisher: Publisher, armed: Armed
) -> None:
    symbol = unique_symbol()
    _, client = await armed(fields([symbol], cooldown_seconds=0))
    for index in range(3):
        await publisher.publish(PATTERNS, pattern(symbol, f"P{index}"))
    await client.wait_for("alert", 3)
    await client.settle(0.5)
    names = [a["data"]["event"]["data"]["pattern"] for a in client.events["alert"]]
    assert names == ["P0", "P1", "P2"]


async def test_a_watchlist_rule_follows_the_watchlist(
    served: Any,
    connect: Connect,
    publisher: Publisher,
    conn: asyncpg.Connection,
    user: UserLogin,
    make_token: Any,
) -> None:
    """The rule follows the watchlist as the user changes it over the API."""
    kept, added = unique_symbol(), unique_symbol()
    await conn.executemany(
        "INSERT INTO symbols (symbol, name) VALUES ($1, $1)", [(kept,), (added,)]
    )
    try:
        token = await make_token(user)
        async with aiohttp.ClientSession(
            served.url, headers={"Authorization": f"Bearer {token}"}
        ) as http:

            async def send(method: str, path: str, body: Any) -> None:
                async with http.request(method, path, json=body) as response:
                    assert response.status < 300, await response.text()

            await send("PUT", "/api/user/watchlist", {"symbols": [kept]})
            await send(
                "POST",
                "/api/user/alerts/rules",
                {"name": "My watchlist", "symbols": "watchlist", "cooldown_seconds": 0},
            )
            client = await connect(served.url, auth={"token": token})
            await asyncio.sleep(RULE_PROPAGATION_S)
            await publisher.publish(PATTERNS, pattern(added, "Before"))
            await publisher.publish(PATTERNS, pattern(kept, "Kept"))
            await client.wait_for("alert", 1)
            await send("PUT", "/api/user/watchlist", {"symbols": [added]})
            await asyncio.sleep(RULE_PROPAGATION_S)  # the change is announced and applied
            await publisher.publish(PATTERNS, pattern(kept, "Dropped"))
            await publisher.publish(PATTERNS, pattern(added, "After"))
            await client.wait_for("alert", 2)
            await client.settle(1.0)
    finally:  # symbols of its own, gone again for the suites that check the seeded data
        await conn.execute("DELETE FROM symbols WHERE symbol = ANY($1::text[])", [kept, added])
    names = [a["data"]["event"]["data"]["pattern"] for a in client.events["alert"]]
    assert names == ["Kept", "After"]


async def test_two_nodes_store_one_alert_and_deliver_it_once_to_each_socket(
    serve_app: Any,
    connect: Connect,
    publisher: Publisher,
    conn: asyncpg.Connection,
    user: UserLogin,
    make_user: MakeUser,
    socket_token: Any,
    announce: Any,
) -> None:
    node_a, node_b = await serve_app(), await serve_app()
    symbol = unique_symbol()
    rule = await add_rule(conn, user, announce, fields([symbol]))
    sockets = [
        await user_socket(connect, node_a.url, await socket_token(user)),
        await user_socket(connect, node_a.url, await socket_token(user)),
        await user_socket(connect, node_b.url, await socket_token(user)),
    ]
    bystander = await user_socket(connect, node_b.url, await socket_token(await make_user()))
    await asyncio.sleep(RULE_PROPAGATION_S)
    await publisher.publish(PATTERNS, pattern(symbol))
    for client in sockets:
        await client.wait_for("alert", 1)
    await asyncio.sleep(1.0)
    ids = {client.events["alert"][0]["data"]["id"] for client in sockets}
    assert [len(client.events["alert"]) for client in sockets] == [1, 1, 1]
    assert len(ids) == 1
    assert bystander.events["alert"] == []
    count = await conn.fetchval("SELECT count(*) FROM alerts WHERE rule_id = $1", rule.id)
    assert count == 1


async def test_when_the_matching_node_stops_the_other_takes_over_and_misses_nothing(
    serve_app: Any,
    connect: Connect,
    publisher: Publisher,
    conn: asyncpg.Connection,
    user: UserLogin,
    socket_token: Any,
    announce: Any,
) -> None:
    """An event published while no node holds the matcher lease is matched by the node that
    takes it next, from the stopped node's cursor: alerted once, not lost, not repeated."""
    from tickstock.realtime.hub import get_hub

    nodes = [await serve_app(), await serve_app()]

    def leader() -> Any:
        holders = [n for n in nodes if (m := get_hub(n.app).alerts) and m.stats.leader]
        return holders[0] if len(holders) == 1 else None

    async with asyncio.timeout(10):
        while leader() is None:  # noqa: ASYNC110 (in-process state: nothing to wait on)
            await asyncio.sleep(0.1)
    matching = leader()
    other = nodes[1] if matching is nodes[0] else nodes[0]
    symbol = unique_symbol()
    await add_rule(conn, user, announce, fields([symbol], cooldown_seconds=0))
    client = await user_socket(connect, other.url, await socket_token(user))
    await asyncio.sleep(RULE_PROPAGATION_S)
    await publisher.publish(PATTERNS, pattern(symbol, "First"))
    await client.wait_for("alert", 1)

    await matching.stop()
    await publisher.publish(PATTERNS, pattern(symbol, "Between"))
    await client.wait_for("alert", 2, within=10)
    took_over = get_hub(other.app).alerts
    assert took_over is not None and took_over.stats.leader
    await publisher.publish(PATTERNS, pattern(symbol, "After"))
    await client.wait_for("alert", 3)
    await client.settle(1.0)
    names = [a["data"]["event"]["data"]["pattern"] for a in client.events["alert"]]
    assert names == ["First", "Between", "After"]
    stored = await select_alerts(conn, user.user.id, limit=10)
    assert len(stored) == 3


async def test_an_offline_user_finds_the_alert_in_the_inbox(
    served: Any,
    publisher: Publisher,
    conn: asyncpg.Connection,
    user: UserLogin,
    announce: Any,
) -> None:
    symbol = unique_symbol()
    rule = await add_rule(conn, user, announce, fields([symbol]))
    await asyncio.sleep(RULE_PROPAGATION_S)
    await publisher.publish(PATTERNS, pattern(symbol))
    stored = await eventually(lambda: select_alerts(conn, user.user.id, limit=10))
    assert [a.rule_id for a in stored] == [rule.id]
    assert stored[0].read_at is None and stored[0].symbol == symbol


async def test_the_inbox_keeps_alerts_for_the_retention_days(
    serve_app: Any, conn: asyncpg.Connection, user: UserLogin, make_token: Any, announce: Any
) -> None:
    """Alerts older than ``alert_retention_days`` leave the inbox (and the rule's count) once a
    node matches; newer ones stay."""
    from tickstock.realtime.hub import get_hub

    rule = await add_rule(conn, user, announce, fields([unique_symbol()]))
    now = dt.datetime.now(dt.UTC)
    ages = {"old": 31, "recent": 29, "new": 0}
    await insert_alerts(
        conn,
        [
            NewAlert(
                user_id=user.user.id,
                rule_id=rule.id,
                rule_name=rule.name,
                event_id=f"retention-{label}-{secrets.token_hex(4)}",
                symbol=label,
                event=orjson.dumps({"type": "pattern_detected", "data": {"symbol": label}}),
                created_at=now - dt.timedelta(days=days),
            )
            for label, days in ages.items()
        ],
    )
    served = await serve_app(alert_retention_days=30)
    headers = {"Authorization": f"Bearer {await make_token(user)}"}
    async with aiohttp.ClientSession(served.url, headers=headers) as http:

        async def inbox() -> list[str]:
            async with http.get("/api/user/alerts") as response:
                assert response.status == 200
                return [a["symbol"] for a in (await response.json())["data"]]

        async with asyncio.timeout(10):
            while "old" in await inbox():  # noqa: ASYNC110 (polling the API: nothing to wait on)
                await asyncio.sleep(0.1)
        assert await inbox() == ["new", "recent"]
        async with http.get(f"/api/user/alerts/rules/{rule.id}") as response:
            assert (await response.json())["data"]["alerts"] == 2
    matcher = get_hub(served.app).alerts
    assert matcher is not None and matcher.stats.pruned >= 1


async def test_a_deactivated_users_rules_do_not_match(
    served: Any,
    publisher: Publisher,
    conn: asyncpg.Connection,
    make_user: MakeUser,
    announce: Any,
) -> None:
    active, inactive = await make_user(), await make_user()
    symbol = unique_symbol()
    await add_rule(conn, active, announce, fields([symbol]))
    await add_rule(conn, inactive, announce, fields([symbol]))
    await conn.execute("UPDATE users SET active = false WHERE id = $1", inactive.user.id)
    await announce(inactive.user.id)
    await asyncio.sleep(RULE_PROPAGATION_S)
    await publisher.publish(PATTERNS, pattern(symbol))
    await eventually(lambda: select_alerts(conn, active.user.id, limit=10))
    await asyncio.sleep(0.5)
    assert await select_alerts(conn, inactive.user.id, limit=10) == []


async def test_an_indicator_rule_fires_on_the_crossing(publisher: Publisher, armed: Armed) -> None:
    symbol = unique_symbol()
    condition = {"type": "RSI", "op": "crosses_above", "value": 70}
    _, client = await armed(fields([symbol], indicator=condition, cooldown_seconds=0))
    base = 1_795_000_000.0 + secrets.randbelow(1_000_000)
    for index, value in enumerate((72, 65, 69.5, 71, 75, 68, 70.5)):
        await publisher.publish(
            INDICATORS,
            {"symbol": symbol, "indicator": "RSI", "value": value, "timestamp": base + index},
        )
        await publisher.publish(  # another indicator never matches an RSI rule
            INDICATORS,
            {"symbol": symbol, "indicator": "MFI", "value": value, "timestamp": base + index},
        )
    await client.wait_for("alert", 2)
    await client.settle(1.0)
    values = [a["data"]["event"]["data"]["value"] for a in client.events["alert"]]
    # 72 is the first value seen (no crossing without a value before); 65->...->71 and 68->70.5.
    assert values == [71, 70.5]


# --- the index and the matcher alone (no I/O) ---------------------------------------------------


def _rule(rule_id: int, user_id: int, symbols: Any, **extra: Any) -> MatchingRule:
    import datetime as dt

    scope = "watchlist" if symbols == "watchlist" else "all" if symbols == "*" else "list"
    now = dt.datetime.now(dt.UTC)
    rule = Rule(
        id=rule_id,
        user_id=user_id,
        name=f"r{rule_id}",
        scope=scope,
        symbol_list=tuple(symbols) if scope == "list" else (),
        patterns=tuple(extra.get("patterns", ())),
        tiers=tuple(extra.get("tiers", ())),
        min_confidence=extra.get("min_confidence", 0.0),
        indicator=extra.get("indicator"),
        cooldown_seconds=extra.get("cooldown_seconds", 0),
        enabled=True,
        created_at=now,
        updated_at=now,
    )
    return MatchingRule(rule, tuple(extra.get("watchlist", ())))


def test_an_event_looks_only_at_its_symbols_rules_and_the_every_symbol_rules() -> None:
    index = RuleIndex()
    rows = [_rule(i, i % 1000, [f"S{i % 2000}"]) for i in range(10_000)]
    rows += [_rule(20_000, 1, "*"), _rule(20_001, 2, "watchlist", watchlist=("S7", "X"))]
    index.add(rows)
    candidates = index.candidates("pattern", "S7")
    assert sorted(r.id for r in candidates) == [7, 2007, 4007, 6007, 8007, 20_000, 20_001]
    assert [r.id for r in index.candidates("pattern", "NONE")] == [20_000]
    # Reloading one user replaces only that user's rules, wherever they were indexed.
    index.replace([_rule(20_001, 2, "watchlist", watchlist=("Y",))], [2])
    assert 20_001 not in {r.id for r in index.candidates("pattern", "S7")}
    assert 20_001 in {r.id for r in index.candidates("pattern", "Y")}
    assert 2 not in {r.id for r in index.candidates("pattern", "S2")}  # user 2's rule 2 is gone


def test_a_failed_batch_leaves_cooldowns_and_indicator_values_as_they_were() -> None:
    index = RuleIndex()
    condition = {"type": "RSI", "op": "crosses_above", "value": 70}
    index.add([_rule(1, 1, ["A"], cooldown_seconds=60), _rule(2, 1, ["A"], indicator=condition)])
    matcher = Matcher(index)
    event = {"symbol": "A", "pattern": "Breakout", "tier": "daily", "confidence": 0.9}
    rsi = {"symbol": "A", "indicator": "RSI", "tier": "daily"}
    matcher.begin()
    assert matcher.match("indicator_update", {**rsi, "value": 60}, 0) == []
    matcher.commit()
    matcher.begin()
    assert [m.rule.id for m in matcher.match("pattern_detected", event, 10)] == [1]
    assert [m.rule.id for m in matcher.match("indicator_update", {**rsi, "value": 80}, 10)] == [2]
    assert matcher.match("pattern_detected", event, 11) == []  # cooling down within the batch
    matcher.begin()  # the batch's alerts could not be stored: it is matched again afresh
    assert [m.rule.id for m in matcher.match("pattern_detected", event, 12)] == [1]
    assert [m.rule.id for m in matcher.match("indicator_update", {**rsi, "value": 80}, 12)] == [2]
    matcher.commit()
    assert matcher.match("pattern_detected", event, 13) == []
    assert isinstance(index.rules[1], CompiledRule)


@pytest.mark.fault
async def test_alerts_resume_by_themselves_after_redis_restarts(
    serve_app: Any,
    connect: Connect,
    conn: asyncpg.Connection,
    user: UserLogin,
    socket_token: Any,
    private_redis: RedisServer,
) -> None:
    symbol = unique_symbol()
    # Stored before the node starts: it loads every rule when it takes the matcher lease.
    await insert_rule(conn, user.user.id, fields([symbol], cooldown_seconds=0), 100)
    served = await serve_app(redis_url=private_redis.url)
    client = await user_socket(connect, served.url, await socket_token(user))
    publisher = Publisher(private_redis.url)
    try:
        await asyncio.sleep(1.2)  # the matcher takes the lease and loads the rules
        await publisher.publish(PATTERNS, pattern(symbol, "Before"))
        await client.wait_for("alert", 1)
        await private_redis.stop()
        await asyncio.sleep(1.0)
        await private_redis.start()
        await publisher.close()
        publisher = Publisher(private_redis.url)
        # Until the node has reconnected, a message published now reaches nobody: keep sending
        # (a producer does) until one is matched, then check nothing came twice.
        async with asyncio.timeout(20):
            index = 0
            while len(client.events["alert"]) < 2:
                await publisher.publish(PATTERNS, pattern(symbol, f"After{index}"))
                index += 1
                await asyncio.sleep(0.5)
        await client.settle(1.0)
        ids = [a["data"]["id"] for a in client.events["alert"]]
        assert len(ids) == len(set(ids))
        assert client.events["alert"][0]["data"]["event"]["data"]["pattern"] == "Before"
        stored = await select_alerts(conn, user.user.id, limit=50)
        assert sorted(a.id for a in stored) == sorted(ids)
    finally:
        await publisher.close()


@pytest.mark.fault
async def test_an_event_matched_while_postgres_is_away_is_alerted_once_it_is_back(
    private_postgres: Any, serve_app: Any, connect: Connect, publisher: Publisher
) -> None:
    """PostgreSQL stopping delays alerts (the batch cannot be stored, the cursor stays) and
    loses none: once it is back the alert is stored and delivered, once."""
    from tickstock.auth import create_session, ensure_user
    from tickstock.db.migrate import migrate
    from tickstock.dev.seed import seed

    admin = await asyncpg.connect(private_postgres.dsn())
    await admin.execute("CREATE DATABASE tickstock_alerts_fault")
    await admin.close()
    dsn = private_postgres.dsn("tickstock_alerts_fault")
    symbol = unique_symbol()
    conn = await asyncpg.connect(dsn)
    try:
        await migrate(conn)
        await seed(conn, symbols=5, days=2)
        user = await ensure_user(conn, "alerts-" + secrets.token_hex(4), secrets.token_hex(8))
        _, token, _ = await create_session(conn, user.id, "token", lifetime=None)
        await insert_rule(conn, user.id, fields([symbol], cooldown_seconds=0), 100)
    finally:
        await conn.close()
    served = await serve_app(
        database_url=dsn, key_prefix="tstest:alertsfault:" + secrets.token_hex(4)
    )
    client = await connect(served.url, auth={"token": token})
    await asyncio.sleep(RULE_PROPAGATION_S)
    await publisher.publish(PATTERNS, pattern(symbol, "Before"))
    await client.wait_for("alert", 1)

    await private_postgres.stop("fast")  # (this test server does not fsync: a crash loses commits)
    await publisher.publish(PATTERNS, pattern(symbol, "During"))
    await client.settle(2.0)
    assert len(client.events["alert"]) == 1  # matched, but not stored: not sent either
    assert client.client.connected

    await private_postgres.start()
    await client.wait_for("alert", 2, within=20)
    await client.settle(1.0)
    names = [a["data"]["event"]["data"]["pattern"] for a in client.events["alert"]]
    assert names == ["Before", "During"]
    conn = await asyncpg.connect(dsn)
    try:
        stored = await select_alerts(conn, user.id, limit=10)
    finally:
        await conn.close()
    assert sorted(a.id for a in stored) == sorted(a["data"]["id"] for a in client.events["alert"])
