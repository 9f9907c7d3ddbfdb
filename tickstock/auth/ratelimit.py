"""The per-address login rate limit: in Redis, shared by every node; per process without it."""

from __future__ import annotations

import ipaddress
import logging
import time
from dataclasses import dataclass

from tickstock.config import Settings
from tickstock.errors import REDIS_DOWN, APIError
from tickstock.extensions.redis import get_redis

__all__ = ["LoginRateLimit", "address_key"]

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
        """Count a login attempt from ``address``; 429 with Retry-After over the limit.

        A sliding window: the previous minute's count, weighted by how much of it still
        overlaps the last 60 s, plus this minute's; no burst is allowed at a minute boundary.
        """
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
