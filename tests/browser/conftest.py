"""Fixtures of the browser tests: the dashboard's npm packages, Chromium, signed-in tabs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from playwright.async_api import Browser, ConsoleMessage, async_playwright

from tests.support.auth import UserLogin, fresh_rate_limit, new_cookie_session
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, OpenTab, Tab
from tests.support.realtime import Publisher
from tests.support.served import ServedApp

# --------------------------------------------------------------------------- fixtures


@pytest.fixture(name="frontend", scope="module", autouse=True)
def _frontend() -> None:
    """Chromium, and the dashboard's npm packages installed as `tickstock serve` would (npm ci)."""
    if not Path(CHROMIUM).exists():  # pragma: no cover - CI installs it (.ci/run)
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    from tickstock.web.assets import FrontendError, ensure_frontend

    try:
        ensure_frontend()
    except FrontendError as exc:  # pragma: no cover - CI has npm
        pytest.skip(str(exc))


@pytest.fixture(name="browser", scope="module")
async def _browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture(name="settings_overrides")
def _settings_overrides(settings_overrides: dict[str, Any]) -> dict[str, Any]:
    # The form logins here must not share a rate-limit window with the login tests.
    return fresh_rate_limit(settings_overrides)


@pytest.fixture(name="publisher")
async def _publisher(redis_url: str) -> AsyncIterator[Publisher]:
    publisher = Publisher(redis_url)
    yield publisher
    await publisher.close()


@pytest.fixture(name="open_tab")
async def _open_tab(browser: Browser, auth_pool: asyncpg.Pool) -> AsyncIterator[OpenTab]:
    """Factory: a new tab on ``served``, signed in as ``user`` by cookie (or not at all).

    After the test, every tab must have logged no console error and thrown nothing.
    """
    tabs: list[Tab] = []

    async def open_tab(
        served: ServedApp,
        user: UserLogin | None = None,
        *,
        width: int = 1280,
        height: int = 800,
    ) -> Tab:
        context = await browser.new_context(
            viewport={"width": width, "height": height}, base_url=served.url
        )
        context.set_default_timeout(5000)
        if user is not None:
            _, cookie, _ = await new_cookie_session(auth_pool, served.app, user)
            name = served.app.config["SETTINGS"].cookie_name
            await context.add_cookies([{"name": name, "value": cookie, "url": served.url}])
        page = await context.new_page()
        tab = Tab(context, page)

        def on_console(message: ConsoleMessage) -> None:
            if message.type == "error":
                tab.errors.append(f"console: {message.text} ({message.location.get('url')})")

        page.on("console", on_console)
        page.on("pageerror", lambda error: tab.errors.append(f"exception: {error}"))
        tabs.append(tab)
        return tab

    yield open_tab
    errors = [e for tab in tabs for e in tab.unexpected_errors()]
    for tab in tabs:
        await tab.context.close()
    assert not errors, "the page logged errors:\n" + "\n".join(errors)


@pytest.fixture(name="pick_symbols")
def _pick_symbols(auth_pool: asyncpg.Pool) -> Callable[[int], Awaitable[list[str]]]:
    """``n`` random seeded symbols (the watchlist accepts known symbols only)."""

    async def pick(count: int) -> list[str]:
        async with auth_pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT symbol FROM symbols WHERE active ORDER BY random() LIMIT $1", count
            )
        return [row["symbol"] for row in rows]

    return pick
