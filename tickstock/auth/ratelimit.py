"""The per-address login rate limit: in Redis, shared by every node; per process without it."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from dataclasses import dataclass

from tickstock.config import Settings
from tickstock.errors import REDIS_DOWN, APIError
from tickstock.extensions.redis import get_redis

__all__ = ["AccountBrake", "LoginRateLimit", "address_key"]

log = logging.getLogger(__name__)

# Redis unreachable (or not started): the login rate limit falls back to this process.
_RATE_FALLBACK: tuple[type[Exception], ...] = (*REDIS_DOWN, APIError)


@dataclass(slots=True)
class _Window:
    window: int
    count: int
    previous: int


def address_key(address: str) -> str:
    """The unit of a per-address limit: an IPv4 address, or the /64 an IPv6 address is in.

    One IPv6 subscriber is usually given a whole /64, so counting single addresses would let
    one client take 2**64 of them.
    """
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def _now() -> float:
    return time.time()


class LoginRateLimit:
    """Counts login attempts per client address over a sliding minute."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._local: dict[str, _Window] = {}

    async def check(self, address: str) -> None:
        """Count a login attempt from ``address`` (IPv6: its /64); 429 with Retry-After over the
        limit.

        A sliding window: the previous minute's count, weighted by how much of it still
        overlaps the last 60 s, plus this minute's; no burst is allowed at a minute boundary.
        """
        address = address_key(address)
        now = _now()
        window = int(now // 60)
        into_window = (now % 60) / 60
        try:
            current, previous = await self._redis_rate(address, window)
        except _RATE_FALLBACK as exc:
            log.debug("login rate limit falls back to this process: %r", exc)
            current, previous = self._process_rate(address, window)
        if previous * (1 - into_window) + current > self.settings.login_rate_per_minute:
            raise APIError(
                429,
                "too_many_requests",
                "too many login attempts from this address, try again shortly",
                headers={"Retry-After": str(max(1, 60 - int(now % 60)))},
            )

    async def _redis_rate(self, address: str, window: int) -> tuple[int, int]:
        key = f"{self.settings.key_prefix}:auth:login-rate:{address}"
        async with get_redis().pipeline(transaction=False) as pipe:
            pipe.incr(f"{key}:{window}")
            pipe.expire(f"{key}:{window}", 120)
            pipe.get(f"{key}:{window - 1}")
            current, _, previous = await pipe.execute()
        return int(current), int(previous or 0)

    def _process_rate(self, address: str, window: int) -> tuple[int, int]:
        entry = self._local.get(address)
        if entry is None or entry.window != window:
            if len(self._local) > 10_000:
                self._local = {k: v for k, v in self._local.items() if v.window >= window - 1}
            previous = entry.count if entry is not None and entry.window == window - 1 else 0
            entry = self._local[address] = _Window(window, 0, previous)
        entry.count += 1
        return entry.count, entry.previous


# The next free turn of an account (seconds since the epoch), reserved atomically: returns the
# turn of this attempt, or -1 when it is further off than the cap (nothing is reserved then).
_TURN_SCRIPT = """
local now = tonumber(ARGV[1])
local delay = tonumber(ARGV[2])
local cap = tonumber(ARGV[3])
local turn = tonumber(redis.call('GET', KEYS[1]) or '0')
if turn < now then turn = now end
if turn - now > cap then return '-1' end
redis.call('SET', KEYS[1], tostring(turn + delay), 'PX', math.ceil((turn + delay - now) * 1000) + 1000)
return tostring(turn)
"""


class AccountBrake:
    """Password attempts on one account, past many recent failures from any addresses, take
    turns: each waits ``delay`` after the previous one (1 s, doubling per further failure, up to
    ``login_account_max_delay_seconds``); one whose turn is further off than that cap is refused.

    Per-address lockouts stop one guesser; this bounds guesses on one account however many
    addresses they come from, and still lets the owner in (after a wait) rather than locking the
    account. Turns are kept in Redis, shared by every node; per process without it.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._local: dict[int, float] = {}

    def delay(self, failures: int) -> float:
        over = failures - self.settings.login_account_failures_before_delay
        if over < 0:
            return 0.0
        return float(min(2 ** min(over, 30), self.settings.login_account_max_delay_seconds))

    async def take_turn(self, user_id: int, failures: int) -> bool:
        """Wait for this attempt's turn; False (at once) when it is too far off."""
        delay = self.delay(failures)
        if delay <= 0:
            return True
        now = _now()
        cap = float(self.settings.login_account_max_delay_seconds)
        try:
            turn = await self._redis_turn(user_id, now, delay, cap)
        except _RATE_FALLBACK as exc:
            log.debug("account brake falls back to this process: %r", exc)
            turn = self._process_turn(user_id, now, delay, cap)
        if turn < 0:
            return False
        if turn > now:
            await asyncio.sleep(turn - now)
        return True

    async def _redis_turn(self, user_id: int, now: float, delay: float, cap: float) -> float:
        key = f"{self.settings.key_prefix}:auth:account-turn:{user_id}"
        turn = await get_redis().eval(_TURN_SCRIPT, 1, key, repr(now), repr(delay), repr(cap))
        return float(turn)

    def _process_turn(self, user_id: int, now: float, delay: float, cap: float) -> float:
        turn = max(now, self._local.get(user_id, 0.0))
        if turn - now > cap:
            return -1.0
        if len(self._local) > 10_000:
            self._local = {k: v for k, v in self._local.items() if v > now}
        self._local[user_id] = turn + delay
        return turn
