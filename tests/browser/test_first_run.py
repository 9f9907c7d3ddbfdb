"""The first five minutes: `tickstock serve` with nothing configured, signed in, live at once."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from tests.support.browser import screenshot
from tests.support.quickstart import READY, READY_OWNERS_PASSWORD, QuickStart
from tickstock.vocab import DEMO_SYMBOLS

pytestmark = pytest.mark.browser

WIDTHS = [pytest.param(1440, id="desktop"), pytest.param(390, id="phone")]
# Every banner the dashboard raises, kept across page loads (the pages replace the document).
RECORD_BANNERS = """
new MutationObserver(() => {
  const seen = JSON.parse(sessionStorage.getItem("banners-seen") || "[]");
  for (const b of document.querySelectorAll(".banner .banner-text")) {
    if (!seen.includes(b.textContent)) seen.push(b.textContent);
  }
  sessionStorage.setItem("banners-seen", JSON.stringify(seen));
}).observe(document, { childList: true, subtree: true, characterData: true });
"""


def _when(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


async def test_quick_start_is_live_within_5_s_of_signing_in(
    tmp_path: Path, browser: Browser
) -> None:
    serve = QuickStart(tmp_path)  # nothing configured: the defaults of a fresh clone
    serve.start()
    context = None
    try:
        ready = await serve.ready()
        url, username, password = ready.groups()
        assert url == serve.url
        await asyncio.sleep(1.0)
        lines = [line for line in serve.log().splitlines() if line.strip()]
        assert READY.match(lines[-1]), lines[-5:]  # the last line of start-up
        assert sum(1 for line in lines if line.startswith("ready:")) == 1

        context = await browser.new_context(viewport={"width": 1280, "height": 800}, base_url=url)
        context.set_default_timeout(5000)
        page = await context.new_page()
        errors: list[str] = []
        page.on(
            "console",
            lambda m: errors.append(m.text) if m.type == "error" else None,  # type: ignore[func-returns-value]
        )
        page.on("pageerror", lambda error: errors.append(str(error)))
        await page.goto("/")
        await page.fill("#username", username)
        await page.fill("#password", password)
        await page.click("button[type=submit]")
        signed_in = time.monotonic()
        await expect(page).to_have_url(f"{url}/")

        # No click needed: the demo symbols are on the watchlist and their rows arrive.
        await expect(page.locator("#wl-rows tr")).to_have_count(len(DEMO_SYMBOLS))
        first = page.locator("#feed-rows tr").first
        await expect(first).to_be_visible(timeout=5000)
        assert time.monotonic() - signed_in < 5.0
        await expect(page.locator("#feed-empty")).to_be_hidden()
        await screenshot(page, "first-run")

        # The live detection is in the producer's tables: REST returns it within 5 s.
        symbol = await first.get_attribute("data-symbol")
        tier = await first.get_attribute("data-tier")
        pattern = await first.locator("td.pattern").text_content()
        detected = await first.locator("td.time time").get_attribute("datetime")
        assert symbol and tier and pattern and detected
        seen = time.monotonic()
        found = []
        while not found and time.monotonic() - seen < 5:
            response = await page.request.get(
                f"/api/patterns/{symbol}", params={"tier": tier, "limit": "50"}
            )
            assert response.status == 200
            found = [
                item
                for item in (await response.json())["data"]
                if item["pattern"] == pattern and _when(item["detected_at"]) == _when(detected)
            ]
        assert found, (symbol, tier, pattern, detected)
        assert not errors, errors
    finally:
        if context is not None:
            await context.close()
        serve.stop()


@pytest.mark.parametrize("width", WIDTHS)
async def test_the_demo_keeps_its_owners_password_and_shows_nothing_made_up(
    tmp_path: Path, browser: Browser, width: int
) -> None:
    """The quick start lived with: the demo's owner changes its password and restarts the
    service; meanwhile the dashboard shows no system alert the demo did not earn."""
    serve = QuickStart(tmp_path)
    serve.start()
    context = None
    try:
        url, username, first_password = (await serve.ready()).groups()
        started = time.monotonic()
        context = await browser.new_context(viewport={"width": width, "height": 844}, base_url=url)
        context.set_default_timeout(5000)
        await context.add_init_script(RECORD_BANNERS)
        page = await context.new_page()
        await page.goto("/")
        await page.fill("#username", username)
        await page.fill("#password", first_password)
        await page.click("button[type=submit]")
        await expect(page.locator("#feed-rows tr").first).to_be_visible()

        # The owner picks a password of their own on the Account page.
        chosen = "chosen-by-the-owner-1"
        await page.goto("/account")
        await page.fill("#current-password", first_password)
        await page.fill("#new-password", chosen)
        await page.click("#password-form button[type=submit]")
        await expect(page.locator("#password-result")).to_contain_text("Password changed")

        # Live for longer than the demo used to wait before its first made-up "feed lagging".
        await page.goto("/")
        await expect(page.locator("#feed-rows tr").first).to_be_visible()
        await asyncio.sleep(max(0.0, 25.0 - (time.monotonic() - started)))
        banners = await page.evaluate("JSON.parse(sessionStorage.getItem('banners-seen') || '[]')")
        # The demo keeps its schedule here, so it has nothing to report; anything it does
        # report says it is the demo.
        assert all(text.startswith("Demo producer") for text in banners), banners

        # A restart keeps the owner's password and their session.
        serve.stop()
        serve.start()
        again = await serve.ready(READY_OWNERS_PASSWORD)
        assert again.group(2) == username
        assert first_password not in serve.log().split("ready:")[-1]
        await page.reload()
        await expect(page).to_have_url(f"{url}/")
        await expect(page.locator("#feed-rows tr").first).to_be_visible()

        fresh = await browser.new_context(viewport={"width": width, "height": 844}, base_url=url)
        try:
            login = await fresh.new_page()
            for password, signed_in in ((first_password, False), (chosen, True)):
                await login.goto("/login")
                await login.fill("#username", username)
                await login.fill("#password", password)
                await login.click("button[type=submit]")
                if signed_in:
                    await expect(login).to_have_url(f"{url}/")
                else:
                    await expect(login.locator("#login-error")).to_be_visible()
                    assert login.url.endswith("/login")
        finally:
            await fresh.close()
    finally:
        if context is not None:
            await context.close()
        serve.stop()
