"""The dashboard in a real browser: headless Debian Chromium (Playwright) against a served app.

Each test drives pages the way a person would and checks what they would see; every page is
watched for console errors and uncaught exceptions. Screenshots of the main views go to
``artifacts/screenshots/``.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from collections.abc import Awaitable, Callable

import asyncpg
import pytest
from playwright.async_api import (
    expect,
)

from tests.support.auth import MakeUser, UserLogin
from tests.support.browser import (
    CHANNEL,
    SOCKET_REFUSED,
    OpenTab,
    ServeApp,
    event,
    row,
    screenshot,
    wait_subscribed,
)
from tests.support.realtime import Publisher
from tests.support.served import ServedApp

pytestmark = pytest.mark.browser

# --------------------------------------------------------------------------- tests


async def test_login_watchlist_live_feed_and_reload(
    serve_app: ServeApp,
    open_tab: OpenTab,
    make_user: MakeUser,
    publisher: Publisher,
    auth_pool: asyncpg.Pool,
    pick_symbols: Callable[[int], Awaitable[list[str]]],
) -> None:
    served = await serve_app()
    user = await make_user(username=f"alice.{secrets.token_hex(2)}")
    mine, other, third = await pick_symbols(3)
    # Prices near each symbol's last close, so the feed and the chart tell the same story.
    async with auth_pool.acquire() as conn:
        closes = dict(
            await conn.fetch(
                """SELECT DISTINCT ON (symbol) symbol, close::float8 FROM ohlcv_daily
                   WHERE symbol = ANY($1::text[]) ORDER BY symbol, date DESC""",
                [mine, third],
            )
        )
    near_mine = round(closes.get(mine, 212.0), 2)
    near_third = round(closes.get(third, 48.0), 2)
    tab = await open_tab(served)
    page = tab.page

    # Signing in through the form lands on the dashboard.
    await page.goto("/")
    await expect(page).to_have_url(re.compile(r"/login\?next=%2F$"))
    await page.fill("#username", user.username)
    await page.fill("#password", user.password)
    await page.click("button[type=submit]")
    await expect(page).to_have_url(f"{served.url}/")
    await expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    await expect(page.locator(".user-menu summary")).to_contain_text(user.username)
    await expect(page.locator("#wl-status")).to_contain_text("empty")

    # "/" focuses the symbol search; adding a symbol saves and subscribes it.
    await page.keyboard.press("/")
    await expect(page.locator("#symbol-search")).to_be_focused()
    await page.keyboard.type(mine.lower())
    await page.keyboard.press("Enter")
    await wait_subscribed(page, mine)
    await expect(page.locator("#symbol-search")).to_have_value("")

    # An unknown symbol is refused in words.
    tab.allowed.append(re.compile(r"status of 400 .*/api/user/watchlist\)$"))
    await page.fill("#symbol-search", "ZZZZ9")
    await page.keyboard.press("Enter")
    await expect(page.locator("#wl-error")).to_contain_text("ZZZZ9 is not a known symbol")

    # A pattern for the watched symbol shows within a second; another symbol's never does.
    ignored = event(other, "Ignored")
    await publisher.publish(CHANNEL, ignored)
    shown = event(mine, "Bull Flag", confidence=0.93, price=near_mine)
    started = time.monotonic()
    await publisher.publish(CHANNEL, shown)
    await expect(row(page, shown)).to_be_visible(timeout=1000)
    assert time.monotonic() - started < 1.0
    first = row(page, shown)
    await expect(first.locator(".prio")).to_have_text("CRITICAL")
    await expect(first).to_contain_text("Bull Flag")
    await expect(first).to_contain_text(f"{near_mine:,.2f}")
    assert await first.locator("time").get_attribute("title") is not None  # UTC on hover
    await expect(page.locator(f'#wl-rows tr[data-symbol="{mine}"] .count')).to_have_text("1")
    # The same detection arriving again (another channel) is shown once.
    await publisher.publish("tickstock:patterns:streaming", shown)
    marker = event(mine, "Golden Cross", confidence=0.72, price=round(near_mine * 0.995, 2))
    await publisher.publish(CHANNEL, marker)
    await expect(row(page, marker)).to_be_visible()
    await expect(row(page, ignored)).to_have_count(0)
    await expect(page.locator(f'#feed-rows tr[data-symbol="{other}"]')).to_have_count(0)
    await expect(row(page, shown)).to_have_count(1)
    await expect(page.locator("#ev-rate")).to_have_text("2")

    # Filters hide rows and go into the URL; "p" pauses and resume shows what arrived.
    await page.select_option("#filter-tier", "daily")
    await page.fill("#filter-conf", "0.9")
    await expect(page).to_have_url(re.compile(r"tier=daily.*confidence_min=0\.9"))
    await expect(row(page, marker)).to_be_hidden()
    await expect(row(page, shown)).to_be_visible()
    await page.fill("#filter-conf", "")
    await page.locator("h2#feed-title").click()
    await page.keyboard.press("p")
    await expect(page.locator("#pause")).to_have_attribute("aria-pressed", "true")
    held = event(mine, "Volume Spike", confidence=0.85, price=round(near_mine * 1.004, 2))
    await publisher.publish(CHANNEL, held)
    await expect(page.locator("#pause")).to_contain_text("Resume (1 new)")
    await expect(row(page, held)).to_have_count(0)
    await page.keyboard.press("p")
    await expect(row(page, held)).to_be_visible()
    await page.select_option("#filter-tier", "")
    await expect(row(page, marker)).to_be_visible()

    # A second symbol, and a busier feed for the screenshot.
    await page.fill("#symbol-search", third)
    await page.keyboard.press("Enter")
    await wait_subscribed(page, third)
    for name, confidence, tier, move in (
        ("Double Bottom", 0.66, "hourly", 1.002),
        ("Breakout", 0.95, "daily", 1.018),
        ("RSI Oversold", 0.74, "intraday", 0.985),
    ):
        price = round(near_third * move, 2)
        message = event(third, name, confidence=confidence, tier=tier, price=price)
        await publisher.publish(CHANNEL, message)
    await expect(page.locator("#feed-rows tr")).to_have_count(6)
    await expect(page.locator("#symbol-panel canvas").first).to_be_visible()
    await screenshot(page, "dashboard")

    # After a reload the watchlist is still there (saved on the server) and subscribed again.
    await page.reload()
    await wait_subscribed(page, mine)
    await wait_subscribed(page, third)
    assert await page.locator("#wl-rows tr").count() == 2

    # Removing a symbol unsubscribes it: its events stop arriving.
    await page.get_by_role("button", name=f"Remove {third}").click()
    await expect(page.locator(f'#wl-rows tr[data-symbol="{third}"]')).to_have_count(0)
    gone = event(third, "Gone")
    after = event(mine, "After", confidence=0.91)
    await publisher.publish(CHANNEL, gone)
    await publisher.publish(CHANNEL, after)
    await expect(row(page, after)).to_be_visible()
    await expect(row(page, gone)).to_have_count(0)
    # Screen readers hear a summary at a gentle rate, not every row.
    await expect(page.locator("#feed-announcer")).to_have_text(
        re.compile(rf"^1 new pattern: {mine} After 0\.91 CRITICAL$"), timeout=6000
    )


async def test_reconnect_replays_missed_events_exactly_once(
    serve_app: ServeApp,
    open_tab: OpenTab,
    user: UserLogin,
    publisher: Publisher,
    pick_symbols: Callable[[int], Awaitable[list[str]]],
) -> None:
    # Two nodes share Redis: while node A is down, node B ingests into the shared history.
    node_a = await serve_app()
    node_b = await serve_app()
    busy, quiet = await pick_symbols(2)
    tab = await open_tab(node_a, user)
    tab.allowed.append(SOCKET_REFUSED)
    page = tab.page
    await page.goto("/")
    for symbol in (busy, quiet):
        await page.fill("#symbol-search", symbol)
        await page.keyboard.press("Enter")
        await wait_subscribed(page, symbol)
    before = event(busy, "Before")
    await publisher.publish(CHANNEL, before)
    await expect(row(page, before)).to_be_visible()
    panel = page.locator("#symbol-panel")
    await expect(panel).to_have_attribute("data-state", "ready")

    await node_a.stop()
    await expect(page.locator("#conn")).to_have_attribute("data-state", "reconnecting")
    await expect(page.locator("#conn")).to_contain_text("reconnecting")
    # Charting a symbol while the server is away fails visibly (Chromium logs the refused
    # requests) and is loaded again once the connection is back.
    tab.allowed.append(re.compile(r"ERR_CONNECTION_REFUSED \(http://[^/]+/api/"))
    await page.click(f'#wl-rows button[aria-label="Chart {quiet} below"]')
    await expect(panel).to_have_attribute("data-state", "failed")
    await expect(page.locator("#sp-indicators")).to_contain_text(f"Could not load {quiet}")
    # Missed: two for the symbol that had events, one for the symbol that had none yet.
    missed = [event(busy, "Missed 1"), event(busy, "Missed 2"), event(quiet, "Missed 3")]
    for message in missed:
        await publisher.publish(CHANNEL, message)
    await wait_in_history(node_b, [busy, quiet], 3)
    assert await row(page, missed[0]).count() == 0

    node_a = await serve_app(port=node_a.port)
    await expect(page.locator("#conn")).to_have_attribute("data-state", "live", timeout=10_000)
    await expect(page.locator("#feed-note")).to_have_text(
        re.compile(r"3 missed events recovered"), timeout=5000
    )
    await expect(panel).to_have_attribute("data-state", "ready")
    await expect(page.locator("#sp-symbol")).to_have_text(quiet)
    for message in [before, *missed]:
        await expect(row(page, message)).to_have_count(1)
    # And live again after the seam, still no duplicate.
    again = event(quiet, "Live again")
    await publisher.publish(CHANNEL, again)
    await expect(row(page, again)).to_be_visible()
    await asyncio.sleep(0.3)
    assert await page.locator("#feed-rows tr").count() == 5
    ids = await page.locator("#feed-rows tr").evaluate_all(
        "rows => rows.map(r => r.dataset.eventId)"
    )
    assert len(ids) == len(set(ids))
    await expect(page.locator(f'#wl-rows tr[data-symbol="{quiet}"] .count')).to_have_text("2")


async def wait_in_history(node: ServedApp, symbols: list[str], count: int) -> None:
    """Until node B has put ``count`` events of ``symbols`` into the shared history."""
    from tickstock.realtime.server import get_realtime

    store = get_realtime(node.app).hub.store
    assert store is not None
    async with asyncio.timeout(5):
        while True:
            sizes = await store.history_sizes([f"patterns:{s}" for s in symbols])
            if sum(sizes.values()) >= count:
                return
            await asyncio.sleep(0.05)


async def test_symbol_view_draws_candles_with_markers(
    serve_app: ServeApp, open_tab: OpenTab, user: UserLogin, auth_pool: asyncpg.Pool
) -> None:
    served = await serve_app()
    async with auth_pool.acquire() as conn:
        symbol = await conn.fetchval(
            """SELECT p.symbol FROM daily_patterns p
               JOIN ohlcv_daily o ON o.symbol = p.symbol AND o.date = p.detection_timestamp::date
               GROUP BY p.symbol ORDER BY count(*) DESC, p.symbol LIMIT 1"""
        )
    assert symbol is not None
    tab = await open_tab(served, user)
    page = tab.page
    await page.goto(f"/symbols/{symbol.lower()}")
    chart = page.locator("#chart")
    await expect(chart).to_have_attribute("data-bars", re.compile(r"^[1-9]\d*$"))
    await expect(chart).to_have_attribute("data-markers", re.compile(r"^[1-9]\d*$"))
    await expect(page.locator("#symbol-name")).not_to_be_empty()
    await expect(page.locator("#indicators dt").first).to_be_visible()
    await expect(page.locator("#detection-rows tr").first).to_be_visible()
    await page.wait_for_timeout(150)  # one animation frame or two for the canvases
    colours = await chart.evaluate(
        """el => {
            let best = 0;
            for (const canvas of el.querySelectorAll("canvas")) {
                if (!canvas.width || !canvas.height) continue;
                const data = canvas.getContext("2d")
                    .getImageData(0, 0, canvas.width, canvas.height).data;
                const seen = new Set();
                for (let i = 0; i < data.length; i += 4 * 7) {
                    if (data[i + 3]) seen.add((data[i] << 16) | (data[i + 1] << 8) | data[i + 2]);
                }
                best = Math.max(best, seen.size);
            }
            return best;
        }"""
    )
    assert colours > 20, f"the chart canvas looks empty ({colours} colours)"
    await screenshot(page, "symbol")

    # A symbol that does not exist gets a page saying so (and no API calls that must fail).
    tab.allowed.append(re.compile(r"status of 404 .*/symbols/nope1\)$"))
    response = await page.goto("/symbols/nope1")
    assert response is not None and response.status == 404
    await expect(page.locator("h1")).to_have_text("Unknown symbol NOPE1")


async def test_history_filters_and_cursor_pages(
    serve_app: ServeApp, open_tab: OpenTab, user: UserLogin
) -> None:
    served = await serve_app()
    tab = await open_tab(served, user)
    page = tab.page
    await page.goto("/history?tier=daily&confidence_min=0.8")
    rows = page.locator("#history-rows tr")
    await expect(rows).to_have_count(50)
    await expect(page.locator("select[name=tier]")).to_have_value("daily")
    tiers = await rows.evaluate_all("rs => rs.map(r => r.cells[5].textContent)")
    confidences = await rows.evaluate_all("rs => rs.map(r => Number(r.cells[3].textContent))")
    assert set(tiers) == {"daily"} and min(confidences) >= 0.8
    first_page = await rows.evaluate_all("rs => rs.map(r => r.dataset.id)")

    await page.click("#next-page")
    await expect(page).to_have_url(re.compile(r"cursor="))
    await expect(rows.first).not_to_have_attribute("data-id", first_page[0])
    second_page = await rows.evaluate_all("rs => rs.map(r => r.dataset.id)")
    assert not set(first_page) & set(second_page)
    await page.click("#prev-page")
    await expect(rows.first).to_have_attribute("data-id", first_page[0])
    assert "cursor=" not in page.url

    # The filter form puts its values in the URL (bookmarkable) and applies them.
    await page.fill("input[name=confidence_min]", "0.95")
    await page.click("#history-filters button[type=submit]")
    await expect(page).to_have_url(re.compile(r"confidence_min=0\.95"))
    await expect(rows.first).to_be_visible()
    await screenshot(page, "history")

    # Symbols: search, then open one.
    await page.get_by_role("link", name="Symbols").click()
    await page.fill("#symbols-q", "micro")
    await page.keyboard.press("Enter")
    await expect(page).to_have_url(re.compile(r"/symbols\?q=micro"))
    await expect(page.locator("#symbols-rows")).to_contain_text("Microsoft")
    await page.locator("#symbols-rows a", has_text="MSFT").click()
    await expect(page).to_have_url(re.compile(r"/symbols/MSFT$"))
    await expect(page.locator("#symbol-name")).to_have_text("Microsoft Corporation")

    # A bad filter is explained in words, with a retry.
    tab.allowed.append(re.compile(r"status of 400 .*/api/patterns\?confidence_min=7"))
    await page.goto("/history?confidence_min=7")
    await expect(page.locator("#history-error .api-error")).to_contain_text("confidence_min")
    assert "{" not in await page.locator("#history-error").inner_text()


async def test_admin_page_is_for_admins_only(
    serve_app: ServeApp,
    open_tab: OpenTab,
    user: UserLogin,
    admin: UserLogin,
    pick_symbols: Callable[[int], Awaitable[list[str]]],
) -> None:
    served = await serve_app()
    plain_tab = await open_tab(served, user)
    plain_tab.allowed.append(re.compile(r"status of 403 .*/admin\)$"))
    plain = plain_tab.page
    response = await plain.goto("/admin")
    assert response is not None and response.status == 403
    await expect(plain.locator("h1")).to_have_text("Administrators only")
    await expect(plain.locator("#users-table")).to_have_count(0)
    await expect(plain.locator("nav.mainnav")).not_to_contain_text("Admin")
    await screenshot(plain, "forbidden")

    admin_tab = await open_tab(served, admin)
    page = admin_tab.page
    response = await page.goto("/admin")
    assert response is not None and response.status == 200
    await expect(page.locator("nav.mainnav")).to_contain_text("Admin")
    await expect(page.locator(f'#users-rows tr[data-username="{user.username}"]')).to_be_visible()
    # The other user's symbol page subscribes, so their socket is listed (after a refresh).
    await plain.goto(f"/symbols/{(await pick_symbols(1))[0]}")
    await expect(plain.locator("#conn")).to_have_attribute("data-state", "live")
    listed = page.locator("#connections-rows tr", has_text=user.username)
    async with asyncio.timeout(5):
        while not await listed.count():
            await page.click("#refresh-connections")
            await page.wait_for_timeout(200)
    await expect(listed).to_contain_text("patterns:")
    await expect(page.locator("#conn-summary")).to_contain_text("live")

    name = f"e2e{secrets.token_hex(4)}"
    await page.fill("#create-user input[name=username]", name)
    await page.fill("#create-user input[name=password]", "a-long-password-1")
    await page.click("#create-user button[type=submit]")
    created = page.locator(f'#users-rows tr[data-username="{name}"]')
    await expect(created).to_be_visible()
    await created.get_by_role("button", name="Deactivate").click()
    await expect(created.locator(".status")).to_have_text("inactive")
    # A taken name is refused in words.
    admin_tab.allowed.append(re.compile(r"status of 409 .*/api/admin/users\)$"))
    await page.fill("#create-user input[name=username]", name)
    await page.fill("#create-user input[name=password]", "a-long-password-1")
    await page.click("#create-user button[type=submit]")
    await expect(page.locator("#create-user-status")).to_contain_text("already taken")
    await screenshot(page, "admin")


async def test_narrow_screen_all_symbols_theme_and_logout(
    serve_app: ServeApp,
    open_tab: OpenTab,
    user: UserLogin,
    publisher: Publisher,
    pick_symbols: Callable[[int], Awaitable[list[str]]],
) -> None:
    served = await serve_app()
    tab = await open_tab(served, user, width=390, height=844)
    page = tab.page
    # Feed filters come from the URL, so a view can be bookmarked.
    await page.goto("/?tier=hourly&confidence_min=0.8")
    await expect(page.locator("#filter-tier")).to_have_value("hourly")
    await expect(page.locator("#filter-conf")).to_have_value("0.8")
    watched, stranger = await pick_symbols(2)
    await page.fill("#symbol-search", watched)
    await page.keyboard.press("Enter")
    await expect(page.locator("#wl-rows tr")).to_have_count(1)
    # The watchlist sits above the feed and nothing overflows sideways.
    watch = await page.locator(".watchlist").bounding_box()
    feed = await page.locator(".feed").bounding_box()
    assert watch is not None and feed is not None and watch["y"] < feed["y"]
    assert await page.evaluate("document.documentElement.scrollWidth") <= 390

    # "All symbols" subscribes "*": a symbol off the watchlist shows too.
    await page.check("#all-symbols")
    await expect(page).to_have_url(re.compile(r"all=1"))
    await page.wait_for_function("window.tickstock.live.isSubscribed('*')")
    anywhere = event(stranger, "Anywhere", tier="hourly", confidence=0.88)
    await publisher.publish(CHANNEL, anywhere)
    await expect(row(page, anywhere)).to_be_visible()
    await expect(page.locator("#sp-chart")).to_have_attribute("data-bars", re.compile(r"^\d+$"))
    await screenshot(page, "dashboard-narrow")

    # The theme switch is kept on the server: it survives a reload.
    assert await page.get_attribute("html", "data-theme") == "dark"
    await page.click(".user-menu summary")
    await page.click("#theme-toggle")
    await expect(page.locator("html")).to_have_attribute("data-theme", "light")
    await page.wait_for_load_state("networkidle")
    await page.reload()
    await expect(page.locator("html")).to_have_attribute("data-theme", "light")
    await screenshot(page, "dashboard-light")

    # Log out (POST with the CSRF token): back to the login page, and the session is gone.
    await page.click(".user-menu summary")
    await page.click("#logout-form button")
    await expect(page).to_have_url(re.compile(r"/login"))
    await page.goto("/history")
    await expect(page).to_have_url(re.compile(r"/login\?next=%2Fhistory"))


async def test_vendor_files_are_served_from_node_modules(serve_app: ServeApp) -> None:
    import aiohttp

    from tickstock.web.assets import vendor_version

    served = await serve_app()
    version = vendor_version("socket.io.js")
    async with aiohttp.ClientSession() as session:
        url = f"{served.url}/static/vendor/socket.io.js?v={version}"
        async with session.get(url) as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/javascript")
            assert response.headers["Content-Encoding"] == "gzip"
            assert "immutable" in response.headers["Cache-Control"]
            assert "export" in await response.text()
            etag = response.headers["ETag"]
        async with session.get(url, headers={"If-None-Match": etag}) as response:
            assert response.status == 304
        async with session.get(f"{served.url}/static/vendor/lightweight-charts.js") as response:
            assert response.status == 200
            assert "max-age=3600" in response.headers["Cache-Control"]
            assert "createChart" in await response.text()
        async with session.get(f"{served.url}/static/vendor/..%2Fpackage.json") as response:
            assert response.status == 404
