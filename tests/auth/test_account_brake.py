"""An account-wide brake on password guessing from many addresses, and IPv6 grouped by /64.

Per-address lockouts keep a guesser from locking the owner out, but left one account open to
guesses spread over many addresses. Past a number of recent failures across all addresses, each
further attempt on that account waits its turn (a delay that doubles per failure, up to a cap);
an attempt whose turn is further off than the cap is refused without checking its password.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest

from tests.support.auth import MakeUser, fresh_rate_limit

THRESHOLD = 4


@pytest.fixture(name="settings_overrides")
def _settings_overrides(settings_overrides: dict[str, Any]) -> dict[str, Any]:
    return {
        **fresh_rate_limit(settings_overrides),
        "login_max_failures": 3,
        "login_account_failures_before_delay": THRESHOLD,
        "login_account_max_delay_seconds": 2,
    }


async def _login(client: Any, username: str, password: str, address: str) -> int:
    response = await client.post(
        "/api/auth/login",
        json={"username": username, "password": password},
        scope_base={"client": (address, 40000)},
    )
    status: int = response.status_code
    return status


async def _failures(conn: asyncpg.Connection, user_id: int) -> int:
    total = await conn.fetchval(
        "SELECT coalesce(sum(failures), 0) FROM login_failures WHERE user_id = $1", user_id
    )
    return int(total)


async def test_guesses_from_many_addresses_wait_their_turn(
    client: Any, make_user: MakeUser, conn: asyncpg.Connection
) -> None:
    account = await make_user(password="the owner's password")
    for i in range(THRESHOLD):  # one guess each from many addresses: no address is locked
        assert await _login(client, account.username, "guess", f"198.51.100.{i + 1}") == 401
    assert await _failures(conn, account.id) == THRESHOLD
    # Six guesses at once from six more addresses: turns 1 s apart, at most 2 s away, so three
    # are checked (now, +1 s, +2 s; fewer when the delay has doubled meanwhile) and the others
    # refused unchecked.
    statuses = await asyncio.gather(
        *(_login(client, account.username, "guess", f"203.0.113.{i + 1}") for i in range(6))
    )
    assert set(statuses) == {401}
    assert THRESHOLD + 1 <= await _failures(conn, account.id) <= THRESHOLD + 3
    # The brake lets the owner in once the turns have passed.
    await asyncio.sleep(3.5)
    assert await _login(client, account.username, account.password, "192.0.2.10") == 200


async def test_ipv6_addresses_of_one_slash_64_count_as_one(
    client: Any, make_user: MakeUser
) -> None:
    account = await make_user(password="the owner's password")
    for host in ("2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff::3"):
        assert await _login(client, account.username, "guess", host) == 401
    # The whole /64 is locked, whichever address of it comes next ...
    assert await _login(client, account.username, account.password, "2001:db8:1:2::abcd") == 401
    # ... and only that /64.
    assert await _login(client, account.username, account.password, "2001:db8:1:3::1") == 200
