"""Socket.IO authentication, and disconnecting a user's sockets on every node.

A socket connects with the quart-auth session cookie (browsers) or ``auth={"token": ...}``
(scripts); the session must be live. On connect it joins ``user:<id>``, ``session:<id>`` and
``system``. Revocation disconnects those rooms on every node through the Socket.IO Redis manager
(:class:`ClusterManager`), whose channel every node already listens on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from typing import TYPE_CHECKING, Any

import socketio
from quart import Quart

from tickstock.auth import Identity, bearer_token, get_auth, same_origin
from tickstock.config import Settings
from tickstock.errors import DATABASE_DOWN, APIError
from tickstock.extensions.redis import socketio_manager_url
from tickstock.metrics import SOCKETS_REFUSED

if TYPE_CHECKING:
    from tickstock.realtime.server import RealtimeServer

log = logging.getLogger(__name__)

DISCONNECT_ROOM = "tickstock_disconnect_room"
REVOKED_EVENT = "session_revoked"
_UNAVAILABLE: tuple[type[Exception], ...] = (*DATABASE_DOWN, APIError)
Refused = socketio.exceptions.ConnectionRefusedError


@dataclass(frozen=True, slots=True)
class SocketIdentity:
    """Who a socket is, saved in its Socket.IO session."""

    user_id: int
    username: str
    role: str
    session_id: str

    def to_session(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "username": self.username,
            "role": self.role,
            "session_id": self.session_id,
        }

    @classmethod
    def from_identity(cls, identity: Identity) -> SocketIdentity:
        user = identity.user
        return cls(user.id, user.username, user.role, identity.session_id)


def user_room(user_id: int) -> str:
    return f"user:{user_id}"


def session_room(session_id: str) -> str:
    return f"session:{session_id}"


# --------------------------------------------------------------------------- the client manager


class ClusterManager(socketio.AsyncRedisManager):  # type: ignore[misc]
    """``AsyncRedisManager`` that can also disconnect every member of a room on every node.

    Rooms live on the node a socket is connected to, so "disconnect the sockets of user 7" is
    published on the manager's channel and each node disconnects its own members of the room.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._closing: set[asyncio.Task[None]] = set()

    def _redis_connect(self) -> None:
        # python-socketio builds a new client on every reconnect and drops the old one; with
        # Sentinel, the old client's connections to the sentinels would stay open: close them.
        stale = _sentinel_of(self.redis)
        super()._redis_connect()
        if stale is not None:
            task = asyncio.get_running_loop().create_task(stale.aclose())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def disconnect_room(
        self, room: str, namespace: str = "/", reason: str = "revoked"
    ) -> None:
        message = {
            "method": DISCONNECT_ROOM,
            "room": room,
            "namespace": namespace,
            "reason": reason,
            "host_id": self.host_id,
        }
        if self.server is not None:
            await disconnect_local_room(self.server, room, namespace, reason)
        try:
            # Bounded: a logout must not hang on Redis; the revocation is already committed.
            await asyncio.wait_for(self._publish(message), self.publish_timeout)
        except TimeoutError:
            log.warning("could not publish the disconnect of %r to other nodes", room)

    publish_timeout = 2.0

    async def _listen(self) -> AsyncIterator[Any]:
        marker = DISCONNECT_ROOM.encode()
        async for message in super()._listen():
            if isinstance(message, bytes | str) and marker in _as_bytes(message):
                await self._handle_disconnect_room(message)
                continue
            yield message

    async def _handle_disconnect_room(self, raw: bytes | str) -> None:
        try:
            data = self.json.loads(raw)
        except ValueError:
            return
        if not isinstance(data, dict) or data.get("host_id") == self.host_id:
            return
        try:
            await disconnect_local_room(
                self.server,
                str(data.get("room")),
                str(data.get("namespace") or "/"),
                str(data.get("reason") or "revoked"),
            )
        except Exception:
            log.exception("disconnecting room %r failed", data.get("room"))

    async def close(self) -> None:
        """Stop listening and close the Redis connections (on app shutdown)."""
        task = getattr(self, "thread", None)
        if isinstance(task, asyncio.Task) and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        redis = getattr(self, "redis", None)
        resources: list[Any] = [getattr(self, "pubsub", None), redis, _sentinel_of(redis)]
        if self._closing:
            await asyncio.wait(self._closing, timeout=2)
        for resource in resources:
            if resource is not None:
                with contextlib.suppress(Exception):
                    await resource.aclose()
        self.pubsub = self.redis = None
        self.connected = False


