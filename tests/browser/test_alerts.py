"""Alerts in a real browser (SPEC §11): the bell and a toast for a live alert, the inbox, the rule
editor against the real API, and the dashboard's live indicators, banners and feed settings.

Events are published on Redis as the producer would; alerts come from the real matcher.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, NamedTuple

import aiohttp
import pytest
from playwright.async_api import Page, expect

from tests.support.auth import MakeToken, MakeUser, UserLogin
from tests.support.browser import CHANNEL, OpenTab, ServeApp, event, row, screenshot
from tests.support.realtime import Publisher
from tests.support.served import ServedApp
from tickstock.vocab import (
    CRITICAL_ALERTS_CHANNEL,
    INDICATORS_CHANNEL,
    STREAMING_HEALTH_CHANNEL,
)

pytestmark = pytest.mark.browser

RULES = "/api/user/alerts/rules"
# Rule changes reach the matcher within 1 s (SPEC §11).
RULE_PROPAGATION_S = 1.2

Api = Callable[..., Awaitable[tuple[int, Any]]]
PickSymbols = Callable[[int], Awaitable[list[str]]]


@pytest.fixture(name="api_as")
async def _api_as(make_token: MakeToken) -> AsyncIterator[Callable[..., Awaitable[Api]]]:
    """Factory: ``call = await api_as(served, user)``; ``await call("GET", path)`` is
    ``(status, body)`` with the user's API token (as a script would call the API)."""
    sessions: list[aiohttp.ClientSession] = []

    async def api_as(served: ServedApp, user: UserLogin) -> Api:
        token = await make_token(user, name="browser-test")
        session = aiohttp.ClientSession(
            base_url=served.url, headers={"Authorization": f"Bearer {token}"}
        )
        sessions.append(session)

        async def call(method: str, path: str, body: Any = None) -> tuple[int, Any]:
            async with session.request(method, path, json=body) as response:
                payload = await response.json() if response.content_type.endswith("json") else None
                return response.status, payload

        return call

    yield api_as
    for session in sessions:
        await session.close()


async def _signed_in(
    served: ServedApp, open_tab: OpenTab, user: UserLogin, path: str = "/"
) -> Page:
    tab = await open_tab(served, user)
    await tab.page.goto(path)
    await expect(tab.page.locator("#conn")).to_have_attribute("data-state", "live")
    return tab.page


class Scene(NamedTuple):
    """A served app, a new user and that user's API (``call``), and symbols of the seeded data."""

    served: ServedApp
    user: UserLogin
    call: Api
    symbols: list[str]


Start = Callable[..., Awaitable[Scene]]


@pytest.fixture(name="start")
def _start(
    serve_app: ServeApp,
    make_user: MakeUser,
    api_as: Callable[..., Awaitable[Api]],
    pick_symbols: PickSymbols,
) -> Start:
    """Factory: ``served, user, call, (a, b) = await start("name", symbols=2)``: a served app, a
    user named ``name.<hex>`` with an API token, and that many seeded symbols."""

    async def start(name: str, symbols: int = 0) -> Scene:
        # The rules here have no cooldown and see several events of one symbol.
        served = await serve_app(alert_min_cooldown_seconds=0)
        user = await make_user(username=f"{name}.{secrets.token_hex(2)}")
        call = await api_as(served, user)
        picked = await pick_symbols(symbols) if symbols else []
        return Scene(served, user, call, picked)

    return start


async def _live_rule(call: Api, symbol: str, pattern: str) -> dict[str, Any]:
    """Create a rule over the API and wait until the matcher has it; the rule as created."""
    status, created = await call("POST", RULES, _rule(symbol, pattern))
    assert status == 201, created
    await asyncio.sleep(RULE_PROPAGATION_S)
    return dict(created["data"])


def _rule(symbol: str, pattern: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": f"Alert {secrets.token_hex(3)}",
        "symbols": [symbol],
        "patterns": [pattern],
        "tiers": [],
        "min_confidence": 0.8,
        "indicator": None,
        "cooldown_seconds": 0,
        "enabled": True,
        **extra,
    }


