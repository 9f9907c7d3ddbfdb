"""A user's own watchlist and settings: validation, persistence and isolation between users."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.auth import MakeToken, MakeUser


async def _headers(make_user: MakeUser, make_token: MakeToken) -> dict[str, str]:
    return {"Authorization": f"Bearer {await make_token(await make_user())}"}


async def test_requires_login(client: Any) -> None:
    for method, path in (
        ("GET", "/api/user/watchlist"),
        ("PUT", "/api/user/watchlist"),
        ("GET", "/api/user/settings"),
        ("PUT", "/api/user/settings"),
    ):
        response = await client.open(path, method=method, json={"symbols": ["AAPL"]})
        assert response.status_code == 401, (method, path)
        assert (await response.get_json())["code"] == "unauthorized"


async def test_watchlist_roundtrip(client: Any, auth_headers: dict[str, str]) -> None:
    response = await client.get("/api/user/watchlist", headers=auth_headers)
    body = await response.get_json()
    assert body["data"] == {"symbols": [], "updated_at": None}

    response = await client.put(
        "/api/user/watchlist",
        headers=auth_headers,
        json={"symbols": ["msft", " AAPL", "brk.b", "MSFT", "aapl", "NVDA"]},
    )
    assert response.status_code == 200
    body = await response.get_json()
    assert body["data"]["symbols"] == ["MSFT", "AAPL", "BRK.B", "NVDA"]
    assert body["data"]["updated_at"].endswith("Z")
    assert body["meta"] == {"count": 4, "max": 200}

    response = await client.get("/api/user/watchlist", headers=auth_headers)
    assert (await response.get_json())["data"]["symbols"] == ["MSFT", "AAPL", "BRK.B", "NVDA"]

    response = await client.put("/api/user/watchlist", headers=auth_headers, json={"symbols": []})
    assert (await response.get_json())["data"]["symbols"] == []


async def test_unknown_symbols_are_named_and_nothing_is_saved(
    client: Any, auth_headers: dict[str, str]
) -> None:
    await client.put("/api/user/watchlist", headers=auth_headers, json={"symbols": ["AAPL"]})
    response = await client.put(
        "/api/user/watchlist",
        headers=auth_headers,
        json={"symbols": ["MSFT", "NOPE1", "aapl", "ZZZZ9"]},
    )
    assert response.status_code == 400
    body = await response.get_json()
    assert body["code"] == "unknown_symbols"
    assert body["unknown"] == ["NOPE1", "ZZZZ9"]
    assert "NOPE1, ZZZZ9" in body["message"]
    response = await client.get("/api/user/watchlist", headers=auth_headers)
    assert (await response.get_json())["data"]["symbols"] == ["AAPL"]


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"symbols": ["AAPL", "bad symbol!"]}, "symbols: invalid symbol(s) 'bad symbol!'"),
        ({"symbols": ["AAPL", 7]}, "symbols.1: Input should be a valid string"),
        ({"symbols": "AAPL"}, "symbols: Input should be a valid list"),
        ({}, "symbols: Field required"),
        ({"symbols": ["AAPL"], "user_id": 1}, "user_id: Extra inputs are not permitted"),
        ({"symbols": [f"S{i}" for i in range(201)]}, "symbols: at most 200 symbols"),
        ({"symbols": ["A" * 40]}, "symbols.0: String should have at most 32 characters"),
    ],
)
async def test_watchlist_validation(
    client: Any, auth_headers: dict[str, str], payload: Any, message: str
) -> None:
    response = await client.put("/api/user/watchlist", headers=auth_headers, json=payload)
    assert response.status_code == 400
    body = await response.get_json()
    assert body["code"] == "validation_error"
    assert body["message"].startswith(message), body["message"]


async def test_watchlist_not_json(client: Any, auth_headers: dict[str, str]) -> None:
    response = await client.put(
        "/api/user/watchlist",
        headers={**auth_headers, "Content-Type": "application/json"},
        data=b"{not json",
    )
    assert response.status_code == 400
    assert (await response.get_json())["status"] == "error"


async def test_each_user_sees_only_their_own(
    client: Any, make_user: MakeUser, make_token: MakeToken
) -> None:
    alice = await _headers(make_user, make_token)
    bob = await _headers(make_user, make_token)
    await client.put("/api/user/watchlist", headers=alice, json={"symbols": ["AAPL", "MSFT"]})
    await client.put("/api/user/settings", headers=alice, json={"theme": "light"})

    response = await client.get("/api/user/watchlist", headers=bob)
    assert (await response.get_json())["data"]["symbols"] == []
    response = await client.get("/api/user/settings", headers=bob)
    assert (await response.get_json())["data"] == {}

    await client.put("/api/user/watchlist", headers=bob, json={"symbols": ["NVDA"]})
    response = await client.get("/api/user/watchlist", headers=alice)
    assert (await response.get_json())["data"]["symbols"] == ["AAPL", "MSFT"]
    response = await client.get("/api/user/settings", headers=alice)
    assert (await response.get_json())["data"] == {"theme": "light"}
    # No endpoint takes a user id: a query parameter naming another user changes nothing.
    response = await client.get("/api/user/watchlist?user_id=1", headers=bob)
    assert (await response.get_json())["data"]["symbols"] == ["NVDA"]


async def test_settings_roundtrip(client: Any, auth_headers: dict[str, str]) -> None:
    await client.put("/api/user/watchlist", headers=auth_headers, json={"symbols": ["AAPL"]})
    settings = {
        "theme": "dark",
        "default_tier": "intraday",
        "min_confidence": 0.75,
        "feed_limit": 100,
    }
    response = await client.put("/api/user/settings", headers=auth_headers, json=settings)
    assert response.status_code == 200
    body = await response.get_json()
    assert body["data"] == settings
    assert body["meta"]["updated_at"].endswith("Z")
    response = await client.get("/api/user/settings", headers=auth_headers)
    assert (await response.get_json())["data"] == settings
    # PUT replaces the object; the watchlist is untouched
    response = await client.put(
        "/api/user/settings", headers=auth_headers, json={"min_confidence": 1}
    )
    assert (await response.get_json())["data"] == {"min_confidence": 1.0}
    response = await client.get("/api/user/watchlist", headers=auth_headers)
    assert (await response.get_json())["data"]["symbols"] == ["AAPL"]


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"theme": "blue"}, "theme: "),
        ({"default_tier": "yearly"}, "default_tier: "),
        ({"min_confidence": 1.5}, "min_confidence: "),
        ({"min_confidence": "0.5"}, "min_confidence: "),
        ({"feed_limit": 0}, "feed_limit: "),
        ({"feed_limit": 10**20}, "feed_limit: "),
        ({"colour": "red"}, "colour: Extra inputs are not permitted"),
        ([], "Input should be"),
    ],
)
async def test_settings_validation(
    client: Any, auth_headers: dict[str, str], payload: Any, message: str
) -> None:
    response = await client.put("/api/user/settings", headers=auth_headers, json=payload)
    assert response.status_code == 400
    body = await response.get_json()
    assert body["code"] == "validation_error"
    assert body["message"].startswith(message), body["message"]


async def test_cookie_session_needs_csrf_for_put(client: Any, user: Any, login_client: Any) -> None:
    csrf_headers = await login_client(client, user)
    response = await client.get("/api/user/watchlist")
    assert response.status_code == 200
    response = await client.put("/api/user/watchlist", json={"symbols": ["AAPL"]})
    assert response.status_code == 403
    response = await client.put(
        "/api/user/watchlist", headers=csrf_headers, json={"symbols": ["AAPL"]}
    )
    assert response.status_code == 200
    assert (await response.get_json())["data"]["symbols"] == ["AAPL"]
