"""Control characters and out-of-range ids in any request: a 400 naming the field, or a 404.

Never a 500 and never a traceback in the log: NUL cannot reach PostgreSQL, and no control
character reaches a log line.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from tests.support.auth import fresh_rate_limit


@pytest.fixture(name="settings_overrides")
def _settings_overrides(settings_overrides: dict[str, Any]) -> dict[str, Any]:
    return fresh_rate_limit(settings_overrides)


def _no_error_logged(caplog: pytest.LogCaptureFixture) -> None:
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]


async def _refused(response: Any, field: str) -> None:
    assert response.status_code == 400, await response.get_data(as_text=True)
    body = await response.get_json()
    assert body["code"] == "validation_error"
    assert body["message"].startswith(f"{field}: "), body["message"]
    assert "control characters" in body["message"]


@pytest.mark.parametrize("text", ["usera\u0000", "a\u001b[31mb", "a\nb", "a\u0085b", "a\u007fb"])
async def test_api_login_with_control_characters_names_the_field(
    client: Any, caplog: pytest.LogCaptureFixture, text: str
) -> None:
    response = await client.post("/api/auth/login", json={"username": text, "password": "x"})
    await _refused(response, "username")
    _no_error_logged(caplog)


async def test_form_login_with_a_nul_names_the_field(
    client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    response = await client.post(
        "/login",
        data="username=a%00&password=secret",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    await _refused(response, "username")
    _no_error_logged(caplog)


async def test_token_name_with_a_nul(
    client: Any, auth_headers: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    response = await client.post(
        "/api/auth/tokens", json={"name": "a\u0000b"}, headers=auth_headers
    )
    await _refused(response, "name")
    _no_error_logged(caplog)


async def test_nul_in_a_path_segment(
    client: Any, auth_headers: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    response = await client.delete("/api/auth/tokens/%00", headers=auth_headers)
    await _refused(response, "path")
    _no_error_logged(caplog)


async def test_nul_in_a_query_parameter(
    client: Any, admin_headers: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    response = await client.get("/api/admin/users?q=%00", headers=admin_headers)
    await _refused(response, "q")
    _no_error_logged(caplog)


async def test_nested_json_field_is_named(
    client: Any, auth_headers: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    response = await client.put(
        "/api/user/settings", json={"theme": "dark\u0000"}, headers=auth_headers
    )
    await _refused(response, "theme")
    response = await client.put(
        "/api/user/watchlist", json={"symbols": ["AAPL", "\u0001"]}, headers=auth_headers
    )
    await _refused(response, "symbols.1")
    _no_error_logged(caplog)


async def test_an_id_beyond_bigint_names_nothing(
    client: Any, admin_headers: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    for user_id in ("99999999999999999999", str(2**63)):
        response = await client.patch(
            f"/api/admin/users/{user_id}", json={"active": True}, headers=admin_headers
        )
        assert response.status_code == 404
        assert (await response.get_json())["status"] == "error"
    response = await client.get(
        "/api/admin/users?cursor=dTo5OTk5OTk5OTk5OTk5OTk5OTk5OTk5OQ", headers=admin_headers
    )  # "u:99999999999999999999999"
    assert response.status_code == 400
    assert (await response.get_json())["code"] == "invalid_cursor"
    _no_error_logged(caplog)


async def test_plain_text_still_works(client: Any, auth_headers: dict[str, str]) -> None:
    response = await client.post(
        "/api/auth/tokens", json={"name": "laptop \u2013 ÄÖÜ 😀"}, headers=auth_headers
    )
    assert response.status_code == 201


@pytest.mark.parametrize("depth", [33, 990])
@pytest.mark.parametrize("path", ["/api/auth/login", "/api/no/such/path", "/api/auth/tokens"])
async def test_deeply_nested_json_is_a_400_on_any_path(
    client: Any, caplog: pytest.LogCaptureFixture, path: str, depth: int
) -> None:
    """Before login, routing or any handler: the depth limit is part of reading the body."""
    body = "[" * depth + "]" * depth
    response = await client.post(path, data=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400, await response.get_data(as_text=True)
    error = await response.get_json()
    assert error["code"] == "validation_error"
    assert error["message"] == "body: nested deeper than 32 levels"
    _no_error_logged(caplog)


async def test_json_too_deep_to_parse_is_a_400(
    client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    body = "[" * 5000 + "]" * 5000
    response = await client.post(
        "/api/auth/login", data=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400, await response.get_data(as_text=True)
    _no_error_logged(caplog)


async def test_json_nested_32_levels_is_accepted(client: Any) -> None:
    document: Any = {"username": "nobody", "password": "x"}
    for _ in range(31):
        document = [document]
    response = await client.post("/api/auth/login", json=document)
    assert response.status_code == 400
    assert "nested" not in (await response.get_json())["message"]


async def test_json_nested_within_the_limit_is_still_checked_for_control_characters(
    client: Any,
) -> None:
    document: Any = "a\u0000b"
    for _ in range(15):
        document = {"x": [document]}
    response = await client.post("/api/auth/login", json=document)
    assert response.status_code == 400
    assert "control characters" in (await response.get_json())["message"]


@pytest.mark.parametrize(
    "zero",
    [0xFF10, 0x0966, 0x0660, 0x06F0],
    ids=["fullwidth", "devanagari", "arabic-indic", "extended-arabic-indic"],
)
async def test_ids_in_paths_are_ascii_digits_only(
    client: Any, auth_headers: dict[str, str], caplog: pytest.LogCaptureFixture, zero: int
) -> None:
    """Rule 18 spelled in fullwidth digits used to be rule 18: one id, one spelling."""
    created = await client.post(
        "/api/user/alerts/rules", json={"name": "ids", "symbols": ["AAPL"]}, headers=auth_headers
    )
    assert created.status_code == 201
    rule_id = (await created.get_json())["data"]["id"]
    path = f"/api/user/alerts/rules/{rule_id}"
    assert (await client.get(path, headers=auth_headers)).status_code == 200
    spelled = "".join(chr(zero + int(digit)) for digit in str(rule_id))
    response = await client.get(f"/api/user/alerts/rules/{spelled}", headers=auth_headers)
    assert response.status_code == 404, await response.get_data(as_text=True)
    assert (await response.get_json())["code"] == "not_found"
    _no_error_logged(caplog)