def _unique_pattern() -> str:
    # A pattern name no other test publishes, so no other test's events match the rule.
    return f"Alert Check {secrets.token_hex(3)}"


async def test_a_live_alert_rings_the_bell_shows_a_toast_and_is_marked_read(
    start: Start, open_tab: OpenTab, publisher: Publisher
) -> None:
    served, user, call, (symbol,) = await start("bell", symbols=1)
    name = _unique_pattern()
    rule = await _live_rule(call, symbol, name)
    page = await _signed_in(served, open_tab, user)
    bell = page.locator("#bell")
    await expect(bell).to_have_attribute("data-unread", "0")
    await expect(bell.locator(".bell-count")).to_be_hidden()

    # Not matching (confidence below the rule's minimum): nothing happens.
    await publisher.publish(CHANNEL, event(symbol, name, confidence=0.5))
    # Matching: the count rises and a toast says what happened, within a second.
    started = time.monotonic()
    await publisher.publish(CHANNEL, event(symbol, name, confidence=0.93, price=101.5))
    toast = page.locator(".toast-alert")
    await expect(bell).to_have_attribute("data-unread", "1", timeout=1000)
    await expect(toast).to_have_count(1, timeout=1000)
    assert time.monotonic() - started < 1.0
    await expect(bell.locator(".bell-count")).to_have_text("1")
    await expect(bell).to_have_attribute("aria-label", "Alerts: 1 unread")
    await expect(toast).to_contain_text(rule["name"])
    await expect(toast).to_contain_text(symbol)
    await expect(toast).to_contain_text(name)
    await expect(toast).to_contain_text("0.93")
    await expect(toast.locator("time")).to_have_count(1)
    await expect(page.locator("#toasts")).to_have_attribute("aria-live", "polite")
    await screenshot(page, "alerts-toast")

    # A second alert stacks a second toast; toasts leave by themselves.
    await publisher.publish(CHANNEL, event(symbol, name, confidence=0.95))
    await expect(bell).to_have_attribute("data-unread", "2")
    await expect(toast).to_have_count(2)
    await expect(toast).to_have_count(0, timeout=12000)

    # The count survives a reload (it comes from /api/auth/me); the bell opens the inbox.
    await page.reload()
    await expect(bell).to_have_attribute("data-unread", "2")
    await bell.click()
    await expect(page).to_have_url(f"{served.url}/alerts")
    rows = page.locator("#inbox-rows tr")
    await expect(rows).to_have_count(2)
    await expect(page.locator("#inbox-rows tr.unread")).to_have_count(2)
    first = rows.first
    await expect(first).to_contain_text(rule["name"])
    await expect(first).to_contain_text("0.95")  # newest first
    await expect(page.locator("#inbox-unread")).to_have_text("2")
    # The rule tells how often it fired.
    fired = page.locator(f'#rule-rows tr[data-rule-id="{rule["id"]}"] td.fired')
    await expect(fired).to_have_attribute("data-alerts", "2")
    await expect(fired).to_contain_text("2\u00d7")

    # Marking one read lowers the bell; the server agrees.
    await first.locator(".mark-read").click()
    await expect(bell).to_have_attribute("data-unread", "1")
    await expect(page.locator("#inbox-rows tr.unread")).to_have_count(1)
    status, me = await call("GET", "/api/auth/me")
    assert status == 200 and me["meta"]["unread_alerts"] == 1

    # A live alert lands on top of the inbox; "mark all read" clears the count.
    await publisher.publish(CHANNEL, event(symbol, name, confidence=0.97))
    await expect(bell).to_have_attribute("data-unread", "2")
    await expect(rows).to_have_count(3)
    await expect(rows.first).to_contain_text("0.97")
    await expect(rows.first).to_have_class(re.compile(r"\bunread\b"))
    await expect(fired).to_have_attribute("data-alerts", "3")
    await page.click("#mark-all-read")
    await expect(bell).to_have_attribute("data-unread", "0")
    await expect(bell.locator(".bell-count")).to_be_hidden()
    await expect(page.locator("#inbox-rows tr.unread")).to_have_count(0)
    status, me = await call("GET", "/api/auth/me")
    assert me["meta"]["unread_alerts"] == 0

    # Filters: unread only (none left) and back.
    await page.check("#filter-unread")
    await expect(page).to_have_url(re.compile(r"unread=true"))
    await expect(rows).to_have_count(0)
    await expect(page.locator("#inbox-status")).to_contain_text("No alerts match")
    await page.uncheck("#filter-unread")
    await expect(rows).to_have_count(3)

    # A toast opens the alert's symbol, as a feed row does; the bell still opens the inbox.
    await expect(bell).to_have_attribute("href", "/alerts")
    await publisher.publish(CHANNEL, event(symbol, name, confidence=0.99))
    latest = page.locator(".toast-alert", has_text="0.99")
    await expect(latest).to_have_attribute("href", f"/symbols/{symbol}")
    await latest.click()
    await expect(page).to_have_url(f"{served.url}/symbols/{symbol}")
    await expect(page.locator("#symbol-title .ticker")).to_have_text(symbol)
    await expect(bell).to_have_attribute("data-unread", "1")
    # An alert without a symbol has nothing else to open than the inbox.
    href = await page.evaluate(
        """async () => {
            const script = document.querySelector('script[type="module"][src]');
            const { alertToast } = await import(new URL("alerting.js", script.src).href);
            const item = alertToast({ id: -1, rule_name: "No symbol", event: { data: {} } });
            return item.getAttribute("href");
        }"""
    )
    assert href == "/alerts"


