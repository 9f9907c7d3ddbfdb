"""Bearer parsing, the one origin rule, and the hook run when sessions end."""

from __future__ import annotations

import pytest
from quart import Quart

from tickstock.auth import bearer_token, get_auth, same_origin


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Bearer abc.def", "abc.def"),
        ("bearer   abc ", "abc"),
        ("BEARER x", "x"),
        ("Bearer ", None),
        ("Bearer", None),
        ("Basic abc", None),
        ("", None),
        (None, None),
    ],
)
def test_bearer_token(header: str | None, expected: str | None) -> None:
    assert bearer_token(header) == expected


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        ("https://app.example", True),
        ("http://app.example", False),  # scheme, host and port must all match
        ("https://trusted.example", True),
        ("https://evil.example", False),
        ("https://app.example.evil", False),
        ("null", False),
        ("ftp://app.example", False),
        ("app.example", False),
    ],
)
def test_same_origin(origin: str, allowed: bool) -> None:
    assert same_origin(origin, "https", "app.example", ["https://trusted.example"]) is allowed


async def test_sessions_ended_runs_every_hook_even_after_one_fails(app: Quart) -> None:
    auth = get_auth(app)
    seen: list[tuple[int, str | None]] = []

    async def failing(user_id: int, session_id: str | None) -> None:
        raise RuntimeError("socket server away")

    async def recording(user_id: int, session_id: str | None) -> None:
        seen.append((user_id, session_id))

    auth.on_sessions_ended(failing)
    auth.on_sessions_ended(recording)
    await auth.sessions_ended(7, None)
    await auth.sessions_ended(7, "abc")
    assert seen == [(7, None), (7, "abc")]
