"""HTTP areas, one blueprint per module; each module exposes ``blueprint``."""

from __future__ import annotations

import importlib
import pkgutil

from quart import Blueprint, Quart


def register_blueprints(app: Quart) -> None:
    """Register the ``blueprint`` of every module in this package, in name order."""
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        blueprint = getattr(module, "blueprint", None)
        if isinstance(blueprint, Blueprint):
            app.register_blueprint(blueprint)
