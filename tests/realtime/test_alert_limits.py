"""What one user's rules may cost (issue 25's alert amplification): one alert per user per event
listing the rules that matched, a minimum cooldown, a per-user alert rate that pauses the rules
firing over it, and a bound on each inbox."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import secrets
from typing import Any

import aiohttp
import asyncpg

from tests.realtime.test_alerts import RULE_PROPAGATION_S, Connect, _rule
from tests.support.auth import UserLogin
from tests.support.realtime import PATTERNS, Publisher, pattern, unique_symbol
from tickstock.realtime.alerts import AlertLimits, Matcher, RuleIndex

EVENT = {"pattern": "Breakout", "tier": "daily", "confidence": 0.9}
FREE = AlertLimits(min_cooldown=0, rate_per_minute=1000, pause_seconds=600)


def _match(matcher: Matcher, symbol: str, now: float) -> list[Any]:
    matcher.begin()
    found = matcher.match("pattern_detected", {**EVENT, "symbol": symbol}, now)
    matcher.commit()
    return found


def test_one_alert_per_user_per_event_lists_every_rule_that_matched() -> None:
    index = RuleIndex()
    index.add(
        [_rule(rule_id, 1, "*") for rule_id in (12, 11, 13)]
        + [_rule(21, 2, ["A"]), _rule(22, 2, ["B"])]
    )
    [first, second] = sorted(_match(Matcher(index, FREE), "A", 0), key=lambda m: m.rule.user_id)
    assert (first.rule.id, [r.id for r in first.rules]) == (11, [11, 12, 13])
    assert (second.rule.id, [r.id for r in second.rules]) == (21, [21])


def test_a_rules_cooldown_is_at_least_the_minimum() -> None:
    index = RuleIndex()
    index.add([_rule(1, 1, "*", cooldown_seconds=0)])
    matcher = Matcher(index, AlertLimits(min_cooldown=60, rate_per_minute=1000))
    assert len(_match(matcher, "A", 0)) == 1
    assert _match(matcher, "A", 30) == []
    assert len(_match(matcher, "B", 30)) == 1  # per symbol
    assert len(_match(matcher, "A", 61)) == 1


def test_a_user_over_the_rate_has_the_rules_that_fire_paused() -> None:
    index = RuleIndex()
    index.add([_rule(1, 1, "*"), _rule(2, 1, "*"), _rule(3, 2, ["S5", "X", "Y"])])
    matcher = Matcher(index, AlertLimits(min_cooldown=0, rate_per_minute=3, pause_seconds=600))
    users = [[m.rule.user_id for m in _match(matcher, f"S{n}", n * 0.01)] for n in range(6)]
    # User 1 gets three alerts (each listing both rules), then none; user 2 still gets its own.
    assert users == [[1], [1], [1], [], [], [2]]
    assert sorted(matcher.take_paused()) == [(1, 600.03), (2, 600.03)]
    assert [m.rule.user_id for m in _match(matcher, "X", 300)] == [2]  # still paused
    assert sorted(m.rule.user_id for m in _match(matcher, "Y", 601)) == [1, 2]  # resumed


def test_a_failed_batch_pauses_nothing() -> None:
    index = RuleIndex()
    index.add([_rule(1, 1, "*")])
    matcher = Matcher(index, AlertLimits(min_cooldown=0, rate_per_minute=1, pause_seconds=600))
    matcher.begin()
    assert len(matcher.match("pattern_detected", {**EVENT, "symbol": "A"}, 0)) == 1
    assert matcher.match("pattern_detected", {**EVENT, "symbol": "B"}, 0) == []
    matcher.begin()  # not stored: matched again afresh
    assert len(matcher.match("pattern_detected", {**EVENT, "symbol": "A"}, 0)) == 1
    matcher.commit()
    assert matcher.take_paused() == []


async def test_the_flooding_user_gets_one_alert_per_event_then_paused_rules_and_a_bound_inbox(
    serve_app: Any,
    connect: Connect,
    publisher: Publisher,
    user: UserLogin,
    make_token: Any,
    conn: asyncpg.Connection,
) -> None:
    """Over the API and the wire, the attack of issue 25 in small: many "everything" rules."""
    served = await serve_app(
        alert_min_cooldown_seconds=0, alert_rate_per_user_per_minute=12, alert_inbox_max_per_user=10
    )
    token = await make_token(user)
    name = "Flood" + secrets.token_hex(4)
    async with aiohttp.ClientSession(
        served.url, headers={"Authorization": f"Bearer {token}"}
    ) as http:

        async def call(method: str, path: str, body: Any = None) -> Any:
            async with http.request(method, path, json=body) as response:
                assert response.status < 300, await response.text()
                return await response.json()

        rule_ids = [
            (
                await call(
                    "POST",
                    "/api/user/alerts/rules",
                    {
                        "name": f"everything {n}",
                        "symbols": "*",
                        "patterns": [name],
                        "min_confidence": 0,
                        "cooldown_seconds": 0,
                    },
                )
            )["data"]["id"]
            for n in range(5)
        ]
        client = await connect(served.url, auth={"token": token})
        await asyncio.sleep(RULE_PROPAGATION_S)
        for _ in range(20):
            await publisher.publish(PATTERNS, pattern(unique_symbol(), name))
        alerts = await client.wait_for("alert", 12)
        await client.settle(1.0)
        # One alert per event, naming all five rules; twelve (the rate), then nothing.
        assert len(client.events["alert"]) == 12
        for alert in alerts:
            assert alert["data"]["rule_ids"] == rule_ids
            assert alert["data"]["rule_id"] == rule_ids[0]
            assert alert["data"]["rule_names"] == [f"everything {n}" for n in range(5)]
        # The inbox keeps the newest ten.
        inbox = await call("GET", "/api/user/alerts?limit=100")
        newest = sorted((a["data"]["id"] for a in alerts), reverse=True)[:10]
        assert [a["id"] for a in inbox["data"]] == newest
        # Every rule shows that its alerts are paused; editing one resumes it.
        rules = (await call("GET", "/api/user/alerts/rules"))["data"]
        assert [(r["paused"], r["paused_until"] is not None) for r in rules] == [(True, True)] * 5
        assert [r["alerts"] for r in rules] == [10] * 5  # each listed in every alert kept
        edited = await call("PATCH", f"/api/user/alerts/rules/{rule_ids[0]}", {"name": "again"})
        assert edited["data"]["paused"] is False


def test_a_paused_rule_costs_an_event_nothing_until_its_pause_ends() -> None:
    index = RuleIndex()
    index.add([_rule(rule_id, 1, "*") for rule_id in range(1, 101)] + [_rule(200, 2, ["A"])])
    matcher = Matcher(index, AlertLimits(min_cooldown=0, rate_per_minute=1, pause_seconds=600))
    assert len(index.candidates("pattern", "A")) == 101
    assert len(_match(matcher, "A", 0)) == 2
    assert [m.rule.user_id for m in _match(matcher, "A", 0.01)] == []  # both over the rate
    # The hundred every-symbol rules and the other rule are out of the index while paused...
    assert index.candidates("pattern", "A") == []
    assert _match(matcher, "B", 300) == []
    # ...and back when the pause ends.
    assert sorted(m.rule.user_id for m in _match(matcher, "A", 601)) == [1, 2]
    assert len(index.candidates("pattern", "A")) == 101


def test_rules_loaded_while_paused_wait_out_their_pause() -> None:
    index = RuleIndex()
    until = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=60)
    row = _rule(1, 1, "*")
    index.add([dataclasses.replace(row, rule=dataclasses.replace(row.rule, paused_until=until))])
    assert index.candidates("pattern", "A") == []
    index.wake(until.timestamp() + 1)
    assert [r.id for r in index.candidates("pattern", "A")] == [1]
