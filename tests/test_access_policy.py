"""The access policy (SPEC §5): every route needs a login except a short public allow-list.

The test walks ``app.url_map``, so a new route without ``login_required``/``admin_required``
fails here until it is protected or deliberately added to ``PUBLIC``.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from quart import Quart
from werkzeug.routing import Rule

from tests.support.auth import fresh_rate_limit
from tickstock.auth import required_access

# (method, rule) pairs anyone may call. Socket.IO is mounted outside Quart (its own auth).
PUBLIC = {
    ("GET", "/health"),
    ("GET", "/login"),
    ("POST", "/login"),
    ("POST", "/logout"),  # ends a session if there is one, else just goes to /login
    ("POST", "/api/auth/login"),
    ("GET", "/favicon.ico"),  # the icon, like the static files (the login page asks for it)
}


def _is_public(method: str, rule: Rule) -> bool:
    # Static files (ours and the vendored front-end libraries) are public.
    return (method, rule.rule) in PUBLIC or (method == "GET" and rule.rule.startswith("/static/"))


# Plausible values for path variables, by name (then by converter).
SAMPLES = {
    "symbol": "AAPL",
    "tier": "daily",
    "id": "1",
    "user_id": "1",
    "token_id": "abc",
    "filename": "css/login.css",
}
_VARIABLE = re.compile(r"<(?:(?P<converter>[a-zA-Z_]+)(?:\([^)]*\))?:)?(?P<name>[a-zA-Z_]+)>")


@pytest.fixture(name="settings_overrides")
def _settings_overrides(settings_overrides: dict[str, Any]) -> dict[str, Any]:
    return fresh_rate_limit(settings_overrides)


def _path(rule: Rule) -> str:
    def fill(match: re.Match[str]) -> str:
        name, converter = match["name"], match["converter"] or "string"
        return SAMPLES.get(name, "1" if converter in ("int", "float") else "x")

    return _VARIABLE.sub(fill, rule.rule)


def _routes(app: Quart) -> list[tuple[str, Rule]]:
    routes = []
    for rule in app.url_map.iter_rules():
        if getattr(rule, "websocket", False):
            continue
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            routes.append((method, rule))
    return routes


async def test_every_route_is_listed() -> None:
    # Sanity: the walk sees the auth routes (and so every registered blueprint).
    from tickstock.app import create_app

    app = create_app({"env": "test", "secret_key": "k" * 40})
    seen = {(method, rule.rule) for method, rule in _routes(app)}
    assert ("GET", "/api/auth/me") in seen and ("PATCH", "/api/admin/users/<int:user_id>") in seen


async def test_anonymous_requests_are_refused_everywhere_but_public(
    app: Quart, client: Any
) -> None:
    failures = []
    for method, rule in _routes(app):
        if _is_public(method, rule):
            continue
        path = _path(rule)
        response = await client.open(path, method=method, json={} if method != "GET" else None)
        status = response.status_code
        if path.startswith("/api/"):
            body = await response.get_json(force=True, silent=True) or {}
            if status != 401 or body.get("code") != "unauthorized" or body.get("status") != "error":
                failures.append(f"{method} {path}: {status} {body}")
        elif status == 401:
            body = await response.get_json(force=True, silent=True) or {}
            if body.get("status") != "error":
                failures.append(f"{method} {path}: 401 without the JSON envelope")
        elif status not in (302, 303) or not response.headers.get("Location", "").startswith(
            "/login"
        ):
            failures.append(f"{method} {path}: {status}, expected a redirect to /login")
    assert not failures, "routes reachable without login:\n" + "\n".join(failures)


async def test_public_routes_answer_without_login(client: Any) -> None:
    assert (await client.get("/health")).status_code == 200
    assert (await client.get("/login")).status_code == 200
    assert (await client.get("/static/css/login.css")).status_code == 200
    login = await client.post("/api/auth/login", json={"username": "nobody", "password": "x"})
    assert login.status_code == 401 and (await login.get_json())["code"] == "invalid_credentials"


@pytest.mark.parametrize("role", ["user", "admin"])
async def test_logged_in_requests_pass_the_gate(
    app: Quart, client: Any, make_user: Any, make_token: Any, role: str
) -> None:
    """With a token no GET route answers 401; admins are never 403; admin routes refuse users."""
    account = await make_user(role)
    headers = {"Authorization": f"Bearer {await make_token(account)}"}
    failures = []
    for method, rule in _routes(app):
        if method != "GET" or _is_public(method, rule):
            continue
        path = _path(rule)
        admin_only = required_access(app.view_functions[rule.endpoint]) == "admin"
        if path.startswith("/api/admin/") and not admin_only:
            failures.append(f"GET {path}: not behind admin_required")
        status = (await client.get(path, headers=headers)).status_code
        if status == 401:
            failures.append(f"GET {path}: 401 with a valid token")
        elif role == "admin" and status == 403:
            failures.append(f"GET {path}: 403 for an admin")
        elif role == "user" and admin_only and status != 403:
            failures.append(f"GET {path}: {status} for a non-admin")
    assert not failures, "\n".join(failures)