async def _alerts_of(call: Api, count: int) -> list[dict[str, Any]]:
    """The user's alerts, newest first, once the matcher has stored ``count`` of them."""
    deadline = time.monotonic() + 5
    while True:
        status, body = await call("GET", "/api/user/alerts")
        assert status == 200, body
        if len(body["data"]) >= count or time.monotonic() > deadline:
            assert len(body["data"]) == count, body["data"]
            return list(body["data"])
        await asyncio.sleep(0.1)


async def test_the_inbox_lists_unread_first_and_keeps_a_marked_row_in_place(
    start: Start, open_tab: OpenTab, publisher: Publisher
) -> None:
    served, user, call, (symbol,) = await start("inbox", symbols=1)
    name = _unique_pattern()
    await _live_rule(call, symbol, name)
    for confidence in (0.81, 0.82, 0.83, 0.84):
        await publisher.publish(CHANNEL, event(symbol, name, confidence=confidence))
    newest, second, third, oldest = [a["id"] for a in await _alerts_of(call, 4)]
    # The newest and the third are read already.
    status, body = await call("POST", "/api/user/alerts/read", {"ids": [newest, third]})
    assert status == 200 and body["data"]["unread"] == 2

    page = await _signed_in(served, open_tab, user, "/alerts")
    rows = page.locator("#inbox-rows tr")

    async def shown() -> list[int]:
        await expect(rows).to_have_count(4)
        return [int(i) for i in await rows.evaluate_all("rs => rs.map(r => r.dataset.alertId)")]

    # Unread first (newest first), then the read ones (newest first).
    assert await shown() == [second, oldest, newest, third]
    await expect(page.locator("#inbox-rows tr.unread")).to_have_count(2)
    await expect(rows.nth(0)).to_have_class(re.compile(r"\bunread\b"))
    await expect(rows.nth(2)).not_to_have_class(re.compile(r"\bunread\b"))
    await expect(rows.nth(0)).to_contain_text("0.83")

    # Marking one read un-highlights it where it is: nothing moves until the next load.
    await rows.nth(0).locator(".mark-read").click()
    await expect(page.locator("#bell")).to_have_attribute("data-unread", "1")
    await expect(rows.nth(0)).not_to_have_class(re.compile(r"\bunread\b"))
    await expect(rows.nth(0).locator(".mark-read")).to_have_count(0)
    assert await shown() == [second, oldest, newest, third]
    await screenshot(page, "alerts-inbox-unread-first")
    await page.reload()
    await expect(page.locator("#inbox-unread")).to_have_text("1")
    assert await shown() == [oldest, newest, second, third]

    # "Unread only" still lists the unread only.
    await page.check("#filter-unread")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_have_attribute("data-alert-id", str(oldest))
    await page.uncheck("#filter-unread")
    assert await shown() == [oldest, newest, second, third]


