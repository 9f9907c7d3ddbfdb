"""The wire encoding of events: what a client receives, built once per event and node.

Every piece is spliced from bytes already encoded (the stored payload, its offset, the event name),
never decoded and re-encoded, because this runs for every event on every node.
"""

from __future__ import annotations

from typing import Any

from tickstock.jsonutil import loads
from tickstock.realtime.history import StoredEvent


def encode_envelope(event: StoredEvent) -> bytes:
    """The client-facing envelope as JSON, built once per event and node.

    The payload is spliced rather than decoded and re-encoded: ``offset`` goes first in ``data``.
    """
    data = event.payload
    if event.offset:
        data = b'{"offset":"' + event.offset.encode() + b'",' + data[1:]
    return (
        b'{"type":"'
        + event.event_type.encode()
        + b'","timestamp":'
        + event.timestamp
        + b',"data":'
        + data
        + b"}"
    )


def encode_frame(event: StoredEvent, envelope: bytes | None = None) -> bytes:
    """The Socket.IO EVENT packet (UTF-8 text) for one event, built once for every recipient."""
    envelope = envelope if envelope is not None else encode_envelope(event)
    return b'2["' + event.event_type.encode() + b'",' + envelope + b"]"


def encode_batch_item(event: StoredEvent, envelope: bytes | None = None) -> bytes:
    """One ``[name, envelope]`` entry of a coalesced ``events`` frame."""
    envelope = envelope if envelope is not None else encode_envelope(event)
    return b'["' + event.event_type.encode() + b'",' + envelope + b"]"


BATCH_EVENT = "events"


def encode_batch_frame(items: list[bytes]) -> bytes:
    """The Socket.IO EVENT packet of a coalesced frame: ``events`` with its entries in order."""
    return b'2["' + BATCH_EVENT.encode() + b'",[' + b",".join(items) + b"]]"


def engineio_message(frame: bytes) -> bytes:
    """The engine.io MESSAGE packet text carrying a Socket.IO packet (what a websocket frame holds)."""
    return b"4" + frame


def decode_event(stored: StoredEvent) -> dict[str, Any]:
    """The client-facing envelope as a dict (REST history and tests)."""
    data = loads(stored.payload)
    if stored.offset:
        data = {"offset": stored.offset, **data}
    return {"type": stored.event_type, "timestamp": float(stored.timestamp), "data": data}