def _sentinel_of(client: Any) -> Any:
    """The ``Sentinel`` behind a client python-socketio made from a ``redis+sentinel://`` URL."""
    return getattr(getattr(client, "connection_pool", None), "sentinel_manager", None)


def _as_bytes(message: bytes | str) -> bytes:
    return message if isinstance(message, bytes) else message.encode()


def make_client_manager(app: Quart, settings: Settings) -> ClusterManager | None:
    """The Redis client manager shared by all nodes (None without Redis: one node only).

    It listens from the app's ``before_serving`` and is closed by its ``after_serving``.
    """
    url, redis_options = socketio_manager_url(settings)
    if not url:
        return None
    manager = ClusterManager(url, channel=f"{settings.key_prefix}:sio", redis_options=redis_options)
    manager.publish_timeout = settings.redis_timeout

    async def start_listening() -> None:
        # python-socketio subscribes on the first connection; a node must hear revocations
        # (and emits) from the start, or one issued before its first socket would be missed.
        server = manager.server
        if server is not None and not server.manager_initialized:
            server.manager_initialized = True
            manager.initialize()

    app.before_serving(start_listening)
    app.after_serving(manager.close)
    return manager


async def disconnect_local_room(
    sio: socketio.AsyncServer, room: str, namespace: str = "/", reason: str = "revoked"
) -> int:
    """Tell this node's members of ``room`` why, then disconnect them; returns how many."""
    sids = [sid for sid, _eio in sio.manager.get_participants(namespace, room)]
    for sid in sids:
        with contextlib.suppress(Exception):
            await sio.emit(REVOKED_EVENT, {"reason": reason}, to=sid, ignore_queue=True)
        await sio.disconnect(sid, namespace=namespace, ignore_queue=True)
    return len(sids)


async def disconnect_user_sockets(
    sio: socketio.AsyncServer,
    user_id: int,
    session_id: str | None = None,
    *,
    reason: str = "revoked",
) -> None:
    """Disconnect a user's sockets on every node: all of them, or those of one session."""
    room = session_room(session_id) if session_id else user_room(user_id)
    manager = sio.manager
    if isinstance(manager, ClusterManager):
        await manager.disconnect_room(room, reason=reason)
    else:
        await disconnect_local_room(sio, room, reason=reason)


async def publish_disconnect_user(settings: Settings, user_id: int) -> None:
    """From outside the server (the CLI): ask every node to disconnect a user's sockets."""
    url, redis_options = socketio_manager_url(settings)
    if not url:
        return
    manager = ClusterManager(
        url, channel=f"{settings.key_prefix}:sio", write_only=True, redis_options=redis_options
    )
    try:
        await manager.disconnect_room(user_room(user_id))
    finally:
        await manager.close()


# --------------------------------------------------------------------------- connect


def _header(environ: Mapping[str, Any], name: str) -> str:
    value = environ.get(name)
    return value if isinstance(value, str) else ""


def _cookie(environ: Mapping[str, Any], name: str) -> str | None:
    raw = _header(environ, "HTTP_COOKIE")
    if not raw:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(raw)
    except CookieError:
        return None
    morsel = jar.get(name)
    return morsel.value if morsel is not None else None