async def test_the_rule_editor_creates_edits_disables_and_deletes(
    start: Start, open_tab: OpenTab
) -> None:
    served, user, call, (first, second) = await start("rules", symbols=2)
    page = await _signed_in(served, open_tab, user, "/alerts")
    await expect(page.locator("#rules-status")).to_contain_text("No rules yet")
    await expect(page.locator(".mainnav a[aria-current=page]")).to_have_text("Alerts")

    # Create: a list of symbols, patterns, a tier, a minimum confidence, a cooldown.
    await page.fill("#rule-name", "Breakouts I trade")
    await page.check('input[name="scope"][value="list"]')
    await page.fill("#rule-symbols", f"{first.lower()}, {second}")
    await page.fill("#rule-patterns", "Breakout, Bull Flag")
    await page.check('input[name="tiers"][value="daily"]')
    await page.fill("#rule-confidence", "0.85")
    await page.fill("#rule-cooldown", "600")
    await page.click("#rule-preview")
    await expect(page.locator("#preview-result")).to_have_text(
        re.compile(r"^Would have matched \d+ events? in the last 30 days\.$")
    )
    await page.click("#rule-save")
    rows = page.locator("#rule-rows tr")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text("Breakouts I trade")
    await expect(rows.first).to_contain_text(f"{first}, {second}")
    await expect(page.locator("#rule-name")).to_have_value("")  # the form is ready for the next
    status, body = await call("GET", RULES)
    assert status == 200
    (rule,) = body["data"]
    assert rule["name"] == "Breakouts I trade"
    assert rule["symbols"] == [first, second]
    assert rule["patterns"] == ["Breakout", "Bull Flag"]
    assert rule["tiers"] == ["daily"]
    assert rule["min_confidence"] == 0.85
    assert rule["cooldown_seconds"] == 600
    assert rule["indicator"] is None and rule["enabled"] is True
    # The inbox's rule filter lists it.
    await expect(page.locator(f'#filter-rule option[value="{rule["id"]}"]')).to_have_text(
        "Breakouts I trade"
    )

    # Edit: the form is filled from the rule; the change is saved over PATCH.
    await rows.first.locator(".rule-edit").click()
    await expect(page.locator("#form-title")).to_contain_text("Edit rule")
    await expect(page.locator("#rule-symbols")).to_have_value(f"{first}, {second}")
    await expect(page.locator('input[name="tiers"][value="daily"]')).to_be_checked()
    await page.fill("#rule-name", "Any breakout")
    await page.check('input[name="scope"][value="watchlist"]')
    await page.fill("#rule-confidence", "0.9")
    await page.click("#rule-save")
    await expect(rows.first).to_contain_text("Any breakout")
    await expect(rows.first).to_contain_text("my watchlist")
    status, body = await call("GET", f"{RULES}/{rule['id']}")
    assert status == 200
    assert body["data"]["name"] == "Any breakout"
    assert body["data"]["symbols"] == "watchlist"
    assert body["data"]["min_confidence"] == 0.9
    assert body["data"]["patterns"] == ["Breakout", "Bull Flag"]

    # Disable with the toggle.
    await rows.first.locator(".rule-enabled").uncheck()
    await expect(rows.first).to_have_attribute("data-enabled", "false")
    status, body = await call("GET", f"{RULES}/{rule['id']}")
    assert body["data"]["enabled"] is False

    # An indicator rule: all symbols, RSI crossing above 70.
    await page.fill("#rule-name", "RSI hot")
    await page.check('input[name="scope"][value="*"]')
    await page.check("#rule-use-indicator")
    await expect(page.locator("#rule-patterns")).to_be_disabled()
    await page.fill("#rule-ind-type", "rsi")
    await page.select_option("#rule-ind-op", "crosses_above")
    await page.fill("#rule-ind-value", "70")
    await page.click("#rule-save")
    await expect(rows).to_have_count(2)
    await expect(rows.nth(1)).to_contain_text("rsi crosses above 70")
    await expect(rows.nth(1)).to_contain_text("all symbols")
    status, body = await call("GET", RULES)
    indicator_rule = next(r for r in body["data"] if r["name"] == "RSI hot")
    assert indicator_rule["symbols"] == "*"
    assert indicator_rule["patterns"] == []
    assert indicator_rule["indicator"] == {"type": "rsi", "op": "crosses_above", "value": 70}
    await screenshot(page, "alerts-rules")

    # Delete asks first; "Keep" keeps it, "Delete" deletes it.
    await rows.first.locator(".rule-delete").click()
    await rows.first.locator(".rule-delete-cancel").click()
    await expect(rows).to_have_count(2)
    await rows.first.locator(".rule-delete").click()
    await rows.first.locator(".rule-delete-confirm").click()
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text("RSI hot")
    status, _ = await call("GET", f"{RULES}/{rule['id']}")
    assert status == 404


