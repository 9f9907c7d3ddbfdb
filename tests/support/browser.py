"""Shared helpers of the browser tests: Chromium, tabs with their console errors, screenshots,
producer events and the dashboard's rows (the fixtures are in tests/browser/conftest.py)."""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.async_api import BrowserContext, Page, expect

from tests.support.env import ROOT
from tests.support.realtime import pattern
from tests.support.served import ServedApp
from tickstock.vocab import PATTERNS_CHANNEL

SCREENSHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
CHANNEL = PATTERNS_CHANNEL
# Chromium's own report of a refused WebSocket while a server is down is expected there.
SOCKET_REFUSED = re.compile(r"WebSocket connection to .* failed")

ServeApp = Callable[..., Awaitable[ServedApp]]


@dataclass
class Tab:
    """A page in its own browser context, with the console errors it logged."""

    context: BrowserContext
    page: Page
    errors: list[str] = field(default_factory=list)
    allowed: list[re.Pattern[str]] = field(default_factory=list)

    def unexpected_errors(self) -> list[str]:
        return [e for e in self.errors if not any(p.search(e) for p in self.allowed)]


OpenTab = Callable[..., Awaitable[Tab]]


async def screenshot(page: Page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True, animations="disabled")
    return path


def event(symbol: str, name: str = "Breakout", **extra: Any) -> dict[str, Any]:
    """A producer pattern message with a known event id, detected now."""
    return pattern(
        symbol,
        name,
        event_id=f"e2e-{secrets.token_hex(6)}",
        timestamp=time.time(),
        **extra,
    )


def row(page: Page, message: dict[str, Any]) -> Any:
    return page.locator(f'#feed-rows tr[data-event-id="{message["event_id"]}"]')


async def wait_subscribed(page: Page, symbol: str) -> None:
    await expect(page.locator(f'#wl-rows tr[data-symbol="{symbol}"]')).to_have_attribute(
        "data-subscribed", "true"
    )
