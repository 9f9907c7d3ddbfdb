"""A short-lived, per-process cache of computed aggregates (market breadth, pattern analytics).

Those figures aggregate a year of daily bars or every detection and take a few hundred
milliseconds to compute; they change when a new trading day arrives (part of every key) or, for
the detection counts behind analytics, slowly. So a result is kept for ``TTL_SECONDS`` and
recomputed after that: a page reloaded within the minute answers from memory.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Final, TypeVar

from cachetools import TTLCache
from quart import Quart, current_app

__all__ = ["EXTENSION_KEY", "TTL_SECONDS", "ResultCache", "get_results"]

EXTENSION_KEY: Final = "tickstock.results"
TTL_SECONDS: Final = 60.0
MAX_ENTRIES: Final = 256

T = TypeVar("T")


class ResultCache:
    """Results keyed by what they were computed from, kept for ``ttl`` seconds."""

    def __init__(self, app: Quart | None = None, *, ttl: float = TTL_SECONDS) -> None:
        self._entries: TTLCache[Hashable, Any] = TTLCache(maxsize=MAX_ENTRIES, ttl=ttl)
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Quart) -> None:
        app.extensions[EXTENSION_KEY] = self

    async def get_or_compute(self, key: Hashable, compute: Callable[[], Awaitable[T]]) -> T:
        """The cached result for ``key``, or ``await compute()`` (then kept)."""
        try:
            result: T = self._entries[key]
            return result
        except KeyError:
            pass
        result = await compute()
        self._entries[key] = result
        return result

    def clear(self) -> None:
        self._entries.clear()


def get_results() -> ResultCache:
    cache: ResultCache = current_app.extensions[EXTENSION_KEY]
    return cache