async def test_an_invalid_rule_shows_the_error_next_to_its_field(
    start: Start, open_tab: OpenTab
) -> None:
    served, user, call, _ = await start("invalid")
    tab = await open_tab(served, user)
    tab.allowed.append(re.compile(r"status of 400 .*/api/user/alerts/rules"))
    page = tab.page
    await page.goto("/alerts")
    await expect(page.locator("#rules-status")).to_contain_text("No rules yet")

    await page.fill("#rule-name", "Too sure")
    await page.fill("#rule-confidence", "1.5")
    await page.click("#rule-save")
    error = page.locator("#err-min_confidence")
    await expect(error).not_to_be_empty()
    await expect(page.locator("#rule-confidence")).to_have_attribute("aria-invalid", "true")
    await expect(page.locator("#rule-confidence")).to_be_focused()
    await expect(page.locator("#err-name")).to_be_empty()
    await expect(page.locator("#rule-rows tr")).to_have_count(0)

    # Fixed, it saves; the error goes.
    await page.fill("#rule-confidence", "0.75")
    await page.click("#rule-save")
    await expect(page.locator("#rule-rows tr")).to_have_count(1)
    await expect(error).to_be_empty()

    # An empty name is named too (the preview checks the same fields).
    await page.fill("#rule-name", "")
    await page.check('input[name="scope"][value="list"]')
    await page.fill("#rule-symbols", "")
    await page.click("#rule-save")
    await expect(page.locator("#rule-form .field-error:not(:empty)").first).to_be_visible()
    status, body = await call("GET", RULES)
    assert status == 200 and len(body["data"]) == 1


async def test_indicator_updates_show_live_in_the_symbol_panel(
    start: Start, open_tab: OpenTab, publisher: Publisher
) -> None:
    served, user, call, (symbol, other) = await start("ind", symbols=2)
    status, _ = await call("PUT", "/api/user/watchlist", {"symbols": [symbol]})
    assert status == 200
    page = await _signed_in(served, open_tab, user)
    panel = page.locator("#symbol-panel")
    await expect(page.locator("#sp-symbol")).to_have_text(symbol)
    await expect(panel).to_have_attribute("data-live-indicators", "true")
    name = f"ind{secrets.token_hex(2)}"
    value = page.locator(f'#sp-indicators [data-indicator="{name}"] .ind-value')

    await publisher.publish(
        INDICATORS_CHANNEL,
        {"symbol": symbol, "indicator": name, "value": 71.25, "timestamp": time.time()},
    )
    await expect(value).to_have_text("71.25", timeout=1000)
    # Another symbol's update does not touch the panel; the next one of this symbol does.
    await publisher.publish(
        INDICATORS_CHANNEL,
        {"symbol": other, "indicator": name, "value": 12.0, "timestamp": time.time()},
    )
    await publisher.publish(
        INDICATORS_CHANNEL,
        {"symbol": symbol, "indicator": name, "value": 68.5, "timestamp": time.time() + 1},
    )
    await expect(value).to_have_text("68.5")
    await expect(page.locator(f'#sp-indicators [data-indicator="{name}"]')).to_have_count(1)
    # A values object (several lines of one indicator).
    await publisher.publish(
        INDICATORS_CHANNEL,
        {
            "symbol": symbol,
            "indicator": "macd_live",
            "values": {"macd": 1.25, "signal": 0.5},
            "timestamp": time.time(),
        },
    )
    await expect(
        page.locator('#sp-indicators [data-indicator="macd_live"] .ind-value')
    ).to_have_text("macd 1.25, signal 0.5")


