"""What a new user meets in the first hour, at desktop (1440 px) and phone (390 px) width."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable

import asyncpg
import orjson
import pytest
from playwright.async_api import Page, expect

from tests.support.auth import MakeUser, UserLogin
from tests.support.browser import (
    CHANNEL,
    SOCKET_REFUSED,
    OpenTab,
    ServeApp,
    event,
    row,
    wait_subscribed,
)
from tests.support.realtime import Publisher
from tickstock.detection import DETECTION_EXAMPLE

pytestmark = pytest.mark.browser

WIDTHS = [pytest.param(1440, id="desktop"), pytest.param(390, id="phone")]


@pytest.mark.parametrize("width", WIDTHS)
async def test_the_api_docs_are_one_click_away(
    serve_app: ServeApp, open_tab: OpenTab, make_user: MakeUser, width: int
) -> None:
    served = await serve_app()
    tab = await open_tab(served, await make_user(), width=width, height=900)
    page = tab.page
    await page.goto("/account")
    # From the account menu on every page...
    await page.click(".user-menu summary")
    await expect(page.locator("#docs-link")).to_be_visible()
    # ...and where a token is made.
    await expect(page.locator("#token-docs-link")).to_be_visible()
    await page.click("#token-docs-link")
    await expect(page).to_have_url(f"{served.url}/docs")
    await expect(page.locator("#detection")).to_contain_text("Example")
    await expect(page.locator("#live")).to_contain_text('{"symbols": ["AAPL", "MSFT"]')
    assert "SPEC" not in await page.content()


@pytest.mark.parametrize("width", WIDTHS)
async def test_a_password_error_does_not_outlive_its_attempt(
    serve_app: ServeApp, open_tab: OpenTab, make_user: MakeUser, width: int
) -> None:
    served = await serve_app()
    user = await make_user()
    tab = await open_tab(served, user, width=width, height=900)
    tab.allowed.append(re.compile(r"status of 403 .*/api/user/password\)$"))
    page = tab.page
    await page.goto("/account")
    result = page.locator("#password-result")
    await page.fill("#current-password", "wrong-password")
    await page.fill("#new-password", "a-brand-new-password")
    await page.click("#password-form button[type=submit]")
    await expect(result).to_contain_text("not right")
    await expect(result).to_be_visible()
    # A different mistake (a new password too short: the browser itself refuses it): the old
    # message no longer stands beside it.
    await page.fill("#current-password", user.password)
    await page.fill("#new-password", "short")
    await page.click("#password-form button[type=submit]")
    await expect(result).to_be_hidden()
    await page.fill("#new-password", "a-brand-new-password")
    await page.click("#password-form button[type=submit]")
    await expect(result).to_contain_text("Password changed")
    await expect(result).to_be_visible()  # it was written into a hidden box


# Elements that scroll sideways by design (wide tables inside their panel) are the boundary:
# what is inside them may be wider, they themselves may not.
_LAYOUT = """() => {
  const doc = document.documentElement;
  const problems = [];
  const name = (e) => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '')
    + (typeof e.className === 'string' && e.className ? '.' + e.className.split(' ')[0] : '');
  const visible = (e) => { const r = e.getBoundingClientRect();
    return r.width > 0 && r.height > 0 && getComputedStyle(e).visibility !== 'hidden'; };
  if (doc.scrollWidth > doc.clientWidth + 1) problems.push('page scrolls sideways');
  const header = document.querySelector('.topbar');
  for (const e of header ? [header, ...header.querySelectorAll('*')] : []) {
    const scrolls = e === header || ['auto', 'scroll'].includes(getComputedStyle(e).overflowX);
    if (visible(e) && scrolls && e.scrollWidth > e.clientWidth + 1) {
      problems.push('header scrolls sideways: ' + name(e));
      break;
    }
  }
  for (const range of document.querySelectorAll('.range')) {
    const tops = [...range.querySelectorAll('input')].map((i) => Math.round(i.getBoundingClientRect().top));
    if (new Set(tops).size > 1) problems.push('a range wraps: ' + range.getAttribute('aria-label'));
  }
  for (const panel of document.querySelectorAll('.panel')) {
    if (!visible(panel)) continue;
    const box = panel.getBoundingClientRect();
    for (const e of panel.querySelectorAll('*')) {
      if (!visible(e) || e.closest('.table-wrap, .chart, [data-scroll]') && !e.matches('.table-wrap, .chart, [data-scroll]')) continue;
      const r = e.getBoundingClientRect();
      if (r.right > box.right + 1 || r.left < box.left - 1) {
        problems.push(name(e) + ' overflows ' + name(panel));
        break;
      }
    }
  }
  for (const cell of document.querySelectorAll('td, th')) {
    const style = getComputedStyle(cell);
    // A long name may end in an ellipsis when its full text is on hover; nothing else is cut.
    const hinted = style.textOverflow === 'ellipsis' && (cell.title || cell.querySelector('[title]'));
    if (visible(cell) && cell.scrollWidth > cell.clientWidth + 1 && style.overflow !== 'visible' && !hinted)
      problems.push('clipped cell: ' + cell.textContent.trim().slice(0, 30));
  }
  // On a desktop screen a table fits its panel: no column hidden behind a sideways scroll.
  if (doc.clientWidth >= 1200) {
    for (const wrap of document.querySelectorAll('.table-wrap')) {
      if (visible(wrap) && wrap.scrollWidth > wrap.clientWidth + 1)
        problems.push(name(wrap.querySelector('table') || wrap) + ' needs a sideways scroll');
    }
  }
  return problems.slice(0, 10);
}"""

PAGES = [
    ("/", "#conn[data-state=live]"),
    ("/history", "#history-rows tr"),
    ("/screener", "#screener-rows tr"),
    ("/market", "#gainers tr"),
    ("/analytics", "#hit-chart .hit-row"),
    ("/alerts", "#inbox-rows tr"),
    ("/account", "#session-rows tr"),
    ("/symbols/AAPL", "#detection-rows tr"),
]


async def _an_alert(auth_pool: asyncpg.Pool, user_id: int) -> None:
    """One alert in the user's inbox, with a long rule name (what a real inbox holds)."""
    data = {
        **DETECTION_EXAMPLE,
        "event_id": "first-hour-1",
        "offset": "1-0",
        "metadata": {},
        "source": "TickStockPL",
        "channel": "tickstock.events.patterns",
        "received_at": DETECTION_EXAMPLE["detected_at"],
    }
    event = {"type": "pattern_detected", "timestamp": 1795703400.0, "data": data}
    async with auth_pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO alerts (user_id, rule_name, event_id, symbol, event)"
            " VALUES ($1, $2, 'first-hour-1', 'AAPL', $3::jsonb)",
            user_id,
            "Strong breakouts on my technology and healthcare watchlist",
            orjson.dumps(event).decode(),
        )


