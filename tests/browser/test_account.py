"""The Account page in a real browser: sessions signed out elsewhere, tokens, password change."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import expect

from tests.support.auth import MakeUser
from tests.support.browser import OpenTab, ServeApp, screenshot

pytestmark = pytest.mark.browser

# A signed-out tab's requests and socket are refused: expected there.
SIGNED_OUT = re.compile(r"status of 401|WebSocket connection to .* failed")


async def test_account_page_signs_out_another_browser_and_makes_tokens(
    serve_app: ServeApp, open_tab: OpenTab, make_user: MakeUser
) -> None:
    served = await serve_app()
    user = await make_user()
    elsewhere = await open_tab(served, user)
    elsewhere.allowed.append(SIGNED_OUT)
    await elsewhere.page.goto("/")
    await expect(elsewhere.page.locator("#conn")).to_have_attribute("data-state", "live")

    tab = await open_tab(served, user)
    page = tab.page
    await page.goto("/")
    await page.click(".user-menu summary")
    await page.click("#account-link")
    await expect(page).to_have_url(f"{served.url}/account")
    rows = page.locator("#session-rows tr")
    await expect(rows).to_have_count(2)
    await expect(page.locator('#session-rows tr[data-current="true"]')).to_contain_text(
        "this browser"
    )

    # Sign the other browser out: its socket is dropped and it is back at the login page.
    await page.locator('#session-rows tr[data-current="false"] button.revoke').click()
    await expect(rows).to_have_count(1)
    await expect(elsewhere.page.locator("#conn")).not_to_have_attribute("data-state", "live")
    await elsewhere.page.reload()
    await expect(elsewhere.page).to_have_url(re.compile(r"/login\?next=%2F$"))

    # A token, shown once with a curl line that works.
    await expect(page.locator("#tokens-status")).to_contain_text("No API tokens yet")
    await page.fill("#token-name", "my script")
    await page.click("#token-form button[type=submit]")
    await expect(page.locator("#token-created")).to_be_visible()
    token = (await page.locator("#token-value").text_content() or "").strip()
    curl = await page.locator("#token-curl").text_content() or ""
    assert f"Authorization: Bearer {token}" in curl and served.url in curl
    response = await page.request.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status == 200
    listed = page.locator("#token-rows tr", has_text="my script")
    await expect(listed).to_be_visible()
    await screenshot(page, "account")
    await listed.get_by_role("button", name="Revoke").click()
    await expect(listed).to_have_count(0)
    # A new browser context: no cookie, only the (revoked) token.
    other = await open_tab(served)
    response = await other.page.request.get(
        f"{served.url}/api/auth/me", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status == 401

    # Password change: the current password is required, then the new one works.
    tab.allowed.append(re.compile(r"status of 403 .*/api/user/password\)$"))
    await page.fill("#current-password", "wrong-password")
    await page.fill("#new-password", "a-brand-new-password")
    await page.click("#password-form button[type=submit]")
    await expect(page.locator("#password-result")).to_contain_text("not right")
    await page.fill("#current-password", user.password)
    await page.fill("#new-password", "a-brand-new-password")
    await page.click("#password-form button[type=submit]")
    await expect(page.locator("#password-result")).to_contain_text("Password changed")
    await page.goto("/")
    await expect(page.locator("#conn")).to_have_attribute("data-state", "live")
