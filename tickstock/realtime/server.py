"""The python-socketio server mounted beside Quart, and its connection handlers."""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import urllib.parse
from collections.abc import Awaitable, Callable
from typing import Any

import engineio
import engineio.payload
import socketio
from quart import Quart, current_app

from tickstock.config import Settings
from tickstock.headers import SecurityHeaders
from tickstock.jsonutil import SocketJSON, dumps
from tickstock.metrics import MALFORMED_PACKETS
from tickstock.realtime.auth import make_client_manager, register_connect_handler
from tickstock.realtime.drain import DrainGate
from tickstock.realtime.limits import SocketLimits, TooManySockets

log = logging.getLogger(__name__)

EXTENSION_KEY = "tickstock.sio"


def library_logger(name: str, settings: Settings) -> logging.Logger:
    """The service logger python-socketio or engine.io writes through (``tickstock.<name>``).

    Given ``False``, both libraries log through their own logger with a ``StreamHandler`` of
    their own: client-chosen text (a session id) reached stderr unescaped, and each error was
    written twice. Their per-packet INFO lines are shown only at DEBUG.
    """
    logger = logging.getLogger(f"tickstock.{name}")
    logger.setLevel(logging.DEBUG if settings.log_level == "DEBUG" else logging.WARNING)
    return logger


class RealtimeServer:
    """Owns the ``socketio.AsyncServer`` of one app."""

    def __init__(self, app: Quart | None = None) -> None:
        self.sio: socketio.AsyncServer | None = None
        self.app: Quart | None = None
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Quart) -> None:
        settings: Settings = app.config["SETTINGS"]
        self.app = app
        self.sio = SocketServer(
            async_mode="asgi",
            client_manager=make_client_manager(app, settings),
            json=SocketJSON,
            cors_allowed_origins=settings.cors_origins or [],
            max_http_buffer_size=settings.socketio_max_message_bytes,
            logger=library_logger("socketio", settings),
            engineio_logger=library_logger("engineio", settings),
        )
        sio = self.sio
        sio.limits = SocketLimits(
            settings,
            joined=lambda eio_sid: sio.manager.sid_from_eio_sid(eio_sid, "/") is not None,
            end_session=sio.eio.disconnect,
        )
        app.extensions[EXTENSION_KEY] = self
        register_connect_handler(self)

        from tickstock.health import register_health_check
        from tickstock.realtime.handlers import SubscriptionHandlers
        from tickstock.realtime.hub import RealtimeHub

        self.hub = RealtimeHub(app, self.sio)
        self.handlers = SubscriptionHandlers(self.sio, self.hub)
        hub = self.hub

        def unjoined_session_closed() -> None:
            hub.disconnects += 1  # counted towards the collection after churn, as sockets are

        sio.limits.on_unjoined_close = unjoined_session_closed
        register_health_check(app, "realtime", self.hub.health)

    def asgi_app(self) -> Any:
        """The served ASGI app: Socket.IO on ``/socket.io/``, everything else to Quart.

        In front of both: the security headers, the long-polling body limits and the drain gate
        (503 to new Socket.IO connections while the node drains).
        """
        assert self.app is not None and self.sio is not None
        settings: Settings = self.app.config["SETTINGS"]
        served: Any = SecurityHeaders(
            BoundedBodies(
                PollingPayloads(
                    MalformedFrames(
                        DrainGate(
                            socketio.ASGIApp(self.sio, other_asgi_app=self.app),
                            self.hub,
                            self.sio.eio.sockets,
                        )
                    ),
                    self.sio.eio,
                ),
                max_bytes=settings.max_request_bytes,
                timeout=settings.body_timeout_seconds,
            )
        )
        hops = settings.proxy_hops
        if hops:
            # Client address, scheme and host from the trusted proxies, for Quart and Socket.IO.
            from hypercorn.middleware import ProxyFixMiddleware

            served = ProxyFixMiddleware(served, mode="legacy", trusted_hops=hops)
        return served


# --------------------------------------------------------------------------- malformed packets

# What decoding a Socket.IO packet raises on garbage (orjson's errors are ValueErrors).
_UNDECODABLE: tuple[type[Exception], ...] = (
    ValueError,
    TypeError,
    IndexError,
    KeyError,
    AttributeError,
    RecursionError,
)
_ENGINEIO_TYPES: frozenset[str] = frozenset("0123456")
# Events only the server raises: from a client, ``disconnect`` would run the disconnect handler
# on a live socket (forgetting its subscriptions) and ``connect`` the connect handler.
RESERVED_EVENTS: frozenset[str] = frozenset(
    {"connect", "connect_error", "disconnect", "disconnecting"}
)
_WARNED = "tickstock.malformed_warned"