@pytest.mark.parametrize("width", WIDTHS)
async def test_nothing_overflows_its_panel(
    serve_app: ServeApp,
    open_tab: OpenTab,
    make_user: MakeUser,
    auth_pool: asyncpg.Pool,
    width: int,
) -> None:
    served = await serve_app()
    user = await make_user()
    await _an_alert(auth_pool, user.id)
    tab = await open_tab(served, user, width=width, height=900)
    page = tab.page
    found = {}
    for path, ready in PAGES:
        await page.goto(path)
        await expect(page.locator(ready).first).to_be_attached()
        await page.wait_for_load_state("networkidle")
        problems = await page.evaluate(_LAYOUT)
        if problems:
            found[path] = problems
    assert not found, found


@pytest.mark.parametrize("width", WIDTHS)
async def test_one_day_format_and_a_stable_order_of_indicator_lines(
    serve_app: ServeApp, open_tab: OpenTab, make_user: MakeUser, width: int
) -> None:
    served = await serve_app()
    tab = await open_tab(served, await make_user(), width=width, height=900)
    page = tab.page
    await page.goto("/symbols/AAPL")
    first = page.locator("#detection-rows tr").first
    await expect(first).to_be_visible()
    written = (await first.locator("time").text_content() or "").strip()
    # The chart's hover tip writes the day of a marked bar as the table writes it.
    chart = page.locator("#chart")
    await expect(chart).to_have_attribute("data-markers", re.compile(r"^[1-9]\d*$"))
    day, x = await chart.evaluate(
        """el => { const days = [...el.priceChart.byDay.keys()].sort();
                   const day = days[days.length - 1]; return [day, el.priceChart.markerX(day)]; }"""
    )
    box = await chart.bounding_box()
    assert box is not None and x is not None
    await page.mouse.move(box["x"] + x, box["y"] + box["height"] * 0.4)
    tip = page.locator("#chart .chart-tip")
    await expect(tip).to_be_visible()
    tip_day = (await tip.text_content() or "").split(" · ")[0]
    marked_days = await chart.evaluate(
        """el => { const f = new Intl.DateTimeFormat(undefined, {year: "numeric", month: "short",
                     day: "2-digit", timeZone: "UTC"});
                   return [...el.priceChart.byDay.keys()].map(d => f.format(new Date(d + "T00:00:00Z"))); }"""
    )
    assert day and tip_day in marked_days, (tip_day, marked_days[-3:])
    # The table's "day, time" starts with a day in that same style.
    row_day = await page.evaluate(
        """iso => new Intl.DateTimeFormat(undefined, {year: "numeric", month: "short",
             day: "2-digit"}).format(new Date(iso))""",
        await first.locator("time").get_attribute("datetime"),
    )
    assert written.startswith(row_day), (written, row_day)
    # Bands read upper, middle, lower however the JSON orders them (stored and live differ).
    lines = await page.evaluate(
        """async () => { const m = await import("/static/js/indicators.js");
             return [m.formatIndicator({lower: 1, upper: 3, middle: 2}),
                     m.formatIndicator({middle: 2, lower: 1, upper: 3})]; }"""
    )
    assert lines == ["upper 3, middle 2, lower 1"] * 2


