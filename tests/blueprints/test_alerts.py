"""Alert rules, the preview and the inbox over the served app: validation, limits, isolation
between users, paging, read state, and the announcements the matcher listens to."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
import asyncpg
import orjson
import pytest
import redis.asyncio as aioredis

from tests.support.auth import MakeToken, MakeUser, UserLogin
from tests.support.realtime import unique_symbol
from tickstock.pagination import encode_cursor
from tickstock.queries.alerts import NewAlert, insert_alerts

MAX_RULES = 4
TABLE_TIERS = ("daily", "intraday", "hourly", "weekly", "monthly", "daily_intraday")


@pytest.fixture(name="settings_overrides")
def _settings_overrides(settings_overrides: dict[str, Any]) -> dict[str, Any]:
    return {**settings_overrides, "alert_max_rules_per_user": MAX_RULES}


@dataclass
class Api:
    """A bearer-token client of the served app: ``status, body = await api("GET", path)``."""

    http: aiohttp.ClientSession
    url: str
    user: UserLogin

    async def __call__(
        self, method: str, path: str, body: Any = None, **params: Any
    ) -> tuple[int, Any]:
        async with self.http.request(
            method, f"{self.url}{path}", json=body, params=params or None
        ) as response:
            return response.status, await response.json()


ApiFor = Callable[..., Awaitable[Api]]


@pytest.fixture(name="api_for")
async def _api_for(
    served: Any, make_user: MakeUser, make_token: MakeToken
) -> AsyncIterator[ApiFor]:
    opened: list[aiohttp.ClientSession] = []

    async def api_for(user: UserLogin | None = None) -> Api:
        user = user or await make_user()
        token = await make_token(user)
        http = aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"})
        opened.append(http)
        return Api(http, served.url, user)

    yield api_for
    for http in opened:
        await http.close()


def rule(**fields: Any) -> dict[str, Any]:
    return {"name": "Breakouts", "symbols": ["AAPL", "msft"], **fields}


async def create(api: Api, **fields: Any) -> dict[str, Any]:
    status, body = await api("POST", "/api/user/alerts/rules", rule(**fields))
    assert status == 201, body
    data: dict[str, Any] = body["data"]
    return data


# --- rules ---------------------------------------------------------------------------------------


async def test_rule_crud_round_trip(api_for: ApiFor) -> None:
    api = await api_for()
    status, body = await api("GET", "/api/user/alerts/rules")
    assert (status, body["data"], body["meta"]) == (200, [], {"count": 0, "max": MAX_RULES})

    created = await create(
        api,
        name="  Strong breakouts ",
        patterns=["Bull Flag", "breakout"],
        tiers=["daily", "intraday", "daily"],
        min_confidence=0.8,
        cooldown_seconds=600,
    )
    assert created["name"] == "Strong breakouts"
    assert created["symbols"] == ["AAPL", "MSFT"]
    assert created["patterns"] == ["Bull Flag", "breakout"]
    assert created["tiers"] == ["daily", "intraday"]
    assert (created["min_confidence"], created["cooldown_seconds"]) == (0.8, 600)
    assert created["indicator"] is None and created["enabled"] is True
    assert created["created_at"].endswith("Z") and created["updated_at"].endswith("Z")
    path = f"/api/user/alerts/rules/{created['id']}"

    status, body = await api("GET", path)
    assert (status, body["data"]) == (200, created)

    # PATCH: a subset; the rest stays. An indicator needs the patterns emptied with it.
    status, body = await api(
        "PATCH",
        path,
        {"patterns": [], "indicator": {"type": "RSI", "op": "crosses_above", "value": 70}},
    )
    assert status == 200, body
    patched = body["data"]
    assert patched["indicator"] == {"type": "RSI", "op": "crosses_above", "value": 70.0}
    assert patched["patterns"] == [] and patched["name"] == "Strong breakouts"
    assert patched["tiers"] == ["daily", "intraday"] and patched["min_confidence"] == 0.8
    assert patched["updated_at"] >= created["updated_at"]
    status, body = await api("PATCH", path, {"indicator": None, "symbols": "watchlist"})
    assert status == 200, body
    assert body["data"]["indicator"] is None and body["data"]["symbols"] == "watchlist"
    status, body = await api("PATCH", path, {"symbols": "*", "enabled": False})
    assert (body["data"]["symbols"], body["data"]["enabled"]) == ("*", False)

    other = await create(api, name="Second")
    status, body = await api("GET", "/api/user/alerts/rules")
    assert [r["id"] for r in body["data"]] == [created["id"], other["id"]]
    assert body["meta"]["count"] == 2
    assert body["data"][0]["symbols"] == "*" and body["data"][0]["enabled"] is False

    status, body = await api("DELETE", path)
    assert (status, body["data"]) == (200, {"id": created["id"], "deleted": True})
    for method in ("GET", "PATCH", "DELETE"):
        status, body = await api(method, path, {} if method == "PATCH" else None)
        assert (status, body["code"]) == (404, "rule_not_found"), method
    status, body = await api("GET", "/api/user/alerts/rules")
    assert [r["id"] for r in body["data"]] == [other["id"]]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"name": ""}, "name: "),
        ({"name": "   "}, "name: "),
        ({"name": "x" * 101}, "name: "),
        ({"name": None}, "name: "),
        ({"symbols": []}, "symbols: "),
        ({"symbols": "everything"}, "symbols: "),
        ({"symbols": ["AAPL", "bad symbol!"]}, "symbols: invalid symbol(s) 'bad symbol!'"),
        ({"symbols": [f"S{i}" for i in range(201)]}, "symbols: at most 200 symbols"),
        ({"tiers": ["yearly"]}, "tiers.0: "),
        ({"min_confidence": 1.5}, "min_confidence: "),
        ({"min_confidence": -0.1}, "min_confidence: "),
        ({"min_confidence": "0.5"}, "min_confidence: "),
        ({"indicator": {"type": "RSI", "op": "over", "value": 70}}, "indicator.op: "),
        ({"indicator": {"type": "", "op": "above", "value": 70}}, "indicator.type: "),
        ({"indicator": {"type": "RSI", "op": "above"}}, "indicator.value: "),
        ({"cooldown_seconds": -1}, "cooldown_seconds: "),
        ({"cooldown_seconds": 86_401}, "cooldown_seconds: "),
        ({"patterns": ["x" * 101]}, "patterns.0: "),
        ({"patterns": [f"p{i}" for i in range(51)]}, "patterns: "),
        (
            {"patterns": ["Breakout"], "indicator": {"type": "RSI", "op": "above", "value": 70}},
            "patterns: must be empty for a rule with an indicator",
        ),
        ({"user_id": 1}, "user_id: Extra inputs are not permitted"),
        ({"enabled": "yes"}, "enabled: "),
    ],
)
async def test_validation_names_the_field(
    api_for: ApiFor, fields: dict[str, Any], message: str
) -> None:
    api = await api_for()
    status, body = await api("POST", "/api/user/alerts/rules", rule(**fields))
    assert (status, body["code"]) == (400, "validation_error"), body
    assert body["message"].startswith(message), body["message"]
    # The same rules hold for a PATCH (merged with the stored rule) and for a preview.
    created = await create(api)
    status, body = await api("PATCH", f"/api/user/alerts/rules/{created['id']}", fields)
    assert status == 400 and body["message"].startswith(message), body
    status, body = await api("GET", f"/api/user/alerts/rules/{created['id']}")
    assert body["data"] == created
    if "name" not in fields:
        status, body = await api("POST", "/api/user/alerts/rules/preview", rule(**fields))
        assert status == 400 and body["message"].startswith(message), body
    status, body = await api("GET", "/api/user/alerts/rules")
    assert body["meta"]["count"] == 1


async def test_required_fields_and_unknown_symbols(api_for: ApiFor) -> None:
    api = await api_for()
    status, body = await api("POST", "/api/user/alerts/rules", {"symbols": "*"})
    assert (status, body["message"]) == (400, "name: Field required")
    status, body = await api("POST", "/api/user/alerts/rules", {"name": "x"})
    assert (status, body["message"]) == (400, "symbols: Field required")

    status, body = await api(
        "POST", "/api/user/alerts/rules", rule(symbols=["AAPL", "NOPE1", "zzzz9"])
    )
    assert (status, body["code"], body["unknown"]) == (400, "unknown_symbols", ["NOPE1", "ZZZZ9"])
    assert "NOPE1, ZZZZ9" in body["message"]
    created = await create(api)
    path = f"/api/user/alerts/rules/{created['id']}"
    status, body = await api("PATCH", path, {"symbols": ["NOPE1"]})
    assert (status, body["code"]) == (400, "unknown_symbols")
    status, body = await api("GET", "/api/user/alerts/rules")
    assert body["data"] == [created]
    # A rule with an indicator is created whole, patterns empty.
    indicator = {"type": "RSI", "op": "below", "value": 30}
    made = await create(api, symbols="watchlist", indicator=indicator)
    assert made["indicator"] == {"type": "RSI", "op": "below", "value": 30.0}
    # PATCHing patterns onto it is the same 400 as creating it so.
    status, body = await api("PATCH", f"/api/user/alerts/rules/{made['id']}", {"patterns": ["x"]})
    assert status == 400 and body["message"].startswith("patterns: "), body


async def test_rule_limit(api_for: ApiFor) -> None:
    api = await api_for()
    made = [await create(api, name=f"rule {i}") for i in range(MAX_RULES)]
    status, body = await api("POST", "/api/user/alerts/rules", rule(name="one too many"))
    assert (status, body["code"]) == (409, "rule_limit_reached")
    assert str(MAX_RULES) in body["message"]
    status, body = await api("GET", "/api/user/alerts/rules")
    assert body["meta"] == {"count": MAX_RULES, "max": MAX_RULES}
    # Another user has their own allowance; deleting one makes room again.
    await create(await api_for(), name="someone else's")
    await api("DELETE", f"/api/user/alerts/rules/{made[0]['id']}")
    await create(api, name="fits again")
    # Concurrent creates cannot pass the limit together: with room for one, one succeeds.
    await api("DELETE", f"/api/user/alerts/rules/{made[1]['id']}")
    results = await asyncio.gather(
        *(api("POST", "/api/user/alerts/rules", rule(name=f"race {i}")) for i in range(3))
    )
    assert sorted(status for status, _ in results) == [201, 409, 409]
    status, body = await api("GET", "/api/user/alerts/rules")
    assert body["meta"]["count"] == MAX_RULES


# --- the inbox -----------------------------------------------------------------------------------


async def store_alerts(
    conn: asyncpg.Connection, user: UserLogin, rule: dict[str, Any], symbols: list[str]
) -> list[int]:
    """One alert per symbol, as the matcher stores them; their ids, oldest first."""
    now = dt.datetime.now(dt.UTC)
    alerts = [
        NewAlert(
            user_id=user.id,
            rule_id=rule["id"],
            rule_name=rule["name"],
            event_id=f"test-{uuid.uuid4().hex}",
            symbol=symbol,
            event=orjson.dumps({"type": "pattern_detected", "data": {"symbol": symbol, "n": i}}),
            created_at=now + dt.timedelta(milliseconds=i),
        )
        for i, symbol in enumerate(symbols)
    ]
    stored = await insert_alerts(conn, alerts)
    assert len(stored) == len(alerts)
    return sorted(row.id for _, row in stored)


async def walk(api: Api, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(100):
        query = {**params, **({"cursor": cursor} if cursor else {})}
        status, body = await api("GET", "/api/user/alerts", **query)
        assert status == 200, body
        assert body["meta"]["count"] == len(body["data"]) <= body["meta"]["limit"]
        items += body["data"]
        cursor = body["meta"]["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("pagination did not end")


async def unread_in_me(api: Api) -> int:
    status, body = await api("GET", "/api/auth/me")
    assert status == 200
    count: int = body["meta"]["unread_alerts"]
    return count


async def test_inbox_pages_filters_and_read_state(
    api_for: ApiFor, conn: asyncpg.Connection
) -> None:
    api = await api_for()
    assert await unread_in_me(api) == 0
    first = await create(api, name="first")
    second = await create(api, name="second", symbols="*")
    ids_first = await store_alerts(conn, api.user, first, ["AAPL", "MSFT"] * 6)
    ids_second = await store_alerts(conn, api.user, second, ["NVDA", "AAPL", "TSLA"] * 3)
    every = sorted(ids_first + ids_second, reverse=True)

    # Each rule tells how often it fired and when it last did; a new one has not.
    third = await create(api, name="third")
    assert (third["alerts"], third["last_alert_at"]) == (0, None)
    status, body = await api("GET", "/api/user/alerts/rules")
    fired = {r["name"]: (r["alerts"], r["last_alert_at"]) for r in body["data"]}
    last = {
        rid: (await walk(api, rule_id=rid))[0]["created_at"] for rid in (first["id"], second["id"])
    }
    assert fired == {
        "first": (12, last[first["id"]]),
        "second": (9, last[second["id"]]),
        "third": (0, None),
    }
    status, body = await api("PATCH", f"/api/user/alerts/rules/{second['id']}", {"enabled": False})
    assert (body["data"]["alerts"], body["data"]["enabled"]) == (9, False)
    status, body = await api("GET", f"/api/user/alerts/rules/{first['id']}")
    assert body["data"]["alerts"] == 12
    await api("DELETE", f"/api/user/alerts/rules/{third['id']}")

    for limit in (1, 4, 7, 21, 500):
        items = await walk(api, limit=limit)
        assert [a["id"] for a in items] == every, limit  # no gaps, no duplicates, newest first
    status, body = await api("GET", "/api/user/alerts")
    assert body["meta"] == {"count": 21, "next_cursor": None, "limit": 50, "unread": 21}
    alert = body["data"][0]
    assert set(alert) == {
        "id",
        "rule_id",
        "rule_name",
        "rule_ids",
        "rule_names",
        "symbol",
        "event",
        "created_at",
        "read_at",
    }
    assert (alert["rule_id"], alert["rule_name"], alert["read_at"]) == (
        second["id"],
        "second",
        None,
    )
    assert (alert["rule_ids"], alert["rule_names"]) == ([second["id"]], ["second"])
    assert alert["event"]["type"] == "pattern_detected"
    status, body = await api("GET", f"/api/user/alerts/{alert['id']}")
    assert (status, body["data"]) == (200, alert)

    by_rule = await walk(api, rule_id=first["id"], limit=5)
    assert [a["id"] for a in by_rule] == sorted(ids_first, reverse=True)
    aapl = await walk(api, symbol="aapl", limit=3)
    assert {a["symbol"] for a in aapl} == {"AAPL"} and len(aapl) == 6 + 3
    both = await walk(api, symbol="AAPL", rule_id=second["id"])
    assert len(both) == 3

    # Mark some read by id: only those change; unread counts follow everywhere.
    chosen = [ids_first[0], ids_first[1], ids_second[-1]]
    status, body = await api("POST", "/api/user/alerts/read", {"ids": [*chosen, chosen[0]]})
    assert (status, body["data"]) == (200, {"marked": sorted(chosen), "unread": 18})
    status, body = await api("POST", "/api/user/alerts/read", {"ids": chosen})
    assert body["data"] == {"marked": [], "unread": 18}  # already read: nothing newly marked
    assert await unread_in_me(api) == 18
    unread = await walk(api, unread="true", limit=4)
    assert [a["id"] for a in unread] == [i for i in every if i not in chosen]
    status, body = await api("GET", f"/api/user/alerts/{chosen[0]}")
    assert body["data"]["read_at"].endswith("Z")
    status, body = await api("GET", "/api/user/alerts", unread="true", limit=2)
    assert body["meta"]["unread"] == 18 and body["meta"]["count"] == 2

    status, body = await api("POST", "/api/user/alerts/read", {"all": True})
    assert status == 200 and sorted(body["data"]["marked"]) == sorted(set(every) - set(chosen))
    assert body["data"]["unread"] == 0
    assert await unread_in_me(api) == 0
    assert await walk(api, unread="true") == []

    # Alerts outlive their rule (rule_id becomes null, the name stays).
    await api("DELETE", f"/api/user/alerts/rules/{first['id']}")
    status, body = await api("GET", f"/api/user/alerts/{ids_first[0]}")
    assert (body["data"]["rule_id"], body["data"]["rule_name"]) == (None, "first")


async def test_inbox_unread_first_pages_through_every_alert_once(
    api_for: ApiFor, conn: asyncpg.Connection
) -> None:
    api = await api_for()
    first = await create(api, name="first")
    second = await create(api, name="second", symbols="*")
    ids = sorted(
        await store_alerts(conn, api.user, first, ["AAPL", "MSFT"] * 5)
        + await store_alerts(conn, api.user, second, ["NVDA", "AAPL", "TSLA"] * 3)
    )
    # Read ones scattered among the unread: the oldest, the newest and some between.
    read = {ids[0], ids[3], ids[4], ids[10], ids[17], ids[-1]}
    status, body = await api("POST", "/api/user/alerts/read", {"ids": sorted(read)})
    assert status == 200 and body["data"]["unread"] == len(ids) - len(read)
    unread_newest = [i for i in reversed(ids) if i not in read]
    read_newest = [i for i in reversed(ids) if i in read]

    for limit in (1, 2, 5, 13, 18, 50):
        items = await walk(api, order="unread_first", limit=limit)
        # No gaps, no duplicates: every unread one newest first, then every read one.
        assert [a["id"] for a in items] == unread_newest + read_newest, limit
        unread_flags = [a["read_at"] is None for a in items]
        assert unread_flags == sorted(unread_flags, reverse=True), limit
    # The default order is unchanged: newest first, read or not.
    assert [a["id"] for a in await walk(api, limit=4)] == list(reversed(ids))
    # With the filters.
    items = await walk(api, order="unread_first", rule_id=second["id"], limit=2)
    assert [a["id"] for a in items] == [
        i for i in unread_newest + read_newest if i in {a["id"] for a in items}
    ]
    assert {a["rule_id"] for a in items} == {second["id"]} and len(items) == 9
    items = await walk(api, order="unread_first", unread="true", limit=3)
    assert [a["id"] for a in items] == unread_newest

    # A cursor belongs to its order.
    status, body = await api("GET", "/api/user/alerts", order="unread_first", limit=2)
    unread_first_cursor = body["meta"]["next_cursor"]
    status, body = await api("GET", "/api/user/alerts", limit=2)
    newest_cursor = body["meta"]["next_cursor"]
    for order, cursor in (("newest", unread_first_cursor), ("unread_first", newest_cursor)):
        status, body = await api("GET", "/api/user/alerts", order=order, cursor=cursor)
        assert (status, body["code"]) == (400, "invalid_cursor"), order
    forged = encode_cursor([2, ids[-1]])
    status, body = await api("GET", "/api/user/alerts", order="unread_first", cursor=forged)
    assert (status, body["code"]) == (400, "invalid_cursor")


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 501}, "limit"),
        ({"rule_id": "x"}, "rule_id"),
        ({"symbol": "bad symbol"}, "symbol"),
        ({"unread": "maybe"}, "unread"),
        ({"order": "oldest"}, "order"),
        ({"colour": "red"}, "colour"),
    ],
)
async def test_inbox_query_validation(api_for: ApiFor, params: dict[str, Any], field: str) -> None:
    api = await api_for()
    status, body = await api("GET", "/api/user/alerts", **params)
    assert (status, body["code"]) == (400, "validation_error")
    assert body["message"].startswith(f"{field}: "), body["message"]
    status, body = await api("GET", "/api/user/alerts", cursor="not-a-cursor")
    assert (status, body["code"]) == (400, "invalid_cursor")


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "ids"),
        ({"ids": [1], "all": True}, "ids"),
        ({"all": False}, "all"),
        ({"ids": []}, "ids"),
        ({"ids": [0]}, "ids.0"),
        ({"ids": ["1"]}, "ids.0"),
        ({"ids": list(range(1, 502))}, "ids"),
        ({"all": True, "everything": True}, "everything"),
    ],
)
async def test_read_validation(api_for: ApiFor, payload: dict[str, Any], field: str) -> None:
    api = await api_for()
    status, body = await api("POST", "/api/user/alerts/read", payload)
    assert (status, body["code"]) == (400, "validation_error")
    assert body["message"].startswith(f"{field}: "), body["message"]


async def test_another_users_ids_are_not_found(api_for: ApiFor, conn: asyncpg.Connection) -> None:
    alice = await api_for()
    bob = await api_for()
    rule_a = await create(alice, name="alice's", symbols="*")
    alerts_a = await store_alerts(conn, alice.user, rule_a, ["AAPL", "MSFT", "NVDA"])
    rule_b = await create(bob, name="bob's")
    alerts_b = await store_alerts(conn, bob.user, rule_b, ["AAPL"])
    status, before = await alice("GET", "/api/user/alerts/rules")

    path = f"/api/user/alerts/rules/{rule_a['id']}"
    for method, body in (("GET", None), ("PATCH", {"name": "mine now"}), ("DELETE", None)):
        status, answer = await bob(method, path, body)
        assert (status, answer["code"]) == (404, "rule_not_found"), method
    status, answer = await bob("GET", f"/api/user/alerts/{alerts_a[0]}")
    assert (status, answer["code"]) == (404, "alert_not_found")
    for payload in ({"ids": [alerts_a[0]]}, {"ids": [alerts_b[0], alerts_a[1]]}):
        status, answer = await bob("POST", "/api/user/alerts/read", payload)
        assert (status, answer["code"]) == (404, "alert_not_found")
    # Nothing was marked: not alice's alert, and not bob's own one sent along with it.
    status, answer = await bob("GET", f"/api/user/alerts/{alerts_b[0]}")
    assert answer["data"]["read_at"] is None
    status, answer = await bob("POST", "/api/user/alerts/read", {"all": True})
    assert answer["data"] == {"marked": alerts_b, "unread": 0}
    # Filters naming alice's rule find nothing of hers.
    assert await walk(bob, rule_id=rule_a["id"]) == []
    assert [a["id"] for a in await walk(bob)] == alerts_b
    status, answer = await bob("GET", "/api/user/alerts/rules")
    assert [r["id"] for r in answer["data"]] == [rule_b["id"]] and answer["meta"]["count"] == 1
    # Alice's data is as it was.
    status, after = await alice("GET", "/api/user/alerts/rules")
    assert after == before
    assert [a["id"] for a in await walk(alice, unread="true")] == alerts_a[::-1]
    assert await unread_in_me(alice) == 3
    # Ids beyond bigint name nothing either.
    status, answer = await bob("GET", f"/api/user/alerts/rules/{2**63}")
    assert status == 404


async def test_requires_login(served: Any) -> None:
    async with aiohttp.ClientSession() as http:
        for method, path in (
            ("GET", "/api/user/alerts/rules"),
            ("POST", "/api/user/alerts/rules"),
            ("POST", "/api/user/alerts/rules/preview"),
            ("GET", "/api/user/alerts/rules/1"),
            ("PATCH", "/api/user/alerts/rules/1"),
            ("DELETE", "/api/user/alerts/rules/1"),
            ("GET", "/api/user/alerts"),
            ("GET", "/api/user/alerts/1"),
            ("POST", "/api/user/alerts/read"),
        ):
            async with http.request(method, f"{served.url}{path}", json={"all": True}) as response:
                assert response.status == 401, (method, path)


# --- announcements -------------------------------------------------------------------------------


async def test_changes_are_announced(
    api_for: ApiFor, redis_url: str, settings_overrides: dict[str, Any]
) -> None:
    api = await api_for()
    client = aioredis.Redis.from_url(redis_url)
    pubsub = client.pubsub()
    await pubsub.subscribe(f"{settings_overrides['key_prefix']}:alerts:rules")

    async def next_announcement() -> str:
        async def read() -> str:
            while True:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1)
                if message is not None:
                    data: bytes = message["data"]
                    return data.decode()

        return await asyncio.wait_for(read(), 5)

    try:
        user = str(api.user.id)
        made = await create(api)
        assert await next_announcement() == user
        path = f"/api/user/alerts/rules/{made['id']}"
        status, _ = await api("PATCH", path, {"enabled": False})
        assert status == 200 and await next_announcement() == user
        status, _ = await api("DELETE", path)
        assert status == 200 and await next_announcement() == user
        status, _ = await api("PUT", "/api/user/watchlist", {"symbols": ["AAPL"]})
        assert status == 200 and await next_announcement() == user
        # Refused changes announce nothing.
        await api("POST", "/api/user/alerts/rules", rule(name=""))
        await api("PATCH", path, {"name": "gone"})
        await api("PUT", "/api/user/watchlist", {"symbols": ["NOPE1"]})
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(next_announcement(), 0.5)
    finally:
        await pubsub.aclose()
        await client.aclose()


# --- the preview ---------------------------------------------------------------------------------


PRODUCER_TABLES = (
    *(f"{tier}_patterns" for tier in TABLE_TIERS),
    "pattern_detections",
    "daily_indicators",
    "intraday_indicators",
    "symbols",
)


@pytest.fixture(name="add_symbol")
async def _add_symbol(conn: asyncpg.Connection) -> AsyncIterator[Callable[[], Awaitable[str]]]:
    """Factory of symbols of a test's own; their rows in the producer's tables are deleted
    afterwards, so the suites that check the seeded data as a whole never see them."""
    added: list[str] = []

    async def add() -> str:
        symbol = unique_symbol()
        await conn.execute(
            "INSERT INTO symbols (symbol, name, sector) VALUES ($1, $2, 'Technology')",
            symbol,
            f"{symbol} test company",
        )
        added.append(symbol)
        return symbol

    yield add
    for table in PRODUCER_TABLES:
        await conn.execute(f"DELETE FROM {table} WHERE symbol = ANY($1::text[])", added)


async def history(conn: asyncpg.Connection) -> list[tuple[str, str, str, float, dt.datetime]]:
    """Every stored detection as (tier, symbol, pattern, confidence, time)."""
    rows: list[tuple[str, str, str, float, dt.datetime]] = []
    for tier in TABLE_TIERS:
        for r in await conn.fetch(
            f"SELECT symbol, pattern_type, confidence, detection_timestamp FROM {tier}_patterns"
        ):
            rows.append((tier, r[0], r[1], r[2], r[3]))
    for r in await conn.fetch(
        "SELECT d.symbol, p.name, d.confidence, d.detected_at FROM pattern_detections d"
        " JOIN pattern_definitions p ON p.id = d.pattern_id"
    ):
        rows.append(("combo", r[0], r[1], r[2], r[3]))
    return rows


def expected(
    rows: list[tuple[str, str, str, float, dt.datetime]],
    since: dt.datetime,
    symbols: list[str] | None,
    patterns: Sequence[str] = (),
    tiers: Sequence[str] = (),
    min_confidence: float = 0.0,
) -> int:
    wanted = {p.lower() for p in patterns}
    return sum(
        1
        for tier, symbol, pattern, confidence, at in rows
        if at >= since
        and (symbols is None or symbol in symbols)
        and (not wanted or pattern.lower() in wanted)
        and (not tiers or tier in tiers)
        and confidence >= min_confidence
    )


async def preview(api: Api, **fields: Any) -> tuple[int, dt.datetime]:
    status, body = await api("POST", "/api/user/alerts/rules/preview", fields)
    assert status == 200, body
    assert body["data"]["days"] == 30
    since = dt.datetime.fromisoformat(body["data"]["since"])
    now = dt.datetime.now(dt.UTC)
    assert dt.timedelta(days=30) <= now - since < dt.timedelta(days=30, minutes=1)
    matches: int = body["data"]["matches"]
    return matches, since


async def test_preview_counts_pattern_history(
    api_for: ApiFor, conn: asyncpg.Connection, add_symbol: Callable[[], Awaitable[str]]
) -> None:
    one, two = await add_symbol(), await add_symbol()
    now = dt.datetime.now(dt.UTC)
    definition = await conn.fetchrow("SELECT id, name FROM pattern_definitions LIMIT 1")
    assert definition is not None
    for i, (tier, symbol, pattern, confidence, days_ago) in enumerate(
        [
            ("daily", one, "Bull Flag", 0.9, 1),
            ("daily", one, "bull flag", 0.6, 2),
            ("daily", one, "Bull Flag", 0.95, 31),  # before the window
            ("intraday", one, "Breakout", 0.85, 0.1),
            ("hourly", two, "BULL FLAG", 0.7, 5),
            ("weekly", two, "Cup", 0.99, 20),
            ("monthly", one, "Cup", 0.5, 29.9),
            ("daily_intraday", two, "Breakout", 0.8, 3),
        ]
    ):
        await conn.execute(
            f"INSERT INTO {tier}_patterns (symbol, pattern_type, confidence, detection_timestamp)"
            " VALUES ($1, $2, $3, $4)",
            symbol,
            pattern,
            confidence,
            now - dt.timedelta(days=days_ago, seconds=i),
        )
    await conn.execute(
        "INSERT INTO pattern_detections (pattern_id, symbol, detected_at, confidence)"
        " VALUES ($1, $2, $3, 0.88), ($1, $2, $4, 0.88)",
        definition["id"],
        two,
        now - dt.timedelta(days=4),
        now - dt.timedelta(days=40),
    )

    api = await api_for()
    status, _ = await api("PUT", "/api/user/watchlist", {"symbols": [two, "AAPL"]})
    assert status == 200
    cases: list[dict[str, Any]] = [
        {"symbols": [one]},
        {"symbols": [one, two]},
        {"symbols": [one, two], "patterns": ["bull FLAG"]},
        {"symbols": [one], "patterns": ["Bull Flag"], "min_confidence": 0.8},
        {"symbols": [one, two], "tiers": ["daily", "hourly", "combo"]},
        {"symbols": [two], "patterns": [definition["name"].upper()], "tiers": ["combo"]},
        {"symbols": [one, two], "patterns": ["Breakout", "Cup"], "min_confidence": 0.81},
        {"symbols": "watchlist"},
        {"symbols": "watchlist", "patterns": ["bull flag"], "tiers": ["hourly"]},
        {"symbols": "*"},
        {"symbols": "*", "patterns": ["Bull Flag"], "min_confidence": 0.7},
        {"symbols": "*", "tiers": ["combo", "weekly"], "min_confidence": 0.5},
    ]
    rows = await history(conn)
    for case in cases:
        matches, since = await preview(api, **case)
        symbols = case["symbols"]
        resolved = None if symbols == "*" else [two, "AAPL"] if symbols == "watchlist" else symbols
        want = expected(
            rows,
            since,
            resolved,
            case.get("patterns", []),
            case.get("tiers", []),
            case.get("min_confidence", 0.0),
        )
        assert matches == want, case
    # The inserted rows themselves, counted by hand.
    assert (await preview(api, symbols=[one]))[0] == 4
    assert (await preview(api, symbols=[one, two], patterns=["bull flag"]))[0] == 3
    assert (await preview(api, symbols=[two], tiers=["combo"]))[0] == 1
    # An empty watchlist matches nothing.
    other = await api_for()
    assert (await preview(other, symbols="watchlist"))[0] == 0


async def test_preview_counts_indicator_history(
    api_for: ApiFor, conn: asyncpg.Connection, add_symbol: Callable[[], Awaitable[str]]
) -> None:
    one, two = await add_symbol(), await add_symbol()
    now = dt.datetime.now(dt.UTC)
    # (table, symbol, type, value, days ago): a series per symbol and table, one point before the
    # window (so the first point inside it can cross), one value that is not a number.
    points: list[tuple[str, str, str, Any, float]] = [
        ("daily", one, "RSI", 75, 35),
        ("daily", one, "RSI", 65, 25),
        ("daily", one, "RSI", 71, 20),
        ("daily", one, "RSI", 70, 15),
        ("daily", one, "RSI", 80, 10),
        ("daily", one, "rsi", 60, 5),
        ("daily", one, "RSI", "n/a", 4),
        ("daily", one, "RSI", 72, 3),
        ("daily", one, "MACD", 90, 3),
        ("daily", two, "RSI", 50, 31),
        ("daily", two, "RSI", 75, 29),
        ("intraday", one, "RSI", 69, 0.5),
        ("intraday", one, "RSI", 71, 0.4),
        ("intraday", one, "RSI", 68, 0.3),
    ]
    for i, (table, symbol, kind, value, days_ago) in enumerate(points):
        await conn.execute(
            f"INSERT INTO {table}_indicators (symbol, indicator_type, value_data,"
            " calculation_timestamp) VALUES ($1, $2, $3::jsonb, $4)",
            symbol,
            kind,
            orjson.dumps({"value": value}).decode(),
            now - dt.timedelta(days=days_ago, seconds=i),
        )

    def count(
        op: str, threshold: float, symbols: list[str], since: dt.datetime, tiers: list[str]
    ) -> int:
        total = 0
        for table in ("daily", "intraday"):
            if tiers and table not in tiers:
                continue
            for symbol in symbols:
                series = sorted(
                    (now - dt.timedelta(days=d, seconds=i), v)
                    for i, (t, s, k, v, d) in enumerate(points)
                    if t == table and s == symbol and k.lower() == "rsi" and isinstance(v, int)
                )
                previous = None
                for at, value in series:
                    hit = {
                        "above": value > threshold,
                        "below": value < threshold,
                        "crosses_above": previous is not None and previous <= threshold < value,
                        "crosses_below": previous is not None and previous >= threshold > value,
                    }[op]
                    total += hit and at >= since
                    previous = value
        return total

    api = await api_for()
    for op in ("above", "below", "crosses_above", "crosses_below"):
        for symbols, tiers in (([one], []), ([one, two], []), ([one], ["intraday"])):
            indicator = {"type": "Rsi", "op": op, "value": 70}
            matches, since = await preview(api, symbols=symbols, tiers=tiers, indicator=indicator)
            assert matches == count(op, 70, symbols, since, tiers), (op, symbols, tiers)
    # By hand: one's daily RSI crosses above 70 at 71 (from 65), 80 (from 70) and 72 (from 60);
    # intraday once (69 -> 71); two's at 75 (from 50, before the window).
    crossing = {"type": "RSI", "op": "crosses_above", "value": 70}
    assert (await preview(api, symbols=[one, two], indicator=crossing))[0] == 5
    # Pattern tiers only: no indicator table is read.
    assert (await preview(api, symbols=[one], tiers=["weekly"], indicator=crossing))[0] == 0
    assert (await preview(api, symbols=[one], indicator={**crossing, "type": "ATR"}))[0] == 0
