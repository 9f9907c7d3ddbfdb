"""tickstock: the real-time market-pattern gateway."""

from __future__ import annotations

from tickstock.version import __version__

__all__ = ["__version__", "create_app"]


def __getattr__(name: str) -> object:
    # Import lazily so `tickstock.__version__` does not pull in Quart (used by packaging).
    if name == "create_app":
        from tickstock.app import create_app

        return create_app
    raise AttributeError(name)