async def test_the_symbol_page_shows_live_indicator_values(
    start: Start, open_tab: OpenTab, publisher: Publisher
) -> None:
    served, user, call, (symbol, other) = await start("symind", symbols=2)
    status, body = await call("GET", f"/api/indicators/{symbol}", None)
    assert status == 200
    stored = {(i["indicator"].lower(), i["source"]): i["value"] for i in body["data"]}
    assert ("rsi", "daily") in stored, stored  # the seeded history has one

    page = await _signed_in(served, open_tab, user, f"/symbols/{symbol}")
    await expect(page.locator("#indicators-panel")).to_have_attribute(
        "data-live-indicators", "true"
    )
    rsi = page.locator('#indicators [data-indicator="rsi"][data-source="daily"]')
    await expect(rsi).to_have_attribute("data-live", "false")
    stored_text = await rsi.locator(".ind-value").text_content()
    assert stored_text and stored_text != "12.34"

    # The live value replaces the stored one, in place.
    await publisher.publish(
        INDICATORS_CHANNEL,
        {
            "symbol": symbol,
            "indicator": "RSI",
            "value": 12.34,
            "tier": "daily",
            "timestamp": time.time(),
        },
    )
    await expect(rsi.locator(".ind-value")).to_have_text("12.34", timeout=1000)
    await expect(rsi).to_have_attribute("data-live", "true")
    await expect(rsi).to_have_count(1)
    # Another symbol's update leaves the page alone; a new indicator of this one is added.
    name = f"ind{secrets.token_hex(2)}"
    await publisher.publish(
        INDICATORS_CHANNEL,
        {
            "symbol": other,
            "indicator": "RSI",
            "value": 99.0,
            "tier": "daily",
            "timestamp": time.time(),
        },
    )
    await publisher.publish(
        INDICATORS_CHANNEL,
        {
            "symbol": symbol,
            "indicator": name,
            "value": 71.25,
            "tier": "daily",
            "timestamp": time.time(),
        },
    )
    added = page.locator(f'#indicators [data-indicator="{name}"] .ind-value')
    await expect(added).to_have_text("71.25")
    await expect(rsi.locator(".ind-value")).to_have_text("12.34")
    await publisher.publish(
        INDICATORS_CHANNEL,
        {
            "symbol": symbol,
            "indicator": name,
            "value": 68.5,
            "tier": "daily",
            "timestamp": time.time() + 1,
        },
    )
    await expect(added).to_have_text("68.5")
    await screenshot(page, "symbol-live-indicators")


async def test_a_critical_alert_and_an_unhealthy_producer_show_a_banner(
    serve_app: ServeApp,
    open_tab: OpenTab,
    make_user: MakeUser,
    publisher: Publisher,
) -> None:
    served = await serve_app()
    user = await make_user(username=f"banner.{secrets.token_hex(2)}")
    page = await _signed_in(served, open_tab, user)
    text = f"Market data feed lagging {secrets.token_hex(3)}"
    await publisher.publish(
        CRITICAL_ALERTS_CHANNEL,
        {
            "type": "data_feed_lag",
            "message": text,
            "severity": "critical",
            "timestamp": dt.datetime.now(dt.UTC).isoformat(),
        },
    )
    banner = page.locator(".banner-critical", has_text=text)
    await expect(banner).to_be_visible(timeout=1000)
    await expect(banner).to_have_attribute("role", "alert")
    await expect(banner).to_contain_text("Critical")
    await screenshot(page, "alerts-banner")
    await banner.get_by_role("button", name="Dismiss").click()
    await expect(banner).to_have_count(0)

    # An unhealthy producer shows until it reports healthy again.
    status = f"degraded{secrets.token_hex(2)}"
    await publisher.publish(STREAMING_HEALTH_CHANNEL, {"status": status, "timestamp": time.time()})
    health = page.locator(".banner-health")
    await expect(health).to_contain_text(status)
    await publisher.publish(
        STREAMING_HEALTH_CHANNEL, {"status": "healthy", "timestamp": time.time()}
    )
    await expect(health).to_have_count(0)


