"""The Screener, Market and Analytics pages in a real browser against a served, seeded app.

Figures on the page are compared with the API's answers for the same filters (which the API
tests check against the tables); filters go into the URL and change the rows; exports download.
"""

from __future__ import annotations

import csv
import io
import re
from typing import Any

import pytest
from playwright.async_api import Page, expect

from tests.support.auth import UserLogin
from tests.support.browser import OpenTab, ServeApp, screenshot

pytestmark = pytest.mark.browser


async def _api(page: Page, path: str) -> Any:
    response = await page.context.request.get(path)
    assert response.ok, await response.text()
    return await response.json()


async def _download(page: Page, selector: str) -> list[dict[str, str]]:
    async with page.expect_download() as info:
        await page.click(selector)
    download = await info.value
    path = await download.path()
    assert download.suggested_filename.endswith(".csv")
    return list(csv.DictReader(io.StringIO(path.read_text())))


async def test_screener_page(serve_app: ServeApp, open_tab: OpenTab, user: UserLogin) -> None:
    served = await serve_app()
    tab = await open_tab(served, user)
    page = tab.page
    await page.goto("/screener?min_confidence=0.8")
    rows = page.locator("#screener-rows tr")
    expected = await _api(page, "/api/patterns/scan?min_confidence=0.8&limit=50")
    await expect(rows).to_have_count(len(expected["data"]))
    shown = await rows.evaluate_all("rs => rs.map(r => [r.dataset.symbol, r.cells[3].textContent])")
    assert shown == [[r["symbol"], r["pattern"]] for r in expected["data"]]
    await expect(page.locator("input[name=min_confidence]")).to_have_value("0.8")
    await screenshot(page, "screener")

    # A filter goes into the URL and narrows the rows.
    await page.fill("input[name=sectors]", "Energy")
    await page.click("#screener-filters button[type=submit]")
    await expect(page).to_have_url(re.compile(r"sectors=Energy"))
    energy = await _api(page, "/api/patterns/scan?min_confidence=0.8&sectors=Energy&limit=50")
    await expect(rows).to_have_count(len(energy["data"]))
    sectors = await rows.evaluate_all("rs => rs.map(r => r.cells[2].textContent)")
    assert sectors and set(sectors) == {"Energy"}

    # Sorting by a column: in the URL, rows in that order.
    await page.click("#screener-table th[data-sort=rs] button")
    await expect(page).to_have_url(re.compile(r"sort=-rs"))
    await expect(page.locator("#screener-table th[data-sort=rs]")).to_have_attribute(
        "aria-sort", "descending"
    )
    values = await rows.evaluate_all("rs => rs.map(r => r.cells[9].textContent)")
    numbers = [float(v) for v in values if v != "—"]
    assert numbers == sorted(numbers, reverse=True)

    # Export: the same rows as a CSV file.
    exported = await _download(page, "#screener-export")
    api_rows = await _api(
        page, "/api/patterns/scan?min_confidence=0.8&sectors=Energy&sort=-rs&limit=500"
    )
    assert [r["symbol"] for r in exported] == [r["symbol"] for r in api_rows["data"]]

    # A row opens the symbol view.
    first = await rows.first.get_attribute("data-symbol")
    await rows.first.locator("td").nth(3).click()
    await expect(page).to_have_url(re.compile(rf"/symbols/{re.escape(first or '')}$"))


async def test_market_page(serve_app: ServeApp, open_tab: OpenTab, user: UserLogin) -> None:
    served = await serve_app()
    tab = await open_tab(served, user)
    page = tab.page
    await page.goto("/market")
    overview = (await _api(page, "/api/market/overview"))["data"]
    market = overview["market"]
    for key in ("advancers", "decliners", "new_highs", "new_lows"):
        await expect(page.locator(f'#market-stats dd[data-stat="{key}"]')).to_have_text(
            str(market[key])
        )
    # The day written as every page writes a day.
    written = await page.evaluate(
        """day => new Intl.DateTimeFormat(undefined, {year: "numeric", month: "short",
            day: "2-digit", timeZone: "UTC"}).format(new Date(day + "T00:00:00Z"))""",
        overview["date"],
    )
    await expect(page.locator("#market-date")).to_contain_text(written)
    sectors = page.locator("#sector-rows tr")
    await expect(sectors).to_have_count(len(overview["sectors"]))
    # The heat-map: each share cell is coloured.
    colours = await page.locator("#sector-rows td.heat[data-share]").evaluate_all(
        "cs => cs.map(c => getComputedStyle(c).backgroundColor)"
    )
    assert colours and all(c not in ("", "rgba(0, 0, 0, 0)") for c in colours)
    await expect(page.locator("#gainers tbody tr")).to_have_count(len(overview["gainers"]))
    await expect(page.locator("#gainers tbody tr").first).to_contain_text(
        overview["gainers"][0]["symbol"]
    )
    await expect(page.locator("#losers tbody tr")).to_have_count(len(overview["losers"]))
    # The breadth chart has the series of the chosen span; the span is in the URL.
    await expect(page.locator("#breadth-chart")).to_have_attribute("data-points", "90")
    await expect(page.locator("#breadth-chart canvas").first).to_be_visible()
    await page.select_option("#breadth-days", "30")
    await expect(page).to_have_url(re.compile(r"days=30"))
    await expect(page.locator("#breadth-chart")).to_have_attribute("data-points", "30")
    await screenshot(page, "market")