def note_malformed(scope: dict[str, Any], layer: str, detail: str) -> None:
    """Count a dropped packet; warn once per connection (no traceback: it is the client's)."""
    MALFORMED_PACKETS.labels(layer).inc()
    if scope.get(_WARNED):
        return
    scope[_WARNED] = True
    client = scope.get("client") or ("?", 0)
    log.warning(
        "malformed %s packet from %s dropped (%s); later ones on this connection are only counted",
        layer,
        client[0],
        detail[:100],
    )


class EngineServer(engineio.AsyncServer):  # type: ignore[misc]
    """engine.io's server, ending a session without waiting for its last packet to be fetched.

    python-engineio (4.15.1) answers a protocol error on a long-polling POST (a client PING,
    ``2probe``, OPEN, NOOP) with ``disconnect(sid)``, which closes the socket with ``wait=True``:
    it queues a CLOSE packet and awaits ``queue.join()``, which only returns once a long-polling
    GET has taken that packet. When no GET comes, the POST is never answered and its TCP socket
    stays in CLOSE-WAIT, so anyone could exhaust the worker's file descriptors without logging
    in. Here the CLOSE packet is still queued (a GET that comes later or is waiting gets it) but
    nothing waits for it, and the session is gone at once. Upstream: python-engineio's
    ``AsyncServer.disconnect`` / ``AsyncSocket.close(wait=True)`` on the polling transport.
    """

    def _unauthorized(self, message: Any = None) -> dict[str, Any]:
        """A refusal over a socket cap is a 429 in the service's error shape, not a 401."""
        if not isinstance(message, TooManySockets):
            response: dict[str, Any] = super()._unauthorized(message)
            return response
        body = {"status": "error", "message": str(message), "code": "too_many_connections"}
        return {
            "status": "429 TOO MANY REQUESTS",
            "headers": [("Content-Type", "application/json")],
            "response": dumps(body),
        }

    async def disconnect(self, sid: str | None = None) -> None:
        sids = [sid] if sid is not None else list(self.sockets)
        for each in sids:
            socket = self.sockets.get(each)
            if socket is not None:
                await socket.close(wait=False, reason=self.reason.SERVER_DISCONNECT)
                if socket.upgraded:
                    # Ends the websocket's writer, which closes the connection: a client that
                    # ignores the CLOSE packet does not keep it open.
                    socket.queue.put_nowait(None)
                self.sockets.pop(each, None)


class SocketServer(socketio.AsyncServer):  # type: ignore[misc]
    """``AsyncServer`` that drops a Socket.IO packet it cannot decode instead of logging a
    traceback for it (python-socketio raises from its decoder into engine.io's handler task),
    on :class:`EngineServer`."""

    limits: SocketLimits | None = None

    def _engineio_server_class(self) -> type[EngineServer]:
        return EngineServer

    async def _handle_eio_connect(self, eio_sid: str, environ: Any) -> Any:
        if self.limits is not None:
            refused = self.limits.open(eio_sid, environ)
            if refused is not None:
                return refused
        return await super()._handle_eio_connect(eio_sid, environ)

    async def _handle_eio_disconnect(self, eio_sid: str, reason: Any) -> None:
        if self.limits is not None:
            self.limits.close(eio_sid)
        await super()._handle_eio_disconnect(eio_sid, reason)

    async def _handle_event(self, eio_sid: str, namespace: str | None, id: Any, data: Any) -> None:
        if data and isinstance(data[0], str) and data[0] in RESERVED_EVENTS:
            environ = self.environ.get(eio_sid) or {}
            note_malformed(environ.get("asgi.scope") or {}, "socketio", f"event {data[0]!r}")
            return
        await super()._handle_event(eio_sid, namespace, id, data)

    async def _handle_eio_message(self, eio_sid: str, data: Any) -> None:
        try:
            await super()._handle_eio_message(eio_sid, data)
        except _UNDECODABLE as exc:
            environ = self.environ.get(eio_sid) or {}
            note_malformed(environ.get("asgi.scope") or {}, "socketio", repr(exc))


