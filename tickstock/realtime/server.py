"""The python-socketio server mounted beside Quart, and its connection handlers."""

from __future__ import annotations

import logging
from typing import Any

import socketio
from quart import Quart, current_app

from tickstock.config import Settings
from tickstock.jsonutil import SocketJSON
from tickstock.realtime.auth import make_client_manager, register_connect_handler

log = logging.getLogger(__name__)

EXTENSION_KEY = "tickstock.sio"


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
        self.sio = socketio.AsyncServer(
            async_mode="asgi",
            client_manager=make_client_manager(app, settings),
            json=SocketJSON,
            cors_allowed_origins=settings.cors_origins or [],
            max_http_buffer_size=settings.socketio_max_message_bytes,
            logger=False,
            engineio_logger=False,
        )
        app.extensions[EXTENSION_KEY] = self
        register_connect_handler(self)

        from tickstock.health import register_health_check
        from tickstock.realtime.handlers import SubscriptionHandlers
        from tickstock.realtime.hub import RealtimeHub

        self.hub = RealtimeHub(app, self.sio)
        self.handlers = SubscriptionHandlers(self.sio, self.hub)
        register_health_check(app, "realtime", self.hub.health)

    def asgi_app(self) -> Any:
        """The served ASGI app: Socket.IO on ``/socket.io/``, everything else to Quart."""
        assert self.app is not None and self.sio is not None
        served: Any = socketio.ASGIApp(self.sio, other_asgi_app=self.app)
        hops = self.app.config["SETTINGS"].proxy_hops
        if hops:
            # Client address, scheme and host from the trusted proxies, for Quart and Socket.IO.
            from hypercorn.middleware import ProxyFixMiddleware

            served = ProxyFixMiddleware(served, mode="legacy", trusted_hops=hops)
        return served


def get_realtime(app: Quart | None = None) -> RealtimeServer:
    server: RealtimeServer = (app or current_app).extensions[EXTENSION_KEY]
    return server


def get_sio() -> socketio.AsyncServer:
    sio = get_realtime().sio
    assert sio is not None
    return sio
