"""Direct websocket writes: one frame per event, written to each recipient's transport.

python-socketio sends every packet through engine.io's per-socket queue and writer task, then
through the ASGI ``send`` into hypercorn, which re-encodes and frames the text with wsproto per
connection and writes it under a lock. For a fan-out that is most of the cost of a delivery. Here
an event's websocket frame is built once per node and written to each recipient's transport with
one ``write()``; everything else a socket sends (acks, replayed history, ``subscribed``) takes the
same direct path, so a socket's packets keep their order.

This reaches into three libraries, all pinned in pyproject.toml and checked by
tests/realtime/test_wsdirect_internals.py, which names the internal that changed:

- engine.io: the websocket driver class of the server (``AsyncServer._async["websocket"]``) is
  replaced per server by :class:`DirectWebSocket`, which learns the connection's ASGI ``send``;
  a socket's ``queue.put_nowait`` is replaced once its writer task is idle (``Queue._getters``),
  so that from then on packets are written directly, in order. PING and the writer's wake-up
  (``None``) still go to the writer task, which keeps engine.io's ping and close logic as it is.
- hypercorn (asyncio worker, HTTP/1.1 only): ``send.__self__`` is the ``WSStream``; its
  ``send.__self__`` the ``H11Protocol``; its ``send.__self__`` the ``TCPServer`` whose
  ``writer.transport`` carries the bytes. Any other shape (HTTP/2, trio, another server) gets no
  link and the ordinary path is used.
- hypercorn's handshake: compression is a policy. With ``off`` (the default) the client's
  ``permessage-deflate`` offer is declined; with ``on`` it is accepted with
  ``server_no_context_takeover`` and ``client_no_context_takeover``, so every message is
  compressed on its own (no zlib state kept per connection) and a compressed event frame is
  the same bytes for every recipient with the same window size.

What the bypassed layers gave is kept: each frame is one ``transport.write`` (whole frames, so
hypercorn's own writes — pings, close frames — interleave only between frames); writes stop as
soon as the websocket is closing (hypercorn's state, wsproto's state, the transport); and the
slow-consumer rule is applied to the transport's write buffer, which is what fills when a client
stops reading.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import struct
import zlib
from collections.abc import Callable, Iterable
from typing import Any

import engineio.packet
from engineio.async_drivers.asgi import WebSocket
from hypercorn.asyncio.tcp_server import TCPServer
from hypercorn.protocol.h11 import H11Protocol
from hypercorn.protocol.ws_stream import ASGIWebsocketState, Handshake, WSStream
from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.extensions import PerMessageDeflate
from wsproto.handshake import server_extensions_handshake

log = logging.getLogger(__name__)

OPCODE_TEXT = 0x1
OPCODE_BINARY = 0x2
_FIN = 0x80
_RSV1 = 0x40


def ws_frame(payload: bytes, *, binary: bool = False, compressed: bool = False) -> bytes:
    """One unmasked (server-to-client) websocket frame, RFC 6455 §5.2."""
    first = _FIN | (OPCODE_BINARY if binary else OPCODE_TEXT) | (_RSV1 if compressed else 0)
    size = len(payload)
    if size < 126:
        return bytes((first, size)) + payload
    if size < 65536:
        return struct.pack("!BBH", first, 126, size) + payload
    return struct.pack("!BBQ", first, 127, size) + payload


def deflate(payload: bytes, window_bits: int) -> bytes:
    """A permessage-deflate message body without context takeover (RFC 7692 §7.2.1)."""
    compressor = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -window_bits)
    data = compressor.compress(payload) + compressor.flush(zlib.Z_SYNC_FLUSH)
    return data[:-4]  # the 00 00 ff ff tail of the sync flush is implied


class EventFrames:
    """The frames of one event for every connection kind, each built on first use."""

    __slots__ = ("_compressed", "_plain", "text")

    def __init__(self, text: bytes) -> None:
        self.text = text  # the engine.io packet text, e.g. b'42["pattern_detected",{...}]'
        self._plain: bytes | None = None
        self._compressed: dict[int, bytes] | None = None

    def frame(self, window_bits: int) -> bytes:
        if not window_bits:
            if self._plain is None:
                self._plain = ws_frame(self.text)
            return self._plain
        if self._compressed is None:
            self._compressed = {}
        frame = self._compressed.get(window_bits)
        if frame is None:
            frame = ws_frame(deflate(self.text, window_bits), compressed=True)
            self._compressed[window_bits] = frame
        return frame


class Link:
    """The direct write path of one websocket connection."""

    __slots__ = ("deflate_bits", "installed", "stream", "transport")

    def __init__(self, stream: WSStream, transport: asyncio.WriteTransport) -> None:
        self.stream = stream
        self.transport = transport
        self.deflate_bits = 0  # the negotiated server window when compression is on
        self.installed = False

    def open(self) -> bool:
        """Whether frames may still be written (not closing on any layer)."""
        stream = self.stream
        return (
            stream.state is ASGIWebsocketState.CONNECTED
            and not stream.closed
            and stream.connection.state is ConnectionState.OPEN
            and not self.transport.is_closing()
        )

    def buffered(self) -> int:
        """Bytes written but not yet taken by the kernel (what a stalled client fills)."""
        return self.transport.get_write_buffer_size()

    def write_frame(self, frames: EventFrames) -> bool:
        if not self.open():
            return False
        self.transport.write(frames.frame(self.deflate_bits))
        return True

    def write_packet(self, pkt: engineio.packet.Packet) -> bool:
        """Any engine.io packet (acks, replies, replayed events), framed for this connection."""
        if not self.open():
            return False
        encoded: Any = pkt.encode()
        binary = isinstance(encoded, bytes)
        payload: bytes = encoded if binary else encoded.encode()
        if self.deflate_bits:
            payload = deflate(payload, self.deflate_bits)
        self.transport.write(ws_frame(payload, binary=binary, compressed=bool(self.deflate_bits)))
        return True

    def abort(self) -> None:
        """Drop the connection and whatever is buffered for it (a stalled slow consumer)."""
        if not self.transport.is_closing() or self.transport.get_write_buffer_size():
            self.transport.abort()


_TRANSPORT_METHODS = ("write", "get_write_buffer_size", "is_closing", "abort")


def find_transport(asgi_send: Any) -> tuple[WSStream, asyncio.WriteTransport] | None:
    """The hypercorn stream and transport behind an ASGI websocket ``send``, if they are the
    HTTP/1.1 asyncio kind this module knows; otherwise None (use the ordinary path)."""
    stream = getattr(asgi_send, "__self__", None)
    if type(stream) is not WSStream:
        return None
    protocol = getattr(stream.send, "__self__", None)
    if type(protocol) is not H11Protocol:
        return None  # HTTP/2 (RFC 8441) carries websocket frames inside h2 frames
    server = getattr(protocol.send, "__self__", None)
    if type(server) is not TCPServer:
        return None
    transport: Any = server.writer.transport
    # uvloop's transports are not asyncio.WriteTransport subclasses, but have its methods.
    if not all(callable(getattr(transport, name, None)) for name in _TRANSPORT_METHODS):
        return None
    return stream, transport


def check_internals() -> list[str]:
    """The library internals this module relies on that are missing or changed (empty: all good).

    Checked at start-up (direct writes are switched off, with a warning, if anything is off) and
    by tests/realtime/test_wsdirect_internals.py, so an upgrade fails loudly, naming the internal.
    """
    problems: list[str] = []

    def need(ok: bool, name: str) -> None:
        if not ok:
            problems.append(name)

    queue: asyncio.Queue[Any] = asyncio.Queue()
    need(isinstance(getattr(queue, "_getters", None), Iterable), "asyncio.Queue._getters")
    need("put_nowait" in vars(asyncio.Queue), "asyncio.Queue.put_nowait")
    need("__call__" in vars(WebSocket), "engineio.async_drivers.asgi.WebSocket.__call__")
    need(
        list(inspect.signature(WebSocket.__init__).parameters)[1:] == ["handler", "server"],
        "engineio.async_drivers.asgi.WebSocket(handler, server)",
    )
    from engineio import async_socket

    source = inspect.getsource(async_socket.AsyncSocket._upgrade_websocket)
    need("_async['websocket']" in source, "engineio AsyncSocket._upgrade_websocket -> _async")
    need(
        "self.queue.get()" in inspect.getsource(async_socket.AsyncSocket.poll),
        "engineio AsyncSocket.poll -> self.queue.get()",
    )
    for name in ("handshake", "state", "closed", "connection", "send"):
        need(name in inspect.getsource(WSStream.__init__), f"hypercorn WSStream.{name}")
    need(hasattr(ASGIWebsocketState, "CONNECTED"), "hypercorn ASGIWebsocketState.CONNECTED")
    need("extensions" in inspect.getsource(Handshake.__init__), "hypercorn Handshake.extensions")
    need(
        "self.handshake.accept(" in inspect.getsource(WSStream._accept),
        "hypercorn WSStream._accept -> handshake.accept",
    )
    need(
        "self.send = send" in inspect.getsource(H11Protocol.__init__), "hypercorn H11Protocol.send"
    )
    need("self.writer" in inspect.getsource(TCPServer.__init__), "hypercorn TCPServer.writer")
    need(
        "self.writer.write(" in inspect.getsource(TCPServer.protocol_send),
        "hypercorn TCPServer.protocol_send writes whole frames",
    )
    return problems


class DirectWrites:
    """Per Socket.IO server: the compression policy and the links of its websocket sockets."""

    def __init__(self, *, compression: bool, enabled: bool = True) -> None:
        self.compression = compression
        problems = check_internals() if enabled else []
        if problems:
            log.warning(
                "direct websocket writes off: library internals changed (%s)", ", ".join(problems)
            )
        self.enabled = enabled and not problems
        self.links: dict[str, Link] = {}  # engine.io sid -> link
        self.fallbacks = 0  # websockets that could not be linked (ordinary path)

    def install(self, eio_server: Any) -> None:
        """Make ``eio_server`` open its websockets through :class:`DirectWebSocket`."""
        hook = self

        def factory(handler: Callable[..., Any], server: Any) -> DirectWebSocket:
            return DirectWebSocket(handler, server, hook)

        eio_server._async = {**eio_server._async, "websocket": factory}

    def negotiate(self, stream: WSStream) -> PerMessageDeflate | None:
        """Apply the compression policy to the stream's handshake (before it is accepted)."""
        handshake: Handshake = stream.handshake
        offers = handshake.extensions
        handshake.extensions = None  # hypercorn itself negotiates nothing
        if not self.compression or not offers:
            return None
        deflate_ext = PerMessageDeflate(
            client_no_context_takeover=True, server_no_context_takeover=True
        )
        accepted = server_extensions_handshake(offers, [deflate_ext])
        if not accepted:
            return None
        original = handshake.accept

        def accept(subprotocol: str | None, headers: Any) -> tuple[int, list[Any], Connection]:
            status, response_headers, _plain = original(subprotocol, headers)
            response_headers.append((b"sec-websocket-extensions", accepted))
            return status, response_headers, Connection(ConnectionType.SERVER, [deflate_ext])

        handshake.accept = accept  # type: ignore[method-assign,assignment]
        return deflate_ext

    def attach(self, asgi_send: Any) -> tuple[Link | None, PerMessageDeflate | None]:
        stream = getattr(asgi_send, "__self__", None)
        deflate_ext = self.negotiate(stream) if type(stream) is WSStream else None
        found = find_transport(asgi_send) if self.enabled else None
        if found is None:
            self.fallbacks += 1
            return None, deflate_ext
        return Link(*found), deflate_ext

    def link_for(self, eio_sid: str, socket: Any) -> Link | None:
        """The socket's link, installing its direct queue once that keeps the packet order."""
        link = self.links.get(eio_sid)
        if link is None or link.installed:
            return link
        if socket is None or not socket.upgraded or socket.closed:
            return None
        queue: asyncio.Queue[Any] = socket.queue
        # Safe only while the writer task holds nothing: the queue is empty and the writer is
        # parked in ``queue.get()``. Anything sent before now has then been written, in order.
        getters = queue._getters  # type: ignore[attr-defined]
        if not queue.empty() or not any(not getter.done() for getter in getters):
            return None
        queue.put_nowait = _DirectPut(link, queue)  # type: ignore[method-assign,assignment]
        link.installed = True
        return link