class MalformedFrames:
    """Drops websocket text frames that are no engine.io packet (empty, or no packet type).

    engine.io decodes a frame outside any error handling, so one such frame ends the
    connection with "Error in ASGI Framework" and a traceback.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "websocket":
            await self.app(scope, receive, send)
            return

        async def checked_receive() -> Any:
            while True:
                message = await receive()
                text = message.get("text") if message["type"] == "websocket.receive" else None
                if text is not None and text[:1] not in _ENGINEIO_TYPES:
                    note_malformed(scope, "engineio", f"frame {text[:20]!r}")
                    continue
                return message

        await self.app(scope, checked_receive, send)


def polling_payload_problem(body: bytes) -> str | None:
    """Why engine.io could not decode this long-polling POST body, or None.

    The checks of engine.io's own decoder (``Payload.decode``, ``Packet.decode``), made first:
    there, a failure is logged with a traceback and answered 200.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return "not UTF-8"
    if not text:
        return None
    packets = text.split("\x1e")
    if len(packets) > engineio.payload.Payload.max_decode_packets:
        return f"{len(packets)} packets in one payload"
    for encoded in packets:
        if not encoded:
            return "empty packet"
        if encoded[0] == "b":
            try:
                base64.b64decode(encoded[1:], validate=True)
            except (binascii.Error, ValueError):
                return "binary packet not in base64"
        elif encoded[0] not in _ENGINEIO_TYPES:
            return f"packet {encoded[:20]!r}"
    return None


def _is_polling_post(scope: Any) -> bool:
    """An engine.io long-polling POST (a body of packets from the client)."""
    return (
        scope["type"] == "http"
        and scope["method"] == "POST"
        and str(scope["path"]).startswith("/socket.io")
    )


class PollingPayloads:
    """Refuses long-polling POST bodies engine.io cannot decode: 400, counted, warned once.

    As for websocket frames (:class:`MalformedFrames`), no traceback per request; the session
    ends, as engine.io ends one for a protocol error, so one session warns at most once. A POST
    for no live session is engine.io's to answer ("Invalid session").
    """

    def __init__(self, app: Any, eio: EngineServer) -> None:
        self.app = app
        self.eio = eio

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if not _is_polling_post(scope):
            await self.app(scope, receive, send)
            return
        query = urllib.parse.parse_qs(scope.get("query_string", b"").decode("latin-1"))
        sid = query.get("sid", [""])[0]
        if sid not in self.eio.sockets:
            await self.app(scope, receive, send)
            return
        body = bytearray()
        more = True
        while more:  # bounded in size and time by BoundedBodies in front
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
        problem = polling_payload_problem(bytes(body))
        if problem is not None:
            note_malformed(scope, "engineio", f"polling payload: {problem}")
            await self.eio.disconnect(sid)
            await _refuse(send, 400, "invalid_payload", "not an engine.io payload")
            return
        await self.app(scope, _replay(bytes(body), receive), send)


# --------------------------------------------------------------------------- body limits


class BoundedBodies:
    """Body size and time limits for engine.io's long-polling POSTs, as Quart has for its routes.

    engine.io reads a POST body for as long as it takes and as large as it is declared; here a
    declared oversize body is a 413 at once, a larger one a 413 when it gets there, and one that
    stalls a 408 after ``timeout`` seconds. Everything else passes through untouched.
    """

    def __init__(self, app: Any, *, max_bytes: int, timeout: float) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout = timeout

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if not _is_polling_post(scope):
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await _refuse(send, 413, "payload_too_large", "request body too large")
            return
        body = bytearray()
        try:
            async with asyncio.timeout(self.timeout):
                more = True
                while more:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return
                    body += message.get("body", b"")
                    more = message.get("more_body", False)
                    if len(body) > self.max_bytes:
                        await _refuse(send, 413, "payload_too_large", "request body too large")
                        return
        except TimeoutError:
            await _refuse(send, 408, "request_timeout", "request body not received in time")
            return
        await self.app(scope, _replay(bytes(body), receive), send)


def _replay(body: bytes, receive: Any) -> Callable[[], Awaitable[Any]]:
    """An ASGI ``receive`` that gives the body read already, then the client's next message."""
    replayed = False

    async def replay() -> Any:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _refuse(send: Any, status: int, code: str, message: str) -> None:
    body = dumps({"status": "error", "message": message, "code": code})
    headers = [(b"content-type", b"application/json"), (b"connection", b"close")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def get_realtime(app: Quart | None = None) -> RealtimeServer:
    server: RealtimeServer = (app or current_app).extensions[EXTENSION_KEY]
    return server


def get_sio() -> socketio.AsyncServer:
    sio = get_realtime().sio
    assert sio is not None
    return sio
