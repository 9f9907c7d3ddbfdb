"""Security headers on every response of the served app, and no server banner."""

from __future__ import annotations

from typing import Any

import aiohttp

from tests.support.auth import UserLogin
from tests.support.served import ServedApp


def _framing_refused(headers: Any) -> None:
    assert headers["X-Frame-Options"] == "DENY"
    csp = headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp
    assert "object-src 'none'" in csp


async def test_every_response_is_nosniff_without_a_server_banner(
    served: ServedApp, auth_headers: dict[str, str]
) -> None:
    requests = [
        ("GET", "/health", {}),
        ("GET", "/api/symbols", auth_headers),
        ("GET", "/api/no-such-thing", auth_headers),
        ("GET", "/api/symbols", {}),  # 401
        ("GET", "/static/css/app.css", {}),
        ("GET", "/socket.io/?EIO=4&transport=polling", {}),
        ("POST", "/socket.io/?EIO=4&transport=polling&sid=nope", {"Content-Length": "99999999"}),
    ]
    async with aiohttp.ClientSession() as http:
        for method, path, headers in requests:
            async with http.request(method, served.url + path, headers=headers) as response:
                await response.read()
                assert response.headers.get("X-Content-Type-Options") == "nosniff", path
                assert "Server" not in response.headers, (path, response.headers.get("Server"))


async def test_html_pages_refuse_framing_and_carry_a_csp(
    served: ServedApp, user: UserLogin, served_session: Any
) -> None:
    session = await served_session(served, user)
    for path in ("/docs", "/login", "/", "/symbols", "/symbols/ZZZZ9Q"):
        async with session.get(
            served.url + path, allow_redirects=False, headers={"Accept": "text/html"}
        ) as response:
            assert response.content_type == "text/html", path
            assert response.headers["X-Content-Type-Options"] == "nosniff", path
            _framing_refused(response.headers)
    async with (
        aiohttp.ClientSession() as anonymous,
        anonymous.get(served.url + "/login") as response,
    ):
        assert response.status == 200
        _framing_refused(response.headers)
        assert "script-src 'self'" in response.headers["Content-Security-Policy"]


async def test_dashboard_keeps_its_nonce_policy(
    served: ServedApp, user: UserLogin, served_session: Any
) -> None:
    session = await served_session(served, user)
    async with session.get(served.url + "/") as response:
        assert response.status == 200
        csp = response.headers.getall("Content-Security-Policy")
        assert len(csp) == 1 and "'nonce-" in csp[0]