class _DirectPut:
    """``socket.queue.put_nowait`` once a link is installed: write now, in order."""

    __slots__ = ("link", "queue")

    def __init__(self, link: Link, queue: asyncio.Queue[Any]) -> None:
        self.link = link
        self.queue = queue

    def __call__(self, pkt: engineio.packet.Packet | None) -> None:
        # The writer task keeps PING (its wake-ups keep engine.io's ping cycle) and ``None``
        # (its signal to close); a closing link hands everything back to it.
        if (
            pkt is None
            or pkt.packet_type == engineio.packet.PING
            or not self.link.write_packet(pkt)
        ):
            asyncio.Queue.put_nowait(self.queue, pkt)


class DirectWebSocket(WebSocket):  # type: ignore[misc]
    """engine.io's ASGI websocket driver, registering the connection's link while it is open."""

    def __init__(self, handler: Callable[..., Any], server: Any, hook: DirectWrites) -> None:
        super().__init__(handler, server)
        self.hook = hook

    async def __call__(self, environ: dict[str, Any]) -> Any:
        link, deflate_ext = self.hook.attach(environ.get("asgi.send"))
        socket = getattr(self.handler, "__self__", None)
        sid = getattr(socket, "sid", None)
        if link is None or sid is None:
            return await super().__call__(environ)
        self.hook.links[sid] = link
        try:
            if deflate_ext is not None:
                # Accepted in the handshake: frames written here are compressed too.
                link.deflate_bits = deflate_ext.server_max_window_bits
            return await super().__call__(environ)
        finally:
            if self.hook.links.get(sid) is link:
                del self.hook.links[sid]
