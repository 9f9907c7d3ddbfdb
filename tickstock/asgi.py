"""The served ASGI app: ``hypercorn --config hypercorn.toml tickstock.asgi:app``.

Lifespan events pass through ``socketio.ASGIApp`` to Quart, whose serving hooks own every resource.
"""

from __future__ import annotations

from typing import Any

from tickstock.app import create_app
from tickstock.gc_tuning import tune_gc
from tickstock.realtime.server import get_realtime


def create_asgi_app(overrides: dict[str, Any] | None = None) -> Any:
    """A fresh Quart app wrapped with its Socket.IO server."""
    return get_realtime(create_app(overrides)).asgi_app()


app = create_asgi_app()
tune_gc()