@pytest.mark.parametrize(
    ("path", "ready"),
    [
        ("/market", "#sector-rows tr"),
        ("/screener", "#screener-rows tr"),
        ("/analytics", "#hit-chart .hit-row"),
    ],
)
async def test_pages_on_a_narrow_screen(
    serve_app: ServeApp, open_tab: OpenTab, user: UserLogin, path: str, ready: str
) -> None:
    served = await serve_app()
    tab = await open_tab(served, user, width=390, height=800)
    page = tab.page
    await page.goto(path)
    await expect(page.locator(ready).first).to_be_visible()
    overflow = await page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    wide = await page.evaluate(
        "[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right"
        " > document.documentElement.clientWidth + 1).filter(e => !e.closest('.table-wrap, .mainnav')).slice(0, 8).map(e => e.tagName + '#' + e.id"
        " + '.' + e.className)"
    )
    assert overflow <= 1, wide  # wide tables scroll inside their panel, not the page


async def test_analytics_page(serve_app: ServeApp, open_tab: OpenTab, user: UserLogin) -> None:
    served = await serve_app()
    tab = await open_tab(served, user)
    page = tab.page
    await page.goto("/analytics?tier=combo")
    expected = (await _api(page, "/api/analytics/patterns?tier=combo"))["data"]
    rows = page.locator("#analytics-rows tr")
    await expect(rows).to_have_count(len(expected))
    bars = page.locator("#hit-chart .hit-row")
    await expect(bars).to_have_count(len(expected))
    # Default order: hit rate at +5 days, highest first; the chart shows the same figures.
    by_rate = sorted(expected, key=lambda i: (-(i["d5"]["hit_rate"] or -1), i["pattern"]))
    shown = await rows.evaluate_all("rs => rs.map(r => r.dataset.pattern)")
    assert shown == [i["pattern"] for i in by_rate]
    rates = await bars.evaluate_all("rs => rs.map(r => r.dataset.rate)")
    assert rates == [f"{i['d5']['hit_rate']:.4f}" for i in by_rate]
    first = by_rate[0]["d5"]
    await expect(rows.first.locator("td").nth(4)).to_have_text(
        f"{first['hit_rate_low'] * 100:.1f}% \u2013 {first['hit_rate_high'] * 100:.1f}%"
    )
    await screenshot(page, "analytics")

    # Sorting by a column reorders the rows.
    await page.click("#analytics-table th[data-sort=pattern] button")
    await expect(page).to_have_url(re.compile(r"sort=pattern"))
    shown = await rows.evaluate_all("rs => rs.map(r => r.dataset.pattern)")
    assert shown == sorted(i["pattern"] for i in expected)

    # Filters: into the URL, and the rows follow.
    await page.fill("input[name=sector]", "Energy")
    await page.click("#analytics-filters button[type=submit]")
    await expect(page).to_have_url(re.compile(r"sector=Energy"))
    energy = (await _api(page, "/api/analytics/patterns?tier=combo&sector=Energy"))["data"]
    await expect(rows).to_have_count(len(energy))
    details = await rows.evaluate_all("rs => rs.map(r => Number(r.cells[1].textContent))")
    assert sorted(details) == sorted(i["detections"] for i in energy)

    exported = await _download(page, "#analytics-export")
    assert sorted(r["pattern"] for r in exported) == sorted(i["pattern"] for i in energy)
    assert all(r["d5.samples"] for r in exported)
