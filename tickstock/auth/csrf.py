"""Cross-site request checks: the one same-origin rule, and the CSRF token of a cookie session.

A cookie-authenticated state-changing request must carry either the session's CSRF token or an
``Origin``/``Referer`` of this site; sockets connecting with a cookie face the same origin rule.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from urllib.parse import urlsplit

from quart import current_app, request

from tickstock.errors import APIError

__all__ = ["CSRF_HEADER", "check_origin", "csrf_ok", "csrf_token", "same_origin"]

CSRF_HEADER = "X-CSRF-Token"


def same_origin(origin: str, host: str, trusted: Sequence[str]) -> bool:
    """True when ``origin`` (an Origin or Referer value) is a trusted origin or this ``host``."""
    if origin in trusted:
        return True
    parts = urlsplit(origin)
    return parts.scheme in ("http", "https") and bool(parts.netloc) and parts.netloc == host


def check_origin() -> None:
    """A state-changing browser request must come from this site (Origin, Referer or token)."""
    trusted = current_app.config["SETTINGS"].cors_origins
    source = request.headers.get("Origin") or request.headers.get("Referer")
    if source and source != "null" and same_origin(source, request.host, trusted):
        return
    raise APIError(403, "csrf_failed", "cross-site request refused (Origin/Referer check)")


def csrf_token(session_id: str) -> str:
    """The CSRF token of a cookie session (an alternative to the Origin check)."""
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, f"csrf:{session_id}".encode(), hashlib.sha256).hexdigest()[:40]


def csrf_ok(session_id: str) -> bool:
    """The request carries the session's CSRF token or comes from this site."""
    supplied = request.headers.get(CSRF_HEADER)
    if supplied and hmac.compare_digest(supplied, csrf_token(session_id)):
        return True
    try:
        check_origin()
    except APIError:
        return False
    return True