@pytest.mark.parametrize("width", WIDTHS)
async def test_an_empty_view_says_why_and_what_to_change(
    serve_app: ServeApp, open_tab: OpenTab, make_user: MakeUser, width: int
) -> None:
    served = await serve_app()
    tab = await open_tab(served, await make_user(), width=width, height=900)
    page = tab.page
    # Analytics of daily detections at +30 days: none has an outcome that far out yet.
    await page.goto("/analytics?tier=daily&horizon=d30")
    status = page.locator("#analytics-status")
    await expect(status).to_be_visible()
    await expect(status).to_contain_text("+30 trading days")
    await expect(status).to_contain_text("Choose a shorter horizon")
    # A screener whose filters exclude everything names them.
    await page.goto("/screener?tier=daily&price_min=999999")
    status = page.locator("#screener-status")
    await expect(status).to_be_visible()
    await expect(status).to_contain_text("price min")
    await expect(status).to_contain_text("widen or clear")
    # History with a pattern nobody detects.
    await page.goto("/history?pattern=NoSuchPattern")
    status = page.locator("#history-status")
    await expect(status).to_be_visible()
    await expect(status).to_contain_text("NoSuchPattern")
    await expect(status).to_contain_text("clear or widen")


@pytest.mark.parametrize("width", WIDTHS)
async def test_the_reconnect_note_never_says_nothing_was_missed_when_history_fell_short(
    serve_app: ServeApp,
    open_tab: OpenTab,
    user: UserLogin,
    publisher: Publisher,
    pick_symbols: Callable[[int], Awaitable[list[str]]],
    width: int,
) -> None:
    # History keeps 2 events a symbol: 4 missed ones cannot all be replayed.
    node_a = await serve_app(history_max_events=2)
    await serve_app(history_max_events=2)  # node B ingests while A is away
    (symbol,) = await pick_symbols(1)
    tab = await open_tab(node_a, user, width=width, height=900)
    tab.allowed.append(SOCKET_REFUSED)
    page = tab.page
    await page.goto("/")
    await page.fill("#symbol-search", symbol)
    await page.keyboard.press("Enter")
    await wait_subscribed(page, symbol)
    before = event(symbol, "Before")
    await publisher.publish(CHANNEL, before)
    await expect(row(page, before)).to_be_visible()
    await expect(page.locator("#symbol-panel")).to_have_attribute("data-state", "ready")

    await node_a.stop()
    await expect(page.locator("#conn")).to_have_attribute("data-state", "reconnecting")
    for index in range(4):
        await publisher.publish(CHANNEL, event(symbol, f"Missed {index}"))
    await asyncio.sleep(0.5)  # node B stores them (and trims the history to 2)
    await serve_app(port=node_a.port, history_max_events=2)
    await expect(page.locator("#conn")).to_have_attribute("data-state", "live", timeout=10_000)
    note = page.locator("#feed-note")
    await expect(note).to_contain_text(f"history did not reach back for {symbol}", timeout=5000)
    await expect(note).to_contain_text("may have been missed")
    await expect(note).not_to_contain_text("no events were missed")


