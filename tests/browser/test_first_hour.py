"""What a new user meets in the first hour, at desktop (1440 px) and phone (390 px) width."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import expect

from tests.support.auth import MakeUser
from tests.support.browser import OpenTab, ServeApp

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
