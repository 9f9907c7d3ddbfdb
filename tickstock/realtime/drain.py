"""A draining node turns new Socket.IO connections away with a 503 that clients retry.

Refusing them in the Socket.IO ``connect`` handler instead (a namespace ``connect_error``) is
final for socket.io-client: it does not try again, and the client stays offline. An HTTP 503 on
the engine.io handshake is a transport error, which every Socket.IO client retries by itself
(with its reconnection delay), and which nginx passes to the next node at once with
``proxy_next_upstream http_503`` (docs/deploy/nginx.conf).
"""

from __future__ import annotations

from typing import Any, Protocol
from urllib.parse import parse_qs

from tickstock.jsonutil import dumps


class Draining(Protocol):
    draining: bool


class DrainGate:
    """While the node drains, answer 503 to every engine.io request that is not for a session
    this node still holds: new handshakes (no ``sid``) and sessions of other processes (a
    sticky long-polling client whose session moved elsewhere). Sessions still open here are
    left alone: the drain closes them itself."""

    def __init__(self, app: Any, hub: Draining, sessions: dict[str, Any]) -> None:
        self.app = app
        self.hub = hub
        self.sessions = sessions  # engine.io's sockets by sid

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if (
            self.hub.draining
            and scope["type"] in ("http", "websocket")
            and scope["path"].startswith("/socket.io")
        ):
            sid = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("sid")
            if not sid or sid[0] not in self.sessions:
                await _refuse(scope, send)
                return
        await self.app(scope, receive, send)


async def _refuse(scope: Any, send: Any) -> None:
    body = dumps(
        {
            "status": "error",
            "code": "draining",
            "message": "this node is shutting down; connect again",
        }
    )
    headers = [
        (b"content-type", b"application/json"),
        (b"retry-after", b"1"),
        (b"cache-control", b"no-store"),
    ]
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": body})
    elif "websocket.http.response" in scope.get("extensions", {}):
        await send({"type": "websocket.http.response.start", "status": 503, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": body})
    else:  # a server without the extension answers the refused handshake with 403
        await send({"type": "websocket.close", "code": 1013})
