"""What authentication knows about a caller.

The row types (:class:`User`, :class:`TokenInfo`, ...) are declared with their SQL in
:mod:`tickstock.queries.users` and re-exported here.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from tickstock.queries.users import (
    Credentials,
    Role,
    SessionKind,
    SessionState,
    TokenInfo,
    User,
)

__all__ = [
    "Credentials",
    "Identity",
    "Role",
    "SessionKind",
    "SessionState",
    "TokenInfo",
    "User",
]


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a request (or socket) is: the user and the session that authenticated it."""

    user: User
    session_id: str
    kind: SessionKind
    expires_at: dt.datetime | None