def _origin_allowed(environ: Mapping[str, Any], settings: Settings) -> bool:
    # A cookie-authenticated socket from another site would be cross-site WebSocket hijacking.
    origin = _header(environ, "HTTP_ORIGIN")
    if not origin:
        return True
    scope = environ.get("asgi.scope") or {}
    # The connection's own scheme (after the trusted proxies): wss/https, else ws/http.
    scheme = "https" if scope.get("scheme") in ("https", "wss") else "http"
    return same_origin(origin, scheme, _header(environ, "HTTP_HOST"), settings.cors_origins)


async def authenticate_socket(
    app: Quart, environ: Mapping[str, Any], auth: Any
) -> SocketIdentity | None:
    """The identity of a connecting socket, or None (anonymous, invalid, revoked, expired).

    Checks the database afresh (not the per-request cache), so a socket cannot connect with a
    session revoked a moment ago.
    """
    ext = get_auth(app)
    settings: Settings = app.config["SETTINGS"]
    identity: Identity | None = None
    token = auth.get("token") if isinstance(auth, dict) else None
    if not token:
        token = bearer_token(_header(environ, "HTTP_AUTHORIZATION")) or token
    if token is not None:
        if isinstance(token, str) and token:
            identity = await ext.check_token(token, fresh=True)
    else:
        cookie = _cookie(environ, settings.cookie_name)
        session_id = ext.session_id_from_cookie(cookie) if cookie else None
        if session_id and _origin_allowed(environ, settings):
            identity = await ext.check_cookie_session(session_id, fresh=True)
    return None if identity is None else SocketIdentity.from_identity(identity)


def register_connect_handler(server: RealtimeServer) -> None:
    """Install the ``connect`` handler: refuse unauthenticated sockets, save who they are.

    Also registers with the auth extension, so ending sessions disconnects their sockets.
    """
    sio = server.sio
    app = server.app
    assert sio is not None and app is not None

    async def sessions_ended(user_id: int, session_id: str | None) -> None:
        await disconnect_user_sockets(sio, user_id, session_id)

    get_auth(app).on_sessions_ended(sessions_ended)
    settings: Settings = app.config["SETTINGS"]

    async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        # Whatever happens here ends in a refusal (python-socketio then forgets the socket and
        # its rooms): an exception that escaped would leave it registered and unanswered.
        hub = getattr(server, "hub", None)
        if hub is not None and hub.draining:
            # This node is handing its sockets over: the client retries and lands elsewhere.
            raise Refused("draining")
        try:
            identity = await authenticate_socket(app, environ, auth)
        except _UNAVAILABLE as exc:
            log.warning("socket %s refused: cannot check its session (%r)", sid, exc)
            raise Refused("unavailable") from exc
        except Exception as exc:
            log.exception("socket %s refused: checking its session failed", sid)
            raise Refused("unavailable") from exc
        if identity is None:
            raise Refused("unauthorized")
        held = sio.manager.rooms.get("/", {}).get(user_room(identity.user_id)) or ()
        if len(held) >= settings.max_sockets_per_user:
            SOCKETS_REFUSED.labels("user").inc()
            raise Refused("too many connections for this user")
        batch_ms = batch_window(auth)
        try:
            await sio.save_session(sid, identity.to_session())
            for room in (user_room(identity.user_id), session_room(identity.session_id), "system"):
                await sio.enter_room(sid, room)
            if batch_ms and hub is not None:
                hub.delivery.set_batch_window(sid, batch_ms)
        except Exception as exc:
            log.exception("socket %s refused: registering it failed", sid)
            raise Refused("unavailable") from exc

    sio.on("connect", connect)


MAX_BATCH_MS = 1000


def batch_window(auth: Any) -> int:
    """The ``batch_ms`` a client asked for when connecting (0: one frame per event).

    With it, the socket's events arrive coalesced: one ``events`` frame per window holding
    ``[[name, envelope], ...]`` in delivery order (per-symbol order and offsets as usual).
    """
    value = auth.get("batch_ms", 0) if isinstance(auth, dict) else 0
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_BATCH_MS:
        raise Refused(f"batch_ms must be a whole number of milliseconds from 0 to {MAX_BATCH_MS}")
    return value
