"""A tiny builder for parameterised SQL whose filters depend on the request."""

from __future__ import annotations


class Params:
    """Numbered parameters: ``params.add(value)`` returns ``"$n"`` and remembers the value.

    Only the placeholders go into the SQL text, so each distinct filter combination is one
    statement that asyncpg prepares once and caches per connection.
    """

    __slots__ = ("values",)

    def __init__(self) -> None:
        self.values: list[object] = []

    def add(self, value: object, cast: str = "") -> str:
        self.values.append(value)
        return f"${len(self.values)}{cast}"


def escape_like(value: str) -> str:
    """``value`` as a literal inside a LIKE pattern (its ``%``, ``_`` and ``\\`` escaped)."""
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
