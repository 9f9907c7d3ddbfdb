"""The Backtest page end to end: `tickstock serve` with nothing configured (its own local stack and
demo producer), in Chromium. Submit a backtest and watch its progress rise, read the result, download
the trades; cancel a second one mid-way; a job finishing on another page raises a toast.

The demo producer's pace (TICKSTOCK_DEMO_JOB_PACE seconds per symbol) gives the progress steps
time to be seen; the test waits on what the page shows, never on a fixed sleep.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, expect

from tests.support.browser import screenshot
from tests.support.quickstart import QuickStart

pytestmark = pytest.mark.browser

PACE = "0.4"
FIVE = ["AAPL", "MSFT", "NVDA", "AMZN", "GOOGL"]


@pytest.fixture(name="serve")
async def _serve(tmp_path: Path) -> AsyncIterator[tuple[str, str, str]]:
    serve = QuickStart(tmp_path, demo_job_pace=PACE)
    serve.start()
    try:
        url, username, password = (await serve.ready()).groups()
        yield url, username, password
    finally:
        serve.stop()


async def _job(page: Page, index: int = 0) -> Any:
    return page.locator("#bt-jobs .bt-job").nth(index)


async def _overflow(page: Page) -> int:
    return int(
        await page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
    )


async def _submit(page: Page, symbols: list[str]) -> str:
    await page.fill("#bt-symbols", ", ".join(symbols))
    count = await page.locator("#bt-jobs .bt-job").count()
    await page.click("#bt-submit")
    await expect(page.locator("#bt-jobs .bt-job")).to_have_count(count + 1)
    job_id = await page.locator("#bt-jobs .bt-job").first.get_attribute("data-job-id")
    assert job_id
    return job_id


async def test_backtest_from_the_form_to_the_trades_csv(
    serve: tuple[str, str, str], browser: Browser, tmp_path: Path
) -> None:
    url, username, password = serve
    context = await browser.new_context(
        viewport={"width": 1440, "height": 900}, base_url=url, accept_downloads=True
    )
    context.set_default_timeout(10_000)
    page = await context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)  # type: ignore[func-returns-value]
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        await page.goto("/login")
        await page.fill("#username", username)
        await page.fill("#password", password)
        await page.click("button[type=submit]")
        await expect(page).to_have_url(f"{url}/")
        await page.click("nav.mainnav >> text=Backtest")
        await expect(page).to_have_url(f"{url}/backtest")
        await expect(page.locator("#bt-patterns input[name=patterns]").first).to_be_checked()
        assert await page.input_value("input[name=end_date]")

        # Symbols come from the watchlist, a search or a pasted list.
        await page.click("#bt-watchlist")
        await expect(page.locator("#bt-symbols")).to_have_value(re.compile(r"^AAPL, MSFT"))
        await page.fill("#bt-symbols", "")
        await page.fill("#bt-search", "nvda")
        await page.click("#bt-add")
        await expect(page.locator("#bt-symbols")).to_have_value("NVDA")

        # A field error from the API shows beside its field.
        await page.fill("input[name=stop_loss_pct]", "150")
        await page.fill("#bt-symbols", "AAPL")
        await page.click("#bt-submit")
        await expect(page.locator('.field-error[data-field="stop_loss_pct"]')).not_to_be_empty()
        await expect(page.locator("input[name=stop_loss_pct]")).to_have_attribute(
            "aria-invalid", "true"
        )
        await page.fill("input[name=stop_loss_pct]", "5")

        # Progress rises live, step by step, to the result.
        await page.evaluate(
            """() => {
              window.seenProgress = [];
              new MutationObserver(() => {
                const bar = document.querySelector('#bt-jobs .bt-job .bt-progress');
                if (bar) window.seenProgress.push(Number(bar.getAttribute('aria-valuenow')));
              }).observe(document.getElementById('bt-jobs'), {subtree: true, childList: true, attributes: true});
            }"""
        )
        job_id = await _submit(page, FIVE)
        job = page.locator(f'#bt-jobs .bt-job[data-job-id="{job_id}"]')
        await expect(job.locator(".bt-symbol")).to_have_text(re.compile("|".join(FIVE)))
        await expect(job).to_have_attribute("data-status", "completed", timeout=30_000)
        seen = await page.evaluate("window.seenProgress")
        assert seen == sorted(seen), seen
        steps = {v for v in seen if 0 < v < 100}
        assert len(steps) >= 3, seen  # several intermediate steps were shown
        await job.locator(".bt-open").click()
        await expect(page).to_have_url(re.compile(rf"job={job_id}"))
        result = page.locator("#bt-result")
        await expect(result).to_have_attribute("data-state", "completed")
        served = (await (await page.request.get(f"/api/jobs/{job_id}")).json())["data"]
        metrics = served["results"]["metrics"]
        trades = served["results"]["trades"]
        assert trades, "the seeded period should trade"
        tiles = page.locator("#bt-tiles .bt-tile")
        await expect(tiles).to_have_count(8)
        await expect(tiles.nth(2)).to_contain_text(str(int(metrics["total_trades"])))
        await expect(page.locator("#bt-equity canvas").first).to_be_visible()
        shown = min(len(trades), 25)
        await expect(page.locator("#bt-trade-rows tr")).to_have_count(shown)
        await expect(page.locator("#bt-pattern-rows tr").first).to_be_visible()
        # Sorting by return puts the best trade first.
        await page.click('#bt-trades th[data-sort="return"] button')
        await page.click('#bt-trades th[data-sort="return"] button')
        best = max(trades, key=lambda t: t["return"])
        await expect(page.locator("#bt-trade-rows tr").first).to_contain_text(best["symbol"])
        await screenshot(page, "backtest-result")
        assert await _overflow(page) <= 1

        async with page.expect_download() as info:
            await page.click("#bt-csv")
        download = await info.value
        rows = list(csv.DictReader(io.StringIO((await download.path()).read_text())))
        assert len(rows) == len(trades)
        assert {"symbol", "pattern", "entry_date", "exit_date", "exit_reason"} <= set(rows[0])

        # On a phone: nothing wider than the screen.
        await page.set_viewport_size({"width": 390, "height": 844})
        await expect(page.locator("#bt-equity canvas").first).to_be_visible()
        assert await _overflow(page) <= 1
        await screenshot(page, "backtest-result-390")
        await page.set_viewport_size({"width": 1440, "height": 900})

        # A second one, cancelled mid-way: it stops short of the end.
        twenty = [
            r["symbol"]
            for r in (await (await page.request.get("/api/symbols?limit=20")).json())["data"]
        ]
        second = await _submit(page, twenty)
        job = page.locator(f'#bt-jobs .bt-job[data-job-id="{second}"]')
        await expect(job.locator(".bt-progress")).not_to_have_attribute("aria-valuenow", "0")
        await job.locator(".bt-cancel").click()
        await expect(job).to_have_attribute("data-status", "cancelled")
        stopped = int(await job.locator(".bt-progress").get_attribute("aria-valuenow") or "100")
        assert 0 < stopped < 100
        await expect(job.locator(".bt-cancel")).to_have_count(0)

        # A job that finishes while the user is on another page raises a toast there.
        third = await _submit(page, twenty[:10])
        await page.goto("/analytics")
        toast = page.locator(f'#toasts .toast-job[data-job-id="{third}"]')
        await expect(toast).to_be_visible(timeout=30_000)
        await expect(toast).to_have_attribute("href", f"/backtest?job={third}")
        # ... and a bell entry, counted until the Backtest page is seen again.
        bell = page.locator("#bell")
        await expect(bell).to_have_attribute("data-extra", "1")
        await expect(bell).to_have_attribute("aria-label", re.compile("1 finished job"))
        href = await toast.get_attribute("href")
        await page.reload()
        await expect(bell).to_have_attribute("data-extra", "1")
        await page.goto(href or "")
        await expect(page.locator("#bt-result")).to_have_attribute("data-state", "completed")
        await expect(bell).to_have_attribute("data-extra", "0")

        # The demo login is an admin: a data load with its progress, and everyone's jobs.
        await page.fill("#dl-symbols", "AAPL, MSFT")
        await page.fill("#dl-form input[name=years]", "2")
        await page.click("#dl-submit")
        load = page.locator("#bt-jobs .bt-job").first
        await expect(load.locator(".bt-job-title")).to_have_text("Data load of AAPL, MSFT")
        await expect(load).to_have_attribute("data-status", "completed", timeout=30_000)
        await expect(load).to_contain_text(re.compile(r"[1-9]\d* bars added over 2 symbols"))
        await page.check("#bt-everyone")
        await expect(page.locator("#bt-jobs .bt-job")).to_have_count(4)
        await expect(page.locator("#bt-jobs .bt-job").first).to_contain_text(username)
        # The one 400 is the field error asked for above (Chromium logs every 4xx fetch).
        assert [e for e in errors if "status of 400" not in e] == [], errors
    finally:
        await context.close()
