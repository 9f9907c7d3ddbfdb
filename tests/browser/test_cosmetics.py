"""Small things a first-time user noticed: each checked in the page where it shows."""

from __future__ import annotations

import re
import time

import asyncpg
import pytest
from playwright.async_api import expect

from tests.support.auth import UserLogin
from tests.support.browser import CHANNEL, OpenTab, ServeApp, event, row, wait_subscribed
from tests.support.realtime import Publisher

pytestmark = pytest.mark.browser

_ALL_TABLES = " UNION ALL ".join(
    f"SELECT symbol FROM {table}"
    for table in (
        "daily_patterns",
        "weekly_patterns",
        "monthly_patterns",
        "intraday_patterns",
        "hourly_patterns",
        "daily_intraday_patterns",
    )
)


async def test_symbol_page_prices_chart_labels_and_paging(
    serve_app: ServeApp, open_tab: OpenTab, user: UserLogin, auth_pool: asyncpg.Pool
) -> None:
    served = await serve_app()
    async with auth_pool.acquire() as conn:
        busiest, quietest = await conn.fetchrow(
            f"""WITH counts AS (
                    SELECT s.symbol, count(p.symbol) AS n FROM symbols s
                    LEFT JOIN ({_ALL_TABLES}) p ON p.symbol = s.symbol
                    WHERE s.active GROUP BY s.symbol)
                SELECT (SELECT symbol FROM counts ORDER BY n DESC, symbol LIMIT 1),
                       (SELECT symbol FROM counts WHERE n BETWEEN 1 AND 49
                        ORDER BY n, symbol LIMIT 1)"""
        )
    page = (await open_tab(served, user)).page

    await page.goto(f"/symbols/{busiest}")
    rows = page.locator("#detection-rows tr")
    await expect(rows.first).to_be_visible()
    prices = await rows.locator("td:nth-child(6)").all_text_contents()
    assert prices and all(re.fullmatch(r"\$?[\d,]+\.\d\d", p.strip()) for p in prices), prices
    await expect(page.locator("#more-detections")).to_be_visible()  # 50 shown, more to load

    # Markers carry no text (neighbouring labels ran together); the names show on hover,
    # inside the chart, even at the right edge.
    chart = page.locator("#chart")
    await expect(chart).to_have_attribute("data-markers", re.compile(r"^[1-9]\d*$"))
    texts = await chart.evaluate("el => el.priceChart.markers.markers().map(m => m.text)")
    assert texts and all(text == "" for text in texts), texts
    last_day, x = await chart.evaluate(
        """el => { const days = [...el.priceChart.byDay.keys()].sort();
                   const day = days[days.length - 1]; return [day, el.priceChart.markerX(day)]; }"""
    )
    box = await chart.bounding_box()
    assert box is not None and x is not None
    await page.mouse.move(box["x"] + x, box["y"] + box["height"] * 0.4)
    tip = page.locator("#chart .chart-tip")
    await expect(tip).to_be_visible()
    # The day written as the tables write it.
    written = await page.evaluate(
        """day => new Intl.DateTimeFormat(undefined, {year: "numeric", month: "short",
            day: "2-digit", timeZone: "UTC"}).format(new Date(day + "T00:00:00Z"))""",
        last_day,
    )
    await expect(tip).to_contain_text(written)
    tip_box = await tip.bounding_box()
    assert tip_box is not None
    assert tip_box["x"] >= box["x"] and tip_box["x"] + tip_box["width"] <= box["x"] + box["width"]

    # Nothing more to load: no "Load older" button.
    await page.goto(f"/symbols/{quietest}")
    await expect(page.locator("#detection-rows tr").first).to_be_visible()
    await expect(page.locator("#more-detections")).to_be_hidden()


async def test_feed_is_newest_first_and_rate_only_where_there_is_a_feed(
    serve_app: ServeApp,
    open_tab: OpenTab,
    user: UserLogin,
    publisher: Publisher,
    auth_pool: asyncpg.Pool,
) -> None:
    served = await serve_app()
    async with auth_pool.acquire() as conn:
        symbol = await conn.fetchval(
            "SELECT symbol FROM symbols WHERE active ORDER BY symbol LIMIT 1"
        )
    page = (await open_tab(served, user)).page
    await page.goto("/")
    await expect(page.locator("#ev-rate")).to_be_visible()
    await page.fill("#symbol-search", symbol)
    await page.keyboard.press("Enter")
    await wait_subscribed(page, symbol)

    now = time.time()
    later = {**event(symbol, "Later"), "timestamp": now}
    earlier = {**event(symbol, "Earlier"), "timestamp": now - 1.0}
    await publisher.publish(CHANNEL, later)
    await expect(row(page, later)).to_be_visible()
    await publisher.publish(CHANNEL, earlier)  # arrives second, happened first
    await expect(row(page, earlier)).to_be_visible()
    order = await page.locator("#feed-rows tr").evaluate_all(
        "rows => rows.map(r => r.dataset.eventId)"
    )
    assert order.index(later["event_id"]) < order.index(earlier["event_id"])

    # The placeholder of the symbols search fits its box.
    await page.goto("/symbols")
    fits = await page.locator("#symbols-q").evaluate(
        """input => {
            const ctx = document.createElement("canvas").getContext("2d");
            const style = getComputedStyle(input);
            ctx.font = style.font;
            const room = input.clientWidth - parseFloat(style.paddingLeft)
                - parseFloat(style.paddingRight);
            return ctx.measureText(input.placeholder).width <= room;
        }"""
    )
    assert fits
    # No feed on this page, so no events-per-minute counter.
    await expect(page.locator("#ev-rate")).to_have_count(0)
    await page.goto("/history")
    await expect(page.locator("#ev-rate")).to_have_count(0)


async def test_admin_counts_its_own_socket(
    serve_app: ServeApp, open_tab: OpenTab, admin: UserLogin
) -> None:
    served = await serve_app()
    page = (await open_tab(served, admin)).page
    await page.goto("/admin")
    await expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    summary = page.locator("#conn-summary")
    await expect(summary).to_contain_text(re.compile(r"has [1-9]\d* live"))
