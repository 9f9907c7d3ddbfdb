"""`tickstock bench alerts` at tiny scale against a served app: its figures and its accounting."""

from __future__ import annotations

import secrets
from typing import Any

import asyncpg
import pytest

from tickstock.bench.alerts import (
    AlertsConfig,
    format_report,
    plan_events,
    plan_user,
    run_alerts_bench,
    universe_symbols,
)


def test_the_workload_is_a_deterministic_mix_of_rules() -> None:
    config = AlertsConfig(url="", database_url="", users=100, universe=200)
    universe = universe_symbols(config.universe)
    users = [plan_user(config, i, "p-", universe) for i in range(config.users)]
    assert users == [plan_user(config, i, "p-", universe) for i in range(config.users)]
    rules = [rule for user in users for rule in user.rules]
    assert len(rules) == config.users * config.rules_per_user
    scopes = [rule.columns()[0] for rule in rules]
    assert scopes.count("watchlist") == config.users
    assert scopes.count("all") == 2  # one user in fifty
    indicator = [rule for rule in rules if rule.indicator]
    assert len(indicator) == 20  # one user in five
    assert scopes.count("list") == len(rules) - config.users - 2
    # Every "*" rule is narrowed; every rule cools down within seconds so that alerts flow.
    assert all(r.patterns and r.min_confidence >= 0.9 for r in rules if r.columns()[0] == "all")
    assert all(0 <= rule.cooldown_seconds <= 5 for rule in rules)
    events = plan_events(config, "run", universe)
    assert len(events) == int((config.warmup + config.duration) * config.rate)
    assert len({message["event_id"] for _, message in events}) == len(events)
    indicators = sum(1 for _, message in events if "indicator" in message)
    assert 0.05 < indicators / len(events) < 0.15


@pytest.mark.ops
async def test_tiny_alerts_run_delivers_every_stored_alert_once(
    serve_app: Any, database_url: str, redis_url: str, key_prefix: str
) -> None:
    # Channels of its own: other producers' events stay out, and ours out of other servers.
    channels = f"tsbench{secrets.token_hex(4)}"
    patterns, indicators = f"{channels}.patterns", f"{channels}.indicators"
    served = await serve_app(ingest_channels=[patterns, indicators])
    config = AlertsConfig(
        url=served.url,
        database_url=database_url,
        redis_url=redis_url,
        key_prefix=key_prefix,
        users=20,
        rules_per_user=5,
        universe=60,
        sockets=10,
        sockets_per_user=2,
        rate=50,
        duration=3.0,
        warmup=0.5,
        grace=2.0,
        pattern_channel=patterns,
        indicator_channel=indicators,
    )
    result = await run_alerts_bench(config)
    assert result["rules"] == 100
    assert sum(result["rule_mix"].values()) == 100
    assert result["connected"] == result["sockets"] == 20 and result["failed"] == 0
    assert result["published_window"] == 150
    # The server matched every event of the window, and its timing samples are there.
    assert result["matched_events_window"] >= result["published_window"]
    assert result["match_us_samples"] >= result["published_window"]
    assert 0 < result["match_us_p50"] <= result["match_us_p99"]
    assert 0 < result["replay_match_us_p50"] <= result["replay_match_us_p99"]
    assert result["expected_alerts_window"] > 0
    assert result["alerts_window"] > 0 and result["alerts_per_s"] > 0
    # Every alert stored for a connected user reached each of its two sockets exactly once.
    assert result["deliveries_expected"] > 0
    assert result["delivered"] == result["deliveries_expected"]
    assert (result["lost"], result["duplicates"], result["unexpected"]) == (0, 0, 0)
    assert result["latency_samples"] > 0
    assert 0 < result["p50_ms"] <= result["p99_ms"] <= result["max_ms"]
    report = format_report(result)
    assert "lost 0  duplicates 0" in report and "µs" in report
    # The bench accounts, their rules and alerts are gone.
    conn = await asyncpg.connect(database_url)
    try:
        left = await conn.fetchval(
            "SELECT count(*) FROM users WHERE username LIKE $1", result["prefix"] + "%"
        )
    finally:
        await conn.close()
    assert left == 0
