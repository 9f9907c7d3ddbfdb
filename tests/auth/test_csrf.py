"""Login CSRF on the form login, and the one exact same-origin rule (scheme, host and port)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.support.auth import UserLogin, fresh_rate_limit
from tickstock.auth import same_origin


@pytest.fixture(name="settings_overrides")
def _settings_overrides(settings_overrides: dict[str, Any]) -> dict[str, Any]:
    return fresh_rate_limit(settings_overrides)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("http://localhost:8000", True),
        ("http://LOCALHOST:8000/some/page?x=1", True),
        ("https://localhost:8000", False),  # scheme differs
        ("http://localhost:8001", False),  # port differs
        ("http://localhost", False),
        ("http://localhost:8000.evil.example", False),
        ("http://evil.example", False),
        ("null", False),
        ("", False),
        ("localhost:8000", False),
        ("https://trusted.example", True),
        ("https://trusted.example:443", True),
        ("http://trusted.example", False),
    ],
)
def test_same_origin_compares_scheme_host_and_port(source: str, expected: bool) -> None:
    assert same_origin(source, "http", "localhost:8000", ["https://trusted.example"]) is expected


def test_default_ports_are_the_same_origin() -> None:
    assert same_origin("https://example.com", "https", "example.com:443", [])
    assert same_origin("http://example.com:80/", "http", "example.com", [])
    assert not same_origin("https://example.com", "http", "example.com", [])


def _form(user: UserLogin, **extra: str) -> dict[str, str]:
    return {"username": user.username, "password": user.password, "next": "/", **extra}


async def _signed_in(client: Any) -> bool:
    return bool((await client.get("/api/auth/me")).status_code == 200)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Referer": "https://evil.example/page"},
        {"Referer": "https://localhost/"},  # the right host, the wrong scheme
        {"Origin": "http://localhost:8080"},  # the right host, the wrong port
        {"Origin": "null"},
    ],
    ids=["no-origin", "foreign-referer", "https-referer", "other-port", "null-origin"],
)
async def test_form_login_from_elsewhere_signs_nobody_in(
    client: Any, user: UserLogin, headers: dict[str, str]
) -> None:
    response = await client.post("/login", form=_form(user), headers=headers)
    assert response.status_code == 403
    assert "Set-Cookie" not in response.headers or "tickstock_session=" not in str(
        response.headers.getlist("Set-Cookie")
    )
    assert "sign in again" in await response.get_data(as_text=True)
    assert not await _signed_in(client)


@pytest.mark.parametrize(
    "headers",
    [{"Origin": "http://localhost"}, {"Referer": "http://localhost/login?next=/"}],
    ids=["origin", "referer"],
)
async def test_form_login_from_this_site_signs_in(
    client: Any, user: UserLogin, headers: dict[str, str]
) -> None:
    response = await client.post("/login", form=_form(user), headers=headers)
    assert response.status_code == 303
    assert await _signed_in(client)


async def test_form_login_without_origin_needs_the_forms_token(
    client: Any, user: UserLogin
) -> None:
    page = await client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', await page.get_data(as_text=True))
    assert token is not None
    response = await client.post("/login", form=_form(user, csrf_token=token.group(1)))
    assert response.status_code == 303
    assert await _signed_in(client)


async def test_a_token_without_its_cookie_is_refused(
    app: Any, client: Any, user: UserLogin
) -> None:
    page = await client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', await page.get_data(as_text=True))
    assert token is not None
    other = app.test_client()  # an attacker's browser: the token, not the victim's cookie
    response = await other.post("/login", form=_form(user, csrf_token=token.group(1)))
    assert response.status_code == 403
    assert not await _signed_in(other)


async def test_api_login_checks_the_origin_exactly(client: Any, user: UserLogin) -> None:
    body = {"username": user.username, "password": user.password}
    response = await client.post(
        "/api/auth/login", json=body, headers={"Origin": "https://localhost"}
    )
    assert response.status_code == 403
    response = await client.post(
        "/api/auth/login", json=body, headers={"Origin": "http://localhost"}
    )
    assert response.status_code == 200
