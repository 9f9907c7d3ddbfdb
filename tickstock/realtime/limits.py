"""What one client may hold on a worker: sockets per address and per user, and a connect deadline.

Opening an engine.io session needs no login; joining the Socket.IO namespace (``40``) is where a
socket authenticates. So the per-address cap counts every engine.io session (logged in or not,
IPv6 grouped by /64), a session that has not joined the namespace within
``socket_connect_timeout_seconds`` is closed, and the per-user cap counts the user's sockets on
this worker when they join. Refusals are counted in ``tickstock_sockets_refused_total``.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from tickstock.auth.ratelimit import address_key
from tickstock.config import Settings
from tickstock.metrics import ENGINEIO_SESSIONS, SOCKET_CONNECT_TIMEOUTS, SOCKETS_REFUSED

__all__ = ["SocketLimits", "TooManySockets", "address_of"]

log = logging.getLogger(__name__)


class TooManySockets(str):
    """A refusal message that engine.io answers with 429 instead of 401 (see ``EngineServer``)."""

    __slots__ = ()


def address_of(environ: Mapping[str, Any]) -> str:
    """The client address of an engine.io request (after the trusted proxies, when any)."""
    scope = environ.get("asgi.scope") or {}
    client = scope.get("client") or ("unknown", 0)
    return address_key(str(client[0]))


class SocketLimits:
    """Per-worker socket counts by address, and each session's connect deadline."""

    def __init__(
        self,
        settings: Settings,
        *,
        joined: Callable[[str], bool],
        end_session: Callable[[str], Coroutine[Any, Any, None]],
    ) -> None:
        self.settings = settings
        self.joined = joined  # engine.io sid -> has it joined the namespace?
        self.end_session = end_session
        # Called when a session that never joined the namespace ends: its objects sit in
        # reference cycles as a socket's do, so the hub's collection after churn counts it.
        self.on_unjoined_close: Callable[[], None] = lambda: None
        self.by_address: Counter[str] = Counter()
        self.sessions: dict[str, tuple[str, asyncio.TimerHandle]] = {}
        self._ending: set[asyncio.Task[None]] = set()

    def open(self, eio_sid: str, environ: Mapping[str, Any]) -> TooManySockets | None:
        """Count a new engine.io session, or the refusal when its address holds too many."""
        key = address_of(environ)
        if self.by_address[key] >= self.settings.max_sockets_per_address:
            SOCKETS_REFUSED.labels("address").inc()
            return TooManySockets("too many connections from this address")
        self.by_address[key] += 1
        deadline = asyncio.get_running_loop().call_later(
            self.settings.socket_connect_timeout_seconds, self._expire, eio_sid
        )
        self.sessions[eio_sid] = (key, deadline)
        ENGINEIO_SESSIONS.inc()
        return None

    def close(self, eio_sid: str) -> None:
        entry = self.sessions.pop(eio_sid, None)
        if entry is None:
            return
        key, deadline = entry
        deadline.cancel()
        if not self.joined(eio_sid):
            self.on_unjoined_close()
        self.by_address[key] -= 1
        if self.by_address[key] <= 0:
            del self.by_address[key]
        ENGINEIO_SESSIONS.dec()

    def _expire(self, eio_sid: str) -> None:
        if eio_sid not in self.sessions or self.joined(eio_sid):
            return
        SOCKET_CONNECT_TIMEOUTS.inc()
        log.debug("engine.io session %s closed: no namespace joined in time", eio_sid)
        task = asyncio.get_running_loop().create_task(self.end_session(eio_sid))
        self._ending.add(task)
        task.add_done_callback(self._ending.discard)
