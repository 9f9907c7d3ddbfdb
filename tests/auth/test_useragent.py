"""Sessions name the browser: a maintained parser, not a hand-written pattern."""

from __future__ import annotations

import pytest

from tickstock.auth.useragent import describe_agent, describe_agents

IPHONE_SAFARI_17 = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15"
    " (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
)


@pytest.mark.parametrize(
    ("agent", "name"),
    [
        (IPHONE_SAFARI_17, "Mobile Safari 17 on iOS 17"),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko)"
            " Chrome/120.0.0.0 Safari/537.36 Edg/120.0.0.0",
            "Edge 120 on Windows 10",
        ),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.1; rv:121.0) Gecko/20100101 Firefox/121.0",
            "Firefox 121 on Mac OS X 14",
        ),
        ("curl/8.5.0", "curl 8"),
        ("Python/3.11 aiohttp/3.9.1", "Python aiohttp 3"),
        (None, "Unknown browser"),
        ("test-agent/0", "test-agent/0"),
    ],
)
def test_a_session_names_its_browser(agent: str | None, name: str) -> None:
    assert describe_agent(agent) == name


async def test_names_are_made_off_the_event_loop() -> None:
    assert await describe_agents([IPHONE_SAFARI_17, None]) == [
        "Mobile Safari 17 on iOS 17",
        "Unknown browser",
    ]