async def test_the_feed_follows_the_users_settings(
    start: Start, open_tab: OpenTab, publisher: Publisher
) -> None:
    served, user, call, (symbol,) = await start("settings", symbols=1)
    status, _ = await call("PUT", "/api/user/watchlist", {"symbols": [symbol]})
    assert status == 200
    status, _ = await call(
        "PUT",
        "/api/user/settings",
        {"default_tier": "daily", "min_confidence": 0.8, "feed_limit": 3},
    )
    assert status == 200
    page = await _signed_in(served, open_tab, user)
    await expect(page.locator("#filter-tier")).to_have_value("daily")
    await expect(page.locator("#filter-conf")).to_have_value("0.8")
    await expect(page.locator(f'#wl-rows tr[data-symbol="{symbol}"]')).to_have_attribute(
        "data-subscribed", "true"
    )

    # Below min_confidence or of another tier: kept, but hidden until the filters allow them.
    low = event(symbol, "Doji", confidence=0.6)
    weekly = event(symbol, "Breakout", confidence=0.9, tier="weekly")
    for message in (low, weekly):
        await publisher.publish(CHANNEL, message)
    for message in (low, weekly):
        await expect(row(page, message)).to_have_count(1)
        await expect(row(page, message)).to_be_hidden()
    await expect(page.locator("#feed-empty")).to_have_text("No events match the filters.")
    await page.fill("#filter-conf", "")
    await expect(row(page, low)).to_be_visible()
    await expect(row(page, weekly)).to_be_hidden()
    await page.select_option("#filter-tier", "")
    await expect(row(page, weekly)).to_be_visible()

    # At most feed_limit rows are kept: the three newest.
    shown = [event(symbol, f"Breakout {i}", confidence=0.9) for i in range(4)]
    for message in shown:
        await publisher.publish(CHANNEL, message)
    await expect(row(page, shown[-1])).to_be_visible()
    await expect(page.locator("#feed-rows tr")).to_have_count(3)
    for message in shown[1:]:
        await expect(row(page, message)).to_be_visible()
    for message in (shown[0], low, weekly):
        await expect(row(page, message)).to_have_count(0)


async def test_a_paused_rule_says_so_on_the_alerts_page(
    start: Start, open_tab: OpenTab, conn: Any
) -> None:
    """A rule paused for going over the per-user alert rate shows it, and editing resumes it."""
    served, user, call, (symbol,) = await start("paused", symbols=1)
    status, created = await call("POST", RULES, _rule(symbol, _unique_pattern()))
    assert status == 201
    rule_id = created["data"]["id"]
    await conn.execute(
        "UPDATE alert_rules SET paused_until = now() + interval '10 minutes' WHERE id = $1",
        rule_id,
    )
    page = await _signed_in(served, open_tab, user, "/alerts")
    row_of_rule = page.locator(f'#rule-rows tr[data-rule-id="{rule_id}"]')
    await expect(row_of_rule.locator(".rule-paused")).to_contain_text(
        "Alerts paused for this rule until"
    )
    status, edited = await call("PATCH", f"{RULES}/{rule_id}", {"name": "calmer"})
    assert status == 200 and edited["data"]["paused"] is False
    await page.reload()
    await expect(page.locator(f'#rule-rows tr[data-rule-id="{rule_id}"]')).to_contain_text("calmer")
    await expect(page.locator(".rule-paused")).to_have_count(0)
