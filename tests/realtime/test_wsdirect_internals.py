"""The library internals the direct websocket path relies on (tickstock/realtime/wsdirect.py).

python-socketio, python-engineio, hypercorn and wsproto are pinned to the major versions the path
was written for; this fails, naming the internal, when an upgrade changes one of them (the server
itself then falls back to the ordinary path with a warning).
"""

from __future__ import annotations

from tickstock.realtime.wsdirect import check_internals


def test_every_internal_the_direct_path_uses_is_there() -> None:
    assert check_internals() == []