def _spoken(name: str) -> str:
    """A pattern name as a user types it: "HeadAndShoulders" -> "head and shoulders"."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name).lower()


async def _names_offered(page: Page) -> list[str]:
    options = page.locator("#pattern-names option")
    await expect(options.first).to_be_attached()
    return [value for value in await options.evaluate_all("os => os.map(o => o.value)") if value]


@pytest.mark.parametrize("width", WIDTHS)
async def test_pattern_filters_offer_the_known_names_and_find_them_in_any_case(
    serve_app: ServeApp, open_tab: OpenTab, make_user: MakeUser, width: int
) -> None:
    served = await serve_app()
    tab = await open_tab(served, await make_user(), width=width, height=900)
    page = tab.page
    response = await page.request.get("/api/pattern-definitions", params={"enabled": "true"})
    known = {item["name"] for item in (await response.json())["data"]}
    assert known

    # History: the known names are offered, and one typed as words, in lower case, finds it.
    await page.goto("/history?tier=daily")
    rows = page.locator("#history-rows tr")
    await expect(rows.first).to_be_visible()
    assert known <= set(await _names_offered(page))
    shown = await rows.evaluate_all("rs => rs.map(r => r.cells[2].textContent)")
    name = max(set(shown), key=lambda n: sum(c.isupper() for c in n))  # the most words
    await page.fill("input[name=pattern]", _spoken(name))
    await page.click("#history-filters button[type=submit]")
    await expect(page.locator("#history-status")).to_be_hidden()
    await expect(rows.first).to_be_visible()
    found = await rows.evaluate_all("rs => rs.map(r => r.cells[2].textContent)")
    assert found and set(found) == {name}, (name, _spoken(name), set(found))

    # Screener: the same offer and the same reading of a name typed in any case.
    await page.goto("/screener")
    rows = page.locator("#screener-rows tr")
    await expect(rows.first).to_be_visible()
    assert known <= set(await _names_offered(page))
    name = await rows.first.locator("td").nth(3).text_content()
    assert name
    await page.fill("input[name=patterns]", _spoken(name).upper())
    await page.click("#screener-filters button[type=submit]")
    await expect(rows.first).to_be_visible()
    found = await rows.evaluate_all("rs => rs.map(r => r.cells[3].textContent)")
    assert found and set(found) == {name}, (name, set(found))

    # The alert rule editor offers the same names; no placeholder names a pattern nobody has.
    await page.goto("/alerts")
    assert known <= set(await _names_offered(page))
    for selector in ("#rule-patterns", "input[name=pattern]", "input[name=patterns]"):
        for placeholder in await page.locator(selector).evaluate_all(
            "els => els.map(e => e.placeholder)"
        ):
            suggested = {part.strip().removeprefix("e.g. ") for part in placeholder.split(",")}
            assert suggested <= known, (selector, suggested - known)
